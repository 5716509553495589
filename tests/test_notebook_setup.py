"""``setup_notebook()``: a torch lesson never loads TensorFlow; a framework imported later in a
lesson is still seeded, limited to two threads and quiet. Each case runs in a fresh interpreter,
because what the call sets up depends on what is already imported."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gradcam_helpers import setup_notebook

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> tuple[dict, str]:
    """Run ``code`` in a fresh interpreter; it prints one JSON line last. (result, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # setup_notebook must quiet TensorFlow by itself
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_a_torch_lesson_does_not_import_tensorflow():
    result, _ = _run("""
        import json, sys
        from gradcam_helpers import setup_notebook
        info = setup_notebook(seed=0)
        import numpy as np
        import torch
        from gradcam_helpers import explain, overlay
        from gradcam_helpers.evaluation import energy_inside, pointing_game, sanity_check
        from gradcam_helpers.course.models.torch_resnet import resnet18
        from gradcam_helpers.course.xray import load_xray_dataset
        drawn = torch.rand(3).tolist()
        model = resnet18(num_classes=2, in_channels=1, width=8)
        result = explain(model, torch.rand(2, 1, 32, 32), "gradcam")
        torch.manual_seed(0)
        print(json.dumps({"tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules,
                          "threads": torch.get_num_threads(), "seeded": drawn == torch.rand(3).tolist(),
                          "maps": list(result.maps.shape), "info": info}))
    """)
    assert result["tensorflow"] is False and result["keras"] is False
    assert result["threads"] == 2 and result["seeded"]
    assert result["maps"] == [2, 32, 32]
    assert "torch" in result["info"]
    if importlib.util.find_spec("tensorflow") is not None:
        assert "tensorflow" in result["info"]  # the version is read without importing it


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None
                    or importlib.util.find_spec("keras") is None, reason="needs TensorFlow and keras")
@pytest.mark.slow
def test_keras_imported_later_is_seeded_quiet_and_leaves_numpy_alone():
    result, stderr = _run("""
        import json, os, sys
        os.environ["KERAS_BACKEND"] = "tensorflow"
        from gradcam_helpers import setup_notebook
        setup_notebook(seed=0)
        import numpy as np
        before = "tensorflow" in sys.modules
        first = np.random.rand()
        import keras                       # imports TensorFlow: set up now, with its banner silenced
        import tensorflow as tf
        second = np.random.rand()
        dense = keras.layers.Dense(3)
        dense.build((None, 4))
        kernel = keras.ops.convert_to_numpy(dense.kernel)
        keras.utils.set_random_seed(0)     # what the first kernel must have been drawn with
        again = keras.layers.Dense(3)
        again.build((None, 4))
        print(json.dumps({
            "before": before,
            "numpy": [first, second] == np.random.RandomState(0).rand(2).tolist(),
            "seeded": bool(np.array_equal(kernel, keras.ops.convert_to_numpy(again.kernel))),
            "threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                        tf.config.threading.get_inter_op_parallelism_threads()]}))
    """)
    assert result["before"] is False
    assert result["numpy"], "importing TensorFlow/Keras moved NumPy's stream"
    assert result["seeded"] and result["threads"] == [2, 2]
    assert "oneDNN" not in stderr and "cpu_feature_guard" not in stderr, stderr[-2000:]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_a_lesson_can_ask_for_a_framework_up_front():
    result, _ = _run("""
        import json, sys
        from gradcam_helpers import setup_notebook
        setup_notebook(seed=0, frameworks=["torch"])
        import torch
        print(json.dumps({"torch": "torch" in sys.modules, "tensorflow": "tensorflow" in sys.modules,
                          "threads": torch.get_num_threads()}))
    """)
    assert result == {"torch": True, "tensorflow": False, "threads": 2}


def test_an_unknown_framework_is_named_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown framework.*'jax'.*tensorflow, keras, torch"):
        setup_notebook(frameworks=["jax"])
