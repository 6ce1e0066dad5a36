"""``fervid fit``: the hold-out protocol on generated faces."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

import fervid.protocol.holdout as holdout
import fervid.training.trainer as trainer_module
from fervid.config import ConfigError, FitConfig, load_config
from fervid.datasets.from_config import read_face_release
from fervid.protocol.splits import holdout_fold
from fervid.representation.face_images import eval_face_batches, load_face_images
from fervid.runs.checkpoint import build_model_from_checkpoint, load_checkpoint


def _release(root, splits=("train", "validation", "test"), n=12, seed=0):
    """Three classes told apart by where a bright band lies."""
    rng = np.random.default_rng(seed)
    for split in splits:
        for k, name in enumerate(("angry", "happy", "sad")):
            folder = root / split / name if split else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 60, (24, 24), dtype=np.uint8)
                img[2 + 7 * k:8 + 7 * k] += 150
                cv2.imwrite(str(folder / f"{split}_{i}.png"), img)


def _cfg(**data) -> FitConfig:
    return FitConfig.model_validate({
        "data": {"resize": 24, "size": 20, **data},
        "model": {"name": "frame_resnet", "stem": "small"},
        "train": {"epochs": 3, "batch_size": 8, "lr": 0.01, "optimizer": "sgd"}})


@pytest.fixture(scope="module")
def fer_like(tmp_path_factory):
    root = tmp_path_factory.mktemp("fer")
    _release(root)
    return root


def test_fit_writes_model_and_split_metrics(fer_like, tmp_path):
    cfg = _cfg()
    images = read_face_release(cfg, fer_like)
    metrics = holdout.run_holdout(cfg, images, tmp_path / "run", progress=False)
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["test"]["acc"] == pytest.approx(metrics["test"]["acc"])
    for split in ("validation", "test"):
        m = on_disk[split]
        assert set(m) >= {"acc", "uar", "per_class_recall", "confusion", "n_samples"}
        assert m["n_samples"] == 36 and np.sum(m["confusion"]) == 36
    log = pd.read_csv(tmp_path / "run" / "train_logs" / "fit.csv")
    sel = on_disk["selection"]
    assert sel["rule"] == "best_validation" and sel["validation_split"] == "release"
    assert sel["epoch"] == int(log["epoch"][log["val_acc"].idxmax()])
    # The checkpoint is self-describing and gives the test predictions written.
    ckpt = load_checkpoint(tmp_path / "run" / "model.pt")
    assert ckpt.schema == "holdout" and ckpt.input_spec.representation == "frame"
    assert ckpt.input_spec.size == 20 and ckpt.input_spec.resize == 24
    model = build_model_from_checkpoint(ckpt)
    test = [i for i, s in enumerate(images.table) if s.split == "test"]
    faces = load_face_images(images.table, 24, show_progress=False)
    with torch.no_grad():
        preds = torch.cat([model(x).logits.argmax(1)
                           for x in eval_face_batches(faces, torch.tensor(test), 8, 20)])
    written = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert written[written["split"] == "test"]["pred"].tolist() == preds.tolist()
    # The band task is learnable: far above chance (1/3).
    assert on_disk["validation"]["acc"] > 0.6


def test_release_without_splits_gets_a_carved_validation(tmp_path):
    _release(tmp_path / "faces", splits=("",), n=10)
    cfg = _cfg(dataset="image_folder", validation_fraction=0.2)
    metrics = holdout.run_holdout(cfg, read_face_release(cfg, tmp_path / "faces"),
                                  tmp_path / "run", progress=False)
    assert metrics["selection"]["validation_split"] == "carved"
    assert metrics["validation"]["n_samples"] == 6 and metrics["test"] is None
    assert json.loads((tmp_path / "run" / "run.json").read_text())["samples"] == {
        "train": 24, "validation": 6, "test": 0}


def test_killed_fit_resumes_to_the_same_model(fer_like, tmp_path, monkeypatch):
    cfg = _cfg()
    images = read_face_release(cfg, fer_like)
    holdout.run_holdout(cfg, images, tmp_path / "whole", progress=False)
    real = trainer_module.train_one_epoch
    calls = {"n": 0}

    def dies_in_third_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "train_one_epoch", dies_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        holdout.run_holdout(cfg, images, tmp_path / "killed", progress=False)
    assert (tmp_path / "killed" / "checkpoints" / "fit.pt").exists()
    monkeypatch.setattr(trainer_module, "train_one_epoch", real)
    holdout.run_holdout(cfg, images, tmp_path / "killed", progress=False)
    a = load_checkpoint(tmp_path / "whole" / "model.pt").state_dict
    b = load_checkpoint(tmp_path / "killed" / "model.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(pd.read_csv(tmp_path / "killed" / "train_logs" / "fit.csv")) == 3
    assert not (tmp_path / "killed" / "checkpoints" / "fit.pt").exists()


def test_fit_cli_and_bad_config(fer_like, tmp_path):
    from typer.testing import CliRunner

    from fervid.cli import app

    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {resize: 24, size: 32}\n")
    result = CliRunner().invoke(app, ["fit", "--config", str(cfg), "--data-root",
                                      str(fer_like), "--out", str(tmp_path / "run"),
                                      "--no-progress"])
    assert result.exit_code == 2
    assert "data.size 32 is larger than data.resize 24" in result.output


def test_carved_validation_keeps_subjects_apart():
    subjects = [f"S{i // 4:03d}" for i in range(40)]  # 10 subjects, 4 samples each
    labels = np.array([i % 2 for i in range(40)])
    splits = holdout_fold([""] * 40, labels, 0.2, seed=0, subjects=subjects)
    assert splits.validation_source == "carved by subject"
    train = {subjects[i] for i in splits.train.tolist()}
    val = {subjects[i] for i in splits.validation.tolist()}
    assert val and train and not train & val
    assert len(splits.train) + len(splits.validation) == 40
    # Without subjects: per class; too small to stratify falls back to a plain split.
    tiny = holdout_fold([""] * 5, np.array([0, 1, 2, 3, 4]), 0.2, seed=0)
    assert (len(tiny.train), len(tiny.validation)) == (4, 1)


def test_fit_averages_the_last_epochs_when_asked(fer_like, tmp_path):
    last = _cfg()
    last = last.model_copy(update={"train": last.train.model_copy(update={"selection": "last"})})
    averaged = last.model_copy(update={"train": last.train.model_copy(
        update={"average_last": 2})})
    images = read_face_release(last, fer_like)
    holdout.run_holdout(last, images, tmp_path / "last", progress=False)
    metrics = holdout.run_holdout(averaged, images, tmp_path / "avg", progress=False)
    assert metrics["selection"]["rule"] == "last"
    a = load_checkpoint(tmp_path / "last" / "model.pt").state_dict
    b = load_checkpoint(tmp_path / "avg" / "model.pt").state_dict
    assert any(not torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match="set train.selection=last"):
        load_config(None, ["train.average_last=2", "train.selection=best_validation"],
                    schema=FitConfig)
