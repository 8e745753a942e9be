"""``gradscope report RUN... --out report.html``: every figure and table in one offline HTML page.

Sections a run cannot feed (no ε for Adam, no exact-ε probe, no landscape files, no checkpoint
for the attention heat map) are skipped for that run with a note; see
:func:`analyses.report.build_report`.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from gradscope.cli import add_common_flags

    parser = subparsers.add_parser(
        "report", help="one self-contained HTML report of runs",
        description="Write one self-contained HTML page (plotly.js inlined, works offline) with every figure "
                    "and table for the runs given.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directory, trace file or landscape file")
    parser.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write (default report.html)")
    parser.add_argument("--labels", metavar="a,b,...", help="comma-separated run labels, one per RUN")
    parser.add_argument("--title", default="gradscope report", help="page title")
    parser.add_argument("--zoom", metavar="A:B", help="step window of the zoomed panels")
    parser.add_argument("--metric", help="metric of the throughput table")
    parser.add_argument("--at", default="last", help="epoch of the entropy numbers: last, best or a number")
    parser.add_argument("--molecule", type=int, default=0, help="molecule of the attention heat map (position in --split)")
    parser.add_argument("--split", default="test", help="split the heat-map molecule comes from (default test)")
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
