"""The GPU path: throughput per optimizer, recording overhead, peak memory and host syncs per step.

One script, one table, one JSON (``benchmarks/results/gpu.json``). For each model preset
(``--models``, default ``small`` and ``compt``) it builds one set of *variants* — Adam and every
optimizer of ``gradscope.optim``'s registry; GraphSAM with the Recorder's scalar channels, with
its per-tensor breakdown (``layers=True``) and with the exact-ε probe every 10 steps; Adam, SAM
and GraphSAM under bf16 autocast (as ``gradscope record --precision bf16``) — all from the same
initial weights on the same pre-collated batches (batch 32), and measures:

1. graphs/s: the variants run interleaved in rounds whose order rotates by one each round
   (``benchmarks.throughput.interleave``); warm-up steps are excluded; a round is timed as a
   whole (CUDA: synchronize, then wall time around the round, never per step; CPU: process CPU
   time); medians over rounds. Ratios to Adam and to SAM come from the same run; recording and
   bf16 rows also get their step time over their baseline row's (the same optimizer, unrecorded,
   fp32).
2. peak memory (CUDA): ``torch.cuda.max_memory_allocated`` of each variant built and run alone,
   the counters reset between variants, the collated batches excluded.
3. host syncs per step (CUDA): ``torch.cuda.set_sync_debug_mode("warn")`` makes torch warn at every
   synchronizing CUDA operation; the warnings of a window of steps (the first anchored, a probe
   step included) are counted, split into those inside the closures (the model's forward and
   backward, the loss) and the rest (the optimizer's step and the recorder's hooks). A Recorder's
   flush is counted on its own (one device→host copy). One more step under ``"error"`` mode
   cross-checks the count.

Everything but the CUDA calls runs on CPU: ``--device cpu`` prints the same table with memory and
syncs "n/a on CPU" (CPU time is the clock there).

Usage: ``python -m benchmarks.gpu [--device cuda] [--quick] [--data FILE|demo] [--models small,compt]``,
or ``python -m benchmarks --only gpu --device cuda [--quick]``. Options: ``--help``.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import tempfile
import time
import warnings
from collections import Counter
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from benchmarks.common import epoch_batches, log, machine_info, moleculenet_dir, write_result
from benchmarks.throughput import RECORDER_SETTINGS, Trainer, Workload, interleave

#: The text torch's CUDA sync debug mode puts in its warning (mode "warn") and error ("error").
SYNC_WARNING = "called a synchronizing CUDA operation"
#: What the table and the JSON say for device-only measurements on CPU.
NOT_ON_CPU = "n/a on CPU"
DEFAULT_MODELS = ("small", "compt")
#: The reduced precision of the autocast rows: the one ``gradscope record --precision`` offers.
AUTOCAST_DTYPES = {"bf16": torch.bfloat16}
AUTOCAST = "bf16"
#: Settings ``--quick`` changes: a smoke run of the ``small`` model (minutes on one CPU core,
#: seconds on a GPU; 16 variants of ``compt`` take 10+ CPU-minutes even in 3 rounds of 2 steps).
QUICK: dict[str, Any] = {"models": ("small",), "rounds": 3, "steps": 2, "warmup": 1, "sync_steps": 5,
                         "memory_steps": 2}


def default_optimizers() -> tuple[str, ...]:
    """Adam, then every optimizer of ``gradscope.optim``'s registry."""
    from gradscope.optim import OPTIMIZERS

    return ("adam", *OPTIMIZERS)


@dataclass(frozen=True)
class GpuBenchConfig:
    """What one run measures; validates itself (a bad name is a ``ConfigError``)."""

    device: str = "cuda"
    models: tuple[str, ...] = DEFAULT_MODELS
    optimizers: tuple[str, ...] = field(default_factory=default_optimizers)
    data: str | None = None  # a CSV file; None: gradscope's built-in demo molecules
    dataset: str | None = None  # the registered dataset the file holds (its label columns)
    batch_size: int = 32
    rounds: int = 5
    steps: int | None = None  # steps per round; None: one epoch
    warmup: int = 3
    sync_steps: int = 20
    memory_steps: int = 3
    recordings: tuple[str, ...] = ("scalars", "layers", "probe10")
    record_with: str = "graphsam"
    autocast: tuple[str, ...] = ("adam", "sam", "graphsam")

    def __post_init__(self) -> None:
        from gradscope.errors import ConfigError
        from gradscope.train.config import RecordConfig

        for model in self.models:
            RecordConfig(model=model)  # raises ConfigError naming the known presets
        for name in (*self.optimizers, self.record_with):
            RecordConfig(optimizer=name)  # the optimizers the training code can build
        unknown = [r for r in self.recordings if r not in RECORDER_SETTINGS or r == "none"]
        if unknown:
            raise ConfigError(f"unknown recording {unknown[0]!r}; choose from scalars, layers, probe10")
        if self.recordings and self.record_with not in self.optimizers:
            raise ConfigError(f"--record-with {self.record_with}: not among --optimizers")
        if not set(self.autocast) <= set(self.optimizers):
            raise ConfigError(f"--bf16 {','.join(self.autocast)}: each must be among --optimizers")
        flush = min((RECORDER_SETTINGS[r]["flush_every"] for r in self.recordings), default=self.sync_steps + 1)
        counts = {"rounds": self.rounds, "steps": 1 if self.steps is None else self.steps,
                  "batch_size": self.batch_size, "sync_steps": self.sync_steps, "memory_steps": self.memory_steps}
        for name, value in counts.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ConfigError(f"--warmup must be a non-negative integer, got {self.warmup!r}")
        if self.sync_steps >= flush:
            raise ConfigError(f"--sync-steps must be below the recorder's flush_every ({flush})")
        if not self.models or not self.optimizers:
            raise ConfigError("nothing to measure: --models and --optimizers need at least one name each")


@dataclass(frozen=True)
class Variant:
    """One row of the table: an optimizer, how it is recorded, the forward's precision."""

    optimizer: str
    recording: str = "none"  # a key of benchmarks.throughput.RECORDER_SETTINGS
    precision: str = "fp32"

    @property
    def label(self) -> str:
        tags = "".join([f"+{self.recording}"] if self.recording != "none" else [])
        return f"{self.optimizer}{tags}" + (f"@{self.precision}" if self.precision != "fp32" else "")

    @property
    def baseline(self) -> "Variant | None":
        """The row this one is compared with: the same optimizer, unrecorded, in fp32."""
        base = Variant(self.optimizer)
        return None if base == self else base


def variants(cfg: GpuBenchConfig) -> list[Variant]:
    """The rows of one model: optimizers, then recordings, then autocast rows."""
    return ([Variant(o) for o in cfg.optimizers]
            + [Variant(cfg.record_with, recording=r) for r in cfg.recordings]
            + [Variant(o, precision=AUTOCAST) for o in cfg.autocast])


class Autocast(torch.nn.Module):
    """A model whose forward runs under ``torch.autocast`` (weights and optimizer stay fp32),
    as the training loop does for ``--precision bf16``."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model, self.dtype = model, dtype
        self.device_type = next(model.parameters()).device.type

    def forward(self, batch: Any) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.model(batch)


def load_workload(cfg: GpuBenchConfig, device: torch.device) -> Workload:
    """The dataset (``cfg.data`` or the demo molecules), its random split and epoch 0's training
    batches of ``cfg.batch_size``, collated once onto ``device``."""
    from gradscope.train.build import build_data
    from gradscope.train.config import RecordConfig

    config = RecordConfig(data=cfg.data, dataset=cfg.dataset, batch_size=cfg.batch_size, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the skipped-rows DataWarning
        data = build_data(config, progress=False)
    batches = epoch_batches(data, device, cfg.batch_size)
    return Workload(data, batches, len(batches), device)


def make_trainer(wl: Workload, variant: Variant, model: str, trace_dir: Path) -> Trainer:
    """A fresh trainer of ``variant`` (seeded: every variant starts from the same weights)."""
    trainer = Trainer(wl, variant.optimizer, model, RECORDER_SETTINGS[variant.recording], trace_dir)
    if variant.precision != "fp32":
        trainer.model = Autocast(trainer.model, AUTOCAST_DTYPES[variant.precision])
    return trainer


# -- host syncs ---------------------------------------------------------------------------------
def is_sync_warning(message: warnings.WarningMessage) -> bool:
    return SYNC_WARNING in str(message.message)


class SyncTally:
    """Counts the sync warnings torch emits while :meth:`watching`, and those inside closures.

    On CUDA, :meth:`watching` sets ``torch.cuda.set_sync_debug_mode("warn")`` for its block;
    every synchronizing CUDA operation then issues one warning (also from the backward pass,
    whose warnings autograd re-issues in the calling thread). Elsewhere nothing sets the mode,
    so only warnings something else emits are counted (the tests inject them).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.in_closure = 0
        self._caught: list[warnings.WarningMessage] = []

    @property
    def total(self) -> int:
        return sum(map(is_sync_warning, self._caught))

    def locations(self) -> dict[str, int]:
        """``file:line`` of the Python code that made each counted sync, most frequent first."""
        where = Counter(f"{Path(w.filename).name}:{w.lineno}" for w in self._caught if is_sync_warning(w))
        return dict(where.most_common())

    @contextmanager
    def watching(self) -> Iterator["SyncTally"]:
        cuda = self.device.type == "cuda"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # every occurrence, not once per code location
            self._caught = caught
            if cuda:
                torch.cuda.synchronize(self.device)  # earlier work's syncs are not ours
                torch.cuda.set_sync_debug_mode("warn")
            try:
                yield self
            finally:
                if cuda:
                    torch.cuda.set_sync_debug_mode("default")

    @contextmanager
    def closure(self) -> Iterator[None]:
        """Attribute the syncs of the enclosed block (a forward-backward pass) to the closure."""
        before = self.total
        try:
            yield
        finally:
            self.in_closure += self.total - before


def train_steps(trainer: Trainer, n: int, tally: SyncTally | None = None, anchor: bool = True) -> None:
    """``n`` training steps of ``trainer`` on its workload's batches, untimed.

    The first step is anchored (ε exact) when ``anchor``, for the methods that anchor. Each
    closure (forward, loss, backward) runs inside ``tally.closure()`` when a tally is given.
    """
    from gradscope.train.objective import masked_loss

    wl, opt = trainer.wl, trainer.optimizer
    inside = tally.closure if tally is not None else nullcontext
    if n and anchor and not trainer.plain:
        opt.anchor()
    for _ in range(n):
        batch = wl.batches[trainer.step_no % wl.steps_per_epoch]

        def closure(batch: Any = batch) -> torch.Tensor:
            with inside():
                loss = masked_loss(trainer.model(batch), batch, wl.task)
                loss.backward()
            return loss.detach()

        if trainer.plain:
            opt.zero_grad(set_to_none=False)
        opt.step(closure)
        trainer.step_no += 1


def measure_syncs(trainer: Trainer, steps: int) -> dict[str, Any]:
    """Host syncs in ``steps`` steps of ``trainer`` and in its recorder's next flush.

    The window lies between two flushes and starts at an anchored step that (for a recorder with
    the exact-ε probe) also runs the probe. Returns syncs per step outside the closures
    (``per_step``: optimizer and recorder), inside them (``fwd_bwd_per_step``), of one flush
    (``flush``; None without a recorder), and where they were made.
    """
    rec = trainer.recorder
    if rec is not None:
        every = rec.settings.probe_exact_every
        if every:
            train_steps(trainer, (-rec.step) % every, anchor=False)  # the window opens on a probe step
        rec.flush()
    tally = SyncTally(trainer.wl.device)
    with tally.watching():
        train_steps(trainer, steps, tally)
        in_steps, in_closure = tally.total, tally.in_closure
        if rec is not None:
            rec.flush()
        flush = tally.total - in_steps if rec is not None else None
    return {"steps": steps, "per_step": (in_steps - in_closure) / steps, "fwd_bwd_per_step": in_closure / steps,
            "flush": flush, "locations": tally.locations()}


def raises_in_error_mode(trainer: Trainer) -> bool | None:
    """Whether one more step raises under ``set_sync_debug_mode("error")`` (None off CUDA).

    The step is abandoned where it raises: call this last on a trainer.
    """
    device = trainer.wl.device
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_steps(trainer, 1, anchor=False)
    except RuntimeError as exc:
        if SYNC_WARNING not in str(exc):
            raise
        return True
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return False


def sync_report(trainer: Trainer, steps: int) -> dict[str, Any] | None:
    """:func:`measure_syncs` and the error-mode cross-check on CUDA; None (n/a) on CPU."""
    if trainer.wl.device.type != "cuda":
        return None
    return {**measure_syncs(trainer, steps), "error_mode_raised": raises_in_error_mode(trainer)}


# -- memory -------------------------------------------------------------------------------------
def peak_memory_mib(build: Callable[[], Trainer], steps: int, device: torch.device) -> float | None:
    """Peak CUDA memory (MiB) of a trainer built by ``build`` and run ``steps`` steps alone:
    its model, optimizer state, recorder and activations, above what was allocated before
    (the collated batches). None on CPU."""
    if device.type != "cuda":
        return None
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    trainer = build()
    try:
        trainer.run(steps)
    finally:
        trainer.close()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


# -- one model, the whole run ---------------------------------------------------------------------
def add_ratios(rows: dict[str, dict[str, Any]]) -> None:
    """``vs_adam`` / ``vs_sam``: graphs/s over the ``adam`` / ``sam`` row's (None without that row);
    ``time_vs_baseline``: step time over the baseline row's (None for rows without one)."""
    refs = {name: rows[name]["graphs_per_s"] if name in rows else None for name in ("adam", "sam")}
    for row in rows.values():
        for name, ref in refs.items():
            row[f"vs_{name}"] = row["graphs_per_s"] / ref if ref else None
        base = row["baseline"]
        row["time_vs_baseline"] = row["step_s"] / rows[base]["step_s"] if base else None


def close_all(trainers: dict[str, Trainer]) -> None:
    """Close every trainer's recorder (flushing its trace)."""
    for trainer in trainers.values():
        trainer.close()


def bench_model(wl: Workload, cfg: GpuBenchConfig, model: str, trace_dir: Path) -> dict[str, Any]:
    """Every variant of ``model``: interleaved timing, then syncs, then memory one by one."""
    rows_of = variants(cfg)
    steps = cfg.steps or wl.steps_per_epoch
    log(f"  {model}: {len(rows_of)} variants, {cfg.warmup} warm-up steps, {cfg.rounds} rounds x {steps} steps")
    trainers = {v.label: make_trainer(wl, v, model, trace_dir) for v in rows_of}
    try:
        n_params = sum(p.numel() for p in next(iter(trainers.values())).model.parameters())
        timing = interleave(trainers, cfg.rounds, steps, cfg.warmup)
        log(f"  {model}: host syncs" if wl.device.type == "cuda" else f"  {model}: syncs {NOT_ON_CPU}")
        syncs = {label: sync_report(t, cfg.sync_steps) for label, t in trainers.items()}
    finally:
        close_all(trainers)
    del trainers  # no trainer of the timing phase stays on the device while memory is measured
    memory = {v.label: peak_memory_mib(lambda v=v: make_trainer(wl, v, model, trace_dir), cfg.memory_steps,
                                       wl.device) for v in rows_of}
    rows = {}
    for v in rows_of:
        base = v.baseline
        rows[v.label] = {"optimizer": v.optimizer, "recording": v.recording, "precision": v.precision,
                         "baseline": base.label if base else None, **timing[v.label],
                         "peak_mib": memory[v.label], "syncs": syncs[v.label]}
    add_ratios(rows)
    return {"model": model, "parameters": n_params, "rounds": cfg.rounds, "steps_per_round": steps,
            "warmup": cfg.warmup, "rows": rows}


def run(cfg: GpuBenchConfig) -> dict[str, Any]:
    """Measure every model of ``cfg``; write ``benchmarks/results/gpu.json``; return its content."""
    device = torch.device(cfg.device)
    t0 = time.perf_counter()
    wl = load_workload(cfg, device)
    cuda = device.type == "cuda"
    result: dict[str, Any] = {
        "machine": machine_info(device),
        "config": {**dataclasses.asdict(cfg), "data": Path(cfg.data).name if cfg.data else "demo"},
        "data": {"name": wl.data.dataset.name, "train_graphs": sum(len(b.index) for b in wl.batches),
                 "steps_per_epoch": wl.steps_per_epoch, "batch_size": cfg.batch_size},
        "clock": "wall time, synchronized around each round" if cuda else "process CPU time per round",
        "memory": "cuda max_memory_allocated above the collated batches, MiB" if cuda else NOT_ON_CPU,
        "syncs": "torch.cuda.set_sync_debug_mode('warn') warnings per step" if cuda else NOT_ON_CPU,
        "models": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for model in cfg.models:
            result["models"].append(bench_model(wl, cfg, model, Path(tmp)))
    result["wall_s"] = time.perf_counter() - t0
    write_result("gpu", result)
    return result


# -- report -------------------------------------------------------------------------------------
COLUMNS = (("model", 7), ("variant", 22), ("graphs/s", 9), ("x Adam", 7), ("x SAM", 7), ("time x base", 11),
           ("passes", 6), ("peak MiB", 10), ("syncs/step", 12), ("fwd-bwd syncs/step", 18))


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _sync_cells(syncs: dict[str, Any] | None) -> tuple[str, str]:
    if syncs is None:
        return NOT_ON_CPU, NOT_ON_CPU
    step = f"{syncs['per_step']:g}" + (f" +{syncs['flush']}/flush" if syncs["flush"] is not None else "")
    return step, f"{syncs['fwd_bwd_per_step']:g}"


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """The table's cells, one list per row, in the order of :data:`COLUMNS`."""
    out = []
    for block in result["models"]:
        for label, r in block["rows"].items():
            peak = NOT_ON_CPU if r["peak_mib"] is None else f"{r['peak_mib']:.1f}"
            out.append([block["model"], label, f"{r['graphs_per_s']:.1f}", _num(r["vs_adam"], ".3f"),
                        _num(r["vs_sam"], ".3f"), _num(r["time_vs_baseline"], ".3f"),
                        f"{r['passes_per_step']:.2f}", peak, *_sync_cells(r["syncs"])])
    return out


def error_mode_disagreements(result: dict[str, Any]) -> list[str]:
    """Rows whose ``"error"``-mode step raised while no sync was counted, or the reverse."""
    bad = []
    for block in result["models"]:
        for label, r in block["rows"].items():
            s = r["syncs"]
            if s is not None and s["error_mode_raised"] != (s["per_step"] + s["fwd_bwd_per_step"] > 0):
                bad.append(f"{block['model']}/{label}")
    return bad


def format_table(result: dict[str, Any]) -> str:
    """The one table of the run, with a header naming device, data and clock, and a legend."""
    m, d = result["machine"], result["data"]
    lines = [f"GPU benchmark on {m.get('gpu', m['device'])} ({m['device']}); {d['name']}: {d['train_graphs']} "
             f"training graphs, batch {d['batch_size']}; clock: {result['clock']}; medians over rounds"]
    widths = [w for _, w in COLUMNS]
    for cells in [[name for name, _ in COLUMNS], *table_rows(result)]:
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))))
    cfg = result["config"]
    lines += ["x Adam, x SAM: graphs/s over the adam / sam row's; time x base: step time over the same optimizer "
              "unrecorded in fp32; passes: forward-backward passes per step",
              f"syncs/step: host syncs per step outside the closures (optimizer, recorder), over {cfg['sync_steps']} "
              "steps under torch.cuda.set_sync_debug_mode('warn'); +N/flush: one Recorder flush; fwd-bwd: inside "
              "the closures (model, loss, backward)",
              "ae-sam: one host read per step by design (its SAM/ERM decision; docs/optimizers.md)"]
    if result["syncs"] != NOT_ON_CPU:
        bad = error_mode_disagreements(result)
        verdict = "yes" if not bad else "NO: " + ", ".join(bad)
        lines.append(f"sync_debug_mode('error') agrees with the counts: {verdict}")
    return "\n".join(lines)


def default_data() -> str | None:
    """The shared BBBP CSV when it is there (see benchmarks.common.moleculenet_dir), else None (demo)."""
    path = moleculenet_dir() / "bbbp.csv"
    return str(path) if path.is_file() else None


def config_from_args(args: argparse.Namespace) -> GpuBenchConfig:
    """The run's configuration from the command line (``--quick`` fills what was not given)."""
    from gradscope.chem import DATASETS

    def names(text: str) -> tuple[str, ...]:
        return tuple(s.strip() for s in text.split(",") if s.strip())

    data = default_data() if args.data is None else (None if args.data == "demo" else args.data)
    dataset = args.dataset
    if dataset is None and data is not None and Path(data).stem.lower() in DATASETS:
        dataset = Path(data).stem.lower()
    kwargs: dict[str, Any] = dict(QUICK) if args.quick else {}
    for key in ("rounds", "steps", "warmup", "sync_steps", "memory_steps"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    for key in ("models", "optimizers", "recordings", "autocast"):
        if getattr(args, key) is not None:
            kwargs[key] = names(getattr(args, key))
    if args.record_with is not None:
        kwargs["record_with"] = args.record_with
    return GpuBenchConfig(device=args.device, data=data, dataset=dataset, **kwargs)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cuda, cuda:N or cpu (default: cuda when available)")
    quick = ", ".join(f"{k}={v}" for k, v in QUICK.items())
    p.add_argument("--quick", action="store_true", help=f"a smoke run: {quick} (explicit options win)")
    p.add_argument("--data", help="a CSV (default: the shared BBBP when present, else the demo); 'demo': the "
                   "built-in demo molecules")
    p.add_argument("--dataset", help="the registered dataset the CSV holds (default: its file name, e.g. bbbp)")
    p.add_argument("--models", help=f"comma-separated model presets (default {','.join(DEFAULT_MODELS)})")
    p.add_argument("--optimizers", help="comma-separated (default: adam and every registered optimizer)")
    p.add_argument("--recordings", help="Recorder rows of --record-with: scalars,layers,probe10 (default all; '' none)")
    p.add_argument("--record-with", help="the optimizer the recordings use (default graphsam)")
    p.add_argument("--bf16", dest="autocast", help="optimizers with a bf16-autocast row (default adam,sam,graphsam)")
    p.add_argument("--rounds", type=int, help="timed rounds per variant (default 5)")
    p.add_argument("--steps", type=int, help="steps per round (default: one epoch)")
    p.add_argument("--warmup", type=int, help="untimed steps per variant first (default 3)")
    p.add_argument("--sync-steps", type=int, help="steps counted for host syncs (default 20)")
    p.add_argument("--memory-steps", type=int, help="steps run for peak memory (default 3)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from gradscope.errors import GradscopeError

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise GradscopeError(f"--device {args.device}: CUDA is not available on this machine (use --device cpu)")
        result = run(config_from_args(args))
    except GradscopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
