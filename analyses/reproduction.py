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

from analyses.paper import PAPER_ATTENTION_ENTROPY, PAPER_CONSISTENT_PCT, PAPER_EXACT_AGREEMENT_PCT, canonical_optimizer
from analyses.runs import MissingDataError, step_column
from analyses.study import ENTRIES

#: Display order and names of the study's runs, by label (analyses.study.ENTRIES; names from the registry).
OPTIMIZERS: dict[str, str] = {label: entry.display_name for label, entry in ENTRIES.items()}
#: The throughput ratio of GraphSAM to SAM the paper reports (Tables 2 and 7).
PAPER_GRAPHSAM_VS_SAM = (1.21, 1.55)


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


def _median_where(values: np.ndarray, where: np.ndarray) -> float:
    v = values[where & np.isfinite(values)]
    return float(np.median(v)) if v.size else _nan()


def run_result(run_dir: Path, dataset: str, optimizer: str, seed: int) -> RunResult:
    """The :class:`RunResult` of one study run directory."""
    from analyses.entropy import entropy_summary
    from analyses.observation1 import observation1_numbers
    from analyses.observation2 import consistent_fraction, exact_agreement
    from analyses.runs import load_run
    from analyses.throughput import throughput_table

    label = run_dir.name
    trace = load_run(run_dir, label).require_trace()
    row = throughput_table([trace], [label])[0]
    has_eps = optimizer != "adam"
    o1 = observation1_numbers(trace, label) if has_eps else None
    omega = step_column(trace, "omega_norm", label)
    eps_hat = step_column(trace, "eps_hat_norm", label)
    rho = step_column(trace, "rho", label)
    epoch = step_column(trace, "epoch", label)
    exact = exact_agreement(trace, label) if has_eps else None
    try:
        entropy = entropy_summary(trace, label, at="best").mean
    except MissingDataError:
        entropy = _nan()
    return RunResult(
        dataset=dataset, optimizer=optimizer, seed=seed, metric=row["metric"] or "",
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
        eps_hat_first_epoch=_median_where(eps_hat, epoch == epoch.min()) if has_eps else _nan(),
        eps_hat_last_epoch=_median_where(eps_hat, epoch == epoch.max()) if has_eps else _nan(),
    )


def _float(value: Any) -> float:
    return _nan() if value is None else float(value)


def finished(run_dir: Path) -> bool:
    """Whether the run's trace holds all the epochs its configuration asked for."""
    from gradscope.trace import open_trace

    trace = open_trace(run_dir / "trace.h5")
    return trace.epochs.rows >= int(trace.config.get("epochs", 0))


def study_runs(root: Path) -> list[tuple[Path, str, str, int]]:
    """(run dir, dataset, optimizer, seed) of every finished run under ``root/runs``; unfinished
    ones are named on stderr and left out (a half-trained run would skew the means)."""
    found = []
    for run_dir in sorted((root / "runs").iterdir()):
        name = run_dir.name
        if not (run_dir / "trace.h5").is_file() or "-s" not in name:
            continue
        stem, seed = name.rsplit("-s", 1)
        dataset, optimizer = stem.split("-", 1)
        if optimizer in OPTIMIZERS and seed.isdigit():
            if finished(run_dir):
                found.append((run_dir, dataset, optimizer, int(seed)))
            else:
                print(f"left out {name}: not finished", file=sys.stderr)
    return found


def landscape_results(root: Path) -> list[dict[str, Any]]:
    """One row per (dataset, seed, optimizer) landscape: sharpness, λ_max and the curve's rise."""
    from gradscope.landscape import open_landscape

    rows = []
    base = root / "landscapes"
    if not base.is_dir():
        return rows
    for folder in sorted(base.iterdir()):
        sharp_file = folder / "sharpness.json"
        if not sharp_file.is_file() or "-s" not in folder.name:
            continue
        dataset, seed = folder.name.rsplit("-s", 1)
        sharp = json.loads(sharp_file.read_text())
        for optimizer, s in sharp.items():
            row = {"dataset": dataset, "seed": int(seed), "optimizer": optimizer, "loss": s["loss"],
                   "mean_increase": s["mean_increase"], "max_increase": s["max_increase"],
                   "lambda_max": s["lambda_max"] if s["lambda_max"] is not None else _nan()}
            h5 = folder / f"{optimizer}.h5"
            if h5.is_file():  # the 1-D curve's rise at α = ±1 (mean of both ends) over its centre
                ls = open_landscape(h5)
                loss = np.asarray(ls.loss, dtype=float)
                row["rise_at_1"] = float(0.5 * (loss[0] + loss[-1]) - ls.centre_loss)
            rows.append(row)
    return rows


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof 1; NaN for one value) and count of the finite values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return _nan(), _nan(), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else _nan(), int(v.size)


def aggregate(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> list[dict[str, Any]]:
    """Per (dataset, optimizer): ``field_mean``, ``field_std``, ``field_n`` over seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["optimizer"]), []).append(r)
    out = []
    order = list(OPTIMIZERS)
    for (dataset, optimizer), members in sorted(groups.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1])
                                                                               if kv[0][1] in order else 99)):
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


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def _paper(table: dict[str, float], optimizer: str, digits: int = 2) -> str:
    value = table.get(canonical_optimizer(optimizer))
    return "—" if value is None else f"{value:.{digits}f}"


def tables_markdown(runs: Sequence[dict[str, Any]], landscapes: Sequence[dict[str, Any]]) -> str:
    """The study's tables in Markdown (means ± standard deviations over seeds)."""
    fields = ["test_metric", "graphs_per_s", "passes_per_step", "change_std_ratio", "grad_norm_ratio",
              "perturbation_norm_ratio", "consistent_pct", "exact_pct", "entropy"]
    agg = aggregate(runs, fields)
    by = {(a["dataset"], a["optimizer"]): a for a in agg}
    datasets = sorted({a["dataset"] for a in agg})
    out = []

    out.append("### Test metric and throughput\n")
    body = []
    for d in datasets:
        sam = by.get((d, "sam"), {}).get("graphs_per_s_mean", _nan())
        adam = by.get((d, "adam"), {}).get("graphs_per_s_mean", _nan())
        for o in OPTIMIZERS:
            a = by.get((d, o))
            if a is None:
                continue
            metric = next((r["metric"] for r in runs if r["dataset"] == d), "")
            g = a["graphs_per_s_mean"]
            body.append([d, OPTIMIZERS[o], str(a["seeds"]), f"{metric} {pm(a['test_metric_mean'], a['test_metric_std'])}",
                         f"{g:.0f}" if math.isfinite(g) else "—",
                         f"{g / adam:.2f}" if math.isfinite(adam) else "—", f"{g / sam:.2f}" if math.isfinite(sam) else "—",
                         pm(a["passes_per_step_mean"], a["passes_per_step_std"], 2)])
    out.append(_table(["dataset", "optimizer", "seeds", "test (best val epoch)", "graphs/s", "× Adam", "× SAM",
                       "passes/step"], body))

    def groups(with_eps: bool) -> list[tuple[str, str, dict[str, Any]]]:
        """(dataset, optimizer, aggregate) in display order; ``with_eps`` leaves Adam out."""
        return [(d, o, by[(d, o)]) for d in datasets for o in OPTIMIZERS
                if (d, o) in by and not (with_eps and o == "adam")]

    out.append("\n### Observation 1: ε changes less than ω; ‖ω‖ against ‖ε‖ and ‖ε̂‖\n")
    body = [[d, OPTIMIZERS[o], pm(a["change_std_ratio_mean"], a["change_std_ratio_std"], 2),
             pm(a["grad_norm_ratio_mean"], a["grad_norm_ratio_std"], 2),
             pm(a["perturbation_norm_ratio_mean"], a["perturbation_norm_ratio_std"], 1)] for d, o, a in groups(True)]
    out.append(_table(["dataset", "optimizer", "std ‖Δω‖ / std ‖Δε‖", "median ‖ω‖/‖ε‖ (ε a gradient)",
                       "median ‖ω‖/‖ε̂‖ (ε̂ applied)"], body))

    out.append("\n### Observation 2: consistency and agreement with the exact ε (% of steps with cosine ≥ 0)\n")
    body = [[d, OPTIMIZERS[o], pm(a["consistent_pct_mean"], a["consistent_pct_std"], 1),
             _paper(PAPER_CONSISTENT_PCT, o), pm(a["exact_pct_mean"], a["exact_pct_std"], 1),
             _paper(PAPER_EXACT_AGREEMENT_PCT, o)] for d, o, a in groups(True)]
    out.append(_table(["dataset", "optimizer", "cos(ε_{t+1}, ω_t) ≥ 0", "paper (BBBP)", "cos(ε_t, exact) ≥ 0",
                       "paper (BBBP)"], body))

    out.append("\n### Attention entropy (nats, validation atoms, best validation epoch)\n")
    body = [[d, OPTIMIZERS[o], pm(a["entropy_mean"], a["entropy_std"], 3), _paper(PAPER_ATTENTION_ENTROPY, o, 3)]
            for d, o, a in groups(False)]
    out.append(_table(["dataset", "optimizer", "entropy", "paper (BBBP, CoMPT)"], body))

    if landscapes:
        out.append("\n### Sharpness of the minima (1-D filter-normalized landscapes, train subset)\n")
        lagg = aggregate(landscapes, ["loss", "mean_increase", "max_increase", "lambda_max", "rise_at_1"])
        body = [[a["dataset"], OPTIMIZERS.get(a["optimizer"], a["optimizer"]), str(a["seeds"]),
                 pm(a["loss_mean"], a["loss_std"], 4), pm(a["mean_increase_mean"], a["mean_increase_std"], 4),
                 pm(a["lambda_max_mean"], a["lambda_max_std"], 1), pm(a["rise_at_1_mean"], a["rise_at_1_std"], 3)]
                for a in lagg]
        out.append(_table(["dataset", "optimizer", "seeds", "loss at θ", "mean Δloss at r", "λ_max",
                           "Δloss at α = ±1"], body))
    return "\n".join(out)


# ----------------------------------------------------------------------------- figures
def _traces(root: Path, dataset: str, optimizers: Sequence[str], seed: int) -> tuple[list[Any], list[str]]:
    from analyses.runs import load_run

    traces, labels = [], []
    for o in optimizers:
        run_dir = root / "runs" / f"{dataset}-{o}-s{seed}"
        if (run_dir / "trace.h5").is_file():
            traces.append(load_run(run_dir, OPTIMIZERS[o]).require_trace())
            labels.append(OPTIMIZERS[o])
    return traces, labels


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
        ax.set_xticks(x, [OPTIMIZERS[a["optimizer"]].replace(" (released code)", "\n(released)") for a in rows],
                      fontsize="small", rotation=20)
        ax.set_ylabel("attention entropy (nats)")
        ax.set_title(f"{d}: mean ± std over seeds" + (" (dashes: paper)" if d == "bbbp" else ""))
    fig.tight_layout()
    path = out / "entropy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def released_figure(root: Path, dataset: str, seed: int, out: Path) -> Path | None:
    """ρ and ‖ε̂‖ over training for the paper's GraphSAM and the released code (log scale)."""
    import matplotlib.pyplot as plt

    traces, labels = _traces(root, dataset, ("graphsam", "graphsam-released"), seed)
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


def figures(root: Path, runs: Sequence[dict[str, Any]], out: Path, seed: int = 0) -> list[Path]:
    """Every figure of the study for one seed (entropy bars over all seeds)."""
    import matplotlib.pyplot as plt

    from analyses.landscapes import landscape_figure
    from analyses.observation1 import norms_figure, observation1_figure
    from analyses.observation2 import observation2_figure

    written = [entropy_bars(runs, out)]
    for dataset in sorted({r["dataset"] for r in runs}):
        for name, make, optimizers in (
            ("observation1", observation1_figure, ("sam", "graphsam")),
            ("norms", norms_figure, ("sam", "graphsam")),
            ("observation2", observation2_figure, ("sam", "graphsam", "sam-k", "sam-one")),
        ):
            traces, labels = _traces(root, dataset, optimizers, seed)
            if traces:
                written.append(_save(make(traces, labels), f"{dataset}, seed {seed}", out / f"{name}_{dataset}.png"))
        folder = root / "landscapes" / f"{dataset}-s{seed}"
        files = [folder / f"{o}.h5" for o in ("adam", "sam", "graphsam") if (folder / f"{o}.h5").is_file()]
        if files:
            fig = landscape_figure(files, [OPTIMIZERS[f.stem] for f in files])
            written.append(_save(fig, f"{dataset}, seed {seed}", out / f"landscape_{dataset}.png"))
        path = released_figure(root, dataset, seed, out)
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
    runs = [asdict(run_result(*f)) for f in found]
    landscapes = landscape_results(root)
    out.mkdir(parents=True, exist_ok=True)
    fields = [k for k in runs[0] if k not in ("dataset", "optimizer", "seed", "metric")]
    summary = {"runs": runs, "landscapes": landscapes, "by_optimizer": aggregate(runs, fields)}
    results = out / "results.json"
    results.write_text(json.dumps(summary, indent=1, allow_nan=True) + "\n")
    tables = out / "tables.md"
    tables.write_text(tables_markdown(runs, landscapes))
    return [results, tables, *figures(root, runs, out, seed)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyses.reproduction", description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the study directory (python -m analyses.study run ROOT)")
    parser.add_argument("--out", type=Path, default=Path("docs/reproduction"))
    parser.add_argument("--seed", type=int, default=0, help="the seed whose runs the step-level figures show")
    args = parser.parse_args(argv)
    for path in write_reproduction(args.root, args.out, args.seed):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
