"""Traces written today equal the reference traces written before the architecture refactor.

``tests/data/traces/<case>.h5`` were written by gradscope 0.1.0 at commit c5e0ad4 (before the
optimizer registry, the Trainer and the named trace columns) with ``gradscope record`` on the
built-in demo data, the ``tiny`` model and the arguments in :data:`CASES`. This test records the same
runs with the code of today and compares every column of every group (steps, epochs, layers,
vectors), except wall-clock timings: integer columns exactly, float columns to float rounding.

A deliberate change of a method's numbers (a bug fix) maps the old case onto the arguments that
reproduce the old behaviour in :data:`TODAY`, with the reason beside it.

Regenerate the references (only for a deliberate schema or fixture change, never to make this test
pass): ``python tests/test_trace_equality.py --write-references``.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

REFERENCES = Path(__file__).resolve().parent / "data" / "traces"
COMMON = ("--model", "tiny", "--epochs", "2", "--batch-size", "64", "--seed", "3", "--threads", "1",
          "--layers", "--quiet")
PROBE = ("--probe-exact-every", "3")
#: case name → extra arguments of `gradscope record` (the optimizer and its settings).
CASES: dict[str, tuple[str, ...]] = {
    "adam": ("--optimizer", "adam"),
    "sam": (*PROBE, "--optimizer", "sam", "--save-vectors-every", "8"),
    "asam": (*PROBE, "--optimizer", "asam"),
    "graphsam": (*PROBE, "--optimizer", "graphsam", "--save-vectors-every", "8"),
    "graphsam-released": (*PROBE, "--optimizer", "graphsam-released"),
    "sam-one": (*PROBE, "--optimizer", "sam-one"),
    "sam-k": (*PROBE, "--optimizer", "sam-k", "--k", "3"),
    "looksam": (*PROBE, "--optimizer", "looksam", "--k", "3"),
    "ae-sam": (*PROBE, "--optimizer", "ae-sam"),
    "rst": (*PROBE, "--optimizer", "rst"),
    "graphsam-k2-sgd": ("--optimizer", "graphsam", "--anchor-every", "2", "--base-optimizer", "sgd",
                        "--lr", "0.01", "--lr-schedule", "noam", "--warmup-epochs", "1"),
}
#: case name → the arguments that reproduce the reference today, where they differ from CASES.
TODAY: dict[str, tuple[str, ...]] = {
    # `--optimizer sam-one` is now the paper's SAM-One (ε computed once for the whole run); the
    # reference was written when it re-anchored every epoch, which is `sam-one-epoch` today.
    "sam-one": (*PROBE, "--optimizer", "sam-one-epoch"),
    # ASAM now applies T = |θ| + η to weights only, as the released ASAM code does (issue 15);
    # the reference was written with T on every parameter, which is --scale-biases today.
    "asam": (*PROBE, "--optimizer", "asam", "--scale-biases"),
}
#: columns that measure wall-clock time (they differ between any two runs).
TIMINGS = {"time_s", "step_time_s", "graphs_per_s"}


def record(case: str, out: Path, args: tuple[str, ...]) -> Path:
    """Run `gradscope record` for ``case`` into ``out`` and return the trace path."""
    cmd = [sys.executable, "-m", "gradscope", "record", *COMMON, *args, "--out", str(out), "--overwrite"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return out / "trace.h5"


def repack(source: Path, target: Path) -> None:
    """Copy a trace's attributes and data into a small gzip-compressed file (for the references)."""
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        def copy(name: str, obj: h5py.HLObject) -> None:
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                out = dst.create_dataset(name, data=data, compression="gzip" if data.ndim else None)
            else:
                out = dst.require_group(name)
            out.attrs.update(dict(obj.attrs))
        dst.attrs.update(dict(src.attrs))
        src.visititems(copy)


def _datasets(f: h5py.File) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for group in ("steps", "epochs", "layers", "vectors"):
        if group in f:
            for name, ds in f[group].items():
                if name not in TIMINGS:
                    out[f"{group}/{name}"] = ds[()]
    return out


def compare(reference: Path, today: Path) -> list[str]:
    """Every difference between two traces, as readable lines (empty when they agree)."""
    problems: list[str] = []
    with h5py.File(reference, "r") as a, h5py.File(today, "r") as b:
        for attr in ("format", "schema_version", "optimizer"):
            if a.attrs[attr] != b.attrs[attr]:
                problems.append(f"root attribute {attr}: {a.attrs[attr]!r} != {b.attrs[attr]!r}")
        if "layers" in a and list(a["layers"].attrs["names"]) != list(b["layers"].attrs["names"]):
            problems.append("layers/names differ")
        old, new = _datasets(a), _datasets(b)
        for name in sorted(set(old) - set(new)):
            problems.append(f"{name} missing today")
        for name in sorted(set(old) & set(new)):
            x, y = old[name], new[name]
            if x.shape != y.shape or x.dtype != y.dtype:
                problems.append(f"{name}: {x.dtype}{x.shape} != {y.dtype}{y.shape}")
            elif x.dtype.kind == "f":
                if not np.allclose(x, y, rtol=2e-5, atol=1e-6, equal_nan=True):
                    worst = np.nanmax(np.abs(x.astype(np.float64) - y.astype(np.float64)))
                    problems.append(f"{name}: max |difference| {worst:.3g}")
            elif not np.array_equal(x, y):
                problems.append(f"{name}: integer values differ")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_trace_equals_reference(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADSCOPE_CACHE", str(tmp_path / "cache"))
    today = record(case, tmp_path / case, TODAY.get(case, CASES[case]))
    assert compare(REFERENCES / f"{case}.h5", today) == []


def test_compare_finds_a_changed_column(tmp_path: Path) -> None:
    """The comparison itself can fail: a perturbed copy of a reference is reported."""
    import shutil
    copy = tmp_path / "sam.h5"
    shutil.copy(REFERENCES / "sam.h5", copy)
    with h5py.File(copy, "r+") as f:
        f["steps/omega_norm"][3] *= 1.001
        f["steps/grad_evals"][0] += 1
    problems = compare(REFERENCES / "sam.h5", copy)
    assert any("steps/omega_norm" in p for p in problems)
    assert any("steps/grad_evals" in p for p in problems)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-references"]:
        sys.exit("usage: python tests/test_trace_equality.py --write-references")
    import os
    import tempfile
    REFERENCES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GRADSCOPE_CACHE"] = str(Path(tmp) / "cache")
        for name, extra in CASES.items():
            trace = record(name, Path(tmp) / name, extra)
            repack(trace, REFERENCES / f"{name}.h5")
            print(f"wrote {REFERENCES / (name + '.h5')}")
