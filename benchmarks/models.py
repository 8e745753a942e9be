"""Model step time: forward + backward of one training batch, per model, on BBBP molecules.

Models: the faithful CoMPT at its released BBBP size (``compt``; its keys computed from the bond
features without the ``[B, L, L, d]`` key tensor, as gradscope runs it), the same CoMPT forced onto
dense keys (``compt-dense-keys``, what a literal port of the released code costs), and gradscope's
own transformer (``small``, ``gt-large``). Batches: ``--batches`` seeded random draws of 32 BBBP
molecules (a training epoch's batches, not size-packed). Every model is in train mode; one timed
step is ``zero_grad``, forward, sum of outputs, backward. Models are interleaved in a rotating order
within each round, after two warm-up steps each; the results are the medians over rounds × batches
of the wall-clock and the process CPU time, per thread count. Parameter counts alongside.

Usage: ``python -m benchmarks.models [--models compt,small,gt-large] [--threads 1,2] [--rounds 5]
[--batches 4] [--device cpu] [--data bbbp.csv]`` (``compt-dense-keys`` takes ~10× ``compt``'s time and
several GB; name it in ``--models`` to include it). Results: ``benchmarks/results/models.json``.

``--padding`` measures instead what padding costs (docs/benchmarks.md §8): every model twice, its
per-atom layers on the padded batch (``pack_atoms=False``, dense) and on real atoms only (packed),
each on ``--batches`` random batches and on as many size-bucketed batches (the first batches of an
epoch ordered by :func:`gradscope.chem.bucket_order` with ``--bucket-batches K``, what
``gradscope record --bucket-batches K`` trains on). All four variants of every model are timed
interleaved in each round; the medians, their ratios to dense/random and the fraction of real atoms
among the padded slots (these batches and a whole epoch) go to ``benchmarks/results/models-padding.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import log, machine_info, median, moleculenet_dir, sync, write_result

MODELS = ("compt", "compt-dense-keys", "small", "gt-large")
DEFAULT_MODELS = ("compt", "small", "gt-large")


def _dense_keys(model: torch.nn.Module) -> torch.nn.Module:
    """Make a CoMPT materialise its ``[B, L, L, d]`` edge states (the released computation)."""
    model.embed_edges = lambda bonds: model.bond_embed(bonds) * model.scale  # type: ignore[method-assign]
    return model


def build(name: str, dataset: Any, device: torch.device, **overrides: Any) -> torch.nn.Module:
    """Model ``name`` for ``dataset`` (seeded: equal weights for equal names), in train mode."""
    from gradscope.models import build_model_for_name

    torch.manual_seed(0)
    base = "compt" if name == "compt-dense-keys" else name
    model = build_model_for_name(base, atom_dim=dataset.atom_dim, bond_dim=dataset.bond_dim,
                                 n_tasks=dataset.n_tasks, dataset=dataset, **overrides)
    if name == "compt-dense-keys":
        _dense_keys(model)
    return model.to(device).train()


def step(model: torch.nn.Module, batch: Any, device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one forward + backward."""
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    model.zero_grad(set_to_none=True)
    model(batch).sum().backward()
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def load_bbbp(path: Path) -> Any:
    """The BBBP dataset from ``path`` (quietly)."""
    from gradscope.chem import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset("bbbp", path=str(path), progress=False)


def run(names: tuple[str, ...], threads: list[int], rounds: int, n_batches: int,
        device: torch.device, data: Path | None = None) -> dict[str, Any]:
    ds = load_bbbp(data or moleculenet_dir() / "bbbp.csv")
    rng = np.random.default_rng(0)
    batches = [ds.batch(rng.choice(len(ds), 32, replace=False)).to(device) for _ in range(n_batches)]
    models = {name: build(name, ds, device) for name in names}
    result: dict[str, Any] = {
        "machine": machine_info(device), "dataset": "bbbp", "batch_size": 32, "rounds": rounds,
        "padded_atoms": [b.max_atoms for b in batches],
        "parameters": {n: sum(p.numel() for p in m.parameters()) for n, m in models.items()},
        "configs": {n: m.config.to_dict() for n, m in models.items()}, "step_ms": {}, "step_cpu_ms": {},
    }
    result["loadavg_start"] = os.getloadavg()[0]  # the machine may be shared: read times with this in mind
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        for name, model in models.items():
            for _ in range(2):
                step(model, batches[0], device)
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for batch in batches:
                for name in order:
                    times[name].append(step(models[name], batch, device))
        result["step_ms"][str(n_threads)] = {n: 1000 * median([w for w, _ in t]) for n, t in times.items()}
        result["step_cpu_ms"][str(n_threads)] = {n: 1000 * median([c for _, c in t]) for n, t in times.items()}
        log(f"threads={n_threads}: " + ", ".join(
            f"{n} {result['step_ms'][str(n_threads)][n]:.0f} ms (CPU {result['step_cpu_ms'][str(n_threads)][n]:.0f} ms)"
            for n in names))
    result["loadavg_end"] = os.getloadavg()[0]
    return result


# -- what padding costs: dense vs packed per-atom layers, random vs bucketed batches ----------------
PADDING_MODELS = ("small", "gt-large", "compt")
#: (per-atom layers, batches): the four variants timed for every model
VARIANTS = (("dense", "random"), ("packed", "random"), ("dense", "bucketed"), ("packed", "bucketed"))


def epoch_batches(n_atoms: np.ndarray, bucket_batches: int, batch_size: int = 32,
                  seed: int = 0) -> dict[str, list[np.ndarray]]:
    """The full batches of one epoch, random (a seeded permutation) and size-bucketed
    (:func:`gradscope.chem.bucket_order` of the same permutation, as ``--bucket-batches`` trains)."""
    from gradscope.chem.batch import bucket_order

    order = np.random.default_rng(seed).permutation(len(n_atoms))
    bucketed = bucket_order(order, n_atoms, batch_size, bucket_batches, seed=seed, epoch=0)
    return {kind: [o[i:i + batch_size] for i in range(0, len(o) - batch_size + 1, batch_size)]
            for kind, o in (("random", order), ("bucketed", bucketed))}


def real_fraction(n_atoms: np.ndarray, batches: list[np.ndarray]) -> float:
    """Real atoms over padded atom slots (``B · L`` per batch) of ``batches``."""
    real = sum(int(n_atoms[b].sum()) for b in batches)
    return real / sum(len(b) * int(n_atoms[b].max()) for b in batches)


def time_variants(models: dict[tuple[str, str], torch.nn.Module], batches: dict[str, list[Any]], rounds: int,
                  device: torch.device) -> dict[tuple[str, str, str], list[list[float]]]:
    """Wall-clock seconds ``[batch][round]`` of every (model, layers, batches) variant; all variants
    interleaved in a rotating order within each round, after two warm-up steps each."""
    keys = [(name, pack, kind) for (name, pack) in models for p, kind in VARIANTS if p == pack]
    for name, pack, kind in keys:
        for _ in range(2):
            step(models[name, pack], batches[kind][0], device)
    n = min(len(b) for b in batches.values())
    times: dict[tuple[str, str, str], list[list[float]]] = {k: [[] for _ in range(n)] for k in keys}
    for r in range(rounds):
        order = keys[r % len(keys):] + keys[:r % len(keys)]
        for i in range(n):
            for name, pack, kind in order:
                times[name, pack, kind][i].append(step(models[name, pack], batches[kind][i], device)[0])
    return times


def summarize_variants(times: dict[tuple[str, str, str], list[list[float]]]) -> dict[str, Any]:
    """Per model and variant: the mean over batches of each batch's median step (ms, what an epoch
    of such batches costs per step), and its ratio to dense layers on random batches."""
    step_ms: dict[str, dict[str, float]] = {}
    for (name, pack, kind), per_batch in times.items():
        step_ms.setdefault(name, {})[f"{pack}/{kind}"] = 1000 * float(np.mean([median(t) for t in per_batch]))
    ratios = {name: {v: ms / row["dense/random"] for v, ms in row.items()} for name, row in step_ms.items()}
    return {"step_ms": step_ms, "ratio_to_dense_random": ratios}


def run_padding(names: tuple[str, ...], threads: list[int], rounds: int, n_batches: int, bucket_batches: int,
                device: torch.device, data: Path | None = None) -> dict[str, Any]:
    """The padding benchmark (module docstring, ``--padding``)."""
    from gradscope.models.packing import ATOM_INDEX

    ds = load_bbbp(data or moleculenet_dir() / "bbbp.csv")
    ds.batch_fields = (ATOM_INDEX,)  # packing on an accelerator needs the real atoms' positions from the host
    n_atoms = np.asarray(ds.n_atoms)
    epochs = epoch_batches(n_atoms, bucket_batches)
    timed = {kind: epoch[:n_batches] for kind, epoch in epochs.items()}
    batches = {kind: [ds.batch(b).to(device) for b in chosen] for kind, chosen in timed.items()}
    models = {(name, pack): build(name, ds, device, pack_atoms=pack == "packed")
              for name in names for pack in ("dense", "packed")}
    result: dict[str, Any] = {
        "machine": machine_info(device), "dataset": "bbbp", "molecules": len(ds), "batch_size": 32,
        "rounds": rounds, "bucket_batches": bucket_batches, "loadavg_start": os.getloadavg()[0],
        "padded_atoms": {kind: [b.max_atoms for b in bs] for kind, bs in batches.items()},
        "real_fraction": {kind: {"timed": real_fraction(n_atoms, timed[kind]), "epoch": real_fraction(n_atoms, e)}
                          for kind, e in epochs.items()},
        "by_threads": {},
    }
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        summary = summarize_variants(time_variants(models, batches, rounds, device))
        result["by_threads"][str(n_threads)] = summary
        for name, row in summary["step_ms"].items():
            log(f"threads={n_threads} {name}: " + ", ".join(
                f"{v} {ms:.0f} ms ({summary['ratio_to_dense_random'][name][v]:.2f}×)" for v, ms in row.items()))
    result["loadavg_end"] = os.getloadavg()[0]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.models", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None,
                        help=f"comma-separated subset of {MODELS} (default {','.join(DEFAULT_MODELS)}; "
                             f"with --padding {','.join(PADDING_MODELS)})")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", type=Path, default=None,
                        help="the BBBP CSV (default: bbbp.csv in $GRADSCOPE_MOLECULENET or ../shared/data/moleculenet)")
    parser.add_argument("--padding", action="store_true",
                        help="time dense vs packed per-atom layers on random vs size-bucketed batches")
    parser.add_argument("--bucket-batches", type=int, default=10, metavar="K", help="K of the bucketed batches")
    args = parser.parse_args(argv)
    default = PADDING_MODELS if args.padding else DEFAULT_MODELS
    names = tuple(n.strip() for n in (args.models or ",".join(default)).split(",") if n.strip())
    if not names or set(names) - set(MODELS):
        parser.error(f"--models: choose from {', '.join(MODELS)}")
    device, threads = torch.device(args.device), [int(t) for t in args.threads.split(",")]
    if args.padding:
        result = run_padding(names, threads, args.rounds, args.batches, args.bucket_batches, device, args.data)
    else:
        result = run(names, threads, args.rounds, args.batches, device, args.data)
    command = " ".join(["python -m benchmarks.models", *(sys.argv[1:] if argv is None else argv)])
    # record the data file's name, not this machine's path to it
    result["machine"]["command"] = command if args.data is None else command.replace(str(args.data), args.data.name)
    stem = "models-padding" if args.padding else "models"
    suffix = "" if set(names) == set(default) else "-" + "-".join(names)
    path = write_result(f"{stem}{suffix}" if device.type == "cpu" else f"{stem}-{device.type}{suffix}", result)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
