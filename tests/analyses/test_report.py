"""The self-contained HTML report: sections, skipped data, offline page, and real rendering."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from kit.traces import sam_like, write_landscape, write_trace

from analyses.kinds import KINDS, PlotOptions
from analyses.report import build_report
from analyses.runs import load_runs
from gradscope.errors import GradscopeError

EPOCHS = {"epoch": np.arange(4), "train_loss": [1.0, 0.8, 0.6, 0.5], "val_loss": [1.1, 0.9, 0.8, 0.85],
          "val_roc_auc": [0.6, 0.7, 0.8, 0.75], "test_roc_auc": [0.55, 0.65, 0.75, 0.7], "graphs_per_s": [100.0] * 4,
          "attention_entropy": [2.0, 2.3, 2.6, 2.8]}


def _runs(root: Path) -> list[Path]:
    x = np.linspace(-1, 1, 9)
    sam = sam_like(60, 1)
    write_trace(root / "sam" / "trace.h5", sam, EPOCHS, optimizer="SAM")
    write_landscape(root / "sam" / "landscape" / "d1.h5", x, x**2)
    gsam = sam_like(60, 2)
    gsam["cos_eps_exact"] = np.where(np.arange(60) % 4 == 1, 0.4, np.nan)
    write_trace(root / "gsam" / "trace.h5", gsam, {**EPOCHS, "graphs_per_s": [180.0] * 4}, optimizer="GraphSAM")
    adam = {"omega_norm": np.linspace(1, 2, 60), "omega_change": np.linspace(0, 1, 60), "grad_evals": np.ones(60)}
    write_trace(root / "adam" / "trace.h5", adam, {k: v for k, v in EPOCHS.items() if k != "attention_entropy"},
                optimizer="Adam")
    return [root / "sam", root / "gsam", root / "adam"]


def test_sections_and_skip_notes(tmp_path):
    result = build_report(_runs(tmp_path), tmp_path / "out" / "report.html")
    page = result.path.read_text()
    by_kind = {s.kind: s for s in result.sections}
    assert list(by_kind) == ["obs1", "norms", "obs2", "entropy", "attention", "loss", "throughput", "landscape"]
    assert all(s.figures == 1 for s in result.sections if s.kind != "attention")
    assert by_kind["attention"].figures == 0  # no checkpoints in synthetic runs: notes instead
    assert by_kind["attention"].notes[1:] == [f"{r}: no checkpoints/ directory (the heat map needs the model)"
                                              for r in ("SAM", "GraphSAM", "Adam")]
    assert result.figures == len(KINDS) == page.count('class="plotly-graph-div"')
    # Adam has no ε: left out of Observation 2 with its reason; no entropy; only SAM has a landscape
    assert by_kind["obs2"].notes == ["Adam: no defined cos(ε_{t+1}, ω_t) or exact-ε cosine (needed for Observation 2)"]
    assert any("Adam" in n and "attention entropy" in n for n in by_kind["entropy"].notes)
    assert by_kind["landscape"].notes == ["GraphSAM: no landscape files", "Adam: no landscape files"]
    assert by_kind["obs1"].notes == []  # Adam still has ω changes
    assert by_kind["obs2"].tables == 1 and "72.46" in page and "67.45" in page
    # plotly.js inlined exactly once; nothing is fetched from the network
    assert page.count("<script type=\"text/javascript\">") == 1
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"<link[^>]+href=[\"']?http", page)
    assert len(page) > 3_000_000  # the plotly.js bundle is in the page


def test_missing_everything_is_a_note_not_a_failure(tmp_path):
    write_trace(tmp_path / "bare" / "trace.h5", {"omega_norm": np.ones(4)}, optimizer="SGD")
    result = build_report([tmp_path / "bare"], tmp_path / "r.html")
    by_kind = {s.kind: s for s in result.sections}
    assert by_kind["entropy"].figures == 0 and by_kind["entropy"].notes[0] == "no run has the data for this section"
    assert by_kind["norms"].figures == 1  # ‖ω‖ alone still draws
    assert result.path.read_text().count('class="plotly-graph-div"') == result.figures


def test_probe_note_and_extra_figures(tmp_path):
    import plotly.graph_objects as go
    from matplotlib.figure import Figure

    write_trace(tmp_path / "s" / "trace.h5", sam_like(30), optimizer="SAM")
    mpl = Figure()
    mpl.subplots().plot([0, 1], [1, 0])
    result = build_report([tmp_path / "s"], tmp_path / "r.html", kinds=["obs2"],
                          extra=[("a plotly figure", go.Figure(go.Bar(y=[1, 2]))), ("a heat map", mpl)])
    obs2 = result.sections[0]
    assert any("exact-ε probe" in n for n in obs2.notes)
    page = result.path.read_text()
    assert result.figures == 2 and "data:image/png;base64," in page
    with pytest.raises(GradscopeError, match="unknown report section"):
        build_report([tmp_path / "s"], tmp_path / "x.html", kinds=["nope"])


def test_bad_input(tmp_path):
    with pytest.raises(GradscopeError, match="does not exist"):
        build_report([tmp_path / "missing"], tmp_path / "r.html")
    runs = load_runs([write_trace(tmp_path / "t.h5", sam_like(10))])
    with pytest.raises(GradscopeError, match="labels apply to paths"):
        build_report(runs, tmp_path / "r.html", labels=["a"])
    with pytest.raises(GradscopeError):
        PlotOptions(zoom=(5, 1))


# --- rendering in a real browser ------------------------------------------------------------

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

# Injected first into the test copy of the page: collects uncaught errors, rejected promises and
# console.error calls, and writes them into the DOM after load so --dump-dom carries them out.
PROBE = """<script>
window.__gsErrors = [];
window.addEventListener("error", function (e) { window.__gsErrors.push("error: " + e.message); });
window.addEventListener("unhandledrejection", function (e) { window.__gsErrors.push("rejection: " + e.reason); });
(function () { var orig = console.error; console.error = function () {
  window.__gsErrors.push("console.error: " + Array.prototype.join.call(arguments, " ")); orig.apply(console, arguments); }; })();
window.addEventListener("load", function () { setTimeout(function () {
  var out = document.createElement("pre"); out.id = "gs-probe"; out.textContent = JSON.stringify(window.__gsErrors);
  document.body.appendChild(out); }, 1000); });
</script>"""


class _PlotScan(HTMLParser):
    """Per ``.plotly-graph-div``: whether an ``svg.main-svg`` sits inside it; plus the probe text."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, int | None]] = []
        self.plots: list[bool] = []
        self.probe: str | None = None
        self._in_probe = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        owner = next((o for _, o in reversed(self.stack) if o is not None), None)
        if tag == "div" and "plotly-graph-div" in classes:
            self.plots.append(False)
            owner = len(self.plots) - 1
        if tag == "svg" and "main-svg" in classes and owner is not None:
            self.plots[owner] = True
        if tag == "pre" and a.get("id") == "gs-probe":
            self._in_probe, self.probe = True, ""
        if tag not in ("br", "img", "input", "meta", "link", "hr", "path", "rect", "line", "circle", "stop", "use", "image"):
            self.stack.append((tag, owner))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break
        if tag == "pre":
            self._in_probe = False

    def handle_data(self, data):
        if self._in_probe:
            self.probe = (self.probe or "") + data


def render(page: Path, tmp_path: Path) -> _PlotScan:
    """Load a copy of ``page`` (with the probe injected) in headless Chromium; scan the final DOM."""
    copy = tmp_path / f"probe-{page.name}"
    copy.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    cmd = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--dump-dom", "--virtual-time-budget=15000",
           "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: the page must not need it
           f"--user-data-dir={tmp_path / 'chromium-profile'}", copy.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    scan = _PlotScan()
    scan.feed(done.stdout)
    assert scan.probe is not None, "the probe script never ran"
    return scan


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    result = build_report(_runs(tmp_path), tmp_path / "report.html")
    scan = render(result.path, tmp_path)
    assert json.loads(scan.probe) == []
    assert len(scan.plots) == result.figures == len(KINDS)
    assert all(scan.plots), f"plots without an svg: {[i for i, ok in enumerate(scan.plots) if not ok]}"


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_render_check_catches_errors(tmp_path):
    """The harness itself fails on a broken page: a thrown error and a plot that never draws."""
    result = build_report(_runs(tmp_path), tmp_path / "report.html", kinds=["loss"])
    broken = tmp_path / "broken.html"
    text = result.path.read_text().replace("Plotly.newPlot(", "Plotly.noSuchFunction(", 1)
    broken.write_text(text.replace("</body>", "<script>throw new Error('boom')</script></body>"))
    scan = render(broken, tmp_path)
    errors = json.loads(scan.probe)
    assert any("boom" in e for e in errors) and any("noSuchFunction" in e for e in errors)
    assert scan.plots == [False]


def test_landscape_section_shows_each_runs_sharpness(tmp_path):
    """sharpness.json beside a run's landscape files becomes the landscape section's table, one row
    per measured parameter set, credited to the run it lies in."""
    from analyses.landscapes import sharpness_table

    runs = _runs(tmp_path)
    x = np.linspace(-1, 1, 9)
    write_landscape(runs[1] / "landscape" / "g.h5", x, 0.5 * x**2)
    numbers = {"loss": 0.4, "radius": 0.05, "mean_increase": 0.01, "max_increase": 0.03, "rho": 0.05,
               "rho_sharpness": 0.02, "lambda_max": 12.5, "lambda_min": -0.75, "trace": 40.0}
    (runs[0] / "landscape" / "sharpness.json").write_text(json.dumps({"sam": numbers}))
    (runs[1] / "landscape" / "sharpness.json").write_text(json.dumps({"graphsam": {**numbers, "lambda_max": 3.25}}))
    loaded = load_runs(runs)
    rows = sharpness_table(loaded)
    assert [(r["run"], r["lambda_max"], r["lambda_min"]) for r in rows] == [("SAM", 12.5, -0.75), ("GraphSAM", 3.25, -0.75)]
    result = build_report(loaded, tmp_path / "r.html", kinds=["landscape"])
    assert result.sections[0].tables == 1
    page = result.path.read_text()
    assert "λ_max" in page and "12.5" in page and "3.25" in page and "ρ-sharpness" in page
    plain = build_report(load_runs(_runs(tmp_path / "again")), tmp_path / "p.html", kinds=["landscape"])
    assert plain.sections[0].tables == 0  # nothing measured: no empty table
