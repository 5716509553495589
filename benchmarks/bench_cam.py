"""Speed benchmark of the CAM engine against its own floors and against naive recipes.

Run it on demand (it is not part of ``make test``)::

    make bench                                            # 20+ minutes on a quiet 2-core CPU
    .venv/bin/python benchmarks/bench_cam.py --quick      # batch 1 only, fewer rounds, no Score-CAM
    .venv/bin/python benchmarks/bench_cam.py --only torch # or --only keras
    .venv/bin/python benchmarks/bench_cam.py --only torch --scorecam-width 16 --scorecam-size 112
                                                          # a smaller Score-CAM run, busy machine

What one run measures, for each model and batch size (2 CPU threads unless ``--threads``):

* ``forward``: the model's forward pass alone (torch: under ``no_grad``; Keras: a tf.function);
* ``forward+grad floor``: the least work a gradient CAM needs — one forward pass, and a backward
  pass from the class score down to the target layer only, with no parameter gradient (Keras also
  has eager versions of both, as references);
* every method of the engine's registry through one reused ``Explainer``, and ``explain()`` called
  without keeping an Explainer (as users and lessons do in loops);
* the naive recipe a user would copy from a blog post (written here, in our own code):
  PyTorch — a forward hook and a full backward hook on the target module, then
  ``output.backward()`` over the whole model (parameter gradients included), one call per batch;
  Keras — a ``Model(model.inputs, [layer.output, model.output])`` rebuilt at every call and one
  ``GradientTape`` over the whole model, one image per call (so a batch of 8 is 8 calls);
  and, in PyTorch, torchcam's way (a hook keeps the output in the graph, autograd on everywhere,
  ``autograd.grad`` down to the layer);
* Score-CAM (PyTorch): the engine (exact, and a top-k approximation) against the engine's previous
  implementation and a pytorch-grad-cam-style recipe, with speed-ups, peak memory and the maps'
  differences, on random ResNet-18 / ResNet-50 and the pretrained EfficientNet-Lite0 on a photo.

Machines are noisy (the course machine's 2 cores are shared): every variant is warmed up first,
then the variants are timed in rounds, in a new shuffled order in each round. Other programs only
ever add time, so a ratio is taken between the fastest runs of two variants; the median over rounds
of the ratio within a round is printed beside it as a cross-check.

The speed goals (against the floor, the naive recipes, a reused Explainer and the Score-CAM
recipe) are printed with the result, met or not met; nothing is asserted here.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

try:
    import gradcam_helpers  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(HERE.parent))
from gradcam_helpers.engine.registry import method_names as _method_names  # noqa: E402

# the methods come from the engine's registry: a new method is benchmarked without editing this file
GRADIENT_METHODS = tuple(_method_names(needs="gradients", kind="cam"))
OTHER_METHODS = tuple(_method_names(needs="activations", kind="cam"))
EXPLAIN = "explain() (no Explainer kept by the caller)"
TORCHCAM = "torchcam-style: hook + autograd.grad, graph recorded below the layer"
FORWARD = "forward"
FLOOR = "forward+grad floor"
NAIVE_TORCH = "naive PyTorch: hooks + backward()"
NAIVE_KERAS = "naive Keras: Model per call + full tape"
NAIVE_KERAS_BATCHED = "naive Keras, whole batch in 1 call (reference)"
FORWARD_EAGER = "forward, eager (reference)"
FLOOR_EAGER = "forward+grad floor, eager (reference)"
SCORECAM = "scorecam"


def pixel_methods() -> tuple[str, ...]:
    """The pixel attributions from input gradients, read from the method registry (so new ones are
    timed too). Occlusion is left out: its cost is one forward pass per window position (about 3,000
    on a 224² image with its default window), a different budget from these methods."""
    from gradcam_helpers.engine.registry import METHODS

    return tuple(name for name, m in METHODS.items()
                 if getattr(m, "kind", "") == "pixel" and getattr(m, "needs", "") == "input_gradients")

# goals against the floor and the naive recipes (printed, not asserted)
GOAL_FLOOR = 1.2
GOAL_NAIVE = {"torch": 3.0, "keras": 5.0}
GOAL_BATCH = 8
# goals for explain() reuse, Grad-CAM at the floor and Score-CAM (printed, not asserted)
GOAL_EXPLAIN = 1.15
GOAL_GRADCAM_FLOOR = 1.1
GOAL_SCORECAM_PGC = 1.5
GOAL_SCORECAM_EXACT = 1e-5

COLUMNS = ("model", "batch", "variant", "best s / call", "median s / call", "best ms / image",
           "× forward", "× floor", "× floor, median of rounds")


# ------------------------------------------------------------------------------------------------
# the naive recipes (what a user copies from a blog post), written for this benchmark


def naive_torch_gradcam(model, layer, x):
    """Grad-CAM the way most PyTorch blog posts do it: module hooks and ``output.backward()``.

    The forward hook keeps the module's output, the full backward hook keeps the gradient that
    reaches it, and ``backward()`` runs over the whole model, so every parameter gets a gradient
    and the backward pass goes down to the first layer. The whole batch is one call.
    Returns (N, H, W) maps in [0, 1].
    """
    import torch
    import torch.nn.functional as F

    saved: dict[str, Any] = {}
    h1 = layer.register_forward_hook(lambda m, i, o: saved.__setitem__("a", o.detach()))
    h2 = layer.register_full_backward_hook(lambda m, gi, go: saved.__setitem__("g", go[0].detach()))
    try:
        model.eval()
        model.zero_grad()
        out = model(x)
        top = out.argmax(dim=1)
        out[torch.arange(len(out)), top].sum().backward()
    finally:
        h1.remove()
        h2.remove()
    weights = saved["g"].mean(dim=(2, 3), keepdim=True)
    cams = torch.relu((weights * saved["a"]).sum(dim=1, keepdim=True))
    cams = F.interpolate(cams, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cams.flatten(1).max(dim=1).values.clamp_min(1e-7)
    return (cams / peak[:, None, None]).numpy()


def torchcam_style_gradcam(model, layer, x):
    """Grad-CAM the way torchcam computes it (written here, in our own code).

    A forward hook keeps the target module's output *inside* the graph, autograd is on for the
    whole forward pass (so the layers below the target record their graph too), and
    ``torch.autograd.grad(score, output)`` takes the gradient down to the target only, without
    parameter gradients. Returns (N, H, W) maps in [0, 1].
    """
    import torch
    import torch.nn.functional as F

    saved: dict[str, Any] = {}
    handle = layer.register_forward_hook(lambda m, i, o: saved.__setitem__("a", o))
    try:
        model.eval()
        with torch.enable_grad():
            out = model(x)
            score = out.gather(1, out.argmax(dim=1, keepdim=True)).sum()
            (grads,) = torch.autograd.grad(score, saved["a"])
    finally:
        handle.remove()
    with torch.no_grad():
        weights = grads.mean(dim=(2, 3), keepdim=True)
        cams = torch.relu((weights * saved["a"]).sum(dim=1, keepdim=True))
        cams = F.interpolate(cams, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
        peak = cams.flatten(1).max(dim=1).values.clamp_min(1e-7)
    return (cams / peak[:, None, None]).numpy()


def naive_keras_gradcam_one(model, layer_name, image):
    """Grad-CAM the way the keras-io example does it, for one image (1, H, W, C).

    A two-output ``Model`` is built at every call and one ``GradientTape`` records the whole forward
    pass (the tape watches every trainable weight it touches). The score is the model's output for
    the top class; the blog first sets the last layer's activation to None (mutating the model), which
    we do not do — the cost is the same. Returns the (h, w) map in [0, 1] at feature resolution.
    """
    import keras
    import tensorflow as tf

    grad_model = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.outputs[0]])
    with tf.GradientTape() as tape:
        features, preds = grad_model([image])
        top = int(tf.argmax(preds[0]))
        score = preds[:, top]
    grads = tape.gradient(score, features)
    weights = tf.reduce_mean(grads, axis=(1, 2))                 # (1, K)
    cam = tf.nn.relu(tf.einsum("nhwk,nk->nhw", features, weights))[0]
    return (cam / tf.maximum(tf.reduce_max(cam), 1e-7)).numpy()


def naive_keras_gradcam_batch(model, layer_name, images):
    """The same recipe with the whole batch in one call (reference; channel weights per image)."""
    import keras
    import tensorflow as tf

    grad_model = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.outputs[0]])
    with tf.GradientTape() as tape:
        features, preds = grad_model([images])
        top = tf.argmax(preds, axis=1)
        score = tf.reduce_sum(tf.gather(preds, top, axis=1, batch_dims=1))
    grads = tape.gradient(score, features)
    cams = tf.nn.relu(tf.einsum("nhwk,nk->nhw", features, tf.reduce_mean(grads, axis=(1, 2))))
    peak = tf.maximum(tf.reduce_max(cams, axis=(1, 2), keepdims=True), 1e-7)
    return (cams / peak).numpy()


# ------------------------------------------------------------------------------------------------
# Score-CAM: the engine's previous implementation, and the pytorch-grad-cam-style recipe


def scorecam_previous(explainer, images, target=None, convention: str = "paper") -> np.ndarray:
    """Score-CAM as the engine first computed it (all masks at once), kept as the reference for "exact".

    All N × K masks at once, at input resolution, on the CPU in NumPy; every channel gets a
    forward pass, also one whose activation is zero everywhere; each batch of 64 masked images is
    converted to the framework and goes through ``adapter.logits`` (modes and hooks set up per
    batch). Returns the (N, H, W) maps in [0, 1], as ``Explanation.maps``.
    """
    from gradcam_helpers.engine import cam as core
    from gradcam_helpers.engine.maps import normalize_maps, resize_maps

    adapter = explainer.adapter
    x = adapter.validate(images)
    cap = adapter.capture(x, target, gradients=False)
    nhwc = adapter.to_channels_last(x)
    masks = core.score_cam_masks(cap.activations, nhwc.shape[1:3])  # (N, K, H, W)
    n, k = masks.shape[:2]
    weights = np.zeros((n, k))
    for i in range(n):
        scores = []
        for start in range(0, k, 64):
            masked = nhwc[i][None] * masks[i, start:start + 64, :, :, None]
            if adapter.framework == "torch":
                import torch

                masked = torch.from_numpy(np.ascontiguousarray(masked.transpose(0, 3, 1, 2)))
            scores.append(adapter.logits(masked))
        weights[i] = core.score_cam_weights(np.concatenate(scores), int(cap.targets[i]), convention)
    raw = core.weighted_sum(cap.activations, weights)
    return normalize_maps(resize_maps(raw, nhwc.shape[1:3]))


def pgc_style_scorecam(model, layer, x, batch_size: int = 16) -> np.ndarray:
    """Score-CAM the way pytorch-grad-cam computes it (written here, in our own code).

    The activations come from a forward pass with a forward hook, autograd on; then, under
    ``no_grad``: every channel upsampled (bilinear, corners aligned) and min-max scaled with an
    epsilon, all K masked copies of each image built at once, passed through the model in batches
    of 16 — also channels that are zero everywhere — and the target logits softmax-normalised across
    channels. Maps normalised by min and max, at input resolution. Returns (N, H, W) in [0, 1].
    """
    import torch
    import torch.nn.functional as F

    saved = {}
    handle = layer.register_forward_hook(lambda m, i, o: saved.__setitem__("a", o.detach()))
    try:
        model.eval()
        out = model(x)
    finally:
        handle.remove()
    targets = out.argmax(dim=1)
    acts = saved["a"]
    with torch.no_grad():
        up = F.interpolate(acts, size=x.shape[-2:], mode="bilinear", align_corners=True)
        flat = up.flatten(2)
        maxs, mins = flat.max(dim=-1).values[..., None, None], flat.min(dim=-1).values[..., None, None]
        up = (up - mins) / (maxs - mins + 1e-8)
        inputs = x[:, None] * up[:, :, None]  # (N, K, C, H, W), all at once
        scores = []
        for target, tensor in zip(targets, inputs):
            for i in range(0, tensor.size(0), batch_size):
                scores.extend(o[target].cpu().item() for o in model(tensor[i:i + batch_size]))
        weights = torch.softmax(torch.tensor(scores).view(acts.shape[:2]), dim=-1)
        cams = torch.relu((weights[:, :, None, None] * acts).sum(dim=1, keepdim=True))
        cams = F.interpolate(cams, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        cams = cams - cams.flatten(1).min(dim=1).values[:, None, None]
        peak = cams.flatten(1).max(dim=1).values.clamp_min(1e-7)
    return (cams / peak[:, None, None]).numpy()


# ------------------------------------------------------------------------------------------------
# the variants of one case: name -> zero-argument callable


def _resolve_torch_module(model, path: str):
    module = model
    for part in path.split("."):
        module = module[int(part)] if part.lstrip("-").isdigit() else getattr(module, part)
    return module


def torch_variants(model, layer_path: str, x, methods: Sequence[str], naive: bool = True
                   ) -> tuple[dict[str, Callable[[], Any]], Any]:
    """Baselines, engine methods and the naive recipe for a torch model.

    Returns (variants, explainer): ``{name: zero-argument callable}`` and the engine's Explainer.
    """
    import torch

    from gradcam_helpers import Explainer

    layer = _resolve_torch_module(model, layer_path)
    model.eval()

    def forward():
        with torch.no_grad():
            return model(x)

    def floor():
        # below the target autograd is off (nothing recorded); the target's output is replaced by a
        # detached leaf that requires grad, and autograd is on from there: the backward pass stops
        # at the leaf and torch.autograd.grad computes no parameter gradient
        saved = {}

        def hook(module, inputs, output):
            saved["a"] = output.detach().requires_grad_(True)
            torch.set_grad_enabled(True)
            return saved["a"]

        handle = layer.register_forward_hook(hook)
        try:
            with torch.no_grad():  # restores grad mode on exit
                out = model(x)
        finally:
            handle.remove()
        score = out.gather(1, out.argmax(dim=1, keepdim=True)).sum()
        return torch.autograd.grad(score, saved["a"])[0]

    from gradcam_helpers import explain

    explainer = Explainer(model, layer=layer_path)
    variants: dict[str, Callable[[], Any]] = {FORWARD: forward, FLOOR: floor}
    for method in methods:
        variants[method] = (lambda m=method: explainer(x, method=m))
    variants[EXPLAIN] = lambda: explain(model, x, layer=layer_path)
    variants[TORCHCAM] = lambda: torchcam_style_gradcam(model, layer, x)
    if naive:
        variants[NAIVE_TORCH] = lambda: naive_torch_gradcam(model, layer, x)
    return variants, explainer


def keras_variants(model, layer_name: str, x: np.ndarray, methods: Sequence[str], naive: bool = True
                   ) -> tuple[dict[str, Callable[[], Any]], Any]:
    """Baselines, engine methods and the naive recipes for a Functional Keras model whose last layer
    is a Dense layer. Returns (variants, explainer)."""
    import keras
    import tensorflow as tf

    from gradcam_helpers import Explainer

    layer = model.get_layer(layer_name)
    last = model.layers[-1]
    if type(last).__name__ != "Dense":
        raise ValueError(f"the Keras floor needs a model ending in a Dense layer; {model.name} ends "
                         f"in {type(last).__name__}")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    # the floor: the part below the target layer runs outside any tape; the head (target → the
    # Dense layer's input) runs under a tape that watches only the target's output
    below = keras.Model(inputs, layer.output)
    head = keras.Model(layer.output, last.input)
    xt = tf.convert_to_tensor(x)

    def forward_eager():
        return model(xt, training=False)

    def floor_eager(t=xt):
        a = below(t, training=False)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(a)
            logits = tf.matmul(head(a, training=False), last.kernel)
            if last.bias is not None:
                logits = logits + last.bias
            top = tf.argmax(logits, axis=1)
            score = tf.reduce_sum(tf.gather(logits, top, axis=1, batch_dims=1))
        return tape.gradient(score, a)

    # eager Keras dispatches layer by layer in Python; compiled, the same work costs less, so the
    # baselines are compiled (each traced once, in the warm-up) and the eager ones are references
    forward = tf.function(forward_eager)
    floor = tf.function(floor_eager)

    from gradcam_helpers import explain

    explainer = Explainer(model, layer=layer_name)
    variants: dict[str, Callable[[], Any]] = {FORWARD: forward, FLOOR: floor,
                                              FORWARD_EAGER: forward_eager, FLOOR_EAGER: floor_eager}
    for method in methods:
        variants[method] = (lambda m=method: explainer(x, method=m))
    variants[EXPLAIN] = lambda: explain(model, x, layer=layer_name)
    if naive:
        variants[NAIVE_KERAS] = lambda: [naive_keras_gradcam_one(model, layer_name, x[i:i + 1])
                                         for i in range(len(x))]
        if len(x) > 1:
            variants[NAIVE_KERAS_BATCHED] = lambda: naive_keras_gradcam_batch(model, layer_name, x)
    return variants, explainer


# ------------------------------------------------------------------------------------------------
# timing


@dataclass
class Timings:
    """Seconds per call of each variant, one entry per round: wall clock and process CPU time.

    The report uses the wall clock. The CPU time goes to the JSON only: on a shared CPU it is
    inflated too (threads that wait for each other spin), so it is no cleaner.
    """

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]

    @property
    def rounds(self) -> int:
        return min((len(v) for k, v in self.wall.items() if k != SCORECAM), default=0)


def time_rounds(variants: dict[str, Callable[[], Any]], *, min_rounds: int = 3, max_rounds: int = 7,
                budget_s: float = 75.0, warmup: int = 1, seed: int = 0) -> Timings:
    """Warm every variant up, then time each once per round, in a new shuffled order every round.

    Rounds go on until ``max_rounds``, or until ``budget_s`` seconds of timed rounds have passed and
    at least ``min_rounds`` are done.
    """
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    rng = random.Random(seed)
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    started = time.perf_counter()
    for done in range(max_rounds):
        if done >= min_rounds and time.perf_counter() - started > budget_s:
            break
        rng.shuffle(names)
        for name in names:
            gc.collect()
            w0, c0 = time.perf_counter(), time.process_time()
            variants[name]()
            c1, w1 = time.process_time(), time.perf_counter()
            wall[name].append(w1 - w0)
            cpu[name].append(c1 - c0)
    return Timings(wall, cpu)


def best_ratio(times: dict[str, list[float]], name: str, base: str) -> float:
    """min(times[name]) / min(times[base]): the ratio of the fastest runs.

    Other programs on a shared CPU only ever add time, so each variant's fastest run is the best
    estimate of its own cost, and the ratio of the fastest runs the best estimate of the ratio.
    """
    return min(times[name]) / min(times[base])


def paired_ratio(times: dict[str, list[float]], name: str, base: str) -> float:
    """Median over rounds of times[name][r] / times[base][r] (a cross-check of :func:`best_ratio`).

    A variant timed only once (Score-CAM) is compared with the base's fastest run.
    """
    if len(times[name]) == 1 and len(times[base]) > 1:
        return times[name][0] / min(times[base])
    return statistics.median(t / b for t, b in zip(times[name], times[base]))


# ------------------------------------------------------------------------------------------------
# one case = one model at one batch size


@dataclass
class Case:
    """A model to benchmark. ``build`` returns the model; ``layer`` is the target layer."""

    framework: str  # "torch" or "keras"
    label: str
    build: Callable[[], Any]
    layer: str
    size: int = 224
    channels: int = 3


@dataclass
class CaseResult:
    """The timings of one model at one batch size, its table rows and notes."""

    case: str
    framework: str
    batch: int
    layer: str
    timings: Timings
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)
    channels: int = 0


def make_input(case: Case, batch: int, seed: int = 0):
    """Random images in the layout of the case's framework (torch tensor NCHW, NumPy NHWC)."""
    rng = np.random.default_rng(seed)
    if case.framework == "torch":
        import torch

        return torch.from_numpy(rng.standard_normal((batch, case.channels, case.size, case.size),
                                                    dtype=np.float32))
    return rng.standard_normal((batch, case.size, case.size, case.channels), dtype=np.float32)


def measure_case(case: Case, batch: int, *, model=None, min_rounds: int = 3, max_rounds: int = 7,
                 budget_s: float = 75.0, warmup: int = 1,
                 methods: Sequence[str] = GRADIENT_METHODS + OTHER_METHODS, naive: bool = True,
                 scorecam: bool = False, pixel: bool = False, seed: int = 0) -> CaseResult:
    """Time every variant of ``case`` at ``batch``; return the timings with their table rows.

    ``scorecam=True`` also times Score-CAM once (it needs one forward pass per channel of the
    target layer, so it is not repeated). With ``naive`` a note records that the naive recipe's
    maps equal the engine's (it does the same job). ``pixel=True`` also times every pixel
    attribution of the registry once, with its default options (Integrated Gradients: 50 steps,
    SmoothGrad: 25 samples — each that many gradient passes per image).
    """
    model = case.build() if model is None else model
    x = make_input(case, batch, seed)
    load_before = os.getloadavg()[0]
    if case.framework == "torch":
        variants, explainer = torch_variants(model, case.layer, x, methods, naive)
    else:
        variants, explainer = keras_variants(model, case.layer, x, methods, naive)
    timings = time_rounds(variants, min_rounds=min_rounds, max_rounds=max_rounds, budget_s=budget_s,
                          warmup=warmup, seed=seed)
    result = CaseResult(case.label, case.framework, batch, case.layer, timings,
                        load=(load_before, os.getloadavg()[0]), channels=_channels(explainer, x))
    if naive:
        result.notes.append(_check_naive_agrees(case, model, explainer, x))
    if scorecam:
        w0, c0 = time.perf_counter(), time.process_time()
        res = explainer(x, method="scorecam")
        timings.cpu[SCORECAM] = [time.process_time() - c0]
        timings.wall[SCORECAM] = [time.perf_counter() - w0]
        result.notes.append(f"{case.label}, batch {batch}: Score-CAM timed once (not repeated): "
                            f"{len(res.raw)} × {result.channels} masked forward passes")
    if pixel:
        for name in pixel_methods():
            w0, c0 = time.perf_counter(), time.process_time()
            explainer(x, method=name)
            timings.cpu[name] = [time.process_time() - c0]
            timings.wall[name] = [time.perf_counter() - w0]
        result.notes.append(f"{case.label}, batch {batch}: pixel attributions timed once each "
                            f"(not repeated): {', '.join(pixel_methods())}")
    result.rows = _rows(result)
    return result


def _channels(explainer, x) -> int:
    """Channels of the target layer (= Score-CAM's masked forward passes per image)."""
    cap = explainer.adapter.capture(x[:1], None, gradients=False)
    return int(cap.activations.shape[-1])


def _check_naive_agrees(case: Case, model, explainer, x) -> str:
    """Show that a naive recipe does the same job as the engine: equal Grad-CAM maps."""
    from gradcam_helpers import Explainer
    from gradcam_helpers.engine.maps import normalize_maps

    where = f"{case.label}, batch {len(x)}"
    if case.framework == "torch":
        ours = explainer(x, method="gradcam").maps
        naive = naive_torch_gradcam(model, _resolve_torch_module(model, case.layer), x)
        what = "naive PyTorch Grad-CAM maps vs the engine's"
    else:
        # the keras-io recipe differentiates the model's output (here the softmax); give the
        # engine the same score to compare like with like, on two images to keep it short
        if len(x) > 2:
            where += ", first 2 images"
            x = x[:2]
        same_score = Explainer(model, layer=case.layer, score_fn=lambda out: out)
        ours = normalize_maps(same_score(x, method="gradcam").raw)
        naive = np.stack([naive_keras_gradcam_one(model, case.layer, x[i:i + 1]) for i in range(len(x))])
        what = "naive Keras Grad-CAM maps (softmax score) vs the engine's with the same score"
    diff = float(np.abs(naive - ours).max())
    return f"{where}: {what}: max |difference| = {diff:.1e}"


def _rows(result: CaseResult) -> list[dict]:
    wall = result.timings.wall
    rows = []
    for name, values in wall.items():
        rows.append({
            "model": result.case, "framework": result.framework, "batch": result.batch,
            "variant": name, "best_seconds": min(values), "median_seconds": statistics.median(values),
            "best_ms_per_image": 1000 * min(values) / result.batch,
            "x_forward": best_ratio(wall, name, FORWARD), "x_floor": best_ratio(wall, name, FLOOR),
            "x_floor_median_of_rounds": paired_ratio(wall, name, FLOOR), "runs": len(values),
        })
    return rows


# ------------------------------------------------------------------------------------------------
# Score-CAM: the engine (exact, and top-k) against its previous implementation and the pgc recipe

SC_EXACT = "engine, exact (paper weights)"
SC_EXACT_SOFTMAX = "engine, exact (channel-softmax weights, as pgc)"
SC_EAGER = "engine, exact (paper weights), model as is (score_cam_fast=False)"
SC_PREVIOUS = "previous engine (paper weights)"
SC_PGC = "pytorch-grad-cam-style recipe"
SC_TOPK = "engine, top-k approximation"


class _PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms by a thread (MiB).

    Freed memory is handed back to the system first (``malloc_trim``), so the level at entry is
    not inflated by what the previous variant left in the allocator.
    """

    def __enter__(self):
        import ctypes
        import threading

        import psutil

        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:  # not glibc
            pass
        self._process = psutil.Process()
        self.base = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        self.mib = (self.peak - self.base) / 2**20


def measure_scorecam(label: str, model, layer_path: str, x, *, rounds: int = 1,
                     top_k: int | None = None, seed: int = 0) -> dict:
    """Time Score-CAM on one torch model and batch: the engine (exact; top-k) against the engine's
    previous implementation and the pytorch-grad-cam-style recipe, in a shuffled order per round;
    peak memory of each run; the maps' differences. Returns a dict for the report."""
    from gradcam_helpers import Explainer

    layer = _resolve_torch_module(model, layer_path)
    paper = Explainer(model, layer=layer_path, progress=False)
    soft = Explainer(model, layer=layer_path, score_cam_convention="channel_softmax", progress=False)
    cap = paper.adapter.capture(paper.adapter.validate(x), None, gradients=False)
    channels = int(cap.activations.shape[-1])
    dead = float(np.mean([~np.any(a != 0, axis=(0, 1)) for a in cap.activations]))
    top_k = top_k or max(1, channels // 4)
    approx = Explainer(model, layer=layer_path, score_cam_channels=top_k, progress=False)
    eager = Explainer(model, layer=layer_path, score_cam_fast=False, progress=False)
    for explainer in (soft, approx, eager):  # their one-time inspection is not part of the timing
        explainer(x, "eigencam")
    variants = {SC_EXACT: lambda: paper(x, "scorecam").maps,
                SC_EXACT_SOFTMAX: lambda: soft(x, "scorecam").maps,
                SC_EAGER: lambda: eager(x, "scorecam").maps,
                SC_PREVIOUS: lambda: scorecam_previous(paper, x),
                SC_PGC: lambda: pgc_style_scorecam(model, layer, x),
                SC_TOPK: lambda: approx(x, "scorecam").maps}
    wall: dict[str, list[float]] = {k: [] for k in variants}
    peak: dict[str, list[float]] = {k: [] for k in variants}
    maps: dict[str, np.ndarray] = {}
    rng = random.Random(seed)
    order = list(variants)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            with _PeakRSS() as memory:
                t0 = time.perf_counter()
                maps[name] = variants[name]()
                wall[name].append(time.perf_counter() - t0)
            peak[name].append(memory.mib)

    def diff(a, b):
        return float(np.abs(maps[a] - maps[b]).max())

    corr = float(np.corrcoef(maps[SC_EXACT_SOFTMAX].ravel(), maps[SC_PGC].ravel())[0, 1])
    return {"model": label, "batch": int(len(x)), "size": int(x.shape[-1]), "channels": channels,
            "dead_fraction": dead, "top_k": top_k, "rounds": rounds,
            "wall_seconds": wall, "peak_mib": peak,
            "exact_vs_previous": diff(SC_EXACT, SC_PREVIOUS),
            "exact_vs_eager": diff(SC_EXACT, SC_EAGER),
            "softmax_vs_pgc": diff(SC_EXACT_SOFTMAX, SC_PGC), "softmax_vs_pgc_correlation": corr,
            "topk_vs_exact": diff(SC_TOPK, SC_EXACT)}


def scorecam_goals(result: dict) -> list[dict]:
    """The Score-CAM goals on one model (printed, not asserted)."""
    wall, peak = result["wall_seconds"], result["peak_mib"]
    speedup = best_ratio(wall, SC_PGC, SC_EXACT_SOFTMAX)
    speedup_paper = best_ratio(wall, SC_PGC, SC_EXACT)
    memory = max(peak[SC_EXACT]), max(peak[SC_PREVIOUS])
    where = {"model": result["model"], "batch": result["batch"]}
    return [
        {**where, "goal": f"Score-CAM exact: the previous implementation's maps to "
                          f"{GOAL_SCORECAM_EXACT:g}",
         "measured": f"max |difference| {result['exact_vs_previous']:.1e}",
         "value": result["exact_vs_previous"],
         "met": result["exact_vs_previous"] <= GOAL_SCORECAM_EXACT, "noisy": False},
        {**where, "goal": f"Score-CAM ≥ {GOAL_SCORECAM_PGC:g}× faster than the pytorch-grad-cam-style "
                          "recipe",
         "measured": f"{speedup:.2f}× with the same (channel-softmax) weights, {speedup_paper:.2f}× "
                     f"with paper weights; {result['dead_fraction']:.0%} of the channels are zero "
                     "everywhere",
         "value": speedup, "met": speedup >= GOAL_SCORECAM_PGC, "noisy": False},
        {**where, "goal": "Score-CAM peak memory no higher than the previous implementation's",
         "measured": f"{memory[0]:.0f} MiB vs {memory[1]:.0f} MiB above the level before the call",
         "value": memory[0], "met": memory[0] <= memory[1] * 1.05 + 5, "noisy": False},
    ]


def scorecam_markdown(results: Sequence[dict]) -> list[str]:
    """The Score-CAM table: seconds, speed-ups, memory and map differences per model."""
    if not results:
        return []
    lines = ["", "## Score-CAM", "",
             "Each variant run once per round, rounds in a shuffled order; `best s` is the fastest "
             "run. Memory: peak resident memory above the level before the call.", "",
             "| model | batch | input | channels (zero everywhere) | variant | best s | × engine "
             r"exact (same weights) | peak MiB | max \|map difference\| |",
             "|---|---:|---:|---|---|---:|---:|---:|---|"]
    for r in results:
        wall, peak = r["wall_seconds"], r["peak_mib"]
        differences = {SC_EXACT: "—", SC_EXACT_SOFTMAX: "—",
                       SC_PREVIOUS: f"{r['exact_vs_previous']:.1e} vs engine exact",
                       SC_EAGER: f"{r['exact_vs_eager']:.1e} vs engine exact",
                       SC_PGC: f"{r['softmax_vs_pgc']:.1e} vs engine channel-softmax (correlation "
                               f"{r['softmax_vs_pgc_correlation']:.4f})",
                       SC_TOPK: f"{r['topk_vs_exact']:.2f} vs engine exact (k = {r['top_k']})"}
        for name in wall:
            base = SC_EXACT_SOFTMAX if name in (SC_PGC, SC_EXACT_SOFTMAX) else SC_EXACT
            lines.append(f"| {r['model']} | {r['batch']} | {r['size']}² | {r['channels']} "
                         f"({r['dead_fraction']:.0%}) | {name} | {_num(min(wall[name]))} | "
                         f"{best_ratio(wall, name, base):.2f} | {max(peak[name]):.0f} | "
                         f"{differences[name]} |")
    return lines


# ------------------------------------------------------------------------------------------------
# goals and output


def _ratio_goal(result: CaseResult, goal: str, name: str, base: str, limit: float) -> dict:
    """A goal "time of ``name`` ≤ ``limit`` × time of ``base``" judged on one case's fastest runs."""
    wall = result.timings.wall
    ratio, median = best_ratio(wall, name, base), paired_ratio(wall, name, base)
    return {"goal": goal, "model": result.case, "batch": result.batch,
            "measured": f"{ratio:.2f}× (median of rounds {median:.2f}×)", "value": ratio,
            "met": ratio <= limit, "noisy": (ratio <= limit) != (median <= limit)}


def goals(results: Sequence[CaseResult]) -> list[dict]:
    """The speed goals, evaluated on the ratios of the fastest runs (met / not met; never asserted).

    The median over rounds of the paired ratio is given beside each value as a cross-check.
    """
    out = []
    for r in results:
        wall = r.timings.wall
        grad = [m for m in GRADIENT_METHODS if m in wall]
        if grad:
            best = {m: best_ratio(wall, m, FLOOR) for m in grad}
            worst = max(best, key=best.get)
            median_worst = max(paired_ratio(wall, m, FLOOR) for m in grad)
            out.append({
                "goal": f"gradient methods ≤ {GOAL_FLOOR:g}× the forward+grad floor",
                "model": r.case, "batch": r.batch,
                "measured": f"worst {worst} {best[worst]:.2f}×, best {min(best.values()):.2f}× "
                            f"(median of rounds, worst: {median_worst:.2f}×)",
                "value": best[worst], "met": best[worst] <= GOAL_FLOOR,
                "noisy": (best[worst] <= GOAL_FLOOR) != (median_worst <= GOAL_FLOOR)})
        naive = NAIVE_TORCH if r.framework == "torch" else NAIVE_KERAS
        if grad and naive in wall and r.batch == GOAL_BATCH:
            need = GOAL_NAIVE[r.framework]
            speedup = {m: best_ratio(wall, naive, m) for m in grad}
            slowest = min(speedup, key=speedup.get)
            floor_speedup = best_ratio(wall, naive, FLOOR)
            median_slowest = min(paired_ratio(wall, naive, m) for m in grad)
            who = "PyTorch" if r.framework == "torch" else "Keras"
            out.append({
                "goal": f"≥ {need:g}× faster than the naive {who} recipe at batch {GOAL_BATCH}",
                "model": r.case, "batch": r.batch,
                "measured": f"slowest method {slowest} {speedup[slowest]:.1f}×, gradcam "
                            f"{speedup.get('gradcam', float('nan')):.1f}× (median of rounds, slowest: "
                            f"{median_slowest:.1f}×); the floor itself {floor_speedup:.1f}×",
                "value": speedup[slowest], "floor_value": floor_speedup,
                "met": speedup[slowest] >= need,
                "noisy": (speedup[slowest] >= need) != (median_slowest >= need)})
        # explain() reuse and Grad-CAM at the floor
        if r.batch == 1 and EXPLAIN in wall and "gradcam" in wall:
            out.append(_ratio_goal(r, f"explain() ≤ {GOAL_EXPLAIN:g}× a reused Explainer (Grad-CAM, "
                                      "batch 1)", EXPLAIN, "gradcam", GOAL_EXPLAIN))
        if r.batch == GOAL_BATCH and "gradcam" in wall:
            out.append(_ratio_goal(r, f"Grad-CAM ≤ {GOAL_GRADCAM_FLOOR:g}× the forward+grad floor at "
                                      f"batch {GOAL_BATCH}", "gradcam", FLOOR, GOAL_GRADCAM_FLOOR))
        if r.batch == GOAL_BATCH and "gradcam" in wall and TORCHCAM in wall:
            out.append(_ratio_goal(r, "Grad-CAM at or below the torchcam-style recipe's cost at batch "
                                      f"{GOAL_BATCH}", "gradcam", TORCHCAM, 1.0))
    return out


def _num(value: float) -> str:
    """Three significant digits, without exponent notation for large values."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def markdown(results: Sequence[CaseResult], goal_rows: Sequence[dict], meta: dict,
             scorecam: Sequence[dict] = ()) -> str:
    """The report: one table of timings, one of goals, and the notes."""
    versions = meta.get("versions", {})
    # the load average at the end counts the benchmark's own threads: only what is above them is others'
    cores = os.cpu_count() or 1
    shared = (meta["load_start"] > 0.5 * cores
              or meta["load_end"] - float(meta.get("threads") or 0) > 0.5 * cores)
    lines = [
        f"# CAM engine benchmark — {meta['date']}", "",
        f"{meta['machine']}; {meta['threads']} threads per framework; "
        f"torch {versions.get('torch', '-')}, "
        f"TensorFlow {versions.get('tensorflow', '-')}, Keras {versions.get('keras', '-')}; "
        f"{meta['rounds']} timed rounds per case after {meta['warmup']} warm-up round; load average "
        f"{meta['load_start']:.1f} at the start, {meta['load_end']:.1f} at the end"
        + (" — **the CPU was shared with other work**: times are inflated and noisy (the fastest "
           "runs are the least disturbed)." if shared else "."),
        "",
        "`× forward` and `× floor` are ratios of the fastest runs (other programs only ever add time, "
        "so a variant's fastest run is the best estimate of its cost); `× floor, median of rounds` is "
        "the median over rounds of the ratio measured within a round, as a cross-check.", "",
        "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 3 + "---:|" * (len(COLUMNS) - 3)]
    for r in results:
        for row in r.rows:
            paired = "1 run" if row["runs"] == 1 else f"{row['x_floor_median_of_rounds']:.2f}"
            lines.append(f"| {row['model']} | {row['batch']} | {row['variant']} | "
                         f"{_num(row['best_seconds'])} | {_num(row['median_seconds'])} | "
                         f"{_num(row['best_ms_per_image'])} | {row['x_forward']:.2f} | "
                         f"{row['x_floor']:.2f} | {paired} |")
    lines += scorecam_markdown(scorecam)
    lines += ["", "## Goals (printed, not asserted)", "",
              "| goal | model | batch | measured (ratios of the fastest runs) | result |",
              "|---|---|---:|---|---|"]
    for g in goal_rows:
        verdict = "met" if g["met"] else "**not met**"
        if g.get("noisy"):
            verdict += " (noisy: the median of rounds says the opposite)"
        lines.append(f"| {g['goal']} | {g['model']} | {g['batch']} | {g['measured']} | {verdict} |")
    if meta.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in meta["notes"]]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# the cases of the real run


def default_cases(only: str | None) -> list[Case]:
    """ResNet-18 and ResNet-50 in torch (target ``layer4``), Keras ResNet50 (``conv5_block3_out``)."""
    cases = []
    if only in (None, "torch"):
        def r18():
            import torch

            from gradcam_helpers.course.models.torch_resnet import resnet18

            torch.manual_seed(0)
            return resnet18().eval()

        def r50():
            import torch

            from gradcam_helpers.course.models.torch_resnet import resnet50

            torch.manual_seed(0)
            return resnet50().eval()

        cases += [Case("torch", "ResNet-18 (torch)", r18, "layer4"),
                  Case("torch", "ResNet-50 (torch)", r50, "layer4")]
    if only in (None, "keras"):
        def k50():
            import keras

            keras.utils.set_random_seed(0)
            return keras.applications.ResNet50(weights=None)

        cases.append(Case("keras", "ResNet50 (Keras)", k50, "conv5_block3_out"))
    return cases


def set_threads(threads: int, frameworks: set[str]) -> dict[str, str]:
    """Fix the thread count of each framework used (TF's must be set before its first op)."""
    versions = {"numpy": np.__version__, "python": platform.python_version()}
    if "keras" in frameworks:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        import keras

        versions.update(tensorflow=tf.__version__, keras=keras.__version__)
    if "torch" in frameworks:
        import torch

        torch.set_num_threads(threads)
        versions["torch"] = torch.__version__
    return versions


NOTES_TORCH = [
    "Naive PyTorch recipe: a forward hook and a register_full_backward_hook on the target module, "
    "output.backward() over the whole model (parameter gradients included), the whole batch in one "
    "call (as pytorch-grad-cam does).",
    "Torch floor: autograd off below the target layer, whose output is swapped for a detached leaf "
    "that requires grad; then torch.autograd.grad(score, leaf): no parameter gradient, nothing "
    "recorded or differentiated below the target.",
]
NOTES_KERAS = [
    f"Naive Keras recipe: keras.Model(model.inputs, [layer.output, model.output]) rebuilt at every "
    f"call, one GradientTape over the whole model, one image per call as in the keras-io example — "
    f"so a batch of {GOAL_BATCH} is {GOAL_BATCH} calls. The row marked 'reference' runs the same "
    f"recipe on the whole batch in one call.",
    "Keras floor: the model below the target layer runs outside any tape, the head (target → "
    "logits) under a tape that watches only the target's output: no weight gradient. Both Keras "
    "baselines run as a tf.function (traced in the warm-up); the rows marked 'eager' run the same "
    "code eagerly, as the blog recipe does — eager Keras dispatches layer by layer in Python.",
]
NOTES_SCORECAM = [
    "Score-CAM, previous engine: what the engine first did — all N × K masks at once in "
    "NumPy, one forward pass per channel (also channels that are zero everywhere), modes and hooks "
    "set up per batch of 64.",
    "Score-CAM, pytorch-grad-cam-style recipe (written here): activations from a forward pass with "
    "autograd on; masks upsampled with corners aligned and min-max scaled with an epsilon; all K "
    "masked copies built at once; batches of 16 under no_grad; target logits softmax-normalised "
    "across channels. Its maps differ slightly from ours (corner alignment, epsilon), hence the "
    "correlation.",
    "Score-CAM, engine: no forward pass for a channel that is zero everywhere (its term is 0; with "
    "channel-softmax weights they share one pass of the zero image), masks made per batch of 16 and "
    "multiplied with the image on the model's device, inference mode, modes and hooks set up once "
    "per image; the passes run on an equivalent copy of the model (torch.fx: BatchNorm folded into "
    "the convolutions, channels-last memory), built in the first timed call and checked against the "
    "model on the first masks. The 'model as is' row runs the same loop on the model itself. The top-k row keeps the k = K/4 channels of highest activation variance (Faster "
    "Score-CAM); its map difference is the measured error of that approximation.",
]
NOTES_COMMON = [
    "Engine rows: one Explainer per model, reused for every call (its one-time set-up — dry run, "
    "tracing — falls in the warm-up); target=None (each image's top class); the time includes "
    "the conversion to NumPy, the method's maths and the upsampling to 224 × 224.",
    "eigencam needs no gradient: compare it with the forward pass, not with the floor.",
]


def scorecam_cases(size: int, width: int, photo: bool) -> list[tuple[str, Callable[[], Any], str, Callable]]:
    """(label, build, layer, make_input) for the Score-CAM comparison: random ResNet-18 and
    ResNet-50 (``width`` channels in layer1; 64 is the real one) on a random image of ``size``²,
    and, with ``photo``, the pretrained EfficientNet-Lite0 on a real photo (a trained network:
    many channels are zero everywhere)."""
    import torch

    from gradcam_helpers.course.models.torch_resnet import resnet18, resnet50

    def random_input():
        return torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size),
                                                                         dtype=np.float32))

    def build(arch):
        def make():
            torch.manual_seed(0)
            return arch(width=width).eval()
        return make

    shape = "" if width == 64 else f", width {width}"
    cases = [(f"ResNet-18 (torch{shape}, random weights)", build(resnet18), "layer4", random_input),
             (f"ResNet-50 (torch{shape}, random weights)", build(resnet50), "layer4", random_input)]
    if photo:
        from gradcam_helpers.course.models import pretrained

        cases.append(("EfficientNet-Lite0 (torch, pretrained), photo 'chelsea'",
                      lambda: pretrained.efficientnet_lite0("torch"), "_head_act",
                      lambda: pretrained.preprocess(pretrained.photos(["chelsea"]), "torch")))
    return cases


def run(only: str | None = None, quick: bool = False, rounds: int | None = None,
        threads: int = 2, budget_s: float | None = None, write: bool = True, out=sys.stdout,
        scorecam: bool | None = None, scorecam_size: int = 224, scorecam_width: int = 64,
        scorecam_photo: bool = True, scorecam_rounds: int = 1,
        methods: Sequence[str] | None = None, models: str | None = None) -> dict:
    """The whole benchmark; returns the JSON-able result and writes ``results/`` when ``write``.

    ``scorecam`` (default: unless ``quick``) adds the Score-CAM comparison on PyTorch models
    (:func:`scorecam_cases`, :func:`measure_scorecam`)."""
    cases = [c for c in default_cases(only) if models is None or models in c.label]
    methods = tuple(methods) if methods else GRADIENT_METHODS + OTHER_METHODS
    versions = set_threads(threads, {c.framework for c in cases})
    min_rounds, max_rounds = (3, 5) if quick else (3, 15)
    if rounds is not None:
        min_rounds = max_rounds = rounds
    budget_s = budget_s if budget_s is not None else (30.0 if quick else 60.0)
    batches = (1,) if quick else (1, GOAL_BATCH)
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    results: list[CaseResult] = []
    frameworks = {c.framework for c in cases}
    notes = ((NOTES_TORCH if "torch" in frameworks else [])
             + (NOTES_KERAS if "keras" in frameworks else []) + NOTES_COMMON)
    for case in cases:
        print(f"[bench] building {case.label} …", file=sys.stderr, flush=True)
        model = case.build()
        for batch in batches:
            pixel = (not quick) and batch == 1 and case.label.startswith("ResNet-18")
            extra = " (+ the pixel attributions once)" if pixel else ""
            print(f"[bench] {case.label}, batch {batch}{extra}", file=sys.stderr, flush=True)
            res = measure_case(case, batch, model=model, min_rounds=min_rounds, max_rounds=max_rounds,
                               budget_s=budget_s, methods=methods, pixel=pixel)
            results.append(res)
            notes.extend(res.notes)
            print(f"[bench]   {res.timings.rounds} rounds; {time.perf_counter() - started:.0f} s so far",
                  file=sys.stderr, flush=True)
        if quick or scorecam is False:
            notes.append(_scorecam_estimate(case, [r for r in results if r.case == case.label], quick))
    scorecam_results: list[dict] = []
    if (not quick if scorecam is None else scorecam) and only in (None, "torch"):
        for label, build, layer, make_x in scorecam_cases(scorecam_size, scorecam_width, scorecam_photo):
            print(f"[bench] Score-CAM: {label}", file=sys.stderr, flush=True)
            scorecam_results.append(measure_scorecam(label, build(), layer, make_x(),
                                                     rounds=scorecam_rounds))
            print(f"[bench]   {time.perf_counter() - started:.0f} s so far", file=sys.stderr, flush=True)
        notes += NOTES_SCORECAM
    meta = {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} Linux, {os.cpu_count()} CPU cores",
        "threads": threads, "versions": versions, "warmup": 1, "quick": quick, "only": only,
        "rounds": ", ".join(str(n) for n in sorted({r.timings.rounds for r in results})) or "0",
        "load_start": load_start, "load_end": os.getloadavg()[0],
        "wall_seconds": time.perf_counter() - started, "notes": notes,
    }
    goal_rows = goals(results) + [g for r in scorecam_results for g in scorecam_goals(r)]
    text = markdown(results, goal_rows, meta, scorecam_results)
    data = {"meta": meta, "rows": [row for r in results for row in r.rows], "goals": goal_rows,
            "scorecam": scorecam_results,
            "timings": [{"model": r.case, "batch": r.batch, "layer": r.layer,
                         "wall_seconds": r.timings.wall, "cpu_seconds": r.timings.cpu,
                         "load_average": list(r.load)} for r in results]}
    print(text, file=out)
    if write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "latest.md").write_text(text, encoding="utf-8")
        (RESULTS / "latest.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
        print(f"[bench] wrote {RESULTS / 'latest.md'} and latest.json "
              f"({meta['wall_seconds']:.0f} s in all)", file=sys.stderr)
    return data


def _scorecam_estimate(case: Case, results: Sequence[CaseResult], quick: bool) -> str:
    """A note for a model whose Score-CAM was not timed: K forward passes per image, estimated."""
    k = max(r.channels for r in results)
    per_image = min(min(r.timings.wall[FORWARD]) / r.batch for r in results)
    hint = ("; run without --quick to time it on ResNet-18"
            if quick and case.framework == "torch" else "")
    return (f"{case.label}: Score-CAM not timed — it needs {k} masked forward passes per image; "
            f"at the best forward time per image measured here ({per_image:.3f} s) that is ≈ "
            f"{k * per_image / 60:.1f} min per image (an estimate, not a measurement){hint}.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Speed of the CAM engine against its floors and "
                                                 "two naive recipes (see benchmarks/README.md).")
    parser.add_argument("--quick", action="store_true",
                        help="batch 1 only, 3–5 rounds, Score-CAM not timed (about 2 minutes)")
    parser.add_argument("--only", choices=("torch", "keras"), help="one framework only")
    parser.add_argument("--rounds", type=int,
                        help="exactly this many timed rounds per case (default: 3 to 15, as time allows)")
    parser.add_argument("--budget", type=float,
                        help="seconds of timed rounds per case, after which it stops once 3 rounds "
                             "are done (default 60; 30 with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per framework (default 2)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write results/")
    parser.add_argument("--scorecam", action=argparse.BooleanOptionalAction, default=None,
                        help="the Score-CAM comparison (default: on, off with --quick)")
    parser.add_argument("--scorecam-size", type=int, default=224,
                        help="input size of the random ResNets in the Score-CAM comparison")
    parser.add_argument("--scorecam-width", type=int, default=64,
                        help="layer1 width of those ResNets (64 = the real ones; 16 = a quarter of "
                             "the channels, for a busy machine)")
    parser.add_argument("--scorecam-rounds", type=int, default=1, help="rounds of the comparison")
    parser.add_argument("--no-photo", action="store_true",
                        help="leave the pretrained EfficientNet-Lite0 out of the Score-CAM comparison")
    parser.add_argument("--methods", help="comma-separated engine methods to time (default: every "
                                          "method of the registry)")
    parser.add_argument("--models", help="only the models whose label contains this text, e.g. 50")
    args = parser.parse_args(argv)
    run(methods=args.methods.split(",") if args.methods else None, models=args.models,
        only=args.only, quick=args.quick, rounds=args.rounds, threads=args.threads,
        budget_s=args.budget, write=not args.no_write, scorecam=args.scorecam,
        scorecam_size=args.scorecam_size, scorecam_width=args.scorecam_width,
        scorecam_photo=not args.no_photo, scorecam_rounds=args.scorecam_rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
