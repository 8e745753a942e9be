"""The reproduction study of the GraphSAM paper: which runs, with which settings, and running them.

Wang et al., "Efficient Sharpness-Aware Minimization for Molecular Graph Transformer Models",
ICLR 2024 (arXiv 2406.13137). The study trains the graph transformer on MoleculeNet datasets with
the settings of :data:`ENTRIES`, several seeds each, every run recorded with the exact-ε probe;
then it draws 1-D landscapes with λ_max around the Adam, SAM and GraphSAM minima of each
(dataset, seed). :mod:`analyses.reproduction` turns the results into docs/reproduction.md's
tables and figures.

The plan (the paper's §5, Table 1, Table 8 and Observation 2):

- ``adam``: the base optimizer alone;
- ``sam``: the paper's SAM baseline, with the *same* ρ scheduler as GraphSAM,
  ρ = 0.05·0.5^⌊epoch/1⌋ — the paper's Table 8 "scheduler" rows equal its Table 1 SAM numbers;
- ``sam-constant-rho``: Foret et al.'s SAM with a constant ρ = 0.05 (γ = 1), an extra row;
- ``graphsam``: ρ = 0.05, β = 0.99, γ = 0.5, λ = 1 (the paper's defaults);
- ``sam-one`` (ε computed once for the whole run, as the paper defines it) and ``sam-k`` (k = 8):
  the ablations of Observation 2, with GraphSAM's ρ schedule;
- ``graphsam-released``: the authors' released code, which compounds its own ρ and radius.

(`gradscope record --optimizer sam` decays ρ by ``--gamma`` (default 0.5) every ``--rho-step``
epochs, as every method with a ρ schedule does; the study spells the schedule out for each run.)

Sizes: ``cpu`` (the ``small`` graph transformer, 15 epochs, 3 seeds, BBBP and ESOL — what a 2-core
machine finishes in about an hour with two jobs), ``cpu-compt`` (the faithful CoMPT on BBBP with the
released recipe compressed to 8 epochs, five seeds), ``full`` (CoMPT, 30 epochs as in the GraphSAM
authors' training command, five seeds, six datasets) and ``paper`` (CoMPT with the released recipe
``--recipe compt-paper``: up to 150 epochs with early stopping, five seeds, six datasets — for a
GPU; docs/reproduction.md gives its expected wall time). Usage::

    python -m analyses.study run  STUDY_DIR [--size cpu|full] [--jobs 2] [--datasets bbbp,esol] [--seeds 0,1,2]
                                             [--entries adam,sam,graphsam]
    python -m analyses.study list STUDY_DIR [--size cpu]      # the plan and what is done

``run`` is idempotent: finished runs are skipped, interrupted ones resume from their last
checkpoint, so the command can simply be started again. Each run's log is STUDY_DIR/logs/NAME.log.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

#: Hyperparameters of the paper (§5 and Appendix): ρ = 0.05, β = 0.99, γ = 0.5, λ = 1.
PAPER_RHO, PAPER_BETA, PAPER_GAMMA, PAPER_LAMBDA = 0.05, 0.99, 0.5, 1
#: GraphSAM's ρ schedule ρ = ρ₀·γ^⌊epoch/λ⌋, which the paper's SAM baseline and ablations share.
PAPER_SCHEDULE = ("--gamma", str(PAPER_GAMMA), "--rho-step", str(PAPER_LAMBDA))


@dataclass(frozen=True)
class StudyEntry:
    """One optimizer setting of the study: a registry method with the study's `gradscope record` flags.

    ``label`` names the runs (``runs/<dataset>-<label>-s<seed>``); ``note`` tells a setting apart
    from the method's plain name in tables (the display name comes from the optimizer registry).
    """

    label: str
    optimizer: str
    flags: tuple[str, ...] = ()
    note: str = ""

    @property
    def display_name(self) -> str:
        from gradscope.optim.registry import display_name

        name = display_name(self.optimizer)
        return f"{name} ({self.note})" if self.note else name

    def config(self):
        """The optimizer part of the runs' configuration (a RecordConfig with the study's flags)."""
        from gradscope.cli import build_parser
        from gradscope.cli.record import config_from_args

        return config_from_args(build_parser().parse_args(["record", "--optimizer", self.optimizer, *self.flags]))


#: The study's optimizer settings, in the order of its tables (see the module docstring).
ENTRIES: dict[str, StudyEntry] = {e.label: e for e in (
    StudyEntry("adam", "adam"),
    StudyEntry("sam", "sam", ("--rho", str(PAPER_RHO), *PAPER_SCHEDULE)),
    StudyEntry("sam-constant-rho", "sam", ("--rho", str(PAPER_RHO), "--gamma", "1"), note="constant ρ"),
    StudyEntry("graphsam", "graphsam", ("--rho", str(PAPER_RHO), "--beta", str(PAPER_BETA), *PAPER_SCHEDULE)),
    StudyEntry("sam-one", "sam-one", ("--rho", str(PAPER_RHO), *PAPER_SCHEDULE)),
    StudyEntry("sam-k", "sam-k", ("--rho", str(PAPER_RHO), *PAPER_SCHEDULE, "--k", "8")),
    StudyEntry("graphsam-released", "graphsam-released",
               ("--rho", str(PAPER_RHO), "--beta", str(PAPER_BETA), "--gamma", str(PAPER_GAMMA),
                "--rho-step", str(PAPER_LAMBDA))),
)}

#: The minima whose landscapes Fig. 2 compares.
LANDSCAPE_OPTIMIZERS: tuple[str, ...] = ("adam", "sam", "graphsam")


def entry_of(config: dict) -> StudyEntry | None:
    """The study entry a run's stored configuration (config.json, ``trace.config``) belongs to, or None.

    Run identity from the run itself: the optimizer and its settings must be those the entry's
    flags give (configurations of older versions are read as :class:`RecordConfig` reads them).
    """
    from gradscope.errors import GradscopeError
    from gradscope.train.config import RecordConfig

    try:
        stored = RecordConfig.from_dict(config)
    except GradscopeError:
        return None
    for entry in ENTRIES.values():
        wanted = entry.config()
        if (stored.optimizer, stored.optimizer_settings, stored.rho_schedule) == \
                (wanted.optimizer, wanted.optimizer_settings, wanted.rho_schedule):
            return entry
    return None


@dataclass(frozen=True)
class Size:
    """How big the study is: model, epochs, seeds, datasets, probe cadence, landscape settings."""

    name: str
    model: str
    epochs: int
    seeds: tuple[int, ...]
    datasets: tuple[str, ...]
    probe_every: int
    threads: int | None
    landscape_points: int = 41
    landscape_samples: int = 512
    flags: tuple[str, ...] = ()  # further `gradscope record` flags of every run (e.g. a recipe)
    landscape_flags: tuple[str, ...] = ()  # further `gradscope landscape` flags (e.g. a cheaper Hessian)


SIZES: dict[str, Size] = {
    "cpu": Size("cpu", model="small", epochs=15, seeds=(0, 1, 2), datasets=("bbbp", "esol"), probe_every=5,
                threads=1),
    "full": Size("full", model="compt", epochs=30, seeds=(0, 1, 2, 3, 4),
                 datasets=("bbbp", "tox21", "sider", "clintox", "esol", "lipophilicity"), probe_every=5,
                 threads=None, landscape_samples=2048),
    # the released CoMPT recipe (150 epochs at most, early stopping after 21, Noam warm-up of 30 epochs,
    # the per-dataset model and peak learning rate), five seeds: the paper's setting, for a GPU
    "paper": Size("paper", model="compt", epochs=150, seeds=(0, 1, 2, 3, 4),
                  datasets=("bbbp", "tox21", "sider", "clintox", "esol", "lipophilicity"), probe_every=5,
                  threads=None, landscape_samples=2048, flags=("--recipe", "compt-paper")),
    # what a 2-core CPU affords of it on BBBP: the recipe compressed to 8 epochs (warm-up 2 epochs to the
    # released peak learning rate, 3.23e-4 for BBBP)
    "cpu-compt": Size("cpu-compt", model="compt", epochs=8, seeds=(0, 1, 2, 3, 4), datasets=("bbbp",),
                      probe_every=5, threads=1, landscape_samples=512,
                      flags=("--recipe", "compt-paper", "--warmup-epochs", "2", "--lr", "3.2275e-4"),
                      # a CoMPT Hessian-vector product over 512 molecules takes tens of seconds on a CPU core:
                      # λ_max and λ_min only (no trace, no density, one top eigenvalue)
                      landscape_flags=("--top-k", "1", "--trace-probes", "0", "--density-steps", "0")),
}


@dataclass(frozen=True)
class StudyRun:
    """One training run of the study."""

    dataset: str
    optimizer: str  # the label of its entry in ENTRIES
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.optimizer}-s{self.seed}"

    @property
    def entry(self) -> StudyEntry:
        return ENTRIES[self.optimizer]


def plan(size: Size, labels: Sequence[str] = tuple(ENTRIES)) -> list[StudyRun]:
    """Every run of the study, the cheapest datasets' runs first within each seed."""
    return [StudyRun(d, o, s) for s in size.seeds for d in size.datasets for o in labels]


def data_dir() -> Path | None:
    """Where local MoleculeNet CSVs are (``GRADSCOPE_MOLECULENET``), or None to download/cache."""
    value = os.environ.get("GRADSCOPE_MOLECULENET")
    return Path(value) if value else None


def record_args(run: StudyRun, size: Size, run_dir: Path) -> list[str]:
    """The ``gradscope record`` arguments of one run (a fresh start)."""
    from gradscope.optim.registry import get_method

    entry = run.entry
    args = ["--dataset", run.dataset, "--optimizer", entry.optimizer, "--model", size.model,
            "--epochs", str(size.epochs), "--seed", str(run.seed), "--split", "random",
            "--out", str(run_dir), "--quiet", *size.flags, *entry.flags]
    if not get_method(entry.optimizer).plain:  # a plain optimizer has no ε to compare with the exact gradient
        args += ["--probe-exact-every", str(size.probe_every)]
    local = data_dir()
    if local is not None and (local / f"{run.dataset}.csv").is_file():
        args[:0] = ["--data", str(local / f"{run.dataset}.csv")]
    if size.threads is not None:
        args += ["--threads", str(size.threads)]
    return args


def epochs_done(run_dir: Path) -> int:
    """How many epochs the run's trace holds (0 when there is none or it cannot be read)."""
    trace_file = run_dir / "trace.h5"
    if not trace_file.is_file():
        return 0
    from gradscope.errors import GradscopeError
    from gradscope.trace import open_trace

    try:
        return open_trace(trace_file).epochs.rows
    except (GradscopeError, OSError, KeyError):  # unreadable means "not done": the run starts again
        return 0


def _gradscope(args: Sequence[str], log: Path, threads: int | None = None) -> int:
    env = dict(os.environ)
    if threads is not None:  # parallel jobs must not each start one thread per core
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(log, "a") as handle:
        handle.write(f"$ gradscope {' '.join(args)}\n")
        handle.flush()
        return subprocess.run([sys.executable, "-m", "gradscope", *args], stdout=handle,
                              stderr=subprocess.STDOUT, env=env).returncode


def train(run: StudyRun, size: Size, root: Path) -> tuple[StudyRun, str, float]:
    """Train one run (skip when done, resume when interrupted); returns (run, outcome, seconds)."""
    run_dir = root / "runs" / run.name
    log = root / "logs" / f"{run.name}.log"
    other = _other_setting(run, run_dir)
    if other:
        return run, f"failed ({run_dir} holds a run with other settings ({other}); move it away)", 0.0
    done = epochs_done(run_dir)
    if done >= size.epochs:
        return run, "done before", 0.0
    start = time.perf_counter()
    if done > 0 and (run_dir / "checkpoints" / "last.pt").is_file():
        args = ["record", "--resume", str(run_dir), "--epochs", str(size.epochs), "--quiet"]
    else:
        args = ["record", *record_args(run, size, run_dir), "--overwrite"]
    code = _gradscope(args, log, size.threads)
    outcome = "trained" if code == 0 else f"failed (exit {code}, see {log})"
    return run, outcome, time.perf_counter() - start


def _other_setting(run: StudyRun, run_dir: Path) -> str | None:
    """What the run already in ``run_dir`` is, when it is not ``run``'s entry (e.g. the constant-ρ
    SAM that older versions of the study wrote to ``<dataset>-sam-s<seed>``); None when it fits or is absent."""
    import json

    stored = run_dir / "config.json"
    if not stored.is_file():
        return None
    config = json.loads(stored.read_text())
    found = entry_of(config)
    if found is run.entry:
        return None
    return found.display_name if found is not None else f"optimizer {config.get('optimizer')!r}, other settings"


def landscape(dataset: str, seed: int, size: Size, root: Path) -> tuple[str, str, float]:
    """1-D filter-normalized landscapes with λ_max around the Adam, SAM and GraphSAM minima."""
    name = f"{dataset}-s{seed}"
    out = root / "landscapes" / name
    if (out / "landscape.done").is_file():
        return name, "done before", 0.0
    runs = [root / "runs" / StudyRun(dataset, o, seed).name for o in LANDSCAPE_OPTIMIZERS]
    if any(epochs_done(r) < size.epochs for r in runs):
        return name, "skipped (training not finished)", 0.0
    start = time.perf_counter()
    args = ["landscape", *map(str, runs), "--dim", "1", "--points", str(size.landscape_points), "--range", "1",
            "--samples", str(size.landscape_samples), "--split", "train", "--seed", str(seed), "--hessian",
            *size.landscape_flags, "--out", str(out), "--quiet"]  # finished grids of an interrupted run are kept
    code = _gradscope(args, root / "logs" / f"landscape-{name}.log", size.threads)
    if code == 0:
        (out / "landscape.done").write_text("ok\n")
    return name, "drawn" if code == 0 else f"failed (exit {code})", time.perf_counter() - start


def run_study(root: Path, size: Size, jobs: int = 2, labels: Sequence[str] = tuple(ENTRIES)) -> int:
    """Train every run of the ``labels`` entries with ``jobs`` parallel processes, then draw the
    landscapes; 0 when all succeeded."""
    (root / "runs").mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    (root / "study.txt").write_text(f"size {size}\nentries {', '.join(labels)}\n")
    runs = plan(size, labels)
    failures = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(train, r, size, root) for r in runs]
        for i, future in enumerate(as_completed(futures), 1):
            run, outcome, seconds = future.result()
            failures += outcome.startswith("failed")
            print(f"[{i}/{len(runs)}] {run.name}: {outcome} in {seconds:.0f} s "
                  f"(elapsed {time.perf_counter() - started:.0f} s)", flush=True)
        pairs = [(d, s) for s in size.seeds for d in size.datasets]
        futures = [pool.submit(landscape, d, s, size, root) for d, s in pairs]
        for future in as_completed(futures):
            name, outcome, seconds = future.result()
            failures += outcome.startswith("failed")
            print(f"landscape {name}: {outcome} in {seconds:.0f} s", flush=True)
    return 0 if failures == 0 else 1


def _size_from(args: argparse.Namespace) -> Size:
    size = SIZES[args.size]
    if args.datasets:
        size = replace(size, datasets=tuple(args.datasets.split(",")))
    if args.seeds:
        size = replace(size, seeds=tuple(int(s) for s in args.seeds.split(",")))
    if args.epochs:
        size = replace(size, epochs=args.epochs)
    return size


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyses.study", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "list"))
    parser.add_argument("root", type=Path, help="the study directory")
    parser.add_argument("--size", choices=tuple(SIZES), default="cpu")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once (default 2)")
    parser.add_argument("--datasets", help="comma-separated, overrides the size's datasets")
    parser.add_argument("--seeds", help="comma-separated, overrides the size's seeds")
    parser.add_argument("--epochs", type=int, help="overrides the size's epochs")
    parser.add_argument("--entries", help=f"comma-separated study entries to run (default all: {','.join(ENTRIES)})")
    args = parser.parse_args(argv)
    size = _size_from(args)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    labels = tuple(args.entries.split(",")) if args.entries else tuple(ENTRIES)
    unknown = [label for label in labels if label not in ENTRIES]
    if unknown:
        parser.error(f"unknown study entries {', '.join(unknown)} (known: {', '.join(ENTRIES)})")
    if args.command == "list":
        for r in plan(size, labels):
            print(f"{r.name:32s} {epochs_done(args.root / 'runs' / r.name)}/{size.epochs} epochs")
        return 0
    return run_study(args.root, size, args.jobs, labels)


if __name__ == "__main__":
    raise SystemExit(main())
