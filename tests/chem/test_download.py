"""Downloads, tested against file:// URLs and a local http.server — never the internet."""
from __future__ import annotations

import functools
import gzip
import http.server
import threading
from pathlib import Path

import pytest

from gradscope.chem import cache_dir, load_dataset
from gradscope.chem.registry import DEFAULT_BASE_URL, dataset_info
from gradscope.errors import GradscopeError


def small_copy(moleculenet_dir: Path, name: str, rows: int) -> bytes:
    lines = (moleculenet_dir / f"{name}.csv").read_text().splitlines(keepends=True)
    return "".join(lines[: rows + 1]).encode()


@pytest.fixture
def server_dir(tmp_path):
    d = tmp_path / "served"
    d.mkdir()
    return d


@pytest.fixture
def http_base(server_dir):
    handler = functools.partial(_QuietHandler, directory=str(server_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/datasets"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_registry_urls():
    assert dataset_info("bbbp").url() == f"{DEFAULT_BASE_URL}/BBBP.csv"
    assert dataset_info("Lipo").url("http://x/y/") == "http://x/y/Lipophilicity.csv"
    assert dataset_info("tox21").filename == "tox21.csv.gz"
    assert dataset_info("esol").filename == "delaney-processed.csv"


def test_download_from_file_url_then_cached(tmp_path, moleculenet_dir, server_dir):
    (server_dir / "BBBP.csv").write_bytes(small_copy(moleculenet_dir, "bbbp", 40))
    ds = load_dataset("bbbp", base_url=server_dir.as_uri(), progress=False)
    assert len(ds) == 40
    cached = cache_dir() / "datasets" / "BBBP.csv"
    assert cached.read_bytes() == (server_dir / "BBBP.csv").read_bytes()
    assert not list(cached.parent.glob("*.part"))  # atomic write leaves no temporary file
    (server_dir / "BBBP.csv").unlink()
    again = load_dataset("bbbp", base_url=server_dir.as_uri(), progress=False)  # from the cache now
    assert again.smiles == ds.smiles


def test_download_gz_over_local_http(moleculenet_dir, server_dir, http_base, tmp_path):
    (server_dir / "datasets").mkdir()
    (server_dir / "datasets" / "tox21.csv.gz").write_bytes(gzip.compress(small_copy(moleculenet_dir, "tox21", 40)))
    own_cache = tmp_path / "own-cache"
    ds = load_dataset("tox21", base_url=http_base, cache_dir=own_cache, progress=False)
    assert len(ds) == 40 and ds.n_tasks == 12
    assert (own_cache / "datasets" / "tox21.csv.gz").is_file()


def test_base_url_from_environment(monkeypatch, moleculenet_dir, server_dir):
    (server_dir / "delaney-processed.csv").write_bytes(small_copy(moleculenet_dir, "esol", 25))
    monkeypatch.setenv("GRADSCOPE_DATA_URL", server_dir.as_uri())
    assert len(load_dataset("esol", progress=False)) == 25


def test_offline_error_is_one_line_and_names_the_fix(http_base):
    closed = "http://127.0.0.1:9/datasets"  # discard port: nothing listens
    for base in (closed, http_base):  # connection refused; 404 from the local server
        with pytest.raises(GradscopeError) as info:
            load_dataset("bbbp", base_url=base, progress=False)
        message = str(info.value)
        assert "\n" not in message and "--data FILE" in message and "BBBP.csv" in message
    assert not (cache_dir() / "datasets" / "BBBP.csv").exists()


def test_no_download_and_data_dir(moleculenet_dir, tmp_path):
    with pytest.raises(GradscopeError, match="downloads are off"):
        load_dataset("clintox", download=False)
    with pytest.raises(GradscopeError, match="no bace file"):
        load_dataset("bace", data_dir=tmp_path)
    ds = load_dataset("esol", data_dir=moleculenet_dir, progress=False)  # finds esol.csv
    assert len(ds) == 48
