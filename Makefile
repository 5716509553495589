# The course's commands. Every target sets up .venv first when it is missing or out of date.
#   make lab        open the lessons in JupyterLab
#   make test       every test + execute every notebook (what CI runs); WORKERS=2 processes
#   make unit       the tests without those marked slow (a minute or two)
#   make lint       ruff and mypy (make test runs it first)
#   make execute    re-execute every notebook in place (commit the outputs)
#   make student    write student copies without solutions to build/student/
#   make book       the lessons as a static site in build/book/ (STUDENT=1: solutions removed,
#                   build/book-student/); make book-screenshots refreshes docs/book_*.png
#   make bench      run the speed benchmark (writes benchmarks/results/); BENCH_ARGS=--quick
#   make lock       rewrite constraints.txt from the current .venv

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888
NB     ?= notebooks/[0-9]*.ipynb
WORKERS ?= 2
XDIST  := $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadfile)

# Quiet, deterministic and small: TF logs off, two threads (the course's laptop).
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONHASHSEED := 0
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: setup lab test lint unit notebooks execute student book book-screenshots bench lock clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	@touch $@

lab: $(STAMP)
	@echo "JupyterLab will print its URL below (open the one with ?token=...)."
	$(BIN)/jupyter lab --notebook-dir=notebooks --no-browser --ip=127.0.0.1 --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root)

# The tests and the lessons run in WORKERS processes (pytest-xdist; each file, so each notebook's
# kernel, stays in one process); WORKERS=0 runs them in this process, in order.
test: lint
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider $(XDIST)

# ruff (errors, import order, the package's numpy docstrings) and mypy on the engine; settings in
# pyproject.toml. make test runs this first.
lint: $(STAMP)
	$(BIN)/python -m ruff check gradcam_helpers tests tools benchmarks
	$(BIN)/python -m mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow" $(XDIST)

notebooks: $(STAMP)
	$(BIN)/python -m pytest notebooks --nbval-lax --nbval-cell-timeout=900

execute: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py $(NB)

student: $(STAMP)
	$(BIN)/python tools/make_student_copies.py notebooks build/student

# STUDENT=1 (or yes/true) builds the student variant from the same student copies, outputs kept
# except those of the exercises; nothing is executed.
book: $(STAMP)
	$(BIN)/python tools/build_book.py $(if $(filter 1 yes true,$(STUDENT)),--student)

book-screenshots: $(STAMP)
	$(BIN)/python tools/book_screenshots.py

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_cam.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/bench_audit.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/bench_backends.py $(BENCH_ARGS)

lock: $(STAMP)
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v -e '^torch==' -e '^pip==' > constraints.tmp
	@{ echo '# Exact versions tested together. Regenerate with `make lock` after changing requirements.txt.'; \
	   echo 'torch==2.13.0'; cat constraints.tmp; } > constraints.txt; rm -f constraints.tmp

clean:
	rm -rf build .cache
