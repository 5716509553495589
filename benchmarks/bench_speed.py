"""Speed of the CAM engine against its own floors and against the naive recipes users copy.

For each model and batch size: the forward pass, the forward+grad floor, every CAM method of the
registry through one reused ``Explainer``, ``explain()`` without one, the torchcam-style recipe and
the naive PyTorch / Keras recipes (see benchmarks/README.md); a table of times and ratios, and
the speed goals (printed, not asserted). ``bench_cam.py`` runs it with the Score-CAM comparison
(``bench_scorecam.py``) and writes the report; ``bench_vit.py`` reuses its cases and table.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    SCORECAM,
    Timings,
    best_ratio,
    paired_ratio,
    short_number,
    time_rounds,
    torch_module,
)

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
# goals for explain() reuse and Grad-CAM at the floor (printed, not asserted)
GOAL_EXPLAIN = 1.15
GOAL_GRADCAM_FLOOR = 1.1

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
# the variants of one case: name -> zero-argument callable


def torch_variants(model, layer_path: str, x, methods: Sequence[str], naive: bool = True
                   ) -> tuple[dict[str, Callable[[], Any]], Any]:
    """Baselines, engine methods and the naive recipe for a torch model.

    Returns (variants, explainer): ``{name: zero-argument callable}`` and the engine's Explainer.
    """
    import torch

    from gradcam_helpers import Explainer

    layer = torch_module(model, layer_path)
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
    result.rows = case_rows(result)
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
        naive = naive_torch_gradcam(model, torch_module(model, case.layer), x)
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


def case_rows(result: CaseResult) -> list[dict]:
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


def markdown(results: Sequence[CaseResult], goal_rows: Sequence[dict], meta: dict,
             sections: Sequence[str] = ()) -> str:
    """The report: one table of timings, then ``sections`` (lines, e.g. the Score-CAM table of
    :func:`bench_scorecam.scorecam_markdown`), one table of goals, and the notes."""
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
                         f"{short_number(row['best_seconds'])} | {short_number(row['median_seconds'])} | "
                         f"{short_number(row['best_ms_per_image'])} | {row['x_forward']:.2f} | "
                         f"{row['x_floor']:.2f} | {paired} |")
    lines += list(sections)
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
NOTES_COMMON = [
    "Engine rows: one Explainer per model, reused for every call (its one-time set-up — dry run, "
    "tracing — falls in the warm-up); target=None (each image's top class); the time includes "
    "the conversion to NumPy, the method's maths and the upsampling to 224 × 224.",
    "eigencam needs no gradient: compare it with the forward pass, not with the floor.",
]
