"""The progress bar a saved notebook keeps shows the finished state, never tqdm's "0%" fallback."""
from __future__ import annotations

from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from gradcam_helpers.engine.progress import format_bar, progress


def test_format_bar_states():
    assert format_bar(0, 4, 0.0, desc="x") == "x:   0% |                    | 0/4 [0.0 s]"
    half = format_bar(2, 4, 3.0, desc="x")
    assert "50%" in half and "2/4" in half and "3.0 s left" in half
    assert format_bar(4, 4, 75.0).startswith("100% |" + "█" * 20)
    assert "1:15 min" in format_bar(4, 4, 75.0)
    assert format_bar(3, None, 1.5, unit="image") == "3 image [1.5 s, 2.0 image/s]"


def test_counts_outside_a_kernel():
    bar = progress(range(7), desc="t", disable=True)
    assert list(bar) == list(range(7))
    assert bar.n == 7 and bar.total == 7
    with progress(total=10, disable=True) as manual:
        manual.update(4)
        manual.set_postfix(loss=0.123456, step=2)
    assert manual.n == 4 and manual.postfix == "loss=0.1235, step=2"


def test_saved_notebook_keeps_the_final_state():
    code = ("from gradcam_helpers.engine.progress import progress\n"
            "for i in progress(range(5), desc='train', unit='batch'):\n"
            "    pass\n")
    nb = new_notebook(cells=[new_code_cell(code)])
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    texts = [o["data"]["text/plain"] for o in nb.cells[0].outputs if o.output_type == "display_data"]
    assert len(texts) == 1, nb.cells[0].outputs
    assert texts[0].startswith("train: 100% |") and "5/5" in texts[0]
    assert "0%|" not in texts[0]
