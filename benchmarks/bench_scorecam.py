"""Score-CAM on PyTorch models: the engine (exact with the paper's weights and with
pytorch-grad-cam's channel-softmax weights, on the model as it is, and a top-k approximation)
against the engine's previous implementation and a pytorch-grad-cam-style recipe: best time,
speed-up, peak resident memory above the level before the call, and the maps' differences.

``scorecam_previous`` is kept here as the reference for "exact" (tests/test_scorecam.py compares
with it too). ``bench_cam.py`` runs the comparison after the speed cases (not with ``--quick``).
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRSS, best_ratio, short_number, torch_module  # noqa: E402

# goals (printed, not asserted)
GOAL_SCORECAM_PGC = 1.5
GOAL_SCORECAM_EXACT = 1e-5


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
# Score-CAM: the engine (exact, and top-k) against its previous implementation and the pgc recipe

SC_EXACT = "engine, exact (paper weights)"
SC_EXACT_SOFTMAX = "engine, exact (channel-softmax weights, as pgc)"
SC_EAGER = "engine, exact (paper weights), model as is (score_cam_fast=False)"
SC_PREVIOUS = "previous engine (paper weights)"
SC_PGC = "pytorch-grad-cam-style recipe"
SC_TOPK = "engine, top-k approximation"


def measure_scorecam(label: str, model, layer_path: str, x, *, rounds: int = 1,
                     top_k: int | None = None, seed: int = 0) -> dict:
    """Time Score-CAM on one torch model and batch: the engine (exact; top-k) against the engine's
    previous implementation and the pytorch-grad-cam-style recipe, in a shuffled order per round;
    peak memory of each run; the maps' differences. Returns a dict for the report."""
    from gradcam_helpers import Explainer

    layer = torch_module(model, layer_path)
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
            with PeakRSS() as memory:
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
                         f"({r['dead_fraction']:.0%}) | {name} | {short_number(min(wall[name]))} | "
                         f"{best_ratio(wall, name, base):.2f} | {max(peak[name]):.0f} | "
                         f"{differences[name]} |")
    return lines


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

def scorecam_cases(size: int, width: int, photo: bool) -> list[tuple[str, Callable[[], Any], str, Callable]]:
    """(label, build, layer, make_input) for the Score-CAM comparison: random ResNet-18 and
    ResNet-50 (``width`` channels in layer1; 64 is the real one) on a random image of ``size``²,
    and, with ``photo``, two trained networks, where many channels are zero everywhere: the
    pretrained EfficientNet-Lite0 on a real photo and lesson 06's X-ray ResNet-18 on one of its
    synthetic X-rays."""
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
        cases.append(("lesson 06 X-ray ResNet-18 (torch, trained), synthetic X-ray",
                      lesson06_resnet, "layer4", lesson06_xray))
    return cases


def _lesson06_data():
    from gradcam_helpers.course.xray import load_xray_dataset

    # lesson 06's settings (IMAGE_SIZE 96, N_TRAIN 1000, N_TEST 400): the same data fingerprint, so
    # the model comes from the cache (or its committed seed) exactly as the lesson trained it
    return (load_xray_dataset("synthetic", split="train", n=1000, size=96),
            load_xray_dataset("synthetic", split="test", n=400, size=96))


def lesson06_resnet():
    """Lesson 06's trained X-ray ResNet-18 (default training config), from the model cache."""
    from gradcam_helpers.course.models.torch_resnet import train_xray_resnet

    return train_xray_resnet(_lesson06_data()[0], progress=False).eval()


def lesson06_xray():
    """The first test X-ray of lesson 06 (a pneumonia case when there is one), (1, 1, 96, 96)."""
    import torch

    test = _lesson06_data()[1]
    first = int(np.argmax(test.labels == 1)) if (test.labels == 1).any() else 0
    return torch.from_numpy(test.images[first:first + 1])
