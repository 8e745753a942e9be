"""The reproduction study's numbers, tables and figures, from a study directory.

Reads what :mod:`analyses.study` wrote (STUDY_DIR/runs/*/trace.h5 and
STUDY_DIR/landscapes/*/{*.h5,sharpness.json}) and writes, into ``--out``:

- ``results.json``: one record per run and per landscape, plus the per-(dataset, optimizer)
  means and standard deviations over seeds;
- ``tables.md``: the Markdown tables docs/reproduction.md quotes (with the paper's numbers
  beside ours where the paper gives one);
- PNG figures: Observation 1 (ε/ω changes and norms), Observation 2 (cosine histograms),
  attention entropy per optimizer, 1-D landscapes of the Adam/SAM/GraphSAM minima, and the
  released GraphSAM code's ρ and ‖ε̂‖ beside the paper's GraphSAM.

Which run is which (dataset, optimizer, seed) is read from each trace's configuration
(:func:`analyses.runs.run_identity`), and a landscape's run from its ``sharpness.json`` entry,
never from folder names. Optimizers are shown by :func:`analyses.names.display_name`.

Usage::

    python -m analyses.reproduction STUDY_DIR --out docs/reproduction [--seed 0]

The paper's numbers are those of :mod:`analyses.paper` (Wang et al., ICLR 2024).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analyses.names import display_name
from analyses.paper import (PAPER_ATTENTION_ENTROPY, PAPER_COMPT_GRAPHS_PER_S, PAPER_COMPT_TEST, PAPER_CONSISTENT_PCT,
                            PAPER_EXACT_AGREEMENT_PCT, canonical_optimizer)
from analyses.runs import MissingDataError, RunIdentity, run_identity, step_column
from analyses.study import ENTRIES, LANDSCAPE_OPTIMIZERS, entry_of
from analyses.tables import to_markdown
from gradscope.errors import GradscopeError
from gradscope.trace import Trace, open_trace, stats

#: Display order and names of the study's runs, by label (analyses.study.ENTRIES; names from the registry).
OPTIMIZERS: dict[str, str] = {label: entry.display_name for label, entry in ENTRIES.items()}
#: The throughput ratio of GraphSAM to SAM the paper reports (Tables 2 and 7).
PAPER_GRAPHSAM_VS_SAM = (1.21, 1.55)


@dataclass(frozen=True)
class FinishedRun:
    """One finished run of the study: its directory, its trace and who it is."""

    path: Path
    trace: Trace
    dataset: str
    optimizer: str
    seed: int


@dataclass
class RunResult:
    """Everything the study reports about one run (NaN where it does not apply)."""

    dataset: str
    optimizer: str
    seed: int
    metric: str
    test_metric: float
    best_epoch: int
    epochs: int
    graphs_per_s: float
    passes_per_step: float
    change_std_ratio: float  # std ‖Δω‖ / std ‖Δε‖ (Observation 1; > 1: ε varies less)
    grad_norm_ratio: float  # median ‖ω_t‖ / ‖ε_t‖, ε the perturbation gradient
    perturbation_norm_ratio: float  # median ‖ω_t‖ / ‖ε̂_t‖, ε̂ the perturbation applied to θ
    consistent_pct: float  # % of steps with cos(ε_{t+1}, ω_t) ≥ 0
    exact_pct: float  # % of probed, non-anchored steps with cos(ε_t, ∇L_B(θ_t)) ≥ 0
    exact_count: int
    entropy: float  # mean attention entropy over validation atoms at the best validation epoch
    rho_first: float
    rho_last: float
    eps_hat_first_epoch: float  # median ‖ε̂‖ over the first epoch's steps
    eps_hat_last_epoch: float


def _nan() -> float:
    return float("nan")


def _median_ratio(num: np.ndarray, den: np.ndarray) -> float:
    ok = np.isfinite(num) & np.isfinite(den) & (den > 0)
    return float(np.median(num[ok] / den[ok])) if ok.any() else _nan()


def run_result(run: FinishedRun) -> RunResult:
    """The :class:`RunResult` of one study run."""
    from analyses.entropy import entropy_summary
    from analyses.observation1 import observation1_numbers
    from analyses.observation2 import consistent_fraction, exact_agreement
    from analyses.throughput import throughput_table

    label, trace = run.path.name, run.trace
    row = throughput_table([trace], [label])[0]
    has_eps = run.optimizer != "adam"
    o1 = observation1_numbers(trace, label) if has_eps else None
    omega = step_column(trace, "omega_norm", label)
    eps_hat = step_column(trace, "eps_hat_norm", label)
    rho = step_column(trace, "rho", label)
    _, eps_hat_per_epoch = stats.per_epoch(step_column(trace, "epoch", label), eps_hat, np.median)
    exact = exact_agreement(trace, label) if has_eps else None
    try:
        entropy = entropy_summary(trace, label, at="best").mean
    except MissingDataError:
        entropy = _nan()
    return RunResult(
        dataset=run.dataset, optimizer=run.optimizer, seed=run.seed, metric=row["metric"] or "",
        test_metric=_float(row["test_metric"]), best_epoch=int(row["best_epoch"] or -1),
        epochs=int(trace.epochs.rows), graphs_per_s=_float(row["graphs_per_s"]),
        passes_per_step=_float(row["passes_per_step"]),
        change_std_ratio=o1.change_std_ratio if o1 else _nan(),
        grad_norm_ratio=o1.median_norm_ratio if o1 else _nan(),
        perturbation_norm_ratio=_median_ratio(omega, eps_hat) if has_eps else _nan(),
        consistent_pct=consistent_fraction(trace, label).percent if has_eps else _nan(),
        exact_pct=exact.percent if exact else _nan(), exact_count=exact.count if exact else 0,
        entropy=float(entropy),
        rho_first=float(rho[0]) if rho.size else _nan(), rho_last=float(rho[-1]) if rho.size else _nan(),
        eps_hat_first_epoch=float(eps_hat_per_epoch[0]) if has_eps and eps_hat_per_epoch.size else _nan(),
        eps_hat_last_epoch=float(eps_hat_per_epoch[-1]) if has_eps and eps_hat_per_epoch.size else _nan(),
    )


def _float(value: Any) -> float:
    return _nan() if value is None else float(value)


def _study_run(run_dir: Path) -> FinishedRun | None:
    """The run in ``run_dir`` when it is a finished study run (else None, said on stderr)."""
    trace = open_trace(run_dir / "trace.h5")
    who = run_identity(trace)
    entry = entry_of(trace.config)
    if entry is None or who.dataset is None or who.seed is None:
        print(f"left out {run_dir.name}: its trace is not one of the study's settings (analyses.study.ENTRIES) "
              "with a dataset and a seed", file=sys.stderr)
        return None
    if trace.epochs.rows < int(trace.config.get("epochs", 0)):
        print(f"left out {run_dir.name}: not finished", file=sys.stderr)
        return None
    return FinishedRun(run_dir, trace, who.dataset, entry.label, who.seed)


def study_runs(root: Path) -> list[FinishedRun]:
    """Every finished run under ``root/runs``; unfinished ones are named on stderr and left out
    (a half-trained run would skew the means)."""
    base = root / "runs"
    folders = sorted(d for d in base.iterdir() if (d / "trace.h5").is_file()) if base.is_dir() else []
    return [run for run in map(_study_run, folders) if run is not None]


@dataclass(frozen=True)
class LandscapeEntry:
    """One measured minimum of the study: who it is, its sharpness numbers and its landscape files."""

    dataset: str
    optimizer: str
    seed: int
    numbers: dict[str, Any]
    files: tuple[Path, ...]


def _entry_identity(folder: Path, label: str, entry: dict[str, Any]) -> RunIdentity:
    """Who a sharpness.json entry measured: from the trace of its run (``entry["run"]``, relative
    to the folder); summaries written before that field existed name the checkpoint in ``<label>.h5``."""
    from gradscope.landscape import open_landscape

    if "run" in entry:
        run_dir = folder / entry["run"]
    else:
        checkpoint = open_landscape(folder / f"{label}.h5", with_directions=False).checkpoint or ""
        run_dir = Path(checkpoint).parent.parent
    return run_identity(open_trace(run_dir / "trace.h5"))


def landscape_entries(root: Path) -> list[LandscapeEntry]:
    """Every entry of ``root/landscapes/*/sharpness.json`` whose run can be identified."""
    from gradscope.landscape import read_sharpness

    out = []
    base = root / "landscapes"
    for folder in sorted(base.iterdir()) if base.is_dir() else []:
        for label, entry in read_sharpness(folder).items():
            try:
                who = _entry_identity(folder, label, entry)
            except (GradscopeError, OSError) as exc:
                print(f"left out landscape {folder.name}/{label}: {exc}", file=sys.stderr)
                continue
            if who.optimizer is None or who.dataset is None or who.seed is None:
                continue
            files = tuple(folder / name for name in entry.get("landscapes", [f"{label}.h5"]))
            out.append(LandscapeEntry(who.dataset, who.optimizer, who.seed, entry, files))
    return out


def _rise_at_1(files: Sequence[Path]) -> float:
    """The 1-D curve's rise at α = ±1 (mean of both ends) over its centre; NaN without a 1-D file."""
    from gradscope.landscape import open_landscape

    for path in files:
        if path.is_file():
            ls = open_landscape(path, with_directions=False)
            if ls.dims == 1:
                loss = np.asarray(ls.loss, dtype=float)
                return float(0.5 * (loss[0] + loss[-1]) - ls.centre_loss)
    return _nan()


#: Sharpness numbers the landscape rows carry (``sharpness.json`` keys).
SHARPNESS_FIELDS = ("loss", "mean_increase", "max_increase", "lambda_max", "lambda_min", "trace", "rho_sharpness")


def landscape_results(root: Path) -> list[dict[str, Any]]:
    """One row per (dataset, seed, optimizer) landscape: sharpness numbers and the curve's rise."""
    rows = []
    for e in landscape_entries(root):
        row: dict[str, Any] = {"dataset": e.dataset, "seed": e.seed, "optimizer": e.optimizer}
        row.update({f: _float(e.numbers.get(f)) for f in SHARPNESS_FIELDS})
        row["rise_at_1"] = _rise_at_1(e.files)
        rows.append(row)
    return rows


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof 1; NaN for one value) and count of the finite values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return _nan(), _nan(), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else _nan(), int(v.size)


def _order(label: str) -> int:
    order = list(OPTIMIZERS)
    return order.index(label) if label in order else len(order)


def _shown(label: str) -> str:
    """A study entry's display name (e.g. "SAM (constant ρ)"); an optimizer's, for other labels."""
    return OPTIMIZERS.get(label) or display_name(label)


def aggregate(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> list[dict[str, Any]]:
    """Per (dataset, optimizer), optimizers in display order: ``field_mean``, ``field_std``,
    ``field_n`` over seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["optimizer"]), []).append(r)
    out = []
    for (dataset, optimizer), members in sorted(groups.items(), key=lambda kv: (kv[0][0], _order(kv[0][1]))):
        agg: dict[str, Any] = {"dataset": dataset, "optimizer": optimizer, "seeds": len(members)}
        for f in fields:
            agg[f"{f}_mean"], agg[f"{f}_std"], agg[f"{f}_n"] = mean_std([m.get(f, _nan()) for m in members])
        out.append(agg)
    return out


def pm(mean: float, std: float, digits: int = 3) -> str:
    """``mean ± std`` (``—`` when missing; the mean alone for one seed)."""
    if not math.isfinite(mean):
        return "—"
    if not math.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _pm(a: dict[str, Any], field: str, digits: int) -> str:
    return pm(a[f"{field}_mean"], a[f"{field}_std"], digits)


def _paper(table: dict[str, float], optimizer: str, digits: int = 2) -> str:
    value = table.get(canonical_optimizer(optimizer))
    return "—" if value is None else f"{value:.{digits}f}"


def _ratio(value: float, reference: float, digits: int) -> str:
    return f"{value / reference:.{digits}f}" if math.isfinite(value) and math.isfinite(reference) else "—"


def _throughput_rows(runs: Sequence[dict[str, Any]], agg: list[dict[str, Any]]) -> list[dict[str, str]]:
    by = {(a["dataset"], a["optimizer"]): a for a in agg}
    rows = []
    for a in agg:
        d = a["dataset"]
        sam = by.get((d, "sam"), {}).get("graphs_per_s_mean", _nan())
        adam = by.get((d, "adam"), {}).get("graphs_per_s_mean", _nan())
        metric = next((r["metric"] for r in runs if r["dataset"] == d), "")
        g = a["graphs_per_s_mean"]
        key = canonical_optimizer(a["optimizer"])
        paper_g, paper_sam = (PAPER_COMPT_GRAPHS_PER_S.get((d, k), _nan()) for k in (key, "sam"))
        rows.append({"dataset": d, "optimizer": _shown(a["optimizer"]), "seeds": str(a["seeds"]),
                     "test (best val epoch)": f"{metric} {_pm(a, 'test_metric', 3)}",
                     "paper (CoMPT)": _paper_test(d, key),
                     "graphs/s": f"{g:.0f}" if math.isfinite(g) else "—", "× Adam": _ratio(g, adam, 2),
                     "× SAM": _ratio(g, sam, 2), "paper × SAM": _ratio(paper_g, paper_sam, 2),
                     "passes/step": _pm(a, "passes_per_step", 2)})
    return rows


def _paper_test(dataset: str, optimizer: str) -> str:
    """The paper's CoMPT test metric (Tables 1–2) for one row, "mean ± std" where it gives a std."""
    value = PAPER_COMPT_TEST.get((dataset, optimizer))
    if value is None:
        return "—"
    mean, std = value
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def _observation_rows(agg: list[dict[str, Any]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Observation 1 and Observation 2 rows (runs with an ε: Adam left out)."""
    with_eps = [a for a in agg if a["optimizer"] != "adam"]
    obs1 = [{"dataset": a["dataset"], "optimizer": _shown(a["optimizer"]),
             "std ‖Δω‖ / std ‖Δε‖": _pm(a, "change_std_ratio", 2),
             "median ‖ω‖/‖ε‖ (ε a gradient)": _pm(a, "grad_norm_ratio", 2),
             "median ‖ω‖/‖ε̂‖ (ε̂ applied)": _pm(a, "perturbation_norm_ratio", 1)} for a in with_eps]
    obs2 = [{"dataset": a["dataset"], "optimizer": _shown(a["optimizer"]),
             "consistent": _pm(a, "consistent_pct", 1), "paper_consistent": _paper(PAPER_CONSISTENT_PCT, a["optimizer"]),
             "exact": _pm(a, "exact_pct", 1), "paper_exact": _paper(PAPER_EXACT_AGREEMENT_PCT, a["optimizer"])}
            for a in with_eps]
    return obs1, obs2


#: Column headers of the Observation 2 table.
OBSERVATION2_HEADERS = {"consistent": "cos(ε_{t+1}, ω_t) ≥ 0", "paper_consistent": "paper (BBBP)",
                        "exact": "cos(ε_t, exact) ≥ 0", "paper_exact": "paper (BBBP)"}


def _landscape_rows(landscapes: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    agg = aggregate(landscapes, [*SHARPNESS_FIELDS, "rise_at_1"])
    return [{"dataset": a["dataset"], "optimizer": _shown(a["optimizer"]), "seeds": str(a["seeds"]),
             "loss at θ": _pm(a, "loss", 4), "mean Δloss at r": _pm(a, "mean_increase", 4),
             "ρ-sharpness": _pm(a, "rho_sharpness", 4), "λ_max": _pm(a, "lambda_max", 1),
             "λ_min": _pm(a, "lambda_min", 1), "tr(H)": _pm(a, "trace", 1),
             "Δloss at α = ±1": _pm(a, "rise_at_1", 3)} for a in agg]


def tables_markdown(runs: Sequence[dict[str, Any]], landscapes: Sequence[dict[str, Any]]) -> str:
    """The study's tables in Markdown (means ± standard deviations over seeds)."""
    fields = ["test_metric", "graphs_per_s", "passes_per_step", "change_std_ratio", "grad_norm_ratio",
              "perturbation_norm_ratio", "consistent_pct", "exact_pct", "entropy"]
    agg = aggregate(runs, fields)
    obs1, obs2 = _observation_rows(agg)
    entropy = [{"dataset": a["dataset"], "optimizer": _shown(a["optimizer"]), "entropy": _pm(a, "entropy", 3),
                "paper (BBBP, CoMPT)": _paper(PAPER_ATTENTION_ENTROPY, a["optimizer"], 3)} for a in agg]
    out = ["### Test metric and throughput\n", to_markdown(_throughput_rows(runs, agg)),
           "\n### Observation 1: ε changes less than ω; ‖ω‖ against ‖ε‖ and ‖ε̂‖\n", to_markdown(obs1),
           "\n### Observation 2: consistency and agreement with the exact ε (% of steps with cosine ≥ 0)\n",
           to_markdown(obs2, headers=OBSERVATION2_HEADERS),
           "\n### Attention entropy (nats, validation atoms, best validation epoch)\n", to_markdown(entropy)]
    if landscapes:
        out += ["\n### Sharpness of the minima (1-D filter-normalized landscapes, train subset)\n",
                to_markdown(_landscape_rows(landscapes))]
    return "\n".join(out)


# ----------------------------------------------------------------------------- figures
def _select(runs: Sequence[FinishedRun], dataset: str, optimizers: Sequence[str], seed: int) -> tuple[list[Trace], list[str]]:
    """The traces of ``optimizers`` (in that order) on one dataset and seed, with display names."""
    found = {r.optimizer: r for r in runs if r.dataset == dataset and r.seed == seed}
    chosen = [found[o] for o in optimizers if o in found]
    return [r.trace for r in chosen], [_shown(r.optimizer) for r in chosen]


def entropy_bars(runs: Sequence[dict[str, Any]], out: Path) -> Path:
    """Mean attention entropy ± std over seeds per optimizer and dataset, the paper's values marked."""
    import matplotlib.pyplot as plt

    agg = aggregate(runs, ["entropy"])
    datasets = sorted({a["dataset"] for a in agg})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 3.6), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        rows = [a for a in agg if a["dataset"] == d]
        x = np.arange(len(rows))
        ax.bar(x, [a["entropy_mean"] for a in rows], yerr=[np.nan_to_num(a["entropy_std"]) for a in rows],
               color=[f"C{i}" for i in range(len(rows))], capsize=3)
        for i, a in enumerate(rows):
            paper = PAPER_ATTENTION_ENTROPY.get(canonical_optimizer(a["optimizer"]))
            if paper is not None and d == "bbbp":
                ax.plot([i - 0.4, i + 0.4], [paper, paper], color="k", linestyle="--", linewidth=1.2)
        ax.set_xticks(x, [_shown(a["optimizer"]).replace(" (released code)", "\n(released)") for a in rows],
                      fontsize="small", rotation=20)
        ax.set_ylabel("attention entropy (nats)")
        ax.set_title(f"{d}: mean ± std over seeds" + (" (dashes: paper)" if d == "bbbp" else ""))
    fig.tight_layout()
    path = out / "entropy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def released_figure(runs: Sequence[FinishedRun], dataset: str, seed: int, out: Path) -> Path | None:
    """ρ and ‖ε̂‖ over training for the paper's GraphSAM and the released code (log scale)."""
    import matplotlib.pyplot as plt

    traces, labels = _select(runs, dataset, ("graphsam", "graphsam-released"), seed)
    if len(traces) < 2:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.6))
    for i, (trace, label) in enumerate(zip(traces, labels)):
        step = step_column(trace, "step", label)
        left.semilogy(step, step_column(trace, "rho", label), color=f"C{i}", label=label)
        eps_hat = step_column(trace, "eps_hat_norm", label)
        ok = np.isfinite(eps_hat) & (eps_hat > 0)
        right.semilogy(step[ok], eps_hat[ok], color=f"C{i}", linewidth=0.8, label=label)
    left.set_title(f"{dataset}: ρ over training")
    right.set_title(f"{dataset}: ‖ε̂‖ applied to θ")
    for ax in (left, right):
        ax.set_xlabel("step")
        ax.legend(fontsize="small")
    fig.tight_layout()
    path = out / f"released_{dataset}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _save(fig: Any, title: str, path: Path) -> Path:
    """Title, lay out (unless the figure has its own layout engine), save as PNG, close."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _landscape_figure(entries: Sequence[LandscapeEntry], dataset: str, seed: int, out: Path) -> Path | None:
    """The 1-D landscapes of the Adam, SAM and GraphSAM minima of one dataset and seed (Fig. 2)."""
    from analyses.landscapes import landscape_figure
    from gradscope.landscape import open_landscape

    found = {e.optimizer: e for e in entries if e.dataset == dataset and e.seed == seed}
    files, labels = [], []
    for o in (o for o in LANDSCAPE_OPTIMIZERS if o in found):
        one_d = [f for f in found[o].files if f.is_file() and open_landscape(f, with_directions=False).dims == 1]
        if one_d:
            files.append(one_d[0])
            labels.append(_shown(o))
    if not files:
        return None
    return _save(landscape_figure(files, labels), f"{dataset}, seed {seed}", out / f"landscape_{dataset}.png")


def figures(root: Path, found: Sequence[FinishedRun], runs: Sequence[dict[str, Any]], out: Path,
            seed: int = 0) -> list[Path]:
    """Every figure of the study for one seed (entropy bars over all seeds)."""
    from analyses.observation1 import norms_figure, observation1_figure
    from analyses.observation2 import observation2_figure

    written = [entropy_bars(runs, out)]
    entries = landscape_entries(root)
    for dataset in sorted({r.dataset for r in found}):
        for name, make, optimizers in (
            ("observation1", observation1_figure, ("sam", "graphsam")),
            ("norms", norms_figure, ("sam", "graphsam")),
            ("observation2", observation2_figure, ("sam", "graphsam", "sam-k", "sam-one")),
        ):
            traces, labels = _select(found, dataset, optimizers, seed)
            if traces:
                written.append(_save(make(traces, labels), f"{dataset}, seed {seed}", out / f"{name}_{dataset}.png"))
        for path in (_landscape_figure(entries, dataset, seed, out), released_figure(found, dataset, seed, out)):
            if path is not None:
                written.append(path)
    return written


def write_reproduction(root: Path, out: Path, seed: int = 0) -> list[Path]:
    """results.json, tables.md and the figures of the study in ``root``, into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    found = study_runs(root)
    if not found:
        raise MissingDataError(f"{root}/runs holds no study runs (run `python -m analyses.study run {root}` first)")
    runs = [asdict(run_result(r)) for r in found]
    landscapes = landscape_results(root)
    out.mkdir(parents=True, exist_ok=True)
    fields = [k for k in runs[0] if k not in ("dataset", "optimizer", "seed", "metric")]
    summary = {"runs": runs, "landscapes": landscapes, "by_optimizer": aggregate(runs, fields)}
    results = out / "results.json"
    results.write_text(json.dumps(summary, indent=1, allow_nan=True) + "\n")
    tables = out / "tables.md"
    tables.write_text(tables_markdown(runs, landscapes))
    return [results, tables, *figures(root, found, runs, out, seed)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyses.reproduction", description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the study directory (python -m analyses.study run ROOT)")
    parser.add_argument("--out", type=Path, default=Path("docs/reproduction"))
    parser.add_argument("--seed", type=int, default=0, help="the seed whose runs the step-level figures show")
    args = parser.parse_args(argv)
    try:
        written = write_reproduction(args.root, args.out, args.seed)
    except GradscopeError as exc:  # a missing or unreadable study: one line, exit 2, as the CLI does
        print(f"python -m analyses.reproduction: error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
