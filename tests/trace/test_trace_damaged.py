"""Damaged trace files fail within seconds with one line, through open_trace (never a hang).

Before, a truncated or corrupted file made the SWMR reader loop in HDF5's metadata read
retries for more than 10 minutes. Each case runs open_trace in a subprocess with a timeout, so a
regression fails the test instead of hanging the suite.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from gradscope.errors import GradscopeError
from gradscope.trace import TraceLayout, open_trace

#: A generous bound for "fails fast" on a loaded machine (it takes well under a second).
LIMIT_S = 30

OPEN = textwrap.dedent(
    """
    import sys
    from gradscope.errors import GradscopeError
    from gradscope.trace import open_trace
    try:
        open_trace(sys.argv[1])
    except GradscopeError as exc:
        print("GradscopeError:", exc)
    else:
        print("opened")
    """
)


def _cut(src, dst, size) -> None:
    dst.write_bytes(src.read_bytes()[:size])


def _flip_metadata(src, dst) -> None:
    """Flip bytes inside the root group's object header: its checksum no longer matches."""
    data = bytearray(src.read_bytes())
    at = data.index(b"OHDR") + 16
    data[at : at + 4] = bytes(b ^ 0xFF for b in data[at : at + 4])
    dst.write_bytes(bytes(data))


def _files(tmp, tr):
    """Write the damaged files; returns name → words their error must contain."""
    closed, killed = tmp / "closed.h5", tmp / "killed.h5"
    _write_closed(closed)
    tr.killed_writer_trace(killed)
    with pytest.raises(OSError, match="consistency flags"):  # flagged: SWMR readers only
        h5py.File(killed, "r").close()
    cases = {}
    for name, src in (("closed", closed), ("killed", killed)):
        size = src.stat().st_size
        _cut(src, tmp / f"{name}-3000.h5", 3000)
        _cut(src, tmp / f"{name}-half.h5", size // 2)
        _flip_metadata(src, tmp / f"{name}-checksum.h5")
        cases[f"{name}-3000"] = "truncated"
        cases[f"{name}-half"] = "truncated"
        cases[f"{name}-checksum"] = "damaged"
    (tmp / "garbage.h5").write_bytes(np.random.default_rng(0).bytes(50_000))
    cases["garbage"] = "not an HDF5 file"
    (tmp / "hdf5-garbage.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + np.random.default_rng(1).bytes(50_000))
    cases["hdf5-garbage"] = "not a readable HDF5 file"
    (tmp / "empty.h5").write_bytes(b"")
    cases["empty"] = "empty"
    (tmp / "text.h5").write_text("smiles,label\nCCO,1\n")
    cases["text"] = "not an HDF5 file"
    shutil.copy(closed, tmp / "badconfig.h5")
    with h5py.File(tmp / "badconfig.h5", "r+") as f:
        f.attrs["config"] = "{not json"
    cases["badconfig"] = "config attribute"
    return cases


def _write_closed(path) -> None:
    from gradscope.trace import TraceWriter

    with TraceWriter(path, optimizer="X", config={"lr": 0.1}, layout=TraceLayout(layer_names=("a", "b"))) as w:
        w.append_steps({"step": np.arange(400), "omega_norm": np.ones(400, np.float32)},
                       {"eps_norm": np.ones((400, 2)), "omega_norm": np.ones((400, 2))})


@pytest.fixture(scope="module")
def cases(tmp_path_factory, tr):
    tmp = tmp_path_factory.mktemp("damaged")
    return tmp, _files(tmp, tr)


CASES = ("closed-3000", "closed-half", "closed-checksum", "killed-3000", "killed-half", "killed-checksum",
         "garbage", "hdf5-garbage", "empty", "text", "badconfig")


@pytest.mark.parametrize("name", CASES)
def test_damaged_file_fails_fast_with_one_line(cases, name) -> None:
    tmp, expected = cases
    path = tmp / f"{name}.h5"
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-c", OPEN, str(path)], capture_output=True, text=True, timeout=LIMIT_S,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert time.monotonic() - start < LIMIT_S
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("GradscopeError:"), out.stdout
    assert expected[name] in lines[0] and str(path) in lines[0]


def test_intact_files_of_both_kinds_still_open(cases) -> None:
    tmp, _ = cases
    for name in ("closed", "killed"):
        trace = open_trace(tmp / f"{name}.h5")
        assert len(trace) == 400 and trace.layers["omega_norm"].shape == (400, 2)


def test_config_that_is_json_but_not_an_object_is_refused(tmp_path, tr) -> None:
    path = tmp_path / "t.h5"
    tr.write_trace(path, steps=2)
    with h5py.File(path, "r+") as f:
        f.attrs["config"] = json.dumps([1, 2])
    with pytest.raises(GradscopeError, match="not an object"):
        open_trace(path)


def test_the_cut_files_are_what_plain_hdf5_calls_truncated(cases) -> None:
    """The cases really are truncated HDF5 files (the fast check relies on HDF5's own length check)."""
    tmp, _ = cases
    for name in ("closed-half", "killed-half", "killed-3000"):
        with pytest.raises(OSError, match="truncated file"):
            h5py.File(tmp / f"{name}.h5", "r")
