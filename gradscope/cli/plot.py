"""``gradscope plot KIND RUN... --out FILE``: one figure of the GraphSAM paper from recorded runs.

KIND is one of obs1, norms, obs2, entropy, loss, throughput, landscape (see docs/analyses.md),
or attention: the attention heat map of one molecule, from one run's checkpoint.
RUN is a run directory (``trace.h5``, ``landscape/*.h5``, ``checkpoints/``), a trace file or a
landscape file (a checkpoint file for attention).
PNG/SVG/PDF through matplotlib (Agg); ``--html`` (or an ``.html`` name) writes an interactive,
self-contained plotly page. Kinds with numbers also print their table (Markdown).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from gradscope.errors import GradscopeError
from gradscope.outputs import check_out, make_parents, written_whole

KIND_NAMES = ("obs1", "norms", "obs2", "entropy", "loss", "throughput", "landscape", "attention")
IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


def register(subparsers: argparse._SubParsersAction) -> None:
    from gradscope.cli import add_common_flags

    parser = subparsers.add_parser(
        "plot", help="draw one paper figure from runs",
        description="Draw one figure of the GraphSAM paper from recorded runs (see docs/analyses.md).",
    )
    parser.add_argument("kind", choices=KIND_NAMES, help="which figure")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directory, trace file or landscape file")
    parser.add_argument("--out", required=True, type=Path, help="output file (.png, .svg, .pdf or .html)")
    parser.add_argument("--html", action="store_true", help="interactive plotly HTML (self-contained)")
    parser.add_argument("--zoom", metavar="A:B", help="step window of the zoomed panel (obs1, norms)")
    parser.add_argument("--labels", metavar="a,b,...", help="comma-separated run labels, one per RUN")
    parser.add_argument("--metric", help="metric of the throughput table (default: the run's, e.g. roc_auc or rmse)")
    parser.add_argument("--at", default="last", help="epoch of the entropy numbers: last, best or a number")
    parser.add_argument("--quantity", default="loss", choices=("loss", "metric"), help="landscape quantity")
    parser.add_argument("--dpi", type=int, default=150, help="resolution of image output")
    heat = parser.add_argument_group("attention heat map (KIND attention)")
    heat.add_argument("--molecule", type=int, default=0, help="position of the molecule in --split (default 0)")
    heat.add_argument("--split", default="test", help="data split the molecule is taken from (default test)")
    heat.add_argument("--layer", type=int, default=-1, help="attention layer (default -1: the last)")
    heat.add_argument("--head", type=int, default=None, help="attention head (default: mean over heads)")
    heat.add_argument("--checkpoint", default="best", choices=("best", "last"), help="which checkpoint of the run")
    heat.add_argument("--data", default=None, help="dataset file, if it moved since the run")
    add_common_flags(parser)
    parser.set_defaults(func=run)


def parse_labels(text: str | None, n: int) -> list[str] | None:
    """``"a,b"`` → ``["a", "b"]``, checked against the number of runs."""
    if text is None:
        return None
    labels = [s.strip() for s in text.split(",")]
    if len(labels) != n or not all(labels):
        raise GradscopeError(f"--labels needs {n} non-empty comma-separated names (one per run), got {text!r}")
    return labels


def parse_at(text: str) -> str | int:
    if text in ("last", "best"):
        return text
    try:
        return int(text)
    except ValueError:
        raise GradscopeError(f"--at must be last, best or an epoch number, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from analyses.kinds import PlotOptions, get_kind
    from analyses.plotting import parse_zoom
    from analyses.runs import load_runs
    from analyses.tables import to_markdown

    out: Path = args.out
    html = args.html or out.suffix.lower() == ".html"
    if not html and out.suffix.lower() not in IMAGE_SUFFIXES:
        raise GradscopeError(f"--out must end in {', '.join(IMAGE_SUFFIXES)} or .html, got {out.name!r}")
    if args.dpi <= 0:
        raise GradscopeError(f"--dpi must be positive, got {args.dpi}")
    check_out(out)
    if args.kind == "attention":
        return _attention(args, out, html)
    options = PlotOptions(zoom=parse_zoom(args.zoom), at=parse_at(args.at), metric=args.metric, quantity=args.quantity)
    kind = get_kind(args.kind)
    runs = load_runs(args.runs, parse_labels(args.labels, len(args.runs)))
    if html:
        fig = kind.plotly(runs, options)
        fig.update_layout(title=dict(text=f"{kind.title} (GraphSAM paper {kind.paper})", x=0.01))
    else:
        fig = kind.figure(runs, options)
    _write(fig, out, html, args.dpi)
    rows = kind.table(runs, options) if kind.table is not None and not args.quiet else []
    if rows:
        print(to_markdown(rows, headers=kind.table_headers), end="")
    if not args.quiet:
        print(f"wrote {out}")
    return 0


def _attention(args: argparse.Namespace, out: Path, html: bool) -> int:
    """The attention heat map of one molecule of one run (needs its checkpoint and dataset)."""
    from analyses.attention import checkpoint_attention, heatmap_figure, heatmap_plotly

    if len(args.runs) != 1:
        raise GradscopeError(f"plot attention takes one run, got {len(args.runs)}")
    found = checkpoint_attention(args.runs[0], molecule=args.molecule, split=args.split, layer=args.layer,
                                 head=args.head, which=args.checkpoint, data_path=args.data)
    fig = heatmap_plotly(found.matrix, title=found.title) if html else heatmap_figure(found.matrix, title=found.title)
    _write(fig, out, html, args.dpi)
    if not args.quiet:
        print(f"wrote {out}")
    return 0


def _write(fig, out: Path, html: bool, dpi: int) -> None:  # noqa: ANN001
    """Write a plotly page or a matplotlib image whole (gradscope.outputs: the --out rule, no torn file)."""
    make_parents(out)
    with written_whole(out) as tmp:
        if html:
            fig.write_html(tmp, include_plotlyjs=True, full_html=True)
        else:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
