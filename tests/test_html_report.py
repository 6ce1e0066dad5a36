"""The self-contained HTML report: content, escaping, size, and rendering in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import statistics
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import SHARED_DATA
from fervid.cli import app
from fervid.report.html import RunReportError, load_published, load_run, write_html_report
from fervid.report.html.figures import MAX_WIDTH, training_curves_uri
from fervid.report.html.published import PublishedResultsError
from generated import make_precomputed

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
LOSO_SECTIONS = {"metrics", "published", "confusion", "recall", "subjects", "training",
                 "metadata"}


def _loso(out: Path, data_root: Path, config: Path, *args: str) -> Path:
    result = CliRunner().invoke(app, [
        "loso", "--config", str(config), "--data-root", str(data_root), "--out", str(out),
        "--no-progress", "--set", "run.workers=1", *args])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def real_run(tmp_path_factory) -> Path:
    """Four folds of STSTNet on the shared MEGC2019 flow, 2 epochs (generated data if absent)."""
    flow = SHARED_DATA / "megc2019_flow"
    out = tmp_path_factory.mktemp("real") / "ststnet_s0"
    if not (flow / "index.csv").exists():
        flow = make_precomputed(tmp_path_factory.mktemp("flow") / "flow")
    return _loso(out, flow, REPO / "configs" / "ststnet_megc2019.yaml", "--epochs", "2",
                 "--folds", "0-3")


@pytest.fixture(scope="session")
def seed_runs(tmp_path_factory) -> list[Path]:
    """Two seeds of one small config on generated data (4 subjects)."""
    base = tmp_path_factory.mktemp("seeds")
    data = make_precomputed(base / "flow", n_subjects=4)
    config = REPO / "configs" / "ststnet_megc2019.yaml"
    return [_loso(base / f"gen_s{s}", data, config, "--seed", str(s), "--epochs", "3",
                  "--set", "train.lr=1e-3", "--set", "train.batch_size=16")
            for s in (0, 1)]


class _Collect(HTMLParser):
    """Sections, images, links and per-subject table cells of a report."""

    def __init__(self):
        super().__init__()
        self.sections, self.images, self.links = [], [], []
        self.rows, self._in_sortable, self._cell = [], False, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("data-section"))
        if tag == "img":
            self.images.append(a.get("src", ""))
        if "href" in a:
            self.links.append(a["href"])
        if tag == "table" and "sortable" in (a.get("class") or "").split():
            self._in_sortable = True
        if self._in_sortable and tag == "tr":
            self.rows.append([])
        if self._in_sortable and tag == "td":
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_sortable = False
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


def _decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,"), uri[:60]
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_report_of_a_real_run_is_self_contained(real_run, tmp_path):
    out = write_html_report([real_run], tmp_path / "report.html")
    html = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<link" not in html and "@import" not in html
    page = _parse(html)
    assert LOSO_SECTIONS <= set(page.sections)
    assert "gallery" not in page.sections  # STSTNet runs have no DSSI gallery
    assert "comparison" not in page.sections
    assert len(page.images) == 3  # confusion, recall, training curves
    for uri in page.images:
        image = _decode(uri)
        assert 200 < image.width <= MAX_WIDTH and image.height > 100
    assert out.stat().st_size < 5_000_000
    assert all(link.startswith("#") for link in page.links)


def test_per_subject_table_lists_worst_subjects_first(real_run, tmp_path):
    run = load_run(real_run)
    page = _parse(write_html_report([real_run], tmp_path / "r.html").read_text())
    rows = page.rows[1:]  # the first row is the header
    assert len(rows) == len(run.per_subject) == run.metrics["n_folds"]
    acc = [float(r[4]) for r in rows]
    assert acc == sorted(acc)
    expected = run.predictions.groupby(["dataset", "subject"]).apply(
        lambda p: (p["label"] == p["pred"]).mean(), include_groups=False)
    for _fold, dataset, subject, _n, acc_text, *_ in rows:
        assert float(acc_text) == pytest.approx(expected[(dataset, subject)], abs=1e-3)


def test_published_figures_follow_the_runs_protocol(real_run, seed_runs, tmp_path):
    run = load_run(real_run)
    html = write_html_report([real_run], tmp_path / "r.html").read_text()
    if run.benchmark is None:
        pytest.skip("shared MEGC2019 flow absent: the generated run has no published protocol")
    assert run.benchmark == "megc2019_3class_loso"
    bench = load_published()[run.benchmark]
    assert "published, not re-run" in html
    for entry in bench.entries:
        assert entry.method in html
        assert entry.source.split(",")[0] in html
    stst = next(e for e in bench.entries if e.method == "STSTNet")
    assert f"{stst.figures['all']['uf1']:.4f}" in html
    generated = write_html_report([seed_runs[0]], tmp_path / "g.html").read_text()
    assert "No published figures are listed" in generated


def test_seeds_of_one_config_get_mean_and_std(seed_runs, real_run, tmp_path):
    html = write_html_report(seed_runs, tmp_path / "seeds.html").read_text()
    page = _parse(html)
    assert "comparison" in page.sections and page.sections.count("metrics") == 2
    uf1 = [json.loads((r / "metrics.json").read_text())["uf1"] for r in seed_runs]
    assert f"{statistics.fmean(uf1):.4f}</b> ± {statistics.stdev(uf1):.4f}" in html
    assert f"({uf1[1] - uf1[0]:+.4f})" in html
    mixed = write_html_report([seed_runs[0], real_run], tmp_path / "mixed.html").read_text()
    assert "Comparison of 2 runs" in mixed and "mean ± std" not in mixed


def test_text_is_escaped_and_gallery_is_embedded(seed_runs, tmp_path):
    run_dir = tmp_path / "run <b>&amp; 'x'"
    shutil.copytree(seed_runs[0], run_dir)
    gallery = run_dir / "dssi_gallery"
    gallery.mkdir()
    Image.new("RGB", (2000, 400), (200, 30, 30)).save(gallery / "clip_a.png")
    Image.new("RGB", (300, 120), (30, 30, 200)).save(gallery / "clip_b.png")
    caption = "<script>alert(1)</script> weights 0.20, 0.80"
    (gallery / "captions.json").write_text(json.dumps({"clip_a.png": caption}))
    html = write_html_report([run_dir], tmp_path / "r.html").read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; weights 0.20, 0.80" in html
    assert "run <b>" not in html and "run &lt;b&gt;&amp;amp; &#x27;x&#x27;" in html
    page = _parse(html)
    assert "gallery" in page.sections
    widths = sorted(_decode(uri).width for uri in page.images)
    assert widths[-1] == MAX_WIDTH  # the 2000 px image is downscaled
    assert 300 in widths  # smaller images are kept as they are
    assert "clip_b" in html  # no caption: the file name stands in


def test_many_training_logs_are_drawn_as_a_band():
    logs = []
    for i in range(6):
        log = pd.DataFrame({"epoch": range(1, 11), "loss": [1.0 / (e + i) for e in range(1, 11)],
                            "train_acc": [0.1 * e for e in range(10)]})
        log.attrs["name"] = f"fold_{i:03d}"
        logs.append(log)
    image = _decode(training_curves_uri(logs))
    assert image.width > 500 and len(image.convert("L").getcolors(maxcolors=256)) > 20


def test_bad_run_directories_are_named(tmp_path):
    with pytest.raises(RunReportError, match="no such run directory"):
        write_html_report([tmp_path / "missing"], tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunReportError, match=r"empty.*no run\.json"):
        write_html_report([tmp_path / "empty"], tmp_path / "r.html")
    (tmp_path / "nofolds").mkdir()
    (tmp_path / "nofolds" / "run.json").write_text('{"classes": ["a", "b"]}')
    with pytest.raises(RunReportError, match="no finished folds"):
        write_html_report([tmp_path / "nofolds"], tmp_path / "r.html")
    with pytest.raises(RunReportError, match="no run directories"):
        write_html_report([], tmp_path / "r.html")


def test_published_file_is_validated():
    bench = load_published()
    assert {"megc2019_3class_loso", "casme2_5class_loso", "dfew_5fold"} <= set(bench)
    assert all(e.source and e.protocol == p for p, b in bench.items() for e in b.entries)
    with pytest.raises(PublishedResultsError, match="unknown protocol 'nope'"):
        load_published("protocols: {a: {title: A, metrics: [uf1]}}\n"
                       "entries: [{method: M, source: S, protocol: nope, figures: {}}]")
    with pytest.raises(PublishedResultsError, match=r"entry 0 lacks \['source'\]"):
        load_published("protocols: {a: {title: A, metrics: [uf1]}}\n"
                       "entries: [{method: M, protocol: a, figures: {}}]")


# --- Rendering in headless Chromium

#: Injected into a copy of the report: after load, lists the sections and each image's
#: decoded width in a <pre id="render-check"> that --dump-dom prints.
_CHECK_SCRIPT = """<script>
window.addEventListener("load", function () {
  var found = {
    sections: Array.from(document.querySelectorAll("section")).map(s => s.dataset.section),
    images: Array.from(document.images).map(i => i.naturalWidth),
  };
  var table = document.querySelector("table.sortable");
  var th = table.querySelector("th:nth-child(5)");
  th.click(); th.click();
  found.sorted_desc = Array.from(table.querySelectorAll("tbody tr"))
      .map(r => parseFloat(r.cells[4].textContent));
  var pre = document.createElement("pre");
  pre.id = "render-check";
  pre.textContent = JSON.stringify(found);
  document.body.appendChild(pre);
});
</script></body>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (install it: apt-get install -y chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(real_run, seed_runs, tmp_path):
    report = write_html_report([real_run, seed_runs[0]], tmp_path / "report.html")
    checked = tmp_path / "checked.html"
    checked.write_text(report.read_text().replace("</body>", _CHECK_SCRIPT))
    dom = _chromium(tmp_path, "--dump-dom", checked.as_uri())
    match = re.search(r'<pre id="render-check">(.*?)</pre>', dom.stdout, re.S)
    assert match, f"no render check in the dumped DOM; stderr: {dom.stderr[-2000:]}"
    found = json.loads(match.group(1).replace("&quot;", '"'))
    assert LOSO_SECTIONS | {"comparison"} <= set(found["sections"])
    assert len(found["images"]) == 6 and all(w > 200 for w in found["images"])
    acc = found["sorted_desc"]
    assert acc == sorted(acc, reverse=True)

    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", report.as_uri())
    assert shot.exists(), "Chromium wrote no screenshot"
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 4000)
    colours = image.resize((128, 400)).getcolors(maxcolors=100_000)
    assert colours is not None and len(colours) > 50  # text, tables and plots, not a blank page


def test_synthme_runs_get_no_published_comparison(tmp_path):
    from fervid.cli.demo import run_demo

    run_demo(tmp_path, epochs=1, only=["apex"], progress=False, n_subjects=2,
             clips_per_subject=3)
    html = write_html_report([tmp_path / "apex"], tmp_path / "r.html").read_text()
    assert "Generated data (SynthME): no published figure applies." in html
    assert "published, not re-run" not in html
