"""``python -m benchmarks [--quick] [--only throughput,overhead,landscape,trace_io,featurize,gpu] [--device cuda]``.

Runs the selected benchmarks one after another and writes their JSON under benchmarks/results/.
``--device`` applies to throughput, overhead, landscape and gpu (trace I/O and featurization are
CPU/disk). ``gpu`` (benchmarks/gpu.py) runs only when named in ``--only``.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from benchmarks.common import log

ALL = ("throughput", "overhead", "landscape", "trace_io", "featurize", "gpu")
DEFAULT = tuple(name for name in ALL if name != "gpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 10 minutes on 2 cores)")
    parser.add_argument("--only", default=",".join(DEFAULT), help=f"comma-separated subset of {', '.join(ALL)}")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (throughput, overhead, landscape, gpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in ALL]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    torch.set_num_threads(args.threads)
    quick = ["--quick"] if args.quick else []
    t_start = time.perf_counter()
    for name in only:
        t0 = time.perf_counter()
        log(f"== {name}")
        if name in ("throughput", "overhead"):
            from benchmarks import throughput

            sel = ("optimizers",) if name == "throughput" else ("overhead",)
            throughput.print_tables(throughput.run(args.quick, args.device, sel))
        elif name == "landscape":
            from benchmarks import landscape

            landscape.main(quick + ["--device", args.device, "--threads", str(args.threads)])
        elif name == "trace_io":
            from benchmarks import trace_io

            trace_io.main(quick)
        elif name == "featurize":
            from benchmarks import featurize

            featurize.print_table(featurize.run(args.quick))
        elif name == "gpu":
            from benchmarks import gpu

            if gpu.main(quick + ["--device", args.device, "--threads", str(args.threads)]):
                return 2
        log(f"== {name}: {time.perf_counter() - t0:.0f} s")
    log(f"total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
