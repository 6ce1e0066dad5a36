"""SMA-STN and its baselines under the LOSO engine, on generated CASME II-format clips."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from fervid.cli import app
from fervid.config import LosoConfig
from fervid.protocol.loso import load_loso_data, run_loso
from fervid.report.dssi_gallery import write_dssi_gallery
from fervid.representation.dssi import DssiParams
from fervid.samples import PROTOCOL_CLASSES
from fervid.synth import make_casme2_like, make_synthme
from fervid.synth.casme2_like import EMOTIONS, FRAMES_DIR

SHEET = "CASME2-coding-20140508.xlsx"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    make_casme2_like(root, n_subjects=3, clips_per_subject=5, size=32, seed=1)
    return root


def config(**sections) -> LosoConfig:
    base = {
        "name": "test_smastn", "seed": 0,
        "model": {"name": "smastn", "drop_rate": 0.0},
        "data": {"format": "dssi", "dataset": "casme2", "protocol": "5class",
                 "sheet": f"../{SHEET}", "classes": list(PROTOCOL_CLASSES["casme2_5class"]),
                 "size": 32, "dssi": {"mode": "gray", "segments_per_phase": 1},
                 "train_views": 2},
        "train": {"lr": 1e-3, "batch_size": 8, "epochs": 1, "feature_loss": "de"},
        "run": {"engine": "sequential"},
    }
    for name, values in sections.items():
        base[name] = {**base[name], **values}
    return LosoConfig.model_validate(base)


def test_dssi_inputs_shapes_and_cache(release, tmp_path, monkeypatch):
    cfg = config()
    data = load_loso_data(cfg, release / FRAMES_DIR, cache_dir=tmp_path, progress=False)
    n = len(data.table)
    assert n == 15
    assert data.x.shape == (n, 3, 1, 32, 32)  # K = 2 local + 1 global, grayscale
    assert data.train_views.shape == (2, n, 3, 1, 32, 32)
    assert not torch.equal(data.train_views[0], data.train_views[1])  # jitter differs per view
    # Each image is standardised (zero mean, unit std).
    flat = data.x.float().flatten(2)
    assert flat.mean(-1).abs().max() < 1e-2 and (flat.std(-1) - 1).abs().max() < 1e-2

    # A second load decodes no JPEG: every result comes from the cache.
    def no_decoding(*args, **kwargs):
        raise AssertionError("a frame was decoded again")

    monkeypatch.setattr(cv2, "imread", no_decoding)
    again = load_loso_data(cfg, release / FRAMES_DIR, cache_dir=tmp_path, progress=False)
    assert torch.equal(again.x, data.x) and torch.equal(again.train_views, data.train_views)


@pytest.mark.parametrize("fmt", ["apex", "global_di"])
def test_single_image_inputs(release, tmp_path, fmt):
    cfg = config(data={"format": fmt})
    data = load_loso_data(cfg, release / FRAMES_DIR, cache_dir=tmp_path, progress=False)
    assert data.x.shape == (15, 1, 32, 32) and data.train_views is None


def test_smastn_loso_end_to_end_with_gallery(release, tmp_path):
    cfg = config()
    data = load_loso_data(cfg, release / FRAMES_DIR, cache_dir=tmp_path / "cache",
                          progress=False)
    report = run_loso(cfg, data, tmp_path / "run", progress=False)
    assert report.metrics["n_folds"] == 3 and report.metrics["n_samples"] == 15
    folds = pd.concat(pd.read_csv(f) for f in (tmp_path / "run" / "folds").glob("*.csv"))
    weights = folds[["alpha_0", "alpha_1"]].to_numpy()
    assert np.allclose(weights.sum(1), 1, atol=1e-4) and (weights > 0).all()
    state = torch.load(tmp_path / "run" / "models" / "fold_000.pt", weights_only=True)["state_dict"]
    assert any("spatial" in k for k in state)  # the STMA non-local block was trained
    pictures = write_dssi_gallery(tmp_path / "run", data.table,
                                  DssiParams(**cfg.data.dssi.model_dump()), tmp_path / "cache")
    assert pictures and all(p.stat().st_size > 1000 for p in pictures)
    captions = json.loads((tmp_path / "run" / "dssi_gallery" / "captions.json").read_text())
    assert set(captions) == {p.name for p in pictures}
    assert all("segment weights" in c for c in captions.values())


def test_same_seed_same_predictions(release, tmp_path):
    cfg = config(train={"feature_loss": "none"})
    data = load_loso_data(cfg, release / FRAMES_DIR, cache_dir=tmp_path / "c", progress=False)
    for name in ("a", "b"):
        run_loso(cfg, data, tmp_path / name, folds_spec="0", progress=False)
    a, b = ((tmp_path / n / "folds" / "fold_000.csv").read_bytes() for n in "ab")
    assert a == b


def test_feature_loss_trains_any_model_with_features(release, tmp_path):
    # Every model returns its features (ModelOutput), so DE-Loss is not SMA-STN's alone.
    cfg = config(model={"name": "apex_resnet"}, data={"format": "apex"})
    assert cfg.train.feature_loss == "de"
    data = load_loso_data(cfg, release / FRAMES_DIR, cache_dir=tmp_path, progress=False)
    run_loso(cfg, data, tmp_path / "run", folds_spec="0", progress=False)
    assert (tmp_path / "run" / "folds" / "fold_000.csv").exists()
    assert (tmp_path / "run" / "models" / "fold_000.pt").exists()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["protocol"] == "loso"


def test_bad_frame_names_the_clip(tmp_path):
    root = tmp_path / "tree"
    # two subjects: one alone cannot make a LOSO fold, which is checked before any frame
    make_casme2_like(root, n_subjects=2, clips_per_subject=2, size=32)
    victim = sorted((root / FRAMES_DIR).rglob("*.jpg"))[3]
    victim.write_bytes(b"not a jpeg")
    clip = victim.parent.name
    with pytest.raises(ValueError, match=f"{clip}.*cannot read frame"):
        load_loso_data(config(), root / FRAMES_DIR, cache_dir=tmp_path / "c", progress=False)


def test_wrong_classes_or_missing_dataset_are_clear(release, tmp_path):
    with pytest.raises(ValueError, match="set data.dataset"):
        load_loso_data(config(data={"dataset": None}), release / FRAMES_DIR,
                       cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="differ from the classes"):
        load_loso_data(config(data={"classes": ["a", "b", "c"]}), release / FRAMES_DIR,
                       cache_dir=tmp_path, progress=False)


def test_cli_loso_runs_smastn(release, tmp_path):
    cfg_path = tmp_path / "smastn.yaml"
    cfg_path.write_text(json.dumps(config().model_dump()))  # JSON is YAML
    result = CliRunner().invoke(app, [
        "loso", "--config", str(cfg_path), "--data-root", str(release / FRAMES_DIR),
        "--out", str(tmp_path / "run"), "--folds", "1", "--cache-dir", str(tmp_path / "c"),
        "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "folds" / "fold_001.csv").exists()


def test_synthme_is_imbalanced_with_long_clips(tmp_path):
    import openpyxl

    sheet = make_synthme(tmp_path, n_subjects=4, clips_per_subject=10, size=32)
    rows = list(openpyxl.load_workbook(sheet).active.iter_rows(min_row=2, values_only=True))
    lengths = [r[5] - r[3] + 1 for r in rows]
    assert min(lengths) >= 20 and max(lengths) <= 60
    counts = pd.Series([r[8] for r in rows]).value_counts()
    assert set(counts.index) <= set(EMOTIONS)
    assert counts.get("others", 0) > counts.get("surprise", 0)  # CASME II's imbalance


def test_cli_dssi_picture_of_real_frames(shared, tmp_path):
    frames = shared("casme2_sequence")
    out = tmp_path / "dssi.png"
    result = CliRunner().invoke(app, ["dssi", str(frames), "--out", str(out), "--mode", "gray"])
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(out))
    assert image is not None and image.shape[1] > 4 * image.shape[0] / 2
    missing = CliRunner().invoke(app, ["dssi", str(tmp_path / "nowhere"), "--out", str(out)])
    assert missing.exit_code == 2 and "not a folder of frames" in missing.output


@pytest.mark.parametrize("name, fixture, n_clips", [("smastn_casme2", "casme2_release", 246),
                                                     ("smastn_samm", "samm_release", 136)])
def test_real_data_configs_read_the_official_release(request, name, fixture, n_clips):
    from fervid.config import load_config
    from fervid.datasets.from_config import read_release

    root, sheet = request.getfixturevalue(fixture)
    cfg = load_config(Path(__file__).parents[1] / "configs" / f"{name}.yaml",
                      [f"data.sheet={sheet}"])
    table = read_release(cfg, root)
    assert len(table) == n_clips and table.classes == tuple(cfg.data.classes)


def test_demo_writes_the_ablation_table_and_gallery(tmp_path):
    from fervid.cli.demo import run_demo

    rows = run_demo(tmp_path, epochs=1, only=["smastn", "apex"], progress=False, n_subjects=3,
                    clips_per_subject=3)
    assert [r["model"] for r in rows] == ["smastn", "apex"]
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert saved["rows"] == rows and all(0 <= r["uf1"] <= 1 for r in rows)
    assert (tmp_path / "smastn" / "metrics.json").exists()
    assert list((tmp_path / "smastn" / "dssi_gallery").glob("*.png"))
    assert not (tmp_path / "apex" / "dssi_gallery").exists()
    with pytest.raises(ValueError, match="unknown demo variant"):
        run_demo(tmp_path, only=["nope"], progress=False)
