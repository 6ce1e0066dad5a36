"""Real raw CASME II footage (../shared/data/casme2_raw): 9 clips of subject 01 in the raw
release layout, onset to offset, with the coding sheet, and EP02_01f_30fps.avi, a video made
from one clip. Each test skips with the reason when ../shared is absent.

``prepare flow`` is not run here: it reads the release through ``read_casme2``, which refuses
a release whose sheet names clip folders it lacks (246 of 255 here).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import shared_path
from fervid.cli import app
from fervid.cli.demo import VARIANTS, demo_config
from fervid.datasets.casme2 import read_casme2_sheet
from fervid.datasets.frames import NUMBERED_IMAGE, numbered_images
from fervid.datasets.sheets import AnnotationWarning
from fervid.predict.api import predict_video
from fervid.prepare.faces import prepare_faces
from fervid.representation.dssi import DssiParams, dssi_from_sample
from fervid.runs.checkpoint import save_checkpoint
from fervid.samples import Sample

CLIPS = ("EP02_01f", "EP03_02", "EP04_02", "EP04_03", "EP04_04", "EP19_01", "EP19_03f",
         "EP19_05f", "EP19_06f")


@pytest.fixture(scope="module")
def raw_root() -> Path:
    return shared_path("casme2_raw", "CASME2_RAW_selected")


@pytest.fixture(scope="module")
def rows():
    """The sheet's rows of the 9 clips, by clip name."""
    with warnings.catch_warnings():  # sub04's unannotated apex: not one of these clips
        warnings.simplefilter("ignore", AnnotationWarning)
        table = read_casme2_sheet(shared_path("casme2_raw", "CASME2-coding-20140508.xlsx"))
    table = table[(table["subject"] == "sub01") & table["clip"].isin(CLIPS)]
    return {r.clip: r for r in table.itertuples(index=False)}


def _numbers(files: list[Path]) -> list[int]:
    return [int(NUMBERED_IMAGE.fullmatch(f.name).group(1)) for f in files]


def test_each_folder_is_its_sheet_rows_onset_to_offset(raw_root, rows):
    assert sorted(p.name for p in (raw_root / "sub01").iterdir()) == sorted(CLIPS)
    total = 0
    for clip, row in rows.items():
        files = numbered_images(raw_root / "sub01" / clip)
        assert _numbers(files) == list(range(row.onset, row.offset + 1)), clip
        total += len(files)
    assert total == 497
    assert cv2.imread(str(files[0])).shape == (480, 640, 3)
    emotions = sorted(r.emotion for r in rows.values())
    assert emotions == ["disgust"] * 2 + ["happiness"] + ["others"] * 6


def test_prepare_faces_on_the_raw_release(raw_root, tmp_path):
    """Every frame of every clip gets an aligned face, named as the Cropped release names
    it (reg_img{N}.jpg), with its face track."""
    out = tmp_path / "cropped"
    # Faces barely move in CASME II: the detector every 30 frames keeps this near 10 s.
    result = prepare_faces("casme2", raw_root, out, size=112, detect_every=30, workers=2,
                           progress=False)
    assert result.failed == [] and result.written == 9 and result.frames == 497
    assert result.frames_without_face == 0
    for clip in CLIPS:
        raw = _numbers(numbered_images(raw_root / "sub01" / clip))
        made = sorted((out / "sub01" / clip).glob("reg_img*.jpg"))
        assert sorted(_numbers(made)) == raw, clip
    face = cv2.imread(str(made[0]))
    assert face.shape == (112, 112, 3) and 40 < face.mean() < 220
    assert len(list((out / "_face_tracks").rglob("*.csv"))) == 9


def test_dssi_of_each_clip_with_its_apex_from_the_sheet(raw_root, rows):
    """Phase DSSI: two segments onset→apex and two apex→offset, the apex being the sheet's
    frame number; every dynamic image shows motion (not a flat image)."""
    params = DssiParams(protocol="phase", segments_per_phase=2, frames_per_segment=4,
                        mode="gray")
    for clip, row in rows.items():
        frames = tuple(numbered_images(raw_root / "sub01" / clip))
        sample = Sample("casme2", "sub01", clip, row.onset, row.apex, row.offset, row.emotion,
                        None, frames, fps=200.0)
        result = dssi_from_sample(sample, params)
        apex = sample.apex_position
        assert frames[apex].name == f"img{row.apex}.jpg"
        assert result.local.shape == (4, 480, 640, 1) and result.global_.shape == (480, 640, 1)
        before, after = result.indices[:2], result.indices[2:]
        assert all(i.max() <= apex for i in before) and all(i.min() >= apex for i in after)
        assert result.indices[0].min() == 0 and result.indices[-1].max() == len(frames) - 1
        assert all(np.isfinite(d).all() and d.std() > 0 for d in (*result.local,
                                                                 result.global_)), clip


def test_predict_the_avi_with_the_bundled_model():
    video = shared_path("casme2_raw", "EP02_01f_30fps.avi")
    r = predict_video(video, device="cpu")
    assert r.bundled == "fer_mini_xception" and r.fps == 30
    assert len(r.frames) == 44 and r.frames["face"].all()
    assert (r.frames["status"] != "missing").all()
    assert r.frames["landmark_nme"].max() < 0.05  # a still face, a steady fit
    np.testing.assert_allclose(r.frames[list(r.classes)].sum(axis=1), 1.0, atol=1e-6)
    assert len(r.windows) == 1 and r.label in r.classes


@pytest.fixture(scope="module")
def window_ckpt(tmp_path_factory) -> Path:
    """A window model: the demo's SMA-STN (32 px grey DSSI of each window), untrained."""
    from fervid.models import model_from_config

    cfg = demo_config(VARIANTS[0], epochs=1)
    torch.manual_seed(0)
    model = model_from_config(cfg.model.model_copy(update={"pretrained_path": None}),
                              in_chans=1, num_classes=len(cfg.data.classes))
    path = tmp_path_factory.mktemp("ckpt") / "smastn.pt"
    return save_checkpoint(path, model.state_dict(), config=cfg, classes=cfg.data.classes)


def test_predict_the_avi_with_a_window_model(window_ckpt, tmp_path):
    video = shared_path("casme2_raw", "EP02_01f_30fps.avi")
    result = CliRunner().invoke(app, ["predict", str(video), "--checkpoint", str(window_ckpt),
                                      "--out", str(tmp_path), "--window", "0.5",
                                      "--stride", "0.25", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "bundled" not in result.stdout.splitlines()[0]
    payload = json.loads((tmp_path / "predictions.json").read_text())
    assert payload["input"]["representation"] == "dssi" and "frames" not in payload
    # 15-frame windows every 8 frames over 44 frames
    assert len(payload["windows"]) == 4 and not payload["skipped_windows"]
    r = predict_video(video, window_ckpt, window_s=0.5, stride_s=0.25)
    assert len(r.windows) == 4 and not set(r.classes) & set(r.frames.columns)
    assert r.windows[list(r.classes)].to_numpy().sum(axis=1) == pytest.approx(1.0)
