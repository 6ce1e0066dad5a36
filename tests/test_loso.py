"""LOSO engine end to end on generated inputs: results, determinism, shards, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fervid.cli import app
from generated import make_precomputed

runner = CliRunner()


def _config(tmp_path: Path, **run) -> Path:
    cfg = {"name": "t", "seed": 0, "model": {"name": "ststnet"},
           "train": {"lr": 1e-3, "batch_size": 32, "epochs": 15},
           "run": {"engine": "fold_batched", "chunk": 4, **run}}
    path = tmp_path / f"cfg_{len(list(tmp_path.glob('cfg_*')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_precomputed(tmp_path_factory.mktemp("pre") / "flow")


def _loso(config: Path, data: Path, out: Path, *args: str):
    result = runner.invoke(app, ["loso", "--config", str(config), "--data-root", str(data),
                                 "--out", str(out), "--no-progress", *args])
    assert result.exit_code == 0, result.output
    return result


def test_loso_writes_results_and_learns(tmp_path, data):
    out = tmp_path / "run"
    result = _loso(_config(tmp_path), data, out, "--epochs", "40")
    m = json.loads((out / "metrics.json").read_text())
    for key in ("uf1", "uar", "acc", "f1_macro", "n_samples", "n_folds", "wall_s",
                "per_dataset"):
        assert key in m
    assert m["n_samples"] == 48 and m["n_folds"] == 6 and m["complete"]
    assert set(m["per_dataset"]["gen"]) >= {"uf1", "uar", "acc"}
    assert m["acc"] > 0.6  # the blob's place is easy to learn; chance is about 1/3
    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred.columns) == ["dataset", "subject", "clip", "label", "pred", "fold"]
    assert len(pred) == 48 and sorted(pred["fold"].unique()) == list(range(6))
    assert (out / "confusion.png").stat().st_size > 1000
    assert (out / "per_subject.csv").exists()
    assert "UF1" in result.output and "all" in result.output


@pytest.mark.parametrize("engine", ["fold_batched", "sequential"])
def test_same_seed_same_predictions(tmp_path, data, engine):
    cfg = _config(tmp_path, engine=engine)
    _loso(cfg, data, tmp_path / "a")
    _loso(cfg, data, tmp_path / "b")
    _loso(cfg, data, tmp_path / "c", "--seed", "1")
    a, b, c = ((tmp_path / d / "predictions.csv").read_bytes() for d in "abc")
    assert a == b
    probs = [pd.concat(pd.read_csv(f) for f in sorted((tmp_path / d / "folds").glob("*.csv")))
             for d in "ac"]
    assert not probs[0].filter(like="p_").equals(probs[1].filter(like="p_"))


def test_shards_merge_into_the_full_run(tmp_path, data):
    cfg = _config(tmp_path, engine="sequential")
    _loso(cfg, data, tmp_path / "full")
    _loso(cfg, data, tmp_path / "sharded", "--folds", "0-2")
    part = json.loads((tmp_path / "sharded" / "metrics.json").read_text())
    assert part["n_folds"] == 3 and not part["complete"]
    _loso(cfg, data, tmp_path / "sharded", "--folds", "3-5")
    result = runner.invoke(app, ["report", str(tmp_path / "sharded")])
    assert result.exit_code == 0, result.output
    full = (tmp_path / "full" / "predictions.csv").read_bytes()
    assert (tmp_path / "sharded" / "predictions.csv").read_bytes() == full


def test_finished_folds_are_not_redone(tmp_path, data):
    cfg = _config(tmp_path, engine="sequential")
    out = tmp_path / "run"
    _loso(cfg, data, out, "--folds", "0-1")
    before = {p.name: p.stat().st_mtime_ns for p in (out / "folds").glob("*.csv")}
    _loso(cfg, data, out)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "folds").glob("*.csv")}
    assert len(after) == 6
    assert all(after[name] == t for name, t in before.items())


def test_other_config_in_the_same_run_dir_is_refused(tmp_path, data):
    out = tmp_path / "run"
    _loso(_config(tmp_path), data, out, "--epochs", "2")
    result = runner.invoke(app, ["loso", "--config", str(_config(tmp_path)), "--data-root",
                                 str(data), "--out", str(out), "--epochs", "3"])
    assert result.exit_code == 2
    assert "another config" in result.output


def test_killed_batched_run_resumes_to_the_same_result(tmp_path, data):
    cfg = _config(tmp_path, checkpoint_every_s=0.001)
    epochs = "400"
    _loso(cfg, data, tmp_path / "whole", "--epochs", epochs)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "fervid", "loso", "--config", str(cfg), "--data-root",
           str(data), "--out", str(out), "--epochs", epochs, "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONHASHSEED": "0"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if list((out / "checkpoints").glob("*.pt")):
            time.sleep(0.3)
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (out / "metrics.json").exists()
    log = next((out / "train_logs").glob("*.csv"))
    done_before = len(pd.read_csv(log))
    assert 0 < done_before < int(epochs)
    _loso(cfg, data, out, "--epochs", epochs)
    epochs_log = pd.read_csv(log)["epoch"].tolist()
    assert epochs_log == list(range(1, int(epochs) + 1))  # nothing repeated, nothing missing
    assert ((out / "predictions.csv").read_bytes()
            == (tmp_path / "whole" / "predictions.csv").read_bytes())


def test_worker_processes_are_deterministic_and_cover_all_folds(tmp_path, data):
    cfg = _config(tmp_path, workers=2)
    _loso(cfg, data, tmp_path / "a", "--epochs", "5")
    _loso(cfg, data, tmp_path / "b", "--epochs", "5")
    a = (tmp_path / "a" / "predictions.csv").read_bytes()
    assert a == (tmp_path / "b" / "predictions.csv").read_bytes()
    assert len(list((tmp_path / "a" / "models").glob("fold_*.pt"))) == 6
    assert len(list((tmp_path / "a" / "train_logs").glob("*.csv"))) == 2  # one per shard
    from fervid.runs.epoch_log import TENSORBOARD_AVAILABLE

    if TENSORBOARD_AVAILABLE:  # each worker process mirrors its log to TensorBoard
        shards = sorted(p.name for p in (tmp_path / "a" / "tensorboard").iterdir())
        assert shards == sorted(p.stem for p in (tmp_path / "a" / "train_logs").glob("*.csv"))
        assert all(list(p.glob("events.out.tfevents.*"))
                   for p in (tmp_path / "a" / "tensorboard").iterdir())


def test_ddp_ranks_train_disjoint_folds_like_one_process(tmp_path, data):
    """Under Fabric DDP (2 CPU ranks), each rank trains its own folds, unsynced."""
    cfg = _config(tmp_path, engine="sequential", accelerator="cpu")
    _loso(cfg, data, tmp_path / "one", "--epochs", "3")
    ddp = _config(tmp_path, engine="sequential", accelerator="cpu", devices=2)
    cmd = [sys.executable, "-m", "fervid", "loso", "--config", str(ddp), "--data-root",
           str(data), "--out", str(tmp_path / "two"), "--epochs", "3", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Starting with 2 processes" in done.stdout + done.stderr
    assert ((tmp_path / "two" / "predictions.csv").read_bytes()
            == (tmp_path / "one" / "predictions.csv").read_bytes())


def test_crash_while_writing_folds_resumes_without_retraining(tmp_path, data, monkeypatch):
    from fervid.runs.store import RunStore

    cfg = _config(tmp_path)
    _loso(cfg, data, tmp_path / "whole", "--epochs", "6")
    real = RunStore.write_fold
    calls = []

    def crash_after_two(self, *args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed between fold files
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RunStore, "write_fold", crash_after_two)
    out = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        from fervid.config import load_config
        from fervid.protocol.loso import load_precomputed_data, run_loso

        c = load_config(cfg, ["train.epochs=6"])
        run_loso(c, load_precomputed_data(c, data), out, progress=False)
    monkeypatch.setattr(RunStore, "write_fold", real)
    assert len(list((out / "folds").glob("*.csv"))) == 2
    _loso(cfg, data, out, "--epochs", "6")
    log = pd.read_csv(next((out / "train_logs").glob("*.csv")))
    assert log["epoch"].tolist() == list(range(1, 7))  # re-exported, not retrained
    assert ((out / "predictions.csv").read_bytes()
            == (tmp_path / "whole" / "predictions.csv").read_bytes())
    assert not list((out / "checkpoints").glob("*.pt"))


def test_batch_smaller_than_a_subject_is_refused(tmp_path, data):
    result = runner.invoke(app, ["loso", "--config", str(_config(tmp_path)), "--data-root",
                                 str(data), "--out", str(tmp_path / "r"),
                                 "--set", "train.batch_size=8"])
    assert result.exit_code == 2
    assert "largest subject" in result.output
