"""DFEW 5-fold protocol end to end on a fixture release built from the real split files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from dfew_fixture import fold1_release
from fervid.cli import app
from fervid.config import ConfigError, KfoldConfig, load_config
from fervid.protocol import kfold as kfold_module
from fervid.protocol.kfold import run_kfold
from fervid.protocol.selection import best_choice

NETWORKS = ["c3d", "p3d", "r2plus1d_18", "r3d_18", "i3d", "vgg11_lstm", "resnet18_lstm"]


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return fold1_release(tmp_path_factory.mktemp("dfew") / "DFEW",
                         shared_path("annotations", "dfew"))


def config(name: str = "r3d_18", **train) -> KfoldConfig:
    return KfoldConfig.model_validate({
        "name": f"test_{name}", "seed": 0,
        "model": {"name": name},
        "data": {"num_frames": 8, "size": 32,
                 "representation": "dssi" if name == "smastn" else "clip"},
        "train": {"lr": 1e-3, "batch_size": 3, "epochs": 1, **train},
        "run": {"num_workers": 0},
    })


@pytest.mark.parametrize("name", [*NETWORKS, "smastn"])
def test_one_short_epoch_of_every_network(release, tmp_path, name):
    metrics = run_kfold(config(name), release, tmp_path / name, folds=[1], progress=False)
    frame = pd.read_csv(tmp_path / name / "folds" / "fold_001.csv", dtype={"clip": str})
    assert len(frame) == 3 and metrics["n_samples"] == 3 and metrics["folds"] == [1]
    assert 0 <= metrics["pooled"]["war"] <= 1
    assert (tmp_path / name / "models" / "fold_001.pt").exists()


def _killed_then_resumed(cfg, release, out, monkeypatch, *, after_rows: int) -> None:
    """Run ``cfg`` into ``out``, killed once ``after_rows`` epoch-log rows are written (over
    all of a fold's trainings), then run it again to the end."""
    calls = {"n": 0}
    original = kfold_module.EpochLog.append

    def dies(self, **row):
        original(self, **row)
        calls["n"] += 1
        if calls["n"] == after_rows:
            raise KeyboardInterrupt

    monkeypatch.setattr(kfold_module.EpochLog, "append", dies)
    with pytest.raises(KeyboardInterrupt):
        run_kfold(cfg, release, out, folds=[1], progress=False)
    monkeypatch.setattr(kfold_module.EpochLog, "append", original)
    run_kfold(cfg, release, out, folds=[1], progress=False)


def test_resume_after_a_kill_gives_the_same_predictions(release, tmp_path, monkeypatch):
    cfg = config(epochs=2)
    run_kfold(cfg, release, tmp_path / "whole", folds=[1], progress=False)

    # Killed with epoch 2 logged and its checkpoint not yet saved (epoch 1's is).
    _killed_then_resumed(cfg, release, tmp_path / "killed", monkeypatch, after_rows=2)
    whole, resumed = ((tmp_path / d / "folds" / "fold_001.csv").read_text()
                      for d in ("whole", "killed"))
    assert whole == resumed
    log = pd.read_csv(tmp_path / "killed" / "train_logs" / "fold_001.csv")
    assert log["epoch"].tolist() == [1, 2]


def test_ec_stfl_run_and_metrics_are_labelled(release, tmp_path):
    cfg = config(feature_loss="ec_stfl", feature_loss_weight=10.0)
    metrics = run_kfold(cfg, release, tmp_path / "run", folds=[1], progress=False)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["pooled"]["war"] == metrics["pooled"]["war"]
    assert set(saved) >= {"pooled", "mean_of_folds", "per_fold", "label_order"}
    assert saved["label_order"]["happy"] == 1 and saved["label_order"]["fear"] == 7


def test_cli_kfold_with_overrides_and_bad_fold(release, tmp_path):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(json.dumps(config().model_dump()))
    result = CliRunner().invoke(app, [
        "kfold", "--config", str(cfg_path), "--data-root", str(release), "--out",
        str(tmp_path / "run"), "--folds", "1", "--epochs", "1", "--batch-size", "2",
        "--set", "train.lr=0.0005", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "WAR" in result.output and "label order" in result.output
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "lr: 0.0005" in saved and "batch_size: 2" in saved
    bad = CliRunner().invoke(app, ["kfold", "--config", str(cfg_path), "--data-root",
                                   str(release), "--out", str(tmp_path / "r2"), "--folds", "7"])
    assert bad.exit_code == 2 and "out of range" in bad.output


def test_missing_clip_stops_or_is_skipped(release, tmp_path):
    import shutil

    copy = tmp_path / "DFEW"
    shutil.copytree(release, copy)
    victim = sorted((copy / "Clip" / "clip_224x224_16f").iterdir())[0]
    shutil.rmtree(victim)
    with pytest.raises(ValueError, match=victim.name):
        run_kfold(config(), copy, tmp_path / "a", folds=[1], progress=False)
    cfg = config().model_copy(update={"data": config().data.model_copy(
        update={"skip_missing": True})})
    metrics = run_kfold(cfg, copy, tmp_path / "b", folds=[1], progress=False)
    assert metrics["skipped_clips"] == 1


def test_html_report_of_kfold_runs(release, tmp_path):
    from fervid.report.html import load_run, write_html_report

    runs = []
    for seed in (0, 1):
        cfg = config().model_copy(update={"seed": seed})
        run_kfold(cfg, release, tmp_path / f"s{seed}", folds=[1], progress=False)
        runs.append(tmp_path / f"s{seed}")
    (runs[1] / "metrics.json").unlink()  # a run whose merge was not written yet
    html = write_html_report(runs, tmp_path / "report.html").read_text()
    for kind in ("metrics", "published", "confusion", "recall", "folds", "training",
                 "metadata", "comparison"):
        assert f'data-section="{kind}"' in html, kind
    assert "pooled over folds" in html and "mean of folds" in html
    assert "published, not re-run" in html and "C3D + EC-STFL" in html
    assert "2 runs: seeds 0, 1 of one config" in html and "mean ± std" in html
    run = load_run(runs[1])
    saved = json.loads((runs[0] / "metrics.json").read_text())
    assert run.metrics["pooled"]["war"] == pytest.approx(
        (run.predictions["label"] == run.predictions["pred"]).mean())
    assert run.per_fold["fold"].tolist() == [1] and run.per_fold["epochs"].tolist() == [1]
    assert load_run(runs[0]).metrics["pooled"] == saved["pooled"]


def test_html_report_names_a_broken_fold_file(release, tmp_path):
    from fervid.report.html import RunReportError, load_run

    run_kfold(config(), release, tmp_path / "run", folds=[1], progress=False)
    fold = tmp_path / "run" / "folds" / "fold_001.csv"
    frame = pd.read_csv(fold, dtype={"clip": str})
    frame.loc[0, "label"] = 9
    frame.to_csv(fold, index=False)
    with pytest.raises(RunReportError, match=r"fold_001\.csv: label .9. is not a class index"):
        load_run(tmp_path / "run")


def test_training_log_goes_to_csv_and_tensorboard(release, tmp_path):
    from fervid.runs.epoch_log import TENSORBOARD_AVAILABLE

    run_kfold(config(epochs=2), release, tmp_path / "run", folds=[1], progress=False)
    log = pd.read_csv(tmp_path / "run" / "train_logs" / "fold_001.csv")
    assert log["epoch"].tolist() == [1, 2]
    if not TENSORBOARD_AVAILABLE:
        pytest.skip("TensorBoard is not installed: only the CSV log is written")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard" / "fold_001")).Reload()
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2]
    assert [e.value for e in loss] == pytest.approx(log["loss"].tolist(), rel=1e-6)
    assert "train/train_acc" in events.Tags()["scalars"]


def test_cli_report_html_of_a_kfold_run(release, tmp_path):
    run_kfold(config(), release, tmp_path / "run", folds=[1], progress=False)
    result = CliRunner().invoke(app, ["report", str(tmp_path / "run"), "--html",
                                      str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert 'data-section="folds"' in (tmp_path / "r.html").read_text()
    (tmp_path / "run" / "run.json").write_text("{not json")
    broken = CliRunner().invoke(app, ["report", str(tmp_path / "run")])
    assert broken.exit_code == 2 and "run.json: not valid JSON" in " ".join(broken.output.split())


def test_class_weights_are_applied(release, tmp_path, monkeypatch):
    import torch

    from fervid.datasets.dfew import read_dfew
    from fervid.losses import balanced_class_weights

    seen = []
    original = kfold_module.build_training_loss

    def spy(train, **kwargs):
        loss = original(train, **kwargs)
        seen.append(loss.class_weights)
        return loss

    monkeypatch.setattr(kfold_module, "build_training_loss", spy)
    run_kfold(config(class_weights="balanced"), release, tmp_path / "w", folds=[1],
              progress=False)
    run_kfold(config(), release, tmp_path / "u", folds=[1], progress=False)
    labels = torch.tensor([c.label for c in read_dfew(release, folds=[1]).fold(1).train])
    counts = torch.bincount(labels[labels >= 0])
    assert len(set(counts[counts > 0].tolist())) > 1  # unequal classes: weights matter
    torch.testing.assert_close(seen[0], balanced_class_weights(labels, 7))
    assert seen[1] is None
    weighted, plain = (pd.read_csv(tmp_path / d / "train_logs" / "fold_001.csv")["loss"]
                       for d in ("w", "u"))
    assert weighted.iloc[0] != plain.iloc[0]
    assert json.loads((tmp_path / "w" / "run.json").read_text())["protocol"] == "dfew_5fold"


def test_ddp_on_two_cpu_ranks_trains_through_model_output(release, tmp_path):
    """Under Fabric DDP (2 CPU ranks) the shared loop and ModelOutput pass through DDP."""
    import subprocess
    import sys

    cfg = config(feature_loss="ec_stfl").model_dump()
    cfg["run"]["accelerator"] = "cpu"
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(json.dumps(cfg))
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "fervid", "kfold", "--config", str(cfg_path),
                           "--data-root", str(release), "--out", str(out), "--folds", "1",
                           "--devices", "2", "--batch-size", "6", "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(out / "folds" / "fold_001.csv", dtype={"clip": str})
    assert len(frame) == 3 and (out / "models" / "fold_001.pt").exists()
    assert len(pd.read_csv(out / "train_logs" / "fold_001.csv")) == 1


def test_a_run_from_before_the_batch_order_rule_is_not_resumed(release, tmp_path):
    from fervid.runs.store import RunDirError

    cfg = config()
    out = tmp_path / "run"
    run_kfold(cfg, release, out, folds=[1], progress=False)
    meta = json.loads((out / "run.json").read_text())
    assert meta["batch_order"] == kfold_module.BATCH_ORDER
    del meta["batch_order"]  # as an earlier fervid wrote it
    (out / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunDirError, match="batch_order None"):
        run_kfold(cfg, release, out, folds=[1, 2], progress=False)


def test_weight_averaging_schedule_and_traces_under_kfold(release, tmp_path):
    plain = run_kfold(config(epochs=2), release, tmp_path / "plain", folds=[1], progress=False)
    cfg = config(epochs=2, average_last=2, schedule="onecycle")
    cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"trace_every": 1})})
    run_kfold(cfg, release, tmp_path / "on", folds=[1], progress=False)
    assert plain["n_samples"] == 3
    fold = lambda run: pd.read_csv(tmp_path / run / "folds" / "fold_001.csv")  # noqa: E731
    probs = [c for c in fold("on").columns if c.startswith("p_")]
    assert not fold("on")[probs].equals(fold("plain")[probs])
    trace = pd.read_csv(tmp_path / "on" / "traces" / "fold_001.csv", dtype={"clip": str})
    assert trace["epoch"].tolist() == [1, 1, 1, 2, 2, 2]
    last = trace[trace["epoch"] == 2].drop(columns="epoch").reset_index(drop=True)
    pd.testing.assert_frame_equal(last, pd.read_csv(tmp_path / "on" / "folds" / "fold_001.csv",
                                                    dtype={"clip": str}))


def test_best_validation_under_kfold_chooses_on_carved_training_clips(release, tmp_path):
    run_kfold(config(epochs=2, selection="best_validation"), release, tmp_path / "run",
              folds=[1], progress=False)
    sel = json.loads((tmp_path / "run" / "selection" / "fold_001.json").read_text())
    assert set(sel["scores"]) == {"1", "2"} and sel["validation_clips"] >= 1
    scores = {int(e): v for e, v in sel["scores"].items()}
    assert sel["choice"]["epoch"] == best_choice(scores, sorted(scores))
    log = pd.read_csv(tmp_path / "run" / "train_logs" / "fold_001.csv")
    assert list(log.columns) == ["epoch", "loss", "train_acc", "val_acc", "val_uar", "wall_s"]
    with pytest.raises(ConfigError, match="trace_every"):
        load_config(None, ["train.selection=best_validation", "run.trace_every=1"],
                    schema=KfoldConfig)


def test_inner_val_under_kfold_retrains_for_the_chosen_epochs(release, tmp_path, monkeypatch):
    cfg = config(epochs=3, select="inner_val", select_every=1)
    run_kfold(cfg, release, tmp_path / "whole", folds=[1], progress=False)
    sel = json.loads((tmp_path / "whole" / "selection" / "fold_001.json").read_text())
    scores = {int(e): v for e, v in sel["scores"].items()}
    assert sorted(scores) == [1, 2, 3] and sel["validation_clips"] >= 1
    epochs = sel["choice"]["epochs"]
    assert epochs == best_choice(scores, sorted(scores))
    logs = tmp_path / "whole" / "train_logs"
    assert len(pd.read_csv(logs / "fold_001_inner.csv")) == 3
    assert pd.read_csv(logs / "fold_001.csv")["epoch"].max() == epochs
    assert not list((tmp_path / "whole" / "checkpoints").glob("*.pt"))

    # Killed in the retraining after the inner training: the resume keeps the inner scores.
    _killed_then_resumed(cfg, release, tmp_path / "killed", monkeypatch, after_rows=4)
    for part in ("folds/fold_001.csv", "selection/fold_001.json"):
        assert (tmp_path / "whole" / part).read_text() == (tmp_path / "killed" / part).read_text()
