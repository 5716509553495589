"""Keras 3 on TensorFlow, PyTorch and JAX: the same model with the same weights gives the same maps.

Keras fixes its backend when it is first imported, so each backend runs in its own process
(``gradcam_helpers.course.backend_processes.run_on_backends``): one process per backend computes every case in
``keras_backend_cases.py`` — every CAM method on a Functional, two Sequential (with and without
``Input``), two nested and a subclassed model, every pixel attribution (saliency, SmoothGrad,
Integrated Gradients, Guided Backprop, Guided Grad-CAM) on the Functional and subclassed ones, the automatic layer on ResNet50 and VGG16, the error
messages — and this module compares what they return.
"""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from gradcam_helpers.course.backend_processes import BACKENDS, run_on_backends
from gradcam_helpers.engine.registry import method_names

HERE = Path(__file__).resolve().parent
AVAILABLE = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("keras") is None or len(AVAILABLE) < 2,
    reason="needs keras and at least two of tensorflow, torch, jax")]

TOLERANCE = 1e-4
CAMS, PIXELS = method_names(kind="cam"), method_names(kind="pixel")
MODELS_WITH_EVERY_CAM = ["functional", "nested", "nested_seq", "subclassed"]
MODELS_WITH_PIXEL_ATTRIBUTIONS = ["functional", "subclassed"]


@pytest.fixture(scope="module")
def runs():
    code = (HERE / "keras_backend_cases.py").read_text(encoding="utf-8")
    threads = max(1, min(2, (os.cpu_count() or 2) // len(AVAILABLE)))
    return run_on_backends(code, AVAILABLE, threads=threads)


def test_each_process_ran_its_own_backend(runs):
    assert [str(runs[b]["backend"]) for b in AVAILABLE] == AVAILABLE


def test_every_method_ran_on_every_model_kind(runs):
    for backend in AVAILABLE:
        keys = set(runs[backend])
        for model in MODELS_WITH_EVERY_CAM:
            for method in CAMS:
                assert f"{model}/{method}/maps" in keys, (backend, model, method)
        for model in MODELS_WITH_PIXEL_ATTRIBUTIONS:
            for method in PIXELS:
                assert f"{model}/{method}/maps" in keys, (backend, model, method)
        for model in ("seq_input", "seq_no_input"):
            for method in CAMS:
                if method != "cam":  # a Flatten head: CAM does not apply (checked in the errors)
                    assert f"{model}/{method}/maps" in keys, (backend, model, method)


def test_same_maps_logits_and_targets_on_every_backend(runs):
    reference, ref_name = runs[AVAILABLE[0]], AVAILABLE[0]
    compared = 0
    for backend in AVAILABLE[1:]:
        other = runs[backend]
        assert set(other) == set(reference), backend
        for key, value in reference.items():
            if key.endswith(("/maps", "/logits")):
                diff = float(np.abs(other[key] - value).max())
                assert diff <= TOLERANCE, f"{key}: {ref_name} vs {backend} differ by {diff:.2e}"
                compared += 1
            elif key.endswith(("/targets", "/layer")):
                np.testing.assert_array_equal(other[key], value, err_msg=f"{key} on {backend}")
    assert compared >= 2 * 60  # the comparison is not vacuous: every case was there


def test_the_maps_compared_are_not_trivial(runs):
    for backend in AVAILABLE:
        for model in MODELS_WITH_EVERY_CAM:
            maps = runs[backend][f"{model}/gradcam/maps"]
            assert maps.shape == (5, 20, 20) and maps.max() == pytest.approx(1.0), (backend, model)
            assert maps.std() > 0.05, (backend, model)
        for model in MODELS_WITH_PIXEL_ATTRIBUTIONS:
            for method in PIXELS:
                maps = runs[backend][f"{model}/{method}/maps"]
                assert maps.shape == (5, 20, 20) and maps.max() > 0.5, (backend, model, method)
                assert maps.std() > 0.01, (backend, model, method)
        # targets differ between images where they were given, and top-class targets are argmaxes
        given = runs[backend]["functional/gradcam/given/targets"]
        np.testing.assert_array_equal(given, [0, 1, 2, 3, 4])
        top = runs[backend]["functional/gradcam/targets"]
        np.testing.assert_array_equal(top, runs[backend]["functional/gradcam/logits"].argmax(1))


def test_a_vision_transformer_on_every_backend(runs):
    """Token grids and attention maps: the maps themselves are compared across backends by
    test_same_maps_logits_and_targets_on_every_backend; here, that they are the ViT's."""
    for backend in AVAILABLE:
        r = runs[backend]
        assert str(r["vit/gradcam/layer"]) == "block1_norm1", backend
        assert str(r["vit/rollout/layer"]) == "attention", backend
        for method in ("gradcam", "attention", "rollout"):
            maps = r[f"vit/{method}/maps"]
            assert maps.shape == (5, 20, 20) and maps.max() == pytest.approx(1.0), (backend, method)
            assert maps.std() > 0.01, (backend, method)


def test_score_is_read_before_softmax_and_the_model_is_left_unchanged(runs):
    for backend in AVAILABLE:
        r = runs[backend]
        logits, probs = r["functional/gradcam/logits"], r["functional/probabilities"]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        np.testing.assert_allclose(e / e.sum(axis=1, keepdims=True), probs, atol=1e-5)
        assert not np.allclose(logits, probs)
        assert bool(r["functional/unchanged"]), backend


def test_sequential_with_and_without_input_give_the_same_maps(runs):
    for backend in AVAILABLE:
        r = runs[backend]
        for method in CAMS:
            if method != "cam":
                assert str(r[f"seq_input/{method}/layer"]) == "c1"
                np.testing.assert_allclose(r[f"seq_input/{method}/maps"],
                                           r[f"seq_no_input/{method}/maps"], atol=1e-6)


def test_layers_inside_a_nested_base_are_found_by_path(runs):
    for backend in AVAILABLE:
        for model in ("nested", "nested_seq"):
            assert str(runs[backend][f"{model}/gradcam/layer"]) == "base/b_conv2"
            assert str(runs[backend][f"{model}/inner_layer/layer"]) == "base/b_conv1"
        assert str(runs[backend]["subclassed/gradcam/layer"]) == "conv"


def test_automatic_layer_on_keras_applications(runs):
    for backend in AVAILABLE:
        assert str(runs[backend]["applications/ResNet50"]) == "conv5_block3_out", backend
        assert str(runs[backend]["applications/VGG16"]) == "block5_conv3", backend


EXPECTED_ERRORS = {
    "unknown_layer": r"ValueError: no layer named 'conv3'.*conv1.*conv2",
    "dense_layer": r"ValueError: layer 'dense' has output shape .*not a spatial",
    "target_range": r"ValueError: target class 5 is out of range",
    "target_count": r"ValueError: got 2 targets for 5 images",
    "no_batch_axis": r"ValueError: .*batch axis",
    "empty": r"ValueError: the batch is empty",
    "channels": r"ValueError: the model expects 2 channel",
    "uint8": r"ValueError: images are uint8",
    "cam_on_flatten": r"ValueError: CAM needs .*GlobalAveragePooling2D.*gradcam",
    "nan": r"ValueError: .*NaN",
    # a layer the score does not use (called, its output dropped): on JAX too, where the gradient
    # would otherwise be silently zero
    "unused_layer": r"RuntimeError: the score does not depend on layer 'side'; pick a layer on the path",
}


def test_a_zero_gradient_on_the_path_gives_empty_maps_not_an_error(runs):
    for backend in AVAILABLE:
        maps = runs[backend]["dead_relu/gradcam/maps"]
        assert maps.shape == (5, 20, 20) and np.isfinite(maps).all(), backend
        assert maps.max() == 0, backend


def test_bad_input_gives_the_same_clear_error_on_every_backend(runs):
    import re

    for name, pattern in EXPECTED_ERRORS.items():
        messages = {backend: str(runs[backend][f"error/{name}"]) for backend in AVAILABLE}
        assert len(set(messages.values())) == 1, messages
        assert re.match(pattern, messages[AVAILABLE[0]], re.S), messages[AVAILABLE[0]]


def test_run_on_backends_names_the_backend_that_failed_and_rejects_unknown_ones():
    with pytest.raises(ValueError, match="unknown Keras backend"):
        run_on_backends("pass", ["theano"])
    with pytest.raises(RuntimeError, match=r"(?s)'torch' backend.*exit status 1.*boom"):
        run_on_backends("raise RuntimeError('boom')", ["torch"])
    out = run_on_backends("import os\nresults['b'] = os.environ['KERAS_BACKEND']\nresults['x'] = [1, 2]",
                          ["jax", "torch"], parallel=False)
    assert str(out["jax"]["b"]) == "jax" and out["torch"]["x"].tolist() == [1, 2]
