"""The committed outputs of the lessons are portable and agree with each other.

- No output (streams, tracebacks, text/html/markdown data; never image data) shows an absolute path of
  the machine that executed the lesson: the workspace, temporary, home and virtual-environment folders.
  Lessons print paths relative to the repository or to the cache folder.
- Lessons that load the same cached model print the same cache file name for it, without the cache
  folder in front of it (the folder is machine-specific: ``.cache/`` or ``$GRADCAM_CACHE``).
"""
from __future__ import annotations

import os
import re
import tempfile
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# an absolute path: "/tmp/…" at the start of a token (not after a letter, "." or "~", so URLs like
# https://x.org/home/… and "~/…" are fine), a Windows user folder, or any virtual environment
_ABSOLUTE = re.compile(
    r"(?<![\w.~])/(?:work|tmp|root|home|Users|mnt|opt|srv|var/folders|private/var|usr/lib|usr/local/lib)/"
    r"|\b[A-Za-z]:\\+Users\\+"
    r"|(?:^|[\s/\\'\"(])\.?venv[/\\]"
    r"|site-packages|dist-packages")
# a trained model's cache file: <stem>-<12 hex digits>.<ext>, with an optional folder in front
_CACHE_NAME = re.compile(r"(?P<folder>[\w.-]+/)?(?P<stem>[A-Za-z][\w.]*(?:-v\d+)?)-(?P<key>[0-9a-f]{12})"
                         r"\.(?P<ext>keras|pt|npz|h5|json)\b")


def machine_paths() -> list[str]:
    """This machine's own folders, in case a lesson was executed here (they may not match the
    patterns above, e.g. a checkout under /srv or /data)."""
    paths = {str(ROOT), str(Path.home()), tempfile.gettempdir(), os.path.realpath(tempfile.gettempdir())}
    return sorted(p for p in paths if len(p) > 4)


def output_texts(cell) -> list[str]:
    """The text a reader sees in a code cell's outputs: streams, errors, text/* data (not images)."""
    texts = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            texts.append(out.get("text", ""))
        elif kind == "error":
            texts.extend([out.get("evalue", ""), *out.get("traceback", [])])
        else:
            texts.extend(v if isinstance(v, str) else "".join(v) for k, v in out.get("data", {}).items()
                         if k.startswith("text/"))
    return [_ANSI.sub("", t) for t in texts]


def absolute_paths(text: str, own: list[str] = ()) -> list[str]:
    """The absolute paths in ``text`` (with a little context), [] when there are none."""
    found = [text[max(0, m.start() - 30):m.end() + 30].replace("\n", " ") for m in _ABSOLUTE.finditer(text)]
    found += [text[max(0, i - 30):i + len(p) + 30].replace("\n", " ")
              for p in own for i in [text.find(p)] if i >= 0]
    return found


def cache_names(text: str) -> list[tuple[str | None, str, str]]:
    """(folder or None, stem, key) of every cache file name in ``text``."""
    return [(m["folder"], m["stem"], m["key"]) for m in _CACHE_NAME.finditer(text)]


def cache_conflicts(printed: dict[str, dict[str, set[str]]]) -> list[str]:
    """Stems printed by two lessons with one key each, but different keys.

    ``printed``: lesson -> stem -> the keys it printed. A lesson that prints several keys for one
    stem (several trainings of one architecture) is not compared.
    """
    single = defaultdict(dict)
    for lesson, stems in printed.items():
        for stem, keys in stems.items():
            if len(keys) == 1:
                single[stem][lesson] = next(iter(keys))
    return [f"{stem}: " + ", ".join(f"{lesson} prints {key}" for lesson, key in sorted(by_lesson.items()))
            for stem, by_lesson in sorted(single.items()) if len(set(by_lesson.values())) > 1]


# ------------------------------------------------------------------ the checks on the lessons


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_outputs_show_no_absolute_path_of_the_machine(path):
    nb = nbformat.read(path, as_version=4)
    own = machine_paths()
    bad = [f"cell {i}: …{hit}…" for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
           for text in output_texts(cell) for hit in absolute_paths(text, own)]
    assert not bad, (
        f"{path.name} shows absolute paths of the machine that executed it (print paths relative to the "
        "repository or the cache folder; catch an error that shows library files and print its message, "
        "or use %xmode Minimal in a cell tagged raises-exception):\n" + "\n".join(bad[:10]))


def _printed_cache_names():
    printed = {}
    with_folder = []
    for path in LESSONS:
        nb = nbformat.read(path, as_version=4)
        stems = defaultdict(set)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            for text in output_texts(cell):
                for folder, stem, key in cache_names(text):
                    stems[stem].add(key)
                    if folder:
                        with_folder.append(f"{path.name} cell {i}: {folder}{stem}-{key}")
        printed[path.name] = dict(stems)
    return printed, with_folder


def test_lessons_that_share_a_model_print_the_same_cache_file():
    printed, _ = _printed_cache_names()
    conflicts = cache_conflicts(printed)
    assert not conflicts, (
        "lessons print different cache files for the same model — their outputs come from different "
        "versions of the code; re-execute them from one commit (`make execute`):\n" + "\n".join(conflicts))


def test_cache_file_names_are_printed_without_their_folder():
    _, with_folder = _printed_cache_names()
    assert not with_folder, (
        "print a cached model's file name alone (path.name): the folder is .cache/ or $GRADCAM_CACHE, "
        "different on every machine:\n" + "\n".join(with_folder[:10]))


# ------------------------------------------------------------------ the checkers themselves


@pytest.mark.parametrize("text", [
    "File /work/wt/les/gradcam_helpers/api.py:209, in explain(model)",
    "File /home/alice/course/.venv/lib/python3.11/site-packages/keras/src/ops/operation.py:12",
    "ResNet50 の重みが手元にないので飛ばします: /root/.keras/models/resnet50.h5",
    "saved to /tmp/lesson11_abc/report.md",
    "C:\\Users\\bob\\course\\notebooks",
    "/Users/carol/miniconda3/envs/x/lib/python3.11/dist-packages/torch/nn/modules/module.py",
    "loaded .venv/lib/python3.11/x.py",
])
def test_absolute_paths_are_found(text):
    assert absolute_paths(text)


@pytest.mark.parametrize("text", [
    "https://keras.io/examples/vision/grad_cam/ and https://example.org/home/page",
    "~/.keras/models/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
    "error 列: ValueError: …/hospital_a/NORMAL/broken_upload.png is not an image file",
    "notebooks/06_chest_xray_resnet.ipynb, ratio 1/2, 3/4 of the images",
    "キャッシュから読み込みました / loaded from cache: mnist_cnn-v1-cd57d23eb0c4.keras",
])
def test_relative_paths_and_urls_pass(text):
    assert absolute_paths(text) == []


def test_the_machines_own_folders_are_found():
    own = ["/data/checkout/course"]
    assert absolute_paths("File /data/checkout/course/gradcam_helpers/api.py:3", own)
    assert not absolute_paths("File gradcam_helpers/api.py:3", own)


def test_cache_names_and_conflicts():
    text = ("保存しました / cached: fresh2/mnist_cnn-v1-cd57d23eb0c4.keras\n"
            "→ xray_resnet18_w12-2ca4a9d07c23.pt, history mnist_gap_cnn-v2-481750348aee.json")
    assert cache_names(text) == [("fresh2/", "mnist_cnn-v1", "cd57d23eb0c4"),
                                 (None, "xray_resnet18_w12", "2ca4a9d07c23"),
                                 (None, "mnist_gap_cnn-v2", "481750348aee")]
    assert cache_names("hash cd57d23eb0c4 alone, sha 0123456789abcdef0123") == []
    agree = {"02": {"mnist_cnn-v1": {"aaaaaaaaaaaa"}}, "03": {"mnist_cnn-v1": {"aaaaaaaaaaaa"}}}
    assert cache_conflicts(agree) == []
    differ = {"02": {"mnist_cnn-v1": {"aaaaaaaaaaaa"}}, "03": {"mnist_cnn-v1": {"bbbbbbbbbbbb"}}}
    assert cache_conflicts(differ) == ["mnist_cnn-v1: 02 prints aaaaaaaaaaaa, 03 prints bbbbbbbbbbbb"]
    # a lesson that trains the same architecture on several data sets is not compared
    several = {"06": {"xray": {"aaaaaaaaaaaa"}}, "07": {"xray": {"aaaaaaaaaaaa", "cccccccccccc"}}}
    assert cache_conflicts(several) == []
