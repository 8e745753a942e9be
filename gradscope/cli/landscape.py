"""`gradscope landscape`: filter-normalized loss landscapes (Li et al. 2018) around checkpoints.

A run directory means its best checkpoint. The model, dataset and split are rebuilt from the
checkpoint alone; several checkpoints share the direction settings (same seed, each
filter-normalized to its own weights), giving one comparative figure (GraphSAM paper, Fig. 2).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gradscope.cli import add_common_flags
from gradscope.errors import GradscopeError

EXAMPLES = """\
examples:
  gradscope landscape runs/demo-graphsam                       # 1-D curve around the best checkpoint
  gradscope landscape runs/adam runs/sam runs/graphsam --points 41 --range 1 --hessian
  gradscope landscape runs/sam --dim 2 --points 25 --samples 256 --out figs/sam2d
  gradscope landscape runs/adam runs/sam --directions interpolate     # the line θ_adam → θ_sam
  gradscope landscape runs/graphsam --directions eps-omega --step 100  # needs --save-vectors-every
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "landscape", help="1-D/2-D loss landscapes and sharpness of checkpoints",
        description="Filter-normalized loss landscapes (Li et al. 2018) around checkpoints of gradscope runs, "
                    "written as HDF5, PNG and interactive HTML.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--dim", type=int, choices=(1, 2), default=1)
    p.add_argument("--points", type=int, default=None, help="grid points per axis, odd (default 41 in 1-D, 21 in 2-D)")
    p.add_argument("--range", type=float, default=None, dest="range_",
                   help="coordinates in [-R, R] (default 1; interpolate: -0.5 .. 1.5)")
    p.add_argument("--samples", type=int, default=None, help="evaluate on the first N molecules of the split "
                   "(default: the whole split)")
    p.add_argument("--split", choices=("train", "val", "test"), default="train")
    p.add_argument("--directions", choices=("random", "eps-omega", "hessian", "interpolate"), default="random")
    p.add_argument("--step", type=int, default=None, help="eps-omega: the trace step whose ε/ω snapshot to use "
                   "(default: the last snapshot)")
    p.add_argument("--normalization", choices=("filter", "layer", "model", "none"), default="filter")
    p.add_argument("--include-1d", action="store_true", help="also perturb biases and norm layers")
    p.add_argument("--seed", type=int, default=0, help="seed of the random directions")
    p.add_argument("--hessian", action="store_true", help="also report λ_max (power iteration) and the "
                   "random-direction sharpness at --radius")
    p.add_argument("--radius", type=float, default=0.05, help="radius of the sharpness number (default 0.05)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint of a run directory")
    p.add_argument("--data", metavar="FILE", help="the dataset file, when it moved since training")
    p.add_argument("--out", metavar="DIR", help="output directory (default: FIRST_RUN/landscape)")
    p.add_argument("--resume", action="store_true", help="continue interrupted surfaces in --out")
    p.add_argument("--overwrite", action="store_true", help="replace existing landscape files in --out")
    add_common_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gradscope.landscape import (LandscapeSettings, SharpnessSettings, compute_landscape, directions_from_vectors,
                                     hessian_directions, interpolation_direction, measure_sharpness, save_plots)
    from gradscope.train import distributed as D
    from gradscope.train.build import load_run
    from gradscope.train.objective import loss_fn_for

    if args.resume and args.overwrite:
        raise GradscopeError("--resume and --overwrite exclude each other")
    if args.directions == "interpolate" and len(args.runs) != 2:
        raise GradscopeError("--directions interpolate needs exactly two checkpoints (from, to)")
    if args.directions == "interpolate" and args.dim != 1:
        raise GradscopeError("--directions interpolate gives a 1-D line; use --dim 1")
    if args.step is not None and args.directions != "eps-omega":
        raise GradscopeError("--step applies to --directions eps-omega only")
    if args.samples is not None and args.samples < 1:
        raise GradscopeError(f"--samples must be positive, got {args.samples}")
    info = D.init_distributed("cpu")
    progress = not args.quiet
    runs = [load_run(path, which=args.checkpoint, data_path=args.data) for path in args.runs]
    first = runs[0]
    for r in runs[1:]:
        if r.model_config != first.model_config:
            raise GradscopeError(f"{r.path} is a checkpoint of another model than {first.path} "
                                 "(different model config); landscapes can only be compared on one architecture")
    labels = _labels(runs)
    points = args.points or (41 if args.dim == 1 else 21)
    if args.range_ is not None:
        rng: Any = args.range_
    else:
        rng = (-0.5, 1.5) if args.directions == "interpolate" else 1.0
    try:
        settings = LandscapeSettings(dims=args.dim, points_x=points, range_x=rng, normalization=args.normalization,
                                     include_1d=args.include_1d, seed=args.seed)
    except ValueError as exc:
        raise GradscopeError(str(exc)) from None
    out = Path(args.out) if args.out else _default_out(args.runs[0])
    out.mkdir(parents=True, exist_ok=True)

    results, sharpness = {}, {}
    for label, r in zip(labels, runs):
        batches, weights = _batches(r, args.split, args.samples)
        loss_fn = loss_fn_for(r.data.task)
        metric_fn = _metric_fn(r)
        directions: Any = None
        if args.directions == "eps-omega":
            directions = _eps_omega(r, args.step, args.dim, args.normalization, args.include_1d, directions_from_vectors)
        elif args.directions == "hessian":
            directions = hessian_directions(r.model, batches, loss_fn, k=args.dim, seed=args.seed,
                                            batch_weights=weights)
        elif args.directions == "interpolate":
            if r is not first:
                break  # one line from the first checkpoint to the second
            directions = interpolation_direction(first.model, runs[1].model)
            label = f"{labels[0]}→{labels[1]}"
        results[label] = compute_landscape(
            r.model, batches, loss_fn, settings, directions=directions, metric_fn=metric_fn, batch_weights=weights,
            metric_name=r.data.metric, out_path=out / f"{_safe(label)}.h5", resume=args.resume,
            overwrite=args.overwrite, progress=progress, label=label, checkpoint=str(r.path))
        if args.hessian:
            sharpness[label] = measure_sharpness(
                r.model, batches, loss_fn, SharpnessSettings(radius=args.radius, seed=args.seed,
                                                             normalization=args.normalization),
                batch_weights=weights, progress=progress)
    if info.is_main:
        written = save_plots(results, out)
        _report(results, sharpness, out, written, args.radius)
    D.shutdown(info)
    return 0


def _labels(runs) -> list[str]:
    names = [r.config.optimizer for r in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{r.config.optimizer}:{r.path.parent.parent.name if r.path.parent.name == 'checkpoints' else r.path.stem}"
            for r in runs]


def _default_out(first: str) -> Path:
    p = Path(first)
    return (p if p.is_dir() else p.parent.parent if p.parent.name == "checkpoints" else p.parent) / "landscape"


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def _batches(run, split: str, samples: int | None):
    """The evaluation set as size-packed batches (little padding; the grouping does not change
    the loss) and their label counts as weights, so the loss is the mean over present labels
    exactly as training's evaluation computes it."""
    idx = run.data.split[split]
    if samples is not None:
        idx = idx[:samples]
    batches = run.data.dataset.size_batches(idx, standardizer=run.data.standardizer)
    return batches, [float(b.y_mask.sum()) for b in batches]


def _metric_fn(run):
    """The task metric over a grid point's outputs (on the original scale for regression)."""
    import numpy as np
    import torch

    from gradscope.metrics import get_metric
    from gradscope.train.objective import predictions

    metric, task, std = get_metric(run.data.metric), run.data.task, run.data.standardizer

    def fn(outputs, batches) -> float:
        pred = torch.cat([predictions(o, task) for o in outputs]).detach().cpu().numpy()
        y = torch.cat([b.y for b in batches]).cpu().numpy()
        mask = torch.cat([b.y_mask for b in batches]).cpu().numpy()
        if std is not None:
            pred, y = std.inverse(pred), std.inverse(y)
        return metric(np.asarray(y), np.asarray(pred), mask)

    return fn


def _eps_omega(run, step, dims, normalization, include_1d, directions_from_vectors):
    from gradscope.trace import open_trace

    trace_path = run.path.parent.parent / "trace.h5"
    if not trace_path.is_file():
        raise GradscopeError(f"--directions eps-omega needs the run's trace.h5 beside {run.path.parent}")
    trace = open_trace(trace_path)
    if trace.vectors is None or len(trace.vectors) == 0:
        raise GradscopeError(f"{trace_path} holds no ε/ω snapshots; record with --save-vectors-every K")
    steps = trace.vectors.step
    row = len(steps) - 1 if step is None else int(abs(steps - step).argmin())
    eps, omega = trace.vectors.eps(row), trace.vectors.omega(row)
    if not (eps == eps).all():
        raise GradscopeError(f"the snapshot at step {int(steps[row])} has no ε (an Adam run?); use --directions random")
    vectors = [eps, omega][:dims]
    return directions_from_vectors(run.model, vectors, normalization=normalization, include_1d=include_1d)


def _report(results, sharpness, out: Path, written, radius: float) -> None:
    for label, ls in results.items():
        print(f"{label}: centre loss {ls.centre_loss:.4f}, min {float(ls.loss.min()):.4f}, "
              f"max {float(ls.loss.max()):.4f}  -> {ls.path}")
    if sharpness:
        rows = {}
        print(f"sharpness (mean loss increase at r={radius} over random filter-normalized directions; λ_max):")
        for label, s in sharpness.items():
            lam = "-" if s.lambda_max is None else f"{s.lambda_max:.4g}"
            print(f"  {label:24s} loss {s.loss:.4f}  mean Δ {s.mean_increase:.4g}  max Δ {s.max_increase:.4g}  λ_max {lam}")
            rows[label] = {"loss": s.loss, "radius": s.radius, "mean_increase": s.mean_increase,
                           "max_increase": s.max_increase, "lambda_max": s.lambda_max,
                           "lambda_iterations": s.lambda_iterations, "lambda_converged": s.lambda_converged}
        (out / "sharpness.json").write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {out / 'sharpness.json'}")
    for path in written:
        print(f"wrote {path}")
