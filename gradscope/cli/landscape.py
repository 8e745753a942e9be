"""`gradscope landscape`: filter-normalized loss landscapes (Li et al. 2018) and sharpness of checkpoints.

A thin layer over :func:`gradscope.landscape.runs.compute_runs` (see its module docstring for
where files go, how runs are labelled and how an existing file is continued) and
:func:`~gradscope.landscape.runs.write_outputs`.
"""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from gradscope.cli import add_common_flags
from gradscope.errors import GradscopeError
from gradscope.outputs import check_out

EXAMPLES = """\
examples:
  gradscope landscape runs/demo-graphsam                       # 1-D curve around the best checkpoint
  gradscope landscape runs/adam runs/sam runs/graphsam --points 41 --range 1 --hessian
  gradscope landscape runs/sam --dim 2 --points 25 --samples 256 --out figs/sam2d
  gradscope landscape runs/adam runs/sam --directions interpolate     # the line θ_adam → θ_sam
  gradscope landscape runs/graphsam --directions eps-omega --step 100  # needs --save-vectors-every

Each run's files go into RUN/landscape/ (or all into --out DIR): <label>_<directions>_<dim>d.h5,
landscape_<directions>_1d.png/.html (2-D: _contour.png, _surface.png, .html) and, with --hessian,
sharpness.json, sharpness.h5 and sharpness_density.png. Running the same command again continues
an interrupted file and re-draws a finished one.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "landscape", help="1-D/2-D loss landscapes and sharpness of checkpoints",
        description="Filter-normalized loss landscapes (Li et al. 2018) around checkpoints of gradscope runs, "
                    "written as HDF5, PNG and interactive HTML, and sharpness measures (see docs/landscape.md).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR_OR_CHECKPOINT",
                   help="a run directory of `gradscope record` (its --checkpoint) or a checkpoint file")
    p.add_argument("--dim", type=int, choices=(1, 2), default=1, help="1: a curve (default), 2: a surface")
    p.add_argument("--points", type=int, default=None, help="grid points per axis, odd, at least 3 "
                   "(default 41 in 1-D, 21 in 2-D)")
    p.add_argument("--range", type=float, default=None, dest="range_",
                   help="coordinates in [-R, R] (default 1; interpolate: -0.5 .. 1.5)")
    p.add_argument("--samples", type=int, default=None, help="evaluate on a random sample of N molecules of "
                   "the split, drawn with --seed (default: the whole split)")
    p.add_argument("--split", choices=("train", "val", "test"), default="train", help="evaluation split (default train)")
    p.add_argument("--directions", choices=("random", "eps-omega", "hessian", "interpolate"), default="random",
                   help="random filter-normalized (default), the trace's ε/ω snapshot, the top Hessian "
                        "eigenvectors, or the line between two checkpoints")
    p.add_argument("--step", type=int, default=None, help="eps-omega: the trace step whose ε/ω snapshot to use "
                   "(default: the last snapshot)")
    p.add_argument("--normalization", choices=("filter", "layer", "model", "none"), default="filter",
                   help="scaling of the directions (default filter, Li et al. 2018)")
    p.add_argument("--include-1d", action="store_true", help="also perturb biases and norm layers")
    p.add_argument("--seed", type=int, default=0, help="seed of the random directions and of the --samples draw")
    sharp = p.add_argument_group("sharpness (--hessian)")
    sharp.add_argument("--hessian", action="store_true", help="also measure sharpness: λ_max and λ_min (Lanczos), "
                       "the top eigenvalues, the Hessian trace (Hutchinson), the eigenvalue density (SLQ), "
                       "ρ-sharpness and the random-direction loss increase at --radius")
    sharp.add_argument("--radius", type=float, default=0.05, help="radius of the random-direction increase "
                       "(filter-normalized units, default 0.05)")
    sharp.add_argument("--rho", type=float, default=0.05, help="ball radius ρ of the ρ-sharpness (default 0.05, "
                       "SAM's ρ)")
    sharp.add_argument("--rho-steps", type=int, default=1, help="ascent steps of the ρ-sharpness (default 1, as SAM)")
    sharp.add_argument("--top-k", type=int, default=3, help="how many of the largest eigenvalues (default 3)")
    sharp.add_argument("--trace-probes", type=int, default=20, help="probes of the trace estimate (default 20; "
                       "0: no trace)")
    sharp.add_argument("--density-steps", type=int, default=30, help="Lanczos steps of the eigenvalue density "
                       "(default 30; 0: no density)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint of a run directory (default best)")
    p.add_argument("--data", metavar="FILE", help="the dataset file, when it moved since training")
    p.add_argument("--out", metavar="DIR", help="write every run's files into DIR (default: each RUN/landscape)")
    p.add_argument("--resume", action="store_true", help="continue interrupted files (also the default when a "
                   "file's settings match)")
    p.add_argument("--overwrite", action="store_true", help="replace existing landscape files")
    add_common_flags(p)
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~gradscope.landscape.runs.RunLandscapeSettings` the flags describe."""
    from gradscope.landscape import LandscapeSettings, SharpnessSettings
    from gradscope.landscape.runs import RunLandscapeSettings
    from gradscope.landscape.settings import MIN_POINTS

    if args.resume and args.overwrite:
        raise GradscopeError("--resume and --overwrite exclude each other")
    if args.points is not None and args.points < MIN_POINTS:
        raise GradscopeError(f"--points must be at least {MIN_POINTS}, got {args.points} "
                             "(a landscape needs the checkpoint and points around it)")
    if args.samples is not None and args.samples < 1:
        raise GradscopeError(f"--samples must be positive, got {args.samples}")
    if args.step is not None and args.directions != "eps-omega":
        raise GradscopeError("--step applies to --directions eps-omega only")
    if args.directions == "interpolate" and args.dim != 1:
        raise GradscopeError("--directions interpolate gives a 1-D line; use --dim 1")
    if args.range_ is not None:
        extent: Any = args.range_
    else:
        extent = (-0.5, 1.5) if args.directions == "interpolate" else 1.0
    landscape = LandscapeSettings(dims=args.dim, points_x=args.points or (41 if args.dim == 1 else 21),
                                  range_x=extent, normalization=args.normalization, include_1d=args.include_1d,
                                  seed=args.seed)
    sharpness = None
    if args.hessian:
        sharpness = SharpnessSettings(radius=args.radius, seed=args.seed, normalization=args.normalization,
                                      rho=args.rho, rho_steps=args.rho_steps, top_k=args.top_k,
                                      trace_probes=args.trace_probes, density_runs=1 if args.density_steps else 0,
                                      density_steps=args.density_steps or 30)
    return RunLandscapeSettings(landscape=landscape, directions=args.directions, split=args.split,
                                samples=args.samples, step=args.step, sharpness=sharpness,
                                checkpoint=args.checkpoint, data_path=args.data)


def run(args: argparse.Namespace) -> int:
    from gradscope.landscape.runs import compute_prepared, prepare_runs, writers_lock
    from gradscope.train import distributed as D

    settings = settings_from_args(args)
    _check_out_dirs(args)
    info = D.init_distributed("cpu")
    prepared = prepare_runs(args.runs, settings, out=args.out, overwrite=args.overwrite)
    with writers_lock(prepared, out=args.out, enabled=info.is_main):
        results = [compute_prepared(p, settings, progress=not args.quiet) for p in prepared]
        if info.is_main:
            written = _write_outputs(results, settings)
            _report(results, written, args)
    D.shutdown(info)
    return 0


def _write_outputs(results: list, settings: Any) -> list[Path]:
    """:func:`~gradscope.landscape.runs.write_outputs`; a failed write (full disk) names the folders."""
    from gradscope.landscape.runs import write_outputs
    from gradscope.outputs import FILE_SYSTEM_ERRNOS

    try:
        return write_outputs(results, settings)
    except OSError as exc:
        if exc.errno not in FILE_SYSTEM_ERRNOS or exc.filename:
            raise
        folders = ", ".join(dict.fromkeys(str(r.out_dir) for r in results))
        raise GradscopeError(f"cannot write the landscape figures into {folders}: {exc.strerror or exc}") from exc


def _check_out_dirs(args: argparse.Namespace) -> None:
    """The --out rule (gradscope.outputs) for where the files will go, before any checkpoint is
    loaded: --out DIR, else each run's landscape/ folder."""
    from gradscope.landscape.runs import run_directory
    from gradscope.train.checkpoint import find_checkpoint

    if args.out:
        check_out(args.out, directory=True)
        return
    for run in args.runs:
        try:
            folder = run_directory(find_checkpoint(run, args.checkpoint)) / "landscape"
        except GradscopeError:  # a missing run is reported by the loader, in its words
            continue
        try:
            check_out(folder, directory=True, flag="landscape folder")
        except GradscopeError as exc:
            raise GradscopeError(f"{exc}; write elsewhere with --out DIR") from None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _report(results: list, written: list[Path], args: argparse.Namespace) -> None:
    for r in results:
        ls = r.landscape
        print(f"{r.label}: centre loss {ls.centre_loss:.4f}, min {float(ls.loss.min()):.4f}, "
              f"max {float(ls.loss.max()):.4f}  -> {ls.path}")
    measured = [r for r in results if r.sharpness is not None]
    if measured:
        print(f"sharpness (Δ: loss increase at r={args.radius} along random directions; ρ-sharpness at ρ={args.rho}; "
              "Hessian eigenvalues λ and trace):")
        for r in measured:
            s = r.sharpness
            print(f"  {r.label:24s} loss {s.loss:.4f}  mean Δ {_fmt(s.mean_increase)}  max Δ {_fmt(s.max_increase)}  "
                  f"ρ-sharpness {_fmt(s.rho_sharpness)}  λ_max {_fmt(s.lambda_max)}  λ_min {_fmt(s.lambda_min)}  "
                  f"trace {_fmt(s.trace)}")
    for path in written:
        print(f"wrote {path}")
    if not args.quiet:
        _next(results, args)


def _next(results: list, args: argparse.Namespace) -> None:
    """Commands to look at the results, shell-quoted so that they can be pasted as they are."""
    print("next:")
    if args.out:
        files = [str(r.landscape.path) for r in results]
        figure = str(Path(args.out) / "landscape.png")
        print(f"  {shlex.join(['gradscope', 'plot', 'landscape', *files, '--out', figure])}")
    else:
        print(f"  {shlex.join(['gradscope', 'plot', 'landscape', *args.runs, '--out', 'landscape.png'])}")
        print(f"  {shlex.join(['gradscope', 'report', *args.runs, '--out', 'report.html'])}")
