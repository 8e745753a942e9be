"""One self-contained HTML page with every figure and table for a set of runs.

plotly.js is inlined once in the page head (no CDN, no MathJax), so the report opens offline
and can be mailed as one file. Each section is one :mod:`analyses.kinds` kind; a run that lacks
the section's data (an Adam run has no ε, a run without the exact-ε probe has no agreement
numbers, a run without ``landscape/*.h5`` has no landscape) is left out of that section with a
note, and a section no run can feed says so instead of failing the report.
"""
from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from analyses import plotting, tables
from analyses.kinds import KINDS, Kind, PlotOptions
from analyses.runs import MissingDataError, Run, has_column, load_runs, optimizer_label
from gradscope._version import __version__
from gradscope.errors import GradscopeError
from gradscope.outputs import make_parents, written_whole

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
p.desc { color: #444; } p.note { color: #8a5a00; background: #fff7e0; padding: .4rem .6rem; border-radius: 4px; }
table.gs-table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
table.gs-table th, table.gs-table td { border: 1px solid #ddd; padding: .25rem .6rem; }
table.gs-table th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figure { margin: .6rem 0; } nav a { margin-right: .8rem; }
"""


@dataclass
class SectionResult:
    """What one report section holds: plotly figures, tables, and notes about skipped data."""

    kind: str
    title: str
    figures: int = 0
    tables: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportResult:
    path: Path
    sections: list[SectionResult]

    @property
    def figures(self) -> int:
        """Number of plotly figures in the page."""
        return sum(s.figures for s in self.sections)


def _usable(kind: Kind, runs: Sequence[Run], options: PlotOptions) -> tuple[list[Run], list[str]]:
    """The runs that can feed ``kind`` (tried one by one) and a note per run left out."""
    keep, notes = [], []
    for run in runs:
        if kind.needs_landscape:
            if run.landscapes:
                keep.append(run)
            else:
                notes.append(f"{run.label}: no landscape files")
            continue
        try:
            kind.plotly([run], options)
        except MissingDataError as exc:
            notes.append(str(exc))
            continue
        keep.append(run)
    return keep, notes


def _plotly_div(fig: Any, div_id: str) -> str:
    import plotly.io as pio

    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _section(kind: Kind, runs: Sequence[Run], options: PlotOptions) -> tuple[SectionResult, str]:
    result = SectionResult(kind.name, kind.title)
    parts = [f'<section id="{kind.name}"><h2>{html.escape(kind.title)} '
             f'<small>(GraphSAM paper {html.escape(kind.paper)})</small></h2>',
             f'<p class="desc">{html.escape(kind.description)}</p>']
    usable, notes = _usable(kind, runs, options)
    if kind.name == "obs2" and usable and not any(_has_probe(r) for r in usable):
        notes.append("no run recorded the exact-ε probe (record with probe_exact_every) — no exact-agreement numbers")
    result.notes = notes
    if usable:
        parts.append(f'<div class="figure">{_plotly_div(kind.plotly(usable, options), f"gs-{kind.name}")}</div>')
        result.figures += 1
        rows = kind.table(usable, options) if kind.table is not None else []
        if rows:
            parts.append(tables.to_html(rows, headers=kind.table_headers))
            result.tables += 1
    else:
        notes.insert(0, "no run has the data for this section")
    parts.extend(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    parts.append("</section>")
    return result, "\n".join(parts)


ATTENTION_TITLE = "Attention heat map of one molecule"
#: Report sections in page order: every figure kind, and the attention heat map after the entropy.
SECTIONS: tuple[str, ...] = tuple(
    name for kind in KINDS for name in ((kind, "attention") if kind == "entropy" else (kind,))
)


def _attention_section(runs: Sequence[Run], molecule: int, split: str) -> tuple[SectionResult, str]:
    """One heat map per run that has checkpoints (the model is rebuilt from ``checkpoints/best.pt``)."""
    from analyses.attention import checkpoint_attention, heatmap_plotly

    result = SectionResult("attention", ATTENTION_TITLE)
    parts = [f'<section id="attention"><h2>{ATTENTION_TITLE} <small>(GraphSAM paper Fig. 10)</small></h2>',
             f'<p class="desc">Row i: how atom i attends over the atoms of molecule #{molecule} of the {html.escape(split)} '
             "split, last layer, mean over heads (model of the best checkpoint).</p>"]
    for k, run in enumerate(runs):
        if not (run.source.is_dir() and (run.source / "checkpoints").is_dir()):
            result.notes.append(f"{run.label}: no checkpoints/ directory (the heat map needs the model)")
            continue
        try:
            found = checkpoint_attention(run.source, molecule=molecule, split=split)
        except GradscopeError as exc:
            result.notes.append(f"{run.label}: {exc}")
            continue
        fig = heatmap_plotly(found.matrix, title=f"{run.label}: {found.title}")
        parts.append(f'<div class="figure">{_plotly_div(fig, f"gs-attention-{k}")}</div>')
        result.figures += 1
    if not result.figures:
        result.notes.insert(0, "no run has the data for this section")
    parts.extend(f'<p class="note">{html.escape(n)}</p>' for n in result.notes)
    parts.append("</section>")
    return result, "\n".join(parts)


def _has_probe(run: Run) -> bool:
    import numpy as np

    trace = run.trace
    if trace is None or not has_column(trace, "steps", "cos_eps_exact"):
        return False
    return bool(np.isfinite(np.asarray(trace.steps["cos_eps_exact"], dtype=float)).any())


def _runs_table(runs: Sequence[Run]) -> str:
    rows = []
    for run in runs:
        trace = run.trace
        rows.append({
            "run": run.label,
            "source": str(run.source),
            "optimizer": optimizer_label(trace),
            "steps": len(trace) if trace is not None else None,
            "epochs": trace.epochs.rows if trace is not None and hasattr(trace.epochs, "rows") else None,
            "landscapes": len(run.landscapes),
        })
    return tables.to_html(rows)


def _extra_section(extra: Sequence[tuple[str, Any]]) -> tuple[SectionResult, str]:
    """The ``(caption, figure)`` pairs a caller appends: plotly figures, or matplotlib ones as PNG."""
    result = SectionResult("extra", "More figures")
    parts = ['<section id="extra"><h2>More figures</h2>']
    for k, (caption, fig) in enumerate(extra):
        parts.append(f"<h3>{html.escape(caption)}</h3>")
        if isinstance(fig, Figure):
            parts.append(f'<div class="figure">{_png(fig)}</div>')
        else:
            parts.append(f'<div class="figure">{_plotly_div(fig, f"gs-extra-{k}")}</div>')
            result.figures += 1
    parts.append("</section>")
    return result, "\n".join(parts)


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def build_report(
    runs: Sequence[Run | str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    options: PlotOptions | None = None,
    title: str = "gradscope report",
    kinds: Sequence[str] | None = None,
    molecule: int = 0,
    split: str = "test",
    extra: Sequence[tuple[str, Any]] = (),
) -> ReportResult:
    """Write the report for ``runs`` (Run objects or paths) to ``out``; return what it holds.

    ``kinds`` restricts the sections (default: all of :data:`SECTIONS`, the figure kinds of
    :data:`analyses.kinds.KINDS` plus ``attention``, the heat map of molecule ``molecule`` of
    ``split`` for runs with checkpoints). ``extra`` appends ``(title, figure)`` pairs — plotly
    figures or matplotlib figures (embedded as PNG).
    """
    options = options or PlotOptions()
    loaded = [r for r in runs if isinstance(r, Run)]
    if len(loaded) != len(runs):
        if loaded:
            raise GradscopeError("give either Run objects or paths, not both")
        loaded = load_runs(list(runs), labels)  # type: ignore[arg-type]
    elif labels is not None:
        raise GradscopeError("labels apply to paths; Run objects carry their own")
    if not loaded:
        raise GradscopeError("no run given")
    if options.colors is None:  # one colour per run in every section, also where a section shows only some
        options = replace(options, colors=plotting.run_colors([run.label for run in loaded]))
    chosen = list(kinds) if kinds is not None else list(SECTIONS)
    for name in chosen:
        if name not in SECTIONS:
            raise GradscopeError(f"unknown report section {name!r}; choose from {', '.join(SECTIONS)}")
    sections, bodies = [], []
    for name in chosen:
        if name == "attention":
            result, body = _attention_section(loaded, molecule, split)
        else:
            result, body = _section(KINDS[name], loaded, options)
        sections.append(result)
        bodies.append(body)
    if extra:
        result, body = _extra_section(extra)
        sections.append(result)
        bodies.append(body)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    nav = " ".join(f'<a href="#{s.kind}">{html.escape(s.title)}</a>' for s in sections)
    page = "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style>",
        f'<script type="text/javascript">{_plotly_js()}</script>',
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Written by gradscope {html.escape(__version__)} on {created}. Figures follow Wang et al., "
        "“Efficient Sharpness-Aware Minimization for Molecular Graph Transformer Models”, ICLR 2024.</p>",
        _runs_table(loaded),
        f"<nav>{nav}</nav>",
        *bodies,
        "</body></html>",
    ])
    path = make_parents(out, flag="out")
    with written_whole(path) as tmp:  # a failed write (full disk) leaves no torn or temporary file
        tmp.write_text(page, encoding="utf-8")
    return ReportResult(path=path, sections=sections)
