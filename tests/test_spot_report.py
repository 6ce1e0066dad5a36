"""``fervid report RUN`` (and ``--html``) on spotting run folders, written by the real
spotting run code on SynthME long videos with stand-in signals (the optical-flow pass is the
slow part and is tested elsewhere)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fervid.cli import app
from fervid.config.spotting import SpotConfig, SpotDataConfig
from fervid.datasets.long_videos import KINDS
from fervid.predict import spot_release
from fervid.report.spotting import is_spot_run, load_spot_run
from fervid.synth.long_video import LongVideoSpec, make_synthme_long, read_synthme_long

runner = CliRunner()


@pytest.fixture(scope="module")
def spot_run(tmp_path_factory) -> Path:
    """A finished LOSO spotting run of 3 subjects; each video's signals: noise, a bump at
    each coded expression of its kind, and one spurious bump (a false positive)."""
    root = tmp_path_factory.mktemp("spot")
    make_synthme_long(root / "long", n_subjects=3, spec=LongVideoSpec(
        seconds=8, size=96, n_micro=1, n_macro=1), seed=3)
    release = read_synthme_long(root / "long")
    truth = {str(v.folder): v for v in release.videos}
    rng = np.random.default_rng(0)

    def stand_in(folder, *, fps, settings):
        video = truth[str(folder)]
        signals = {k: rng.uniform(0, 0.1, video.n_frames).astype(np.float32) for k in KINDS}
        for g in video.intervals:
            t = np.arange(video.n_frames)
            width = max(1.0, (g.end(video.n_frames) - g.onset) / 4)
            signals[g.kind] += 5 * np.exp(-0.5 * ((t - (g.apex or g.onset) + 1) / width) ** 2)
        signals["micro"][20:23] += 5  # not coded
        return SimpleNamespace(signals=signals)

    cfg = SpotConfig(name="spot_test", spotter="flow",
                     data=SpotDataConfig(dataset="synthme_long", root=str(root / "long")))
    mp = pytest.MonkeyPatch()
    mp.setattr(spot_release, "spot_frames", stand_in)
    try:
        spot_release.run_spotting(cfg, root / "run")
    finally:
        mp.undo()
    return root / "run"


def test_report_prints_and_writes_html_of_a_spotting_run(spot_run, tmp_path):
    (spot_run / "notes.txt").write_text("a file the report does not know")
    image = np.full((60, 200, 3), 255, np.uint8)
    cv2.imwrite(str(spot_run / "timeline.png"), image)
    html = tmp_path / "spot.html"
    result = runner.invoke(app, ["report", str(spot_run), "--html", str(html)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((spot_run / "metrics.json").read_text())
    f1 = f"{metrics['loso']['overall']['f1']:.3f}"
    assert "loso" in result.output and f1 in result.output and "default" in result.output
    page = html.read_text()
    for kind in ("spot-scores", "spot-folds", "spot-subjects", "spot-videos", "spot-timelines",
                 "spot-metadata"):
        assert f'data-section="{kind}"' in page
    assert f"<b>{f1}</b>" in page
    # the run folder's own picture and one drawn timeline per video (3 videos)
    assert page.count("data:image/png;base64,") == 1 + 3
    assert "run.json" in page and "config.yaml" in page


def test_counts_per_subject_and_video_add_up_to_the_scores(spot_run):
    run = load_spot_run(spot_run)
    loso = run.score_sets()["loso"]
    for column in ("subject", "video"):
        counts = run.counts_by(column)
        assert len(counts) == 3
        for kind in ("micro", "macro"):
            for key, col in (("tp", "tp"), ("fp", "fp"), ("fn", "fn")):
                assert counts[f"{kind}_{col}"].sum() == loso[kind][key], (column, kind, key)
            assert counts[f"{kind}_truth"].sum() == run.metrics["truth"][kind]


def test_an_older_run_folder_with_metrics_only_is_read(tmp_path):
    scores = {k: {"tp": 1, "fp": 2, "fn": 3, "precision": 1 / 3, "recall": 0.25,
                  "f1": 2 / 7} for k in ("micro", "macro", "overall")}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(
        {"dataset": "casme_sq_long", "loso": scores, "default": scores}))
    assert is_spot_run(tmp_path / "old")
    run = load_spot_run(tmp_path / "old")
    assert list(run.score_sets()) == ["loso", "default"] and run.counts_by("video").empty
    result = runner.invoke(app, ["report", str(tmp_path / "old"), "--html",
                                 str(tmp_path / "old.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "old.html").read_text()
    assert "not recorded (an older run folder)" in page
    assert not re.search(r'data-section="spot-(subjects|timelines)"', page)


def test_a_spotting_run_without_readable_metrics_is_one_line_exit_2(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"kind": "spotting"}))
    (tmp_path / "run" / "metrics.json").write_text("{not json")
    result = runner.invoke(app, ["report", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "metrics.json" in result.output and "Traceback" not in result.output
