"""Run by tests/test_keras_backends.py once per Keras backend, each in its own process.

Every model is built the same way on every backend and given the same weights, drawn from NumPy's
generator (Keras's own initialisers draw different numbers on each backend). Everything computed is
put into ``results`` (given by ``gradcam_helpers.course.backend_processes.run_on_backends``) and compared across
backends by the test.
"""
import keras
import numpy as np

from gradcam_helpers import Explainer, explain
from gradcam_helpers.engine.registry import method_names

results = globals().setdefault("results", {})
results["backend"] = keras.config.backend()

CAMS = method_names(kind="cam")                  # maps at a layer's resolution
PIXELS = method_names(kind="pixel")               # pixel attributions (input gradients)
NO_CAM = [name for name in CAMS if name != "cam"]
L = keras.layers


def set_numpy_weights(model, seed):
    """He-scaled normal kernels, small biases, BatchNorm statistics that keep activations sane."""
    rng = np.random.default_rng(seed)
    values = []
    for var in model.weights:
        shape = tuple(var.shape)
        name = var.path.split("/")[-1]
        if name == "moving_variance":
            values.append(rng.uniform(0.5, 1.5, shape))
        elif name in ("gamma",):
            values.append(rng.uniform(0.5, 1.5, shape))
        elif len(shape) >= 2:
            values.append(rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[:-1])), shape))
        else:
            values.append(rng.normal(0.0, 0.1, shape))
    model.set_weights([v.astype("float32") for v in values])
    return model


def record(prefix, result):
    results[f"{prefix}/maps"] = result.maps
    results[f"{prefix}/logits"] = result.logits
    results[f"{prefix}/targets"] = result.targets
    results[f"{prefix}/layer"] = result.layer


def gap_model():
    inp = keras.Input((20, 20, 2))
    x = L.Conv2D(6, 3, activation="relu", name="conv1")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(5, activation="softmax", name="dense")(x))


def flatten_layers():
    return [L.Conv2D(4, 3, activation="relu", name="c1"), L.MaxPooling2D(name="pool"),
            L.Flatten(name="flat"), L.Dense(3, name="logits"), L.Activation("softmax", name="prob")]


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = L.Conv2D(6, 3, activation="relu", name="conv")
        self.pool = L.GlobalAveragePooling2D()
        self.dense = L.Dense(4, activation="softmax")

    def call(self, x):
        return self.dense(self.pool(self.conv(x)))


class SideBranch(keras.Model):
    """Calls a layer whose output the score never uses."""

    def __init__(self):
        super().__init__()
        self.conv = L.Conv2D(6, 3, activation="relu", name="conv")
        self.side = L.Conv2D(3, 3, name="side")
        self.pool = L.GlobalAveragePooling2D()
        self.dense = L.Dense(4, activation="softmax")

    def call(self, x):
        self.side(x)
        return self.dense(self.pool(self.conv(x)))


def dead_relu_model():
    """A layer on the path whose gradient is zero (a ReLU that is off everywhere): no error."""
    inp = keras.Input((20, 20, 2))
    h = L.Conv2D(4, 3, name="pre")(inp)
    h = L.ReLU(name="relu")(L.Lambda(lambda t: t - 100.0, name="shift")(h))
    h = L.GlobalAveragePooling2D()(h)
    return keras.Model(inp, L.Dense(3, activation="softmax")(h))


rng = np.random.default_rng(0)
x20 = rng.random((5, 20, 20, 2)).astype("float32")
targets = [0, 1, 2, 3, 4]

# --- Functional GAP network, every method, top class and given classes -------------------------
model = set_numpy_weights(gap_model(), 1)
before = keras.ops.convert_to_numpy(model(x20, training=False))
ex = Explainer(model)
for method in CAMS + PIXELS:
    record(f"functional/{method}", ex(x20, method))
for method in CAMS:
    record(f"functional/{method}/given", ex(x20, method, target=targets))
record("functional/explain", explain(model, x20, "gradcam++", layer="conv1", target=2))
results["functional/probabilities"] = before
results["functional/unchanged"] = (
    np.array_equal(keras.ops.convert_to_numpy(model(x20, training=False)), before)
    and all("call" not in layer.__dict__ for layer in model.layers)
    and model.get_layer("dense").activation.__name__ == "softmax")

# --- Sequential with and without Input (Flatten head, separate softmax layer) -------------------
with_input = set_numpy_weights(keras.Sequential([keras.Input((20, 20, 2))] + flatten_layers()), 2)
without_input = keras.Sequential(flatten_layers())
without_input(x20[:1])
without_input.set_weights(with_input.get_weights())
for name, seq in (("seq_input", with_input), ("seq_no_input", without_input)):
    ex = Explainer(seq)
    for method in NO_CAM:
        record(f"{name}/{method}", ex(x20, method))

# --- a Functional base nested in a Functional model and in a Sequential model -------------------
base_in = keras.Input((20, 20, 2))
h = L.Conv2D(4, 3, activation="relu", name="b_conv1")(base_in)
h = L.Conv2D(6, 3, activation="relu", name="b_conv2")(h)
base = keras.Model(base_in, h, name="base")
gap, head = L.GlobalAveragePooling2D(), L.Dense(3, activation="softmax", name="head")
outer_in = keras.Input((20, 20, 2))
nested = set_numpy_weights(keras.Model(outer_in, head(gap(base(outer_in)))), 3)
nested_seq = keras.Sequential([base, gap, head])
nested_seq(x20[:1])
for name, m in (("nested", nested), ("nested_seq", nested_seq)):
    ex = Explainer(m)
    for method in CAMS:
        record(f"{name}/{method}", ex(x20, method))
    record(f"{name}/inner_layer", explain(m, x20, "gradcam", layer="b_conv1"))

# --- a subclassed model --------------------------------------------------------------------------
sub = Subclassed()
sub(x20[:1])
set_numpy_weights(sub, 4)
ex = Explainer(sub)
for method in CAMS + PIXELS:
    record(f"subclassed/{method}", ex(x20, method))

# --- automatic layer choice on keras.applications ------------------------------------------------
for name, build, size in (("ResNet50", keras.applications.ResNet50, 64),
                          ("VGG16", keras.applications.VGG16, 32)):
    app = build(weights=None, input_shape=(size, size, 3), classes=4)
    results[f"applications/{name}"] = Explainer(app)(np.zeros((1, size, size, 3), "float32"),
                                                      "eigencam").layer


# --- a layer on the path with a zero gradient: all-zero maps, not an error -------------------------
dead = set_numpy_weights(dead_relu_model(), 5)
record("dead_relu/gradcam", explain(dead, x20, "gradcam", layer="pre"))

side_model = SideBranch()
side_model(x20[:1])
set_numpy_weights(side_model, 6)


# --- a tiny Vision Transformer: token grids and attention maps ---------------------------------
from gradcam_helpers.course.models.keras_vit import build_tiny_vit  # noqa: E402

vit = set_numpy_weights(build_tiny_vit(image_size=20, patch=5, dim=12, depth=2, heads=3, channels=2,
                                       num_classes=5), 8)  # a seed whose Grad-CAM maps are not empty
VIT_METHODS = ("gradcam", "hirescam", "scorecam", "attention", "rollout", "integrated_gradients")
for method in VIT_METHODS:
    record(f"vit/{method}", explain(vit, x20, method))


# --- errors: the same type and message on every backend ------------------------------------------
def outcome(fn):
    try:
        fn()
    except Exception as error:  # noqa: BLE001 — the type and message are what is compared
        return f"{type(error).__name__}: {error}"
    return "no error"


model_ex = Explainer(model)
bad = x20.copy()
bad[0, 0, 0, 0] = np.nan
errors = {
    "unknown_layer": lambda: model_ex.__class__(model, layer="conv3")(x20),
    "dense_layer": lambda: explain(model, x20, layer="dense"),
    "target_range": lambda: model_ex(x20, target=5),
    "target_count": lambda: model_ex(x20, target=[1, 2]),
    "no_batch_axis": lambda: model_ex(x20[0]),
    "empty": lambda: model_ex(x20[:0]),
    "channels": lambda: model_ex(x20[..., :1]),
    "uint8": lambda: model_ex((x20 * 255).astype("uint8")),
    "cam_on_flatten": lambda: explain(with_input, x20, "cam"),
    "nan": lambda: model_ex(bad),
    "unused_layer": lambda: explain(side_model, x20, layer="side"),
}
for name, fn in errors.items():
    results[f"error/{name}"] = outcome(fn)
