"""Sphinx configuration of the course's book (``make book``).

The sources are not kept here: ``tools/build_book.py`` stages them (the executed lessons, the
landing page, the glossary when it exists, the API reference pages) into ``build/book-src/`` and
runs ``sphinx-build -c book`` on them, so this folder holds only the configuration, the landing
page's template and the style sheet. Nothing is executed: the lessons are shown with the outputs
they were committed with.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform

project = "Grad-CAM 講座"
author = "gradcam_helpers の作者たち"
copyright = "gradcam_helpers の作者たち"
language = "ja"

extensions = [
    "myst_nb",                # notebooks and Markdown (MyST)
    "sphinx.ext.autodoc",     # the API reference from the docstrings
    "sphinx.ext.napoleon",    # numpy-style docstrings
    "sphinx.ext.mathjax",     # math in the lessons, served from the site itself (see below)
]

# --- the lessons: shown as committed, never executed ------------------------------------------
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
# The explorer (ipywidgets) needs a running kernel: in the book its text/plain form is shown (it
# says so in Japanese) and the static figure the lesson draws beside it. No widget JavaScript is
# loaded (the default would fetch it from a CDN).
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [("*", "application/vnd.jupyter.widget-view+json", None)]
nb_merge_streams = True

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = [
    # Lessons number their own headings ("## 3. …") and start at "# NN …"; a heading level that
    # jumps inside a notebook's Markdown cell is the lesson's style, not a broken document.
    "myst.header",
]

# --- the API reference ------------------------------------------------------------------------
# A package documents only what it defines: a name it re-exports (``audit.ModelSpec``) is
# documented once, on the page of the module that defines it.
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True,
                           "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True   # an Attributes section is a field list, not a second attribute entry
# The docstrings write a parameter's shape and meaning where numpydoc puts its type
# ("n : the number of images"); Sphinx tries each word of it as a cross-reference, and a word such
# as ``images`` or ``logits`` that names attributes of several classes is ambiguous. Such words
# stay plain text instead of failing the strict build; real references (:func:, :class:) resolve.
suppress_warnings = ["ref.python"]

# --- HTML -------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "Grad-CAM 講座 — CNN はどこを見ているか"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_search_language = "ja"       # Japanese word splitting for the full-text search
html_last_updated_fmt = None
html_copy_source = True           # the .ipynb of each lesson can be downloaded from its page
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
}
html_context = {"default_mode": "light"}
# A repository link when the site is published (set by .github/workflows/pages.yml).
_repository = os.environ.get("BOOK_REPOSITORY_URL", "")
if _repository:
    html_theme_options.update(repository_url=_repository, use_repository_button=True,
                              path_to_docs="notebooks")

# --- math without a network -------------------------------------------------------------------
# Sphinx loads MathJax from a CDN by default; a learner reading offline (or behind a strict
# proxy) would see raw TeX. MathJax 3 comes from the pinned PyPI package sphinx-mathjax-offline
# (a carrier of MathJax's own files); only the parts a page needs are copied into the site.
mathjax_path = "mathjax/tex-chtml.js"
_MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions")


def _mathjax_source() -> Path:
    from importlib import metadata

    try:
        dist = metadata.distribution("sphinx-mathjax-offline")
    except metadata.PackageNotFoundError:
        raise RuntimeError("the book needs MathJax from the package sphinx-mathjax-offline: "
                           "run `make setup` (it is in requirements.txt)") from None
    # the package keeps MathJax in a folder that is not an importable module: find it on disk
    return Path(dist.locate_file("sphinx-mathjax-offline/static/mathjax"))


def _copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source, target = _mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in _MATHJAX_PARTS:
        src, dst = source / part, target / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


# --- Japanese line breaks ----------------------------------------------------------------------
# The lessons wrap their Japanese prose over several source lines. A browser shows each line break
# as a space, which Japanese does not have ("です。 Keras"); the break is dropped where both sides
# are Japanese or the line ends with Japanese punctuation. A break next to Latin text stays a
# space, as the lessons write "の CAM" with one.
_CJK = r"\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_JOIN = re.compile(rf"(?<=[{_CJK}])[ \t]*\n[ \t]*(?=[{_CJK}])|(?<=[、。，．」』）])[ \t]*\n[ \t]*")
_KEEP = (nodes.literal_block, nodes.literal, nodes.raw, nodes.math, nodes.math_block,
         nodes.FixedTextElement)


class JoinJapaneseLines(SphinxTransform):
    """Drop the source line breaks inside Japanese sentences (see the comment above)."""

    default_priority = 700

    def apply(self, **kwargs) -> None:
        for text in list(self.document.findall(nodes.Text)):
            if isinstance(text.parent, _KEEP) or "\n" not in text:
                continue
            joined = _JOIN.sub("", str(text))
            if joined != str(text):
                text.parent.replace(text, nodes.Text(joined))


def setup(app):
    app.add_transform(JoinJapaneseLines)
    _mathjax_source()  # fail at the start of the build, with the fix, when MathJax is missing
    app.connect("build-finished", _copy_mathjax)
