"""Benchmark of the dataset audit: memory from 1,000 to 10,000 images, images/second in-process
vs Ray Data locally with 2 workers, and what 10⁶ images would take on a cluster.

Run it on demand (``make bench`` runs it after ``bench_cam.py``)::

    python benchmarks/bench_audit.py            # 10,000 synthetic X-rays: ~10 min on 2 cores
    python benchmarks/bench_audit.py --quick    # 100 / 400 images, ~2 min (the smoke test)
    python benchmarks/bench_audit.py --no-ray   # the in-process engine only

Every audit runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its own.
The model is the chest X-ray lessons' ResNet-18 (width 12, 96 px, ``layer4`` 24 × 24) with random
weights: speed does not depend on the weights. In-process, torch uses 2 threads; Ray gets 2 CPUs
and runs 2 workers of 1 thread each, so both use the same 2 cores.

The cluster estimate multiplies the measured cost of one image on one Ray worker (its share of
the run's wall time: ``seconds × workers / images``) by 10⁶ and divides it by the number of
workers; it leaves out the start-up and assumes the images are read as fast as here (a shared
file system can be slower) and that the driver keeps up with writing the rows (here it writes
about 10⁴ rows per second). Nothing is asserted: the results are printed as Markdown and written
to ``benchmarks/results/audit_latest.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SIZE = 96
CLUSTER_WORKERS = (2, 32, 128, 512)
FLAT_MEMORY = 1.25   # "flat": the peak at 10× the images is at most this many times the peak


def model_spec(workdir: Path):
    """A random-weight copy of the lessons' X-ray ResNet, saved as a checkpoint."""
    import torch

    from gradcam_helpers.audit import ModelSpec
    from gradcam_helpers.course.models.torch_resnet import DEFAULT_TRAIN_CONFIG as C
    from gradcam_helpers.course.models.torch_resnet import build_resnet

    kwargs = dict(arch=C["arch"], num_classes=2, in_channels=1, width=C["width"],
                  stem_stride=C["stem_stride"], stem_pool=C["stem_pool"],
                  stage_strides=list(C["stage_strides"]))
    path = workdir / "model.pt"
    if not path.exists():
        torch.manual_seed(0)
        torch.save(build_resnet(**kwargs).state_dict(), path)
    return ModelSpec.torch(path, "gradcam_helpers.course.models.torch_resnet:build_resnet", **kwargs)


def child(engine: str, images: str, out: str, workdir: str) -> dict:
    """One audit in this (fresh) process; returns its timings and peak memory."""
    import torch

    torch.set_num_threads(2)
    from gradcam_helpers.audit import audit

    spec = model_spec(Path(workdir))
    ray_start = 0.0
    if engine == "ray":
        from gradcam_helpers.audit.run import start_local_ray

        t0 = time.perf_counter()
        start_local_ray(2)
        ray_start = time.perf_counter() - t0
    try:
        run = audit(images, spec, out, size=SIZE, layer="layer4", batch_size=32,
                    engine=engine, num_workers=2, progress=False, overwrite=True)
    finally:
        if engine == "ray":
            import ray

            ray.shutdown()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"engine": engine, "images": run.audited, "seconds": run.seconds,
            "ray_start_seconds": ray_start, "images_per_second": run.images_per_second,
            "first_batch_seconds": run.first_batch_seconds,
            "steady_images_per_second": run.steady_images_per_second,
            "peak_rss_mb": peak_kb / 1024, "errors": run.errors}


def _run_child(engine: str, images: Path, workdir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    out = workdir / f"{engine}_{images.name}.parquet"
    proc = subprocess.run([sys.executable, __file__, "--child", engine, str(images), str(out),
                           str(workdir)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the {engine} audit of {images} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_sets(workdir: Path, small: int, large: int) -> tuple[Path, Path]:
    """``large`` synthetic X-rays, and a folder linking to the first ``small`` of them."""
    from gradcam_helpers.audit import find_images
    from gradcam_helpers.audit.synthetic import write_hospital_xrays

    big = workdir / f"xrays_{large}"
    if not big.exists():
        write_hospital_xrays(big, large, SIZE, show_progress=False)
    few = workdir / f"xrays_{small}"
    if not few.exists():
        for rel in find_images(big).column("path").to_pylist()[::max(1, large // small)][:small]:
            (few / rel).parent.mkdir(parents=True, exist_ok=True)
            (few / rel).symlink_to(big / rel)
    return few, big


def cluster_estimate(ray_run: dict, workers: Sequence[int] = CLUSTER_WORKERS,
                     images: int = 10**6) -> list[dict]:
    """Hours for ``images`` on clusters of ``workers``, from the measured seconds per image on
    one Ray worker once the first batch is back (start-up excluded, linear scaling assumed)."""
    per_image = 2 / ray_run["steady_images_per_second"]   # 2 local workers
    return [{"workers": w, "seconds_per_image_per_worker": per_image,
             "hours": images * per_image / w / 3600} for w in workers]


def markdown(runs: list[dict], estimate: list[dict], meta: dict) -> str:
    lines = [f"# Audit benchmark ({meta['date']})", "",
             f"{meta['machine']}; {SIZE} px X-rays, ResNet-18 (width 12), Grad-CAM on layer4, "
             "batch 32", "",
             "| engine | images | Ray start s | first batch s | wall s | images/s | "
             "images/s after the first batch | peak memory of the driver, MB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['engine']} | {r['images']} | {r['ray_start_seconds']:.1f} | "
                     f"{r['first_batch_seconds']:.1f} | {r['seconds']:.1f} | "
                     f"{r['images_per_second']:.1f} | {r['steady_images_per_second']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    local = [r for r in runs if r["engine"] == "local"]
    if len(local) == 2:
        ratio = local[1]["peak_rss_mb"] / local[0]["peak_rss_mb"]
        flat = ratio <= FLAT_MEMORY
        lines += ["", f"Memory, in-process: {local[1]['images']} images peak at "
                  f"{ratio:.2f}× the peak of {local[0]['images']} "
                  f"({'flat' if flat else 'NOT flat'}; goal ≤ {FLAT_MEMORY}×)."]
    ray_runs = [r for r in runs if r["engine"] == "ray"]
    if ray_runs and local:
        same = [r for r in local if r["images"] == ray_runs[0]["images"]]
        if same:
            ratio = ray_runs[0]["steady_images_per_second"] / same[0]["steady_images_per_second"]
            lines += ["", f"Ray local (2 workers) / in-process, images per second after the "
                      f"first batch: {ratio:.2f} (same 2 cores; the start-up is in the table)."]
    if estimate:
        lines += ["", f"10⁶ images on a cluster, from {estimate[0]['seconds_per_image_per_worker']:.3f}"
                  " s per image per 1-CPU worker (linear scaling, start-up left out):", "",
                  "| workers | hours |", "|---|---|"]
        lines += [f"| {e['workers']} | {e['hours']:.2f} |" for e in estimate]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 and 400 images (smoke test)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    parser.add_argument("--small", type=int, help="images of the first run (default 1000)")
    parser.add_argument("--large", type=int, help="images of the second run (default 10000)")
    parser.add_argument("--workdir", help="keep the synthetic images here (default: a temp dir)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return {}
    small = args.small or (100 if args.quick else 1000)
    large = args.large or (400 if args.quick else 10000)
    print(f"auditing {small} and {large} synthetic X-rays in-process"
          + ("" if args.no_ray else f", then {small} on Ray (2 local workers)"), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench_audit_") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        model_spec(workdir)
        few, big = make_sets(workdir, small, large)
        runs = [_run_child("local", few, workdir), _run_child("local", big, workdir)]
        if not args.no_ray:
            runs.append(_run_child("ray", few, workdir))
    estimate = cluster_estimate(runs[-1]) if not args.no_ray else []
    meta = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                       f"{platform.python_version()}"}
    text = markdown(runs, estimate, meta)
    print(text)
    result = {"meta": meta, "runs": runs, "cluster": estimate, "markdown": text}
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "audit_latest.md").write_text(text, encoding="utf-8")
        (RESULTS / "audit_latest.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
