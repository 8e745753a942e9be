"""``gradscope report RUN... --out report.html``: every figure and table in one offline HTML page.

Sections a run cannot feed (no ε for Adam, no exact-ε probe, no landscape files, no checkpoint
for the attention heat map) are skipped for that run with a note; see
:func:`analyses.report.build_report`.
"""
from __future__ import annotations

import argparse
from pathlib import Path


EXAMPLES = """\
examples:
  gradscope report runs/adam runs/sam runs/graphsam --out report.html
  gradscope report runs/* --out figs/all.html --labels Adam,SAM,GraphSAM --title "BBBP, seed 0"
  gradscope report runs/sam --zoom 0:200 --at best --no-attention     # quicker: no model rebuilt

Sections: every kind of `gradscope plot` (obs1, norms, obs2, entropy, loss, throughput, landscape)
and the attention heat map; a run without a section's data is left out of it with a note.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from gradscope.cli import add_common_flags

    parser = subparsers.add_parser(
        "report", help="one self-contained HTML report of runs",
        description="Write one self-contained HTML page (plotly.js inlined, works offline) with every figure "
                    "and table for the runs given.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directory, trace file or landscape file")
    parser.add_argument("--out", type=Path, default=Path("report.html"), metavar="FILE",
                        help="HTML file to write (default report.html)")
    parser.add_argument("--labels", metavar="a,b,...", help="comma-separated run labels, one per RUN "
                        "(default: the optimizers' names)")
    parser.add_argument("--title", default="gradscope report", help="page title (default 'gradscope report')")
    parser.add_argument("--zoom", metavar="A:B", help="step window of the zoomed panels (default: the first tenth "
                        "of the steps)")
    parser.add_argument("--metric", help="metric of the throughput table (default: the run's, e.g. roc_auc or rmse)")
    parser.add_argument("--at", default="last", help="epoch of the entropy numbers: last, best or a number "
                        "(default last)")
    parser.add_argument("--molecule", type=int, default=0, help="molecule of the attention heat map (position in "
                        "--split, default 0)")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test",
                        help="split the heat-map molecule comes from (default test)")
    parser.add_argument("--no-attention", action="store_true",
                        help="skip the attention heat map (it rebuilds each run's model and dataset from its checkpoint)")
    add_common_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analyses.kinds import PlotOptions
    from analyses.plotting import parse_zoom
    from analyses.report import build_report
    from analyses.runs import load_runs
    from gradscope.cli.plot import parse_at, parse_labels
    from gradscope.outputs import check_out

    check_out(args.out)
    options = PlotOptions(zoom=parse_zoom(args.zoom), at=parse_at(args.at), metric=args.metric)
    runs = load_runs(args.runs, parse_labels(args.labels, len(args.runs)))
    from analyses.report import SECTIONS

    kinds = [k for k in SECTIONS if not (args.no_attention and k == "attention")]
    result = build_report(runs, args.out, options=options, title=args.title, kinds=kinds, molecule=args.molecule,
                          split=args.split)
    if not args.quiet:
        for section in result.sections:
            state = f"{section.figures} figure(s), {section.tables} table(s)"
            skipped = f"; {len(section.notes)} note(s)" if section.notes else ""
            print(f"{section.kind:<11} {state}{skipped}")
        print(f"wrote {result.path}")
    return 0
