"""Progress bars that read well live *and* in a saved notebook.

``tqdm.auto`` draws an ipywidgets bar in Jupyter; a saved notebook keeps only the widget's text
fallback, written when the bar was created ("0%|          | 0/8"), which on a code host reads as a
hang. :func:`progress` instead shows a plain-text bar through an updatable display (Jupyter's
``display_id``): the learner sees it move live, and the saved output is the last state, e.g.
``Score-CAM: 100% |████████████████████| 512/512 [12.3 s]``. Outside a kernel (a terminal, pytest)
it falls back to ``tqdm`` on stderr.

Use it like tqdm::

    for batch in progress(batches, desc="training"):
        ...
    with progress(total=n, desc="Score-CAM", unit="mask") as bar:
        bar.update(32)
"""
from __future__ import annotations

import time
from typing import Any, Iterable, Iterator

_WIDTH = 20
_MIN_INTERVAL = 0.25  # seconds between two live redraws


def in_kernel() -> bool:
    """Whether the code runs in a Jupyter (IPython) kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the course
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def enabled(flag: bool | None) -> bool:
    """Whether to show a bar: ``flag`` itself, or, when it is None, only in a Jupyter kernel (where
    a bar reads well; in a terminal or a test run it would be noise)."""
    return bool(flag) if flag is not None else in_kernel()


def _seconds(t: float) -> str:
    if t < 60:
        return f"{t:.1f} s"
    minutes, seconds = divmod(int(round(t)), 60)
    return f"{minutes}:{seconds:02d} min"


def format_bar(n: int, total: int | None, elapsed: float, desc: str = "", unit: str = "it",
               postfix: str = "") -> str:
    """One line of text for a bar at step ``n`` of ``total`` after ``elapsed`` seconds.

    >>> format_bar(8, 8, 12.34, desc="train")
    'train: 100% |████████████████████| 8/8 [12.3 s]'
    """
    head = f"{desc}: " if desc else ""
    tail = f", {postfix}" if postfix else ""
    if not total:
        rate = f", {n / elapsed:.1f} {unit}/s" if elapsed > 0 and n else ""
        return f"{head}{n} {unit} [{_seconds(elapsed)}{rate}{tail}]"
    frac = min(max(n / total, 0.0), 1.0)
    filled = int(round(frac * _WIDTH))
    bar = "█" * filled + " " * (_WIDTH - filled)
    timing = _seconds(elapsed)
    if 0 < n < total and elapsed > 0:
        timing += f" < {_seconds(elapsed * (total - n) / n)} left"
    return f"{head}{frac * 100:3.0f}% |{bar}| {n}/{total} [{timing}{tail}]"


class Progress:
    """A progress bar; see :func:`progress`. Also a context manager and an iterator."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", disable: bool = False):
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = 0
        self.disable = disable
        self.postfix = ""
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._handle = None
        self._tqdm = None
        self._closed = False
        if disable:
            return
        if in_kernel():
            from IPython.display import display
            self._handle = display({"text/plain": self._text()}, raw=True, display_id=True)
        else:
            from tqdm import tqdm
            self._tqdm = tqdm(total=total, desc=desc or None, unit=unit, leave=True)

    @property
    def elapsed(self) -> float:
        """Seconds since the bar was created."""
        return time.perf_counter() - self._start

    def _text(self) -> str:
        return format_bar(self.n, self.total, self.elapsed, self.desc, self.unit, self.postfix)

    def _draw(self, force: bool = False) -> None:
        if self._handle is None:
            return
        now = time.perf_counter()
        if force or now - self._last_draw >= _MIN_INTERVAL:
            self._handle.update({"text/plain": self._text()}, raw=True)
            self._last_draw = now

    def update(self, n: int = 1) -> None:
        """Advance the bar by ``n`` steps."""
        self.n += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        self._draw()

    def set_postfix(self, **values: Any) -> None:
        """Show ``key=value`` pairs after the bar (floats with 4 significant digits)."""
        self.postfix = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in values.items())
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(self.postfix, refresh=False)
        self._draw()

    def close(self) -> None:
        """Draw the final state (what a saved notebook keeps)."""
        if self._closed:
            return
        self._closed = True
        if self._tqdm is not None:
            self._tqdm.close()
        self._draw(force=True)

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("progress(total=...) without an iterable is not iterable; call update()")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", disable: bool = False) -> Progress:
    """A progress bar that stays readable in saved notebooks.

    Parameters
    ----------
    iterable : iterable, optional
        Items to iterate over; the bar advances by one per item.
    total : int, optional
        Number of steps (taken from ``len(iterable)`` when possible).
    desc : str
        Label shown before the bar.
    unit : str
        Name of one step (``"it"``, ``"mask"``, ``"image"``...).
    disable : bool
        Show nothing (the bar still counts).

    Returns
    -------
    Progress
        Iterate over it, or call ``update(n)`` / ``set_postfix(...)`` and ``close()`` (or use it as a
        context manager).
    """
    return Progress(iterable, total=total, desc=desc, unit=unit, disable=disable)
