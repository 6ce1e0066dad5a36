"""``fervid predict --spot``: spot a SynthME long video, then classify each micro-expression
interval with a small recognition checkpoint (the demo's SMA-STN config, untrained weights)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fervid.cli import app
from fervid.cli.demo import VARIANTS, demo_config
from fervid.predict import spot_recognise
from fervid.predict.sources import open_frames
from fervid.predict.spot_outputs import COLUMNS
from fervid.predict.spot_recognise import (
    CLASSIFIED,
    MACRO_NOT_CLASSIFIED,
    spot_then_recognise,
)
from fervid.runs.checkpoint import save_checkpoint
from fervid.synth.long_video import LongVideoSpec, make_synthme_long

runner = CliRunner()


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """10 s at 30 fps, 128 px: one macro- and two micro-expressions (the spotter finds two
    micro intervals and the macro one with its defaults)."""
    root = tmp_path_factory.mktemp("long")
    make_synthme_long(root, n_subjects=1, spec=LongVideoSpec(
        seconds=10, size=128, n_micro=2, n_macro=1), seed=5)
    return next((root / "rawpic" / "s15").iterdir())


def _checkpoint(path: Path, **data) -> Path:
    cfg = demo_config(VARIANTS[0], epochs=1)
    from fervid.models import model_from_config

    torch.manual_seed(0)
    model = model_from_config(cfg.model.model_copy(update={"pretrained_path": None}),
                              in_chans=1, num_classes=len(cfg.data.classes))
    config = cfg.model_dump()
    config["data"].update(data)
    return save_checkpoint(path, model.state_dict(), config=config, classes=cfg.data.classes)


@pytest.fixture(scope="module")
def smastn_ckpt(tmp_path_factory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("ckpt") / "smastn.pt")


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_predict_spot_classifies_each_micro_interval(long_video, smastn_ckpt, tmp_path,
                                                     monkeypatch):
    built = []  # (frames, apex) of each input the builder was given
    real = spot_recognise.build_input

    def recording(spec, frames, *, apex=None):
        built.append((len(frames), apex))
        return real(spec, frames, apex=apex)

    monkeypatch.setattr(spot_recognise, "build_input", recording)
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", str(long_video), "--fps", "30", "--spot",
                                 "--checkpoint", str(smastn_ckpt), "--out", str(out),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "3 intervals spotted, 2 classified by smastn" in " ".join(result.output.split())
    rows = _rows(out / "intervals.csv")
    classes = json.loads((out / "recognition.json").read_text())["classes"]
    assert list(rows[0]) == [*COLUMNS, "status", "label", "confidence", *classes]
    micro = [r for r in rows if r["type"] == "micro"]
    macro = [r for r in rows if r["type"] == "macro"]
    assert len(micro) == 2 and len(macro) == 1
    for r in micro:
        probs = [float(r[c]) for c in classes]
        assert r["status"] == CLASSIFIED and sum(probs) == pytest.approx(1, abs=1e-3)
        assert r["label"] == classes[int(np.argmax(probs))]
        assert float(r["confidence"]) == pytest.approx(max(probs), abs=1e-4)
    assert macro[0]["status"] == MACRO_NOT_CLASSIFIED and macro[0]["label"] == ""
    assert all(macro[0][c] == "" for c in classes)
    # Each interval is one window, onset to offset, with its spotted apex.
    assert sorted(built) == sorted((int(r["offset"]) - int(r["onset"]) + 1,
                                    int(r["apex"]) - int(r["onset"])) for r in micro)
    spotted = json.loads((out / "spot.json").read_text())
    assert spotted["intervals"] == {"micro": 2, "macro": 1} and spotted["frames"] == 300
    saved = json.loads((out / "recognition.json").read_text())
    assert saved["counts"] == {"intervals": 3, "classified": 2}
    assert saved["provenance"] and saved["seconds"]["total"] > 0
    image = cv2.imread(str(out / "timeline.png"))
    assert image is not None and image.shape[1] > 800


def test_a_video_file_works_and_macro_intervals_are_classified_on_request(long_video, smastn_ckpt,
                                                                     tmp_path):
    video = tmp_path / "long.mp4"
    frames = sorted(long_video.glob("img*.jpg"), key=lambda p: int(p.stem[3:]))
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width = stream.height = 128
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        for path in frames:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            frame = av.VideoFrame.from_ndarray(np.repeat(image[..., None], 3, 2), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    result = spot_then_recognise(video, smastn_ckpt, classify_macro=True)
    assert result.spot.n_frames == 300 and result.spot.fps == pytest.approx(30)
    kinds = {r.interval.kind for r in result.intervals}  # H.264 moves the micro peaks a bit
    assert kinds == {"macro", "micro"}
    assert all(r.status == CLASSIFIED and len(r.probs) == 5 for r in result.intervals)


def test_the_second_pass_reads_only_the_intervals_frames():
    array = np.arange(20, dtype=np.uint8)[:, None, None].repeat(8, 1).repeat(8, 2)
    got = list(spot_recognise._frames(open_frames(array, 10.0), [3, 4, 9], "gray"))
    assert [i for i, _ in got] == [3, 4, 9]
    assert [int(f[0, 0]) for _, f in got] == [3, 4, 9]


def test_an_au_checkpoint_is_refused_in_one_line(long_video, tmp_path):
    ckpt = _checkpoint(tmp_path / "au.pt", task="au")
    result = runner.invoke(app, ["predict", str(long_video), "--fps", "30", "--spot",
                                 "--checkpoint", str(ckpt), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "an AU detection model" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_frames_without_a_face_exit_3(smastn_ckpt, tmp_path):
    (tmp_path / "frames").mkdir()
    for i in range(1, 13):
        cv2.imwrite(str(tmp_path / "frames" / f"img{i}.jpg"), np.full((64, 64), 90, np.uint8))
    result = runner.invoke(app, ["predict", str(tmp_path / "frames"), "--fps", "30", "--spot",
                                 "--checkpoint", str(smastn_ckpt), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    assert "no face found" in result.output


def test_annotate_is_refused_with_spot(long_video, smastn_ckpt, tmp_path):
    result = runner.invoke(app, ["predict", str(long_video), "--fps", "30", "--spot",
                                 "--annotate", "--checkpoint", str(smastn_ckpt), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 2 and "--annotate" in result.output
