"""``gradscope plot KIND RUN... --out FILE``: one figure of the GraphSAM paper from recorded runs.

KIND is one of obs1, norms, obs2, entropy, loss, throughput, landscape (see docs/analyses.md),
or attention: the attention heat map of one molecule, from one run's checkpoint. A flag that the
chosen kind does not read (``--zoom`` for entropy, ``--molecule`` for obs1) is an error.
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

EXAMPLES = """\
kinds (docs/analyses.md):
  obs1        Observation 1: ‖ε_{t+1}−ε_t‖ and ‖ω_{t+1}−ω_t‖, with a zoomed window (paper Fig. 3a, 8)  [--zoom]
  norms       ‖ε_t‖ and ‖ω_t‖ (Fig. 9)                                                      [--zoom]
  obs2        Observation 2: cos(ε_{t+1}, ω_t) and agreement with the exact ε (Fig. 3c)
  entropy     attention entropy per epoch (Fig. 10)                                          [--at]
  loss        train and test loss per epoch (Fig. 5)
  throughput  graphs/s and the test metric at the best epoch (Tables 2, 7)                   [--metric]
  landscape   1-D/2-D loss landscapes from `gradscope landscape` (Fig. 2)                     [--quantity]
  attention   attention heat map of one molecule, from one run's checkpoint    [--molecule --split --layer ...]

examples:
  gradscope plot obs1 runs/sam runs/graphsam --out obs1.png --zoom 0:200
  gradscope plot obs2 runs/sam runs/graphsam runs/sam-k --out obs2.html          # interactive page
  gradscope plot entropy runs/adam runs/sam runs/graphsam --out entropy.pdf --at best
  gradscope plot throughput runs/* --out throughput.png --labels Adam,SAM,GraphSAM
  gradscope plot landscape runs/adam runs/sam --out landscape.svg
  gradscope plot attention runs/graphsam --out attention.png --molecule 3 --split val
"""
#: Flags that only some kinds read: flag dest → the PlotOptions field (analyses.kinds.Kind.options).
KIND_FLAGS = {"zoom": "zoom", "at": "at", "metric": "metric", "quantity": "quantity"}
#: Flags of the attention heat map only (argparse group "attention heat map").
ATTENTION_FLAGS = ("molecule", "split", "layer", "head", "checkpoint", "data")


def register(subparsers: argparse._SubParsersAction) -> None:
    from gradscope.cli import add_common_flags

    parser = subparsers.add_parser(
        "plot", help="draw one paper figure from runs",
        description="Draw one figure of the GraphSAM paper from recorded runs (see docs/analyses.md). Kinds with "
                    "numbers also print their table (Markdown) on stdout.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=KIND_NAMES, help="which figure (list below)")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directory, trace file or landscape file "
                        "(attention: one run directory or checkpoint)")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE",
                        help="output file: .png, .svg, .pdf, .jpg (matplotlib) or .html (interactive plotly)")
    parser.add_argument("--html", action="store_true", help="interactive plotly HTML (self-contained), whatever "
                        "the suffix of --out")
    parser.add_argument("--labels", metavar="a,b,...", help="comma-separated run labels, one per RUN "
                        "(default: the optimizers' names)")
    parser.add_argument("--dpi", type=int, default=150, help="resolution of image output (default 150)")
    kinds = parser.add_argument_group("options of some kinds (given for another kind, an error)")
    kinds.add_argument("--zoom", metavar="A:B", help="obs1, norms: step window of the zoomed panel "
                       "(default: the first tenth of the steps)")
    kinds.add_argument("--at", help="entropy: epoch of the numbers: last, best or a number (default last)")
    kinds.add_argument("--metric", help="throughput: metric of the table (default: the run's, e.g. roc_auc or rmse)")
    kinds.add_argument("--quantity", choices=("loss", "metric"), help="landscape: which surface (default loss)")
    heat = parser.add_argument_group("attention heat map (KIND attention only)")
    heat.add_argument("--molecule", type=int, help="position of the molecule in --split (default 0)")
    heat.add_argument("--split", choices=("train", "val", "test"), help="data split the molecule is taken from "
                      "(default test)")
    heat.add_argument("--layer", type=int, help="attention layer, counted from 0; negative from the end "
                      "(default -1: the last)")
    heat.add_argument("--head", type=int, help="attention head (default: mean over heads)")
    heat.add_argument("--checkpoint", choices=("best", "last"), help="which checkpoint of the run (default best)")
    heat.add_argument("--data", metavar="FILE", help="dataset file, if it moved since the run (default: where the "
                      "run found it)")
    add_common_flags(parser)
    parser.set_defaults(func=run)


def check_flags(args: argparse.Namespace) -> None:
    """Refuse a flag the chosen kind does not read (a mistyped figure should not be drawn silently)."""
    from analyses.kinds import KINDS

    given = lambda dest: getattr(args, dest) is not None  # noqa: E731
    if args.kind == "attention":
        for dest in (*KIND_FLAGS, "labels"):
            if given(dest):
                raise GradscopeError(f"--{dest} does not apply to plot attention")
        return
    for dest in ATTENTION_FLAGS:
        if given(dest):
            raise GradscopeError(f"--{dest} applies to plot attention only, not to plot {args.kind}")
    for dest, option in KIND_FLAGS.items():
        if given(dest) and option not in KINDS[args.kind].options:
            users = ", ".join(name for name, k in KINDS.items() if option in k.options)
            raise GradscopeError(f"--{dest} does not apply to plot {args.kind} (it is for: {users})")


def parse_labels(text: str | None, n: int) -> list[str] | None:
    """``"a,b"`` → ``["a", "b"]``, checked against the number of runs."""
    if text is None:
        return None
    labels = [s.strip() for s in text.split(",")]
    if len(labels) != n or not all(labels):
        raise GradscopeError(f"--labels needs {n} non-empty comma-separated names (one per run), got {text!r}")
    return labels


def parse_at(text: str | None) -> str | int:
    """``--at``: ``last`` (also when not given), ``best`` or an epoch number."""
    if text is None or text in ("last", "best"):
        return text or "last"
    try:
        return int(text)
    except ValueError:
        raise GradscopeError(f"--at must be last, best or an epoch number, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from analyses.kinds import PlotOptions, get_kind
    from analyses.plotting import parse_zoom, run_colors
    from analyses.runs import load_runs
    from analyses.tables import to_markdown

    out: Path = args.out
    html = args.html or out.suffix.lower() == ".html"
    if not html and out.suffix.lower() not in IMAGE_SUFFIXES:
        raise GradscopeError(f"--out must end in {', '.join(IMAGE_SUFFIXES)} or .html, got {out.name!r}")
    if args.dpi <= 0:
        raise GradscopeError(f"--dpi must be positive, got {args.dpi}")
    check_flags(args)
    check_out(out)
    if args.kind == "attention":
        return _attention(args, out, html)
    kind = get_kind(args.kind)
    zoom, at = parse_zoom(args.zoom), parse_at(args.at)
    runs = load_runs(args.runs, parse_labels(args.labels, len(args.runs)))
    options = PlotOptions(zoom=zoom, at=at, metric=args.metric, quantity=args.quantity or "loss",
                          colors=run_colors([run.label for run in runs]))
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
    found = checkpoint_attention(args.runs[0], molecule=_or(args.molecule, 0), split=args.split or "test",
                                 layer=_or(args.layer, -1), head=args.head, which=args.checkpoint or "best",
                                 data_path=args.data)
    fig = heatmap_plotly(found.matrix, title=found.title) if html else heatmap_figure(found.matrix, title=found.title)
    _write(fig, out, html, args.dpi)
    if not args.quiet:
        print(f"wrote {out}")
    return 0


def _or(value, default):  # noqa: ANN001, ANN202
    return default if value is None else value


def _write(fig, out: Path, html: bool, dpi: int) -> None:  # noqa: ANN001
    """Write a plotly page or a matplotlib image whole (gradscope.outputs: the --out rule, no torn file)."""
    make_parents(out)
    with written_whole(out) as tmp:
        if html:
            fig.write_html(tmp, include_plotlyjs=True, full_html=True)
        else:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
