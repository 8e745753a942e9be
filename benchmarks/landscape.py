"""Landscape speed: batched (vmap) grid evaluation and vectorized filter normalization.

Measured, on the same model, data, directions and device, interleaved A/B/C/A/B/C (medians of
``--reps`` rounds, ratios from the same run):

1. 2-D grid points per second of
   * ``gradscope``   — :class:`gradscope.landscape.LandscapeEvaluator` (functional_call + vmap over
     chunks of grid points; a fresh evaluator per round, so its mode probe, memory estimate and
     chunk-size tuning are included — what one call on this grid costs);
   * ``gradscope-tuned`` — one evaluator whose chunk size was tuned before the rounds (the steady
     state of a large grid, or of further surfaces with the same evaluator);
   * ``loop``        — a per-point loop in the style of the ``loss-landscapes`` package: one copy
     of the model, per point write θ₀ + a·d₁ + b·d₂ into it, forward every batch, read the loss;
   * ``loop-packed`` — the same loop over gradscope's size-packed batches (an ablation: what the
     packing alone buys, and what batching grid points adds on top);
   * ``loss-landscapes`` — the package itself (``planar_interpolation`` fed our directions as
     end-point models; (n−1)² points; its API takes one ``(inputs, target)`` batch), where installed.
   Target: gradscope ≥ 3× the loop and the package. The first workload is real: BBBP molecules
   with the ``small`` transformer, evaluated as ``gradscope landscape`` does (size-packed batches);
   the loop gets the training loader's batches of 32 in split order.
2. Filter normalization of two directions for a transformer-sized model: vectorized
   (:func:`gradscope.landscape.normalize_directions`) vs a per-filter Python loop (and the
   package's ``filter_normalize_``). Target ≥ 20×.

Usage::

    python benchmarks/landscape.py            # full
    python benchmarks/landscape.py --quick    # seconds, for CI smoke runs
    python benchmarks/landscape.py --device cuda

Results are merged into ``benchmarks/results/landscape.json`` under the device name, and a table is
printed.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import vector_to_parameters

if not __package__:  # run as a script: make ``benchmarks.common`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradscope.landscape import LandscapeEvaluator, FlatLayout, normalize_directions, random_directions

RESULTS = Path(__file__).resolve().parent / "results" / "landscape.json"


# ----------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    """One model and evaluation set, as each method receives it.

    ``batches``/``weights`` are what gradscope evaluates (for molecules: size-packed batches
    weighted by label counts, as ``gradscope landscape`` builds them); ``loop_batches`` are a
    user's natural batches (the training loader's size, in split order); ``package`` is the one
    ``(inputs, target, loss_fn)`` batch that the loss-landscapes API takes.
    """

    name: str
    model: nn.Module
    batches: list
    weights: list[float] | None
    loop_batches: list
    loss: Callable
    forward: Callable
    package: tuple
    points: int


def mlp_workload(device: torch.device, width: int, n: int, points: int) -> Workload:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(n, 32, generator=g).to(device), torch.randint(0, 10, (n,), generator=g).to(device)
    loss = lambda out, b: nn.functional.cross_entropy(out, b[1])  # noqa: E731
    fwd = lambda m, b: m(b[0])  # noqa: E731
    batches = [(x, y)]  # the loop gets the same batches: no packing question here
    return Workload(f"mlp-{width} ({n} samples)", model.to(device), batches, None, batches, loss, fwd,
                    (x, y, nn.functional.cross_entropy), points)


def _bce(out: torch.Tensor, bt) -> torch.Tensor:  # noqa: ANN001
    return nn.functional.binary_cross_entropy_with_logits(out, bt.y)


def transformer_workload(device: torch.device, preset: str, b: int, n: int, points: int) -> Workload:
    """Random equal-sized graphs: the model's cost without any padding question."""
    from gradscope.chem.batch import GraphBatch
    from gradscope.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig.preset(preset, atom_dim=32, bond_dim=8, n_tasks=2))
    g = torch.Generator().manual_seed(2)
    mask = torch.arange(n)[None, :] < torch.randint(n // 2, n + 1, (b,), generator=g)[:, None]
    pair = mask[:, :, None] & mask[:, None, :]
    dist = torch.where(pair, torch.randint(1, 8, (b, n, n), generator=g).float(), 0.0)
    batch = GraphBatch(
        atoms=torch.randn(b, n, 32, generator=g) * mask[..., None],
        bonds=torch.rand(b, n, n, 8, generator=g) * pair[..., None],
        distances=dist, mask=mask, y=torch.randint(0, 2, (b, 2), generator=g).float(),
        y_mask=torch.ones(b, 2, dtype=torch.bool), index=torch.arange(b),
    ).to(device)
    fwd = lambda m, bt: m(bt)  # noqa: E731
    batches = [batch]
    return Workload(f"graph-transformer-{preset} ({b} mols x {n} atoms)", model.to(device), batches, None, batches,
                    _bce, fwd, (batch, batch, _bce), points)


def molecule_workload(device: torch.device, preset: str, n: int, points: int) -> Workload | None:
    """``n`` BBBP molecules (seeded random sample) and the transformer preset, as in ``gradscope landscape``."""
    from benchmarks.common import moleculenet_dir
    from gradscope.chem import load_dataset
    from gradscope.models import ModelConfig, build_model

    path = moleculenet_dir() / "bbbp.csv"
    if not path.is_file():
        print(f"  skipped the BBBP workload: {path} not found (set GRADSCOPE_MOLECULENET)", file=sys.stderr)
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_dataset("bbbp", data_dir=path.parent, progress=False)
    idx = np.random.default_rng(0).permutation(len(ds))[:n]
    torch.manual_seed(0)
    model = build_model(ModelConfig.preset(preset, atom_dim=ds.atom_dim, bond_dim=ds.bond_dim, n_tasks=ds.n_tasks))
    packed = [b.to(device) for b in ds.size_batches(idx)]
    natural = [ds.batch(idx[i:i + 32]).to(device) for i in range(0, n, 32)]  # the training loader's batch size
    whole = ds.batch(idx).to(device)
    fwd = lambda m, bt: m(bt)  # noqa: E731
    return Workload(f"BBBP {preset} ({n} molecules)", model.to(device), packed,
                    [float(b.y_mask.sum()) for b in packed], natural, _bce, fwd,
                    (whole, whole, _bce), points)


def workloads(device: torch.device, quick: bool) -> list[Callable[[], Workload | None]]:
    """Real molecules first (what ``gradscope landscape`` evaluates), then synthetic cases:
    overhead-bound (small MLP, tiny transformer) and compute-bound (wider MLP, small transformer)."""
    q = quick
    return [
        lambda: molecule_workload(device, "small", 256 if q else 512, 3 if q else 5),
        lambda: mlp_workload(device, 64, 128, 9 if q else 21),
        lambda: mlp_workload(device, 256, 512, 9 if q else 21),
        lambda: transformer_workload(device, "tiny", 16, 12, 9 if q else 21),
        lambda: transformer_workload(device, "small", 64, 20, 5 if q else 11),
    ]


# ----------------------------------------------------------------------------- methods
def run_gradscope(wl: Workload, dirs, coeffs) -> float:
    ev = LandscapeEvaluator(wl.model, wl.batches, wl.loss, forward=wl.forward, batch_weights=wl.weights)
    res = ev.evaluate(dirs, coeffs)
    return float(res.loss[0])


def run_loop(model, batches, loss, fwd, dirs, coeffs) -> float:
    """Per point: write θ₀ + c·D into one model copy, forward every batch, read the loss."""
    m = copy.deepcopy(model).eval()
    params = [p for p in m.parameters() if p.requires_grad]
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    sizes = [b_[0].shape[0] if isinstance(b_, tuple) else len(b_) for b_ in batches]
    first = 0.0
    with torch.no_grad():
        for i, (a, b) in enumerate(coeffs):
            vector_to_parameters(theta + float(a) * dirs[0] + float(b) * dirs[1], params)
            total = sum(s * loss(fwd(m, bt), bt).item() for s, bt in zip(sizes, batches)) / sum(sizes)
            if i == 0:
                first = total
    return first


def run_package(model, dirs, r: float, steps: int, pkg_args) -> float | None:
    try:
        import loss_landscapes
        from loss_landscapes.metrics import Loss
    except ImportError:
        return None
    inputs, target, loss_fn = pkg_args
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def at(vec):
        m = copy.deepcopy(model).eval()
        vector_to_parameters(vec.clone(), m.parameters())
        return m

    start = theta - r * dirs[0] - r * dirs[1]
    with torch.no_grad():
        out = loss_landscapes.planar_interpolation(
            at(start), at(start + 2 * r * dirs[0]), at(start + 2 * r * dirs[1]), Loss(loss_fn, inputs, target),
            steps=steps, deepcopy_model=True,
        )
    return float(np.asarray(out)[0, 0])


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of ``fn``: process CPU time on a CPU (robust to other jobs on a shared machine;
    equal to wall time for one thread), wall time with synchronization on a GPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize(device)
        return time.perf_counter() - t0
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def bench_grid(wl: Workload, device: torch.device, reps: int) -> dict:
    """Interleaved rounds of every method on one workload; medians, points/s and ratios."""
    model, points = wl.model, wl.points
    model.eval()
    dirs = random_directions(model, 2, seed=0).vectors.to(device)
    r = 1.0
    ax = np.linspace(-r, r, points)
    coeffs = np.array([(a, b) for b in ax for a in ax])
    n_pts = len(coeffs)
    pkg_pts = (points - 1) ** 2
    packed_differs = wl.loop_batches is not wl.batches
    # warm-up (vmap tracing caches, allocator), not timed
    run_gradscope(wl, dirs, coeffs[:4])
    run_loop(model, wl.loop_batches, wl.loss, wl.forward, dirs, coeffs[:2])
    tuned = LandscapeEvaluator(model, wl.batches, wl.loss, forward=wl.forward, batch_weights=wl.weights)
    tuned.evaluate(dirs, coeffs)  # tunes its chunk size once; later rounds measure the steady state
    methods: dict[str, Callable[[], object]] = {
        "gradscope": lambda: run_gradscope(wl, dirs, coeffs),
        "gradscope-tuned": lambda: tuned.evaluate(dirs, coeffs),
        "loop": lambda: run_loop(model, wl.loop_batches, wl.loss, wl.forward, dirs, coeffs),
    }
    if packed_differs:  # the ablation: the same loop over gradscope's size-packed batches
        methods["loop-packed"] = lambda: run_loop(model, wl.batches, wl.loss, wl.forward, dirs, coeffs)
    times: dict[str, list[float]] = {k: [] for k in [*methods, "loss-landscapes"]}
    have_pkg = True
    for _ in range(reps):  # interleaved A/B/C/D rounds
        for name, fn in methods.items():
            times[name].append(timed(fn, device))
        if have_pkg:
            got: list[float | None] = []
            seconds = timed(lambda: got.append(run_package(model, dirs, r, points - 1, wl.package)), device)
            if got[0] is None:
                have_pkg = False
            else:
                times["loss-landscapes"].append(seconds)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    pps = {k: (pkg_pts if k == "loss-landscapes" else n_pts) / t for k, t in med.items()}
    return {
        "workload": wl.name,
        "parameters": FlatLayout.from_module(model).size,
        "grid": f"{points}x{points}",
        "points": n_pts,
        "reps": reps,
        "median_s": med,
        "points_per_s": pps,
        "speedup_vs_loop": pps["gradscope"] / pps["loop"],
        "speedup_tuned_vs_loop": pps["gradscope-tuned"] / pps["loop"],
        "speedup_vs_loss_landscapes": (pps["gradscope"] / pps["loss-landscapes"]) if "loss-landscapes" in pps else None,
        "speedup_packed_loop_vs_loop": (pps["loop-packed"] / pps["loop"]) if "loop-packed" in pps else None,
        "gradscope_mode": tuned.mode,
        "gradscope_chunk_size": tuned.chunk_size,
    }


def filter_loop(raw: torch.Tensor, theta: torch.Tensor, layout: FlatLayout) -> torch.Tensor:
    """Li et al. 2018 filter normalization, one filter at a time in Python (the reference)."""
    out = raw.clone()
    for k in range(out.shape[0]):
        for i, shape in enumerate(layout.shapes):
            a, b = layout.spans[i]
            d = out[k, a:b].view(shape)
            t = theta[a:b].view(shape)
            if len(shape) <= 1:
                d.zero_()
                continue
            for f in range(shape[0]):
                dn = d[f].norm()
                d[f] = d[f] * (t[f].norm() / dn) if dn > 0 else 0.0
    return out


def bench_filter_norm(device: torch.device, reps: int, quick: bool) -> dict:
    try:
        from gradscope.models import ModelConfig, build_model

        preset = "small" if quick else "compt"
        model = build_model(ModelConfig.preset(preset, atom_dim=32, bond_dim=8, n_tasks=2)).to(device)
        name = f"graph-transformer-{preset}"
    except ImportError:
        model = nn.Sequential(*[nn.Linear(256, 256) for _ in range(8)]).to(device)
        name = "mlp-8x256"
    layout = FlatLayout.from_module(model)
    theta = layout.flatten_module(model)
    raw = torch.randn(2, layout.numel, generator=torch.Generator().manual_seed(0)).to(device)
    n_filters = sum(s[0] for s in layout.shapes if len(s) >= 2)
    vec = normalize_directions(raw, theta, layout, "filter")
    ref = filter_loop(raw, theta, layout)
    max_rel = float(((vec - ref).norm() / ref.norm()).cpu())
    try:
        from loss_landscapes.model_interface.model_parameters import ModelParameters

        # Weight tensors only: on the 1-D tensors of a fresh transformer (all-zero biases) the
        # package's filter_normalize_ raises ZeroDivisionError.
        weights = [i for i, s in enumerate(layout.shapes) if len(s) >= 2]
        ref_params = layout.parameters(model)

        def package() -> None:
            for k in range(2):
                d = ModelParameters([raw[k, slice(*layout.spans[i])].view(layout.shapes[i]).clone()
                                     for i in weights])
                d.filter_normalize_(ModelParameters([ref_params[i].detach() for i in weights]))
    except ImportError:
        package = None  # type: ignore[assignment]
    times: dict[str, list[float]] = {"vectorized": [], "per_filter_loop": [], "loss-landscapes": []}
    for _ in range(reps):
        times["vectorized"].append(timed(lambda: normalize_directions(raw, theta, layout, "filter"), device))
        times["per_filter_loop"].append(timed(lambda: filter_loop(raw, theta, layout), device))
        if package is not None:
            times["loss-landscapes"].append(timed(package, device))
    med = {k: statistics.median(v) for k, v in times.items() if v}
    return {
        "model": name,
        "parameters": layout.numel,
        "tensors": len(layout.shapes),
        "filters": n_filters,
        "directions": 2,
        "reps": reps,
        "median_s": med,
        "speedup_vs_loop": med["per_filter_loop"] / med["vectorized"],
        "speedup_vs_loss_landscapes": (med["loss-landscapes"] / med["vectorized"]) if "loss-landscapes" in med else None,
        "max_relative_difference_vs_loop": max_rel,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions (seconds)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    reps = 3 if args.quick else 5
    grid_results = []
    for make in workloads(device, args.quick):
        wl = make()
        if wl is not None:
            grid_results.append(bench_grid(wl, device, reps))
            print(f"  done: {wl.name}", file=sys.stderr, flush=True)
    fn = bench_filter_norm(device, reps, args.quick)
    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch": str(torch.__version__),
        "threads": args.threads,
        "clock": "process CPU time" if device.type == "cpu" else "wall time (synchronized)",
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "grid": grid_results,
        "filter_normalization": fn,
        "command": "python benchmarks/landscape.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(args.out.read_text()) if args.out.is_file() else {}
    merged[f"{device.type}{'-quick' if args.quick else ''}"] = result
    args.out.write_text(json.dumps(merged, indent=2) + "\n")

    print(f"landscape benchmark on {result['device_name']} ({device}, {args.threads} thread(s), torch {result['torch']}, "
          f"{result['clock']}, medians of {reps} interleaved rounds)")
    print(f"{'workload':44s} {'grid':>7s} {'gradscope':>10s} {'tuned':>8s} {'loop':>8s} {'packed':>8s} {'package':>8s}"
          f" {'vs loop':>8s} {'tuned/loop':>10s} {'vs pkg':>7s}  (points/s)")

    def cell(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    for g in grid_results:
        p = g["points_per_s"]
        print(f"{g['workload']:44s} {g['grid']:>7s} {p['gradscope']:10.2f} {p['gradscope-tuned']:8.2f} {p['loop']:8.2f} "
              f"{cell(p.get('loop-packed'), '.2f'):>8s} {cell(p.get('loss-landscapes'), '.2f'):>8s} "
              f"{g['speedup_vs_loop']:7.2f}x {g['speedup_tuned_vs_loop']:9.2f}x "
              f"{cell(g['speedup_vs_loss_landscapes'], '.2f'):>6s}x   [{g['gradscope_mode']}, chunk {g['gradscope_chunk_size']}]")
    m = fn["median_s"]
    print(f"filter normalization, {fn['model']} ({fn['parameters']} params, {fn['filters']} filters, 2 directions): "
          f"vectorized {m['vectorized'] * 1e3:.2f} ms, per-filter loop {m['per_filter_loop'] * 1e3:.1f} ms "
          f"({fn['speedup_vs_loop']:.0f}x)"
          + (f", loss-landscapes {m['loss-landscapes'] * 1e3:.1f} ms ({fn['speedup_vs_loss_landscapes']:.0f}x)"
             if fn["speedup_vs_loss_landscapes"] else ""))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
