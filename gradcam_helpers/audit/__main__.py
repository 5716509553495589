"""``python -m gradcam_helpers.audit IMAGES --model ... --out audit.parquet`` — see ``--help``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ..engine.registry import METHODS
from .model import ModelSpec

EXAMPLES = """examples:
  # a PyTorch checkpoint and the function that builds the network, on this machine
  python -m gradcam_helpers.audit xrays/ --model model.pt \\
      --factory gradcam_helpers.course.models.torch_resnet:build_resnet \\
      --factory-kwargs '{"arch": "resnet18", "num_classes": 2, "in_channels": 1}' \\
      --size 96 --layer 'layer4[-1]' --masks xrays_masks/ --out audit.parquet --report audit_report/
  # a Keras model, on Ray with 2 local workers, or on a running cluster
  python -m gradcam_helpers.audit xrays/ --model model.keras --size 128 --out audit.parquet --engine ray
  python -m gradcam_helpers.audit xrays/ --model model.keras --size 128 --out audit.parquet \\
      --engine ray --address auto --num-workers 32 --num-gpus 0.25
A stopped run resumes: run the same command again."""


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m gradcam_helpers.audit`` (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m gradcam_helpers.audit",
        description="Audit every image of a folder for shortcut learning: one Parquet row per "
                    "image (prediction, the four shortcut measures and flags, a 16x16 map) and a "
                    "Markdown report.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", help="folder of images (Kaggle layout NORMAL/ PNEUMONIA/, or flat)")
    p.add_argument("--model", required=True,
                   help="a .keras file, or a PyTorch checkpoint (state_dict) with --factory")
    p.add_argument("--factory", help="module:function that builds the PyTorch network")
    p.add_argument("--factory-kwargs", default="{}", help="JSON keyword arguments of --factory")
    p.add_argument("--out", required=True, help="the .parquet table to write (resumed if present)")
    p.add_argument("--size", type=int, required=True, help="model input size in pixels")
    p.add_argument("--method", default="gradcam", choices=sorted(METHODS))
    p.add_argument("--layer", help="target layer name / dotted path (default: automatic)")
    p.add_argument("--target", type=int, help="class to explain (default: the predicted class)")
    p.add_argument("--masks", help="folder of masks mirroring IMAGES (e.g. lungs)")
    p.add_argument("--channels", type=int, default=1, choices=(1, 3))
    p.add_argument("--mean", type=float, default=0.0, help="input = (gray - mean) / std")
    p.add_argument("--std", type=float, default=1.0)
    p.add_argument("--thresholds", default="{}",
                   help="JSON overrides of gradcam_helpers.evaluation.diagnose.DEFAULT_THRESHOLDS")
    p.add_argument("--engine", default="local", choices=("local", "ray"))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=2, help="Ray workers (default 2)")
    p.add_argument("--address", help="Ray cluster address (default: start Ray on this machine)")
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per Ray worker")
    p.add_argument("--part-rows", type=int, default=1000,
                   help="save finished rows every this many images (default 1000)")
    p.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    p.add_argument("--report", help="also write a Markdown report with figures to this folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _json(text: str, option: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"{option} is not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise SystemExit(f"{option} must be a JSON object, e.g. '{{\"num_classes\": 2}}'")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the audit with the command line ``argv``; return the exit status."""
    args = build_parser().parse_args(argv)
    from .report import summarize, write_report
    from .run import audit

    try:
        if Path(args.model).suffix == ".keras":
            spec = ModelSpec.keras(args.model)
        elif args.factory:
            spec = ModelSpec.torch(args.model, args.factory,
                                   **_json(args.factory_kwargs, "--factory-kwargs"))
        else:
            raise SystemExit(f"{args.model} is not a .keras file: a PyTorch checkpoint needs "
                             "--factory module:function (and --factory-kwargs)")
        run = audit(args.images, spec, args.out, size=args.size, method=args.method,
                    layer=args.layer, target=args.target, masks=args.masks,
                    channels=args.channels, mean=args.mean, std=args.std,
                    thresholds=_json(args.thresholds, "--thresholds"), engine=args.engine,
                    batch_size=args.batch_size, num_workers=args.num_workers,
                    address=args.address, num_gpus=args.num_gpus, part_rows=args.part_rows,
                    overwrite=args.overwrite, progress=not args.quiet)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{run.path}: {run.images} images, {run.audited} audited now, {run.skipped} already "
          f"done, {run.errors} unreadable ({run.seconds:.1f} s, {run.images_per_second:.1f} "
          "images/s)")
    summary = summarize(run.path)
    print(summary["overall"]["verdict"])
    if args.report:
        print(f"report: {write_report(run.path, args.report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
