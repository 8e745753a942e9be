"""Shared pieces of the benchmarks: machine description, result files, data location, medians."""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent


def moleculenet_dir() -> Path:
    """The shared MoleculeNet CSVs: ``$GRADSCOPE_MOLECULENET`` or ``../shared/data/moleculenet``."""
    return Path(os.environ.get("GRADSCOPE_MOLECULENET", REPO.parent / "shared" / "data" / "moleculenet"))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """What a result depends on: CPU, cores, torch version and threads, device, date."""
    device = torch.device(device)
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join([os.path.basename(sys.executable), "-m", "benchmarks"] + sys.argv[1:]),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` (atomically) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    tmp.replace(path)
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def sync(device: torch.device) -> None:
    """Wait for queued device work (CUDA) so that a wall-clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def maxrss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def epoch_batches(data: Any, device: torch.device, batch_size: int = 32, seed: int = 0) -> list[Any]:
    """The training batches of epoch 0 in the training loop's order, collated once onto ``device``.

    ``data`` is a ``gradscope.train.build.Data`` (dataset, split, standardizer). Collating up front
    keeps collation out of every timed step.
    """
    from gradscope.train.loop import epoch_order

    train = torch.from_numpy(data.split["train"])
    order = train[epoch_order(seed, 0, len(train))].numpy()
    return [data.dataset.batch(order[i:i + batch_size], standardizer=data.standardizer).to(device)
            for i in range(0, len(order), batch_size)]
