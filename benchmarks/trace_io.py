"""Trace recording and I/O speed: recorder overhead per step, writer throughput, read time.

Measures, in one process on the CPU (single thread, so other load disturbs it less):

- the median step time of a ~1M-parameter MLP trained with Adam and with gradscope's SAM,
  without a recorder, with one (every step recorded), and with the per-tensor breakdown; the
  three variants run interleaved in blocks so that drifting machine load hits them alike;
- the writer's throughput in scalar values per second (all step columns, appended in flushes);
- the time to read a 100,000-step trace into numpy with ``open_trace``.

Usage: ``python benchmarks/trace_io.py [--quick]``. Writes benchmarks/results/trace_io.json and
prints a table. Timings are medians; nothing here is asserted by the tests.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gradscope.optim import SAM
from gradscope.probes import Recorder
from gradscope.trace import TraceWriter, open_trace, schema

RESULTS = Path(__file__).resolve().parent / "results" / "trace_io.json"


def _mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    # 512·1024 + 1024 + 1024·512 + 512 + 512 + 1 ≈ 1.05 M parameters
    return torch.nn.Sequential(
        torch.nn.Linear(512, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 512), torch.nn.ReLU(), torch.nn.Linear(512, 1)
    )


class HookTimer:
    """Times the recorder's two hooks per step (their sum is the recorder's direct cost)."""

    def __init__(self) -> None:
        self.per_step: dict[int, list[float]] = {}
        self._pending: dict[int, float] = {}

    def __enter__(self) -> "HookTimer":
        self._originals = (Recorder._pre_step, Recorder._post_step)
        pre, post = self._originals
        timer = self

        def timed_pre(rec: Recorder, *args: Any) -> Any:
            t0 = time.perf_counter()
            out = pre(rec, *args)
            timer._pending[id(rec)] = time.perf_counter() - t0
            return out

        def timed_post(rec: Recorder, *args: Any) -> None:
            t0 = time.perf_counter()
            post(rec, *args)
            spent = time.perf_counter() - t0 + timer._pending.pop(id(rec), 0.0)
            timer.per_step.setdefault(id(rec), []).append(spent)

        Recorder._pre_step, Recorder._post_step = timed_pre, timed_post  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Recorder._pre_step, Recorder._post_step = self._originals  # type: ignore[method-assign]


def recorder_overhead(kind: str, rounds: int, block: int, batch: int, workdir: Path) -> dict[str, Any]:
    """Median step time without / with recorder / with recorder + layers, interleaved."""
    with HookTimer() as timer:
        result = _interleaved(kind, rounds, block, batch, workdir)
    ids = result.pop("recorder_ids")
    hooks = {name: statistics.median(timer.per_step[rid]) for name, rid in ids.items()}
    fastest = {name: min(timer.per_step[rid]) for name, rid in ids.items()}
    base = result["median_step_s"]["none"]
    result["median_hook_s"] = hooks
    result["min_hook_s"] = fastest
    result["hook_share_recorder"] = hooks["recorder"] / base
    result["hook_share_recorder_layers"] = hooks["recorder+layers"] / base
    # on a machine shared with other jobs the minimum is the cost without interference
    result["min_hook_share_recorder"] = fastest["recorder"] / result["min_step_s"]["none"]
    result["min_hook_share_recorder_layers"] = fastest["recorder+layers"] / result["min_step_s"]["none"]
    return result


def _interleaved(kind: str, rounds: int, block: int, batch: int, workdir: Path) -> dict[str, Any]:
    x, y = torch.randn(batch, 512), torch.randn(batch, 1)
    variants: dict[str, tuple[torch.nn.Module, torch.optim.Optimizer, Recorder | None]] = {}
    for name in ("none", "recorder", "recorder+layers"):
        model = _mlp(0)
        opt = (
            torch.optim.Adam(model.parameters(), lr=1e-4)
            if kind == "adam"
            else SAM(model.parameters(), rho=0.05, lr=1e-4)
        )
        rec = None
        if name != "none":
            rec = Recorder(opt, workdir / f"{kind}-{name}.h5", model=model, layers=name.endswith("layers"), overwrite=True)
        variants[name] = (model, opt, rec)
    times: dict[str, list[float]] = {name: [] for name in variants}

    def step(model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        def closure() -> torch.Tensor:
            if kind == "adam":
                opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            return loss

        opt.step(closure)

    for name, (model, opt, _) in variants.items():  # warm-up
        for _ in range(3):
            step(model, opt)
    for _ in range(rounds):
        for name, (model, opt, _) in variants.items():
            for _ in range(block):
                t0 = time.perf_counter()
                step(model, opt)
                times[name].append(time.perf_counter() - t0)
    for _, _, rec in variants.values():
        if rec is not None:
            rec.close()
    med = {name: statistics.median(v) for name, v in times.items()}
    return {
        "optimizer": kind,
        "parameters": sum(p.numel() for p in variants["none"][0].parameters()),
        "batch": batch,
        "steps_each": rounds * block,
        "median_step_s": med,
        "min_step_s": {name: min(v) for name, v in times.items()},
        "overhead_recorder": med["recorder"] / med["none"] - 1.0,
        "overhead_recorder_layers": med["recorder+layers"] / med["none"] - 1.0,
        "recorder_ids": {name: id(rec) for name, (_, _, rec) in variants.items() if rec is not None},
    }


def writer_throughput(rows: int, flush: int, workdir: Path) -> dict[str, Any]:
    """Scalar values per second appended by TraceWriter (every step column, flush after each block)."""
    rng = np.random.default_rng(0)
    block = {c.name: rng.normal(size=flush).astype(c.dtype) for c in schema.STEP_COLUMNS}
    path = workdir / f"write-{flush}.h5"
    t0 = time.perf_counter()
    with TraceWriter(path, optimizer="bench", overwrite=True) as w:
        for start in range(0, rows, flush):
            block["step"] = np.arange(start, start + flush)
            w.append_steps(block)
            w.flush()
    seconds = time.perf_counter() - t0
    values = rows * len(schema.STEP_COLUMNS)
    size = path.stat().st_size  # random values: compression has nothing to gain, an upper bound
    return {"rows": rows, "flush_rows": flush, "seconds": seconds, "values_per_s": values / seconds,
            "file_bytes": size, "bytes_per_step": size / rows, "path": path}


def read_time(path: Path, repeats: int) -> dict[str, Any]:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        trace = open_trace(path)
        samples.append(time.perf_counter() - t0)
    return {"rows": len(trace), "median_s": statistics.median(samples), "samples_s": samples}



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rows (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rounds, block, rows = (2, 5, 20_000) if args.quick else (8, 15, 100_000)
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine()},
        "quick": args.quick,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results["overhead"] = [recorder_overhead(k, rounds, block, 256, work) for k in ("adam", "sam")]
        small = writer_throughput(rows, 256, work)
        large = writer_throughput(rows, 4096, work)
        results["read"] = read_time(large.pop("path"), repeats=5)
        small.pop("path")
        results["write"] = [small, large]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)
    print(f"\nwrote {args.out}")
    return 0


def _print_table(r: dict[str, Any]) -> None:
    print("recorder overhead (CPU, 1 thread): median step time; Δ = ratio to no recorder − 1;")
    print("hooks = median time inside the recorder's hooks per step, as a share of the plain step's median;")
    print("min = the same from the fastest step and the fastest hook call (the cost without interference)")
    head = f"{'':<38} {'no rec':>9} {'rec':>9} {'rec+layers':>11} {'Δrec':>7} {'Δlayers':>8} {'hooks':>7} {'hooks+l':>8} {'min':>6} {'min+l':>6}"
    print(head)
    for o in r["overhead"]:
        m = o["median_step_s"]
        label = f"{o['optimizer']}, {o['parameters'] / 1e6:.2f}M params, batch {o['batch']}"
        print(
            f"{label:<38} {m['none'] * 1e3:>7.2f}ms {m['recorder'] * 1e3:>7.2f}ms {m['recorder+layers'] * 1e3:>9.2f}ms "
            f"{o['overhead_recorder']:>+7.1%} {o['overhead_recorder_layers']:>+8.1%} "
            f"{o['hook_share_recorder']:>7.1%} {o['hook_share_recorder_layers']:>8.1%} "
            f"{o['min_hook_share_recorder']:>6.1%} {o['min_hook_share_recorder_layers']:>6.1%}"
        )
    for w in r["write"]:
        print(f"writer, {w['rows']} rows × {len(schema.STEP_COLUMNS)} columns, flush {w['flush_rows']:>5}: "
              f"{w['values_per_s'] / 1e6:8.2f} M values/s, {w['bytes_per_step']:.0f} bytes per step on disk")
    print(f"read {r['read']['rows']} steps with open_trace: {r['read']['median_s'] * 1e3:.1f} ms (median of {len(r['read']['samples_s'])})")


if __name__ == "__main__":
    sys.exit(main())
