"""The engine's plumbing, written once: tensor → NumPy, softmax, the maps check, target resolution,
and the adapter lookup. Expected values worked out by hand."""
import numpy as np
import pytest

from gradcam_helpers.engine.maps import check_maps, softmax, to_numpy
from gradcam_helpers.engine.targets import check_count, class_indices, resolve_targets, select


def test_softmax_by_hand_and_stable_for_large_scores():
    # softmax([0, ln 3]) = [1/4, 3/4]; adding 1000 to both changes nothing (and does not overflow)
    z = np.array([[0.0, np.log(3.0)], [1000.0, 1000.0 + np.log(3.0)]])
    np.testing.assert_allclose(softmax(z, axis=1), [[0.25, 0.75], [0.25, 0.75]])
    np.testing.assert_allclose(softmax(np.array([1.0, 1.0, 1.0, 1.0])), [0.25] * 4)
    assert softmax(z).dtype == np.float64


def test_to_numpy_takes_tensors_with_gradients_and_half_precision():
    torch = pytest.importorskip("torch")
    t = torch.tensor([[1.5, -2.0]], requires_grad=True) * 2
    np.testing.assert_array_equal(to_numpy(t), [[3.0, -4.0]])
    half = to_numpy(torch.tensor([0.5, 1.0], dtype=torch.bfloat16))
    assert half.dtype == np.float32 and half.tolist() == [0.5, 1.0]
    assert to_numpy([1, 2], np.float64).dtype == np.float64
    a = np.zeros(3, np.float32)
    assert to_numpy(a) is a


def test_check_maps_shapes_nan_and_sign():
    assert check_maps(np.ones((4, 5))).shape == (1, 4, 5)
    with pytest.raises(ValueError, match=r"maps must be \(N, H, W\) or \(H, W\); got shape \(2, 3, 4, 5\)"):
        check_maps(np.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="NaN or inf"):
        check_maps(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="non-negative"):
        check_maps(np.array([[-0.5]]), nonnegative=True)
    # float rounding below zero is clipped, not refused
    assert check_maps(np.array([[-1e-9, 1.0]]), nonnegative=True).min() == 0
    assert check_maps(np.array([[-0.5]])).min() == -0.5  # sign checked only when asked


def test_targets_resolve_count_and_select():
    logits = np.array([[0.1, 2.0, 0.3], [5.0, 0.0, 1.0]])
    assert resolve_targets(None, logits).tolist() == [1, 0]
    assert resolve_targets(2, logits).tolist() == [2, 2]
    assert resolve_targets([0, 2.0], logits).tolist() == [0, 2]
    assert class_indices(None, 2) is None
    with pytest.raises(ValueError, match="target class 3 is out of range: the model has 3 classes"):
        resolve_targets(3, logits)
    with pytest.raises(ValueError, match="target must be None"):
        resolve_targets(0.5, logits)
    with pytest.raises(ValueError, match="got 3 targets for 2 images"):
        class_indices([0, 1, 2], 2)
    check_count(None, 2), check_count(1, 2), check_count([0, 1], 2)
    with pytest.raises(ValueError, match="got 1 targets for 2 images"):
        check_count([0], 2)
    assert select(None, slice(0, 1)) is None and select(4, slice(0, 1)) == 4
    assert select([5, 6, 7], slice(1, 3)).tolist() == [6, 7]


def test_adapter_lookup_names_the_frameworks():
    from gradcam_helpers.engine.adapters import adapter_class, adapter_for

    assert adapter_class("torch").framework == "torch"
    with pytest.raises(ValueError, match="unknown framework 'jax'; use one of: 'keras', 'torch'"):
        adapter_class("jax")
    with pytest.raises(TypeError, match="keras.Model or a torch.nn.Module; got str"):
        adapter_for("a model")
