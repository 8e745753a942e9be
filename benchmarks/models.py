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
[--batches 4] [--device cpu]`` (``compt-dense-keys`` takes ~10× ``compt``'s time and several GB; name
it in ``--models`` to include it). Results: ``benchmarks/results/models.json``.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
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


def build(name: str, dataset: Any, device: torch.device) -> torch.nn.Module:
    from gradscope.models import build_model_for_name

    torch.manual_seed(0)
    base = "compt" if name == "compt-dense-keys" else name
    model = build_model_for_name(base, atom_dim=dataset.atom_dim, bond_dim=dataset.bond_dim,
                                 n_tasks=dataset.n_tasks, dataset=dataset)
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


def run(names: tuple[str, ...], threads: list[int], rounds: int, n_batches: int,
        device: torch.device) -> dict[str, Any]:
    from gradscope.chem import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_dataset("bbbp", path=str(moleculenet_dir() / "bbbp.csv"), progress=False)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.models", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help=f"comma-separated subset of {MODELS}")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    names = tuple(n.strip() for n in args.models.split(",") if n.strip())
    if not names or set(names) - set(MODELS):
        parser.error(f"--models: choose from {', '.join(MODELS)}")
    device = torch.device(args.device)
    result = run(names, [int(t) for t in args.threads.split(",")], args.rounds, args.batches, device)
    suffix = "" if set(names) == set(DEFAULT_MODELS) else "-" + "-".join(names)
    path = write_result(f"models{suffix}" if device.type == "cpu" else f"models-{device.type}{suffix}", result)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
