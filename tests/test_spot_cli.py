"""``fervid spot``: intervals.csv, spot.json and the timeline from a frame folder or a video."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
from typer.testing import CliRunner

from fervid.cli import app
from fervid.synth.long_video import LongVideoSpec, make_synthme_long

runner = CliRunner()


def test_spot_writes_intervals_with_frames_and_seconds(tmp_path):
    make_synthme_long(tmp_path / "data", n_subjects=1, spec=LongVideoSpec(
        seconds=10, size=128, n_micro=1, n_macro=1), seed=5)
    frames = next((tmp_path / "data" / "rawpic" / "s15").iterdir())
    result = runner.invoke(app, ["spot", str(frames), "--fps", "30", "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "300 frames at 30 fps (300 with a face)" in result.output
    with open(tmp_path / "out" / "intervals.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and set(rows[0]) == {"onset", "apex", "offset", "onset_s", "apex_s",
                                     "offset_s", "type", "score"}
    for row in rows:
        assert int(row["onset"]) <= int(row["apex"]) <= int(row["offset"])
        assert float(row["onset_s"]) == round((int(row["onset"]) - 1) / 30, 3)
        assert row["type"] in ("micro", "macro")
    summary = json.loads((tmp_path / "out" / "spot.json").read_text())
    assert summary["frames"] == 300 and summary["fps"] == 30
    assert sum(summary["intervals"].values()) == len(rows)
    image = cv2.imread(str(tmp_path / "out" / "timeline.png"))
    assert image is not None and image.shape[1] > 800


def test_a_folder_without_a_frame_rate_is_one_line_exit_2(tmp_path):
    (tmp_path / "frames").mkdir()
    for i in (1, 2, 3):
        cv2.imwrite(str(tmp_path / "frames" / f"img{i}.jpg"), np.zeros((32, 32), np.uint8))
    result = runner.invoke(app, ["spot", str(tmp_path / "frames"), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "fps" in result.output and "Traceback" not in result.output


def test_frames_without_a_face_exit_3(tmp_path):
    (tmp_path / "frames").mkdir()
    for i in range(1, 13):
        cv2.imwrite(str(tmp_path / "frames" / f"img{i}.jpg"), np.full((64, 64), 90, np.uint8))
    result = runner.invoke(app, ["spot", str(tmp_path / "frames"), "--fps", "30", "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    assert "no face" in result.output


def test_a_bad_option_is_exit_2(tmp_path):
    result = runner.invoke(app, ["spot", str(tmp_path), "--fps", "30", "--micro-k", "0",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--micro-k" in result.output


def test_spot_a_release_scores_it_with_default_and_loso_thresholds(tmp_path):
    sheet = make_synthme_long(tmp_path / "data", n_subjects=2, spec=LongVideoSpec(
        seconds=10, size=128, n_micro=1, n_macro=1), seed=6)
    out = tmp_path / "run"
    result = runner.invoke(app, ["spot", "--dataset", "casme_sq_long", "--data-root",
                                 str(tmp_path / "data" / "rawpic"), "--sheet", str(sheet),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "loso: micro F1" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["videos"] == 2 and metrics["frames"] == 600
    assert metrics["truth"]["micro"] == 2 and metrics["truth"]["macro"] == 2
    for name in ("default", "loso"):
        counts = metrics[name]["overall"]
        assert counts["tp"] + counts["fn"] == 4
    with open(out / "folds.csv") as f:
        assert [r["subject"] for r in csv.DictReader(f)] == ["s15", "s16"]
    with open(out / "intervals.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(metrics["loso"][k]["tp"] + metrics["loso"][k]["fp"]
                            for k in ("micro", "macro"))


def test_spot_takes_a_source_or_a_release_not_both(tmp_path):
    result = runner.invoke(app, ["spot", str(tmp_path), "--dataset", "samm_lv", "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 2 and "not both" in result.output
    result = runner.invoke(app, ["spot", "--dataset", "samm_lv", "--data-root", str(tmp_path),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--sheet" in result.output
    result = runner.invoke(app, ["spot", "--dataset", "casme2", "--data-root", str(tmp_path),
                                 "--sheet", str(tmp_path / "s.xlsx"), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 2 and "cannot be used for spotting" in result.output
