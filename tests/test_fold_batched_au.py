"""AU detection on the fold-batched engine: each fold's binary cross-entropy with its own
positive weights, the batched folds equal to folds trained one by one, a held-out sample never
reaching its fold, and the fold files of the sequential AU path, resumable and kill-safe."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from fervid.cli import app
from fervid.config import LosoConfig, TrainConfig
from fervid.losses import build_training_loss, positive_weights
from fervid.losses.per_fold_au import per_fold_binary_cross_entropy, per_fold_positive_weights
from fervid.models.output import ModelOutput
from fervid.models.ststnet import STSTNet
from fervid.progress import NoProgress
from fervid.training.fold_batched import _batch_starts, train_fold_batched
from fervid.training.setup import make_optimizer
from test_au_task import au_data  # noqa: F401
from test_kill_anywhere import fold_csvs, fold_files, kill_twice_then_finish, launcher  # noqa: F401

runner = CliRunner()
TRAIN = {"lr": 1e-3, "batch_size": 16, "epochs": 3, "class_weights": "balanced"}


def au_config(folder: Path, name: str, **run) -> Path:
    """A fold-batched STSTNet AU config (AU15 never occurs in ``au_data``: dropped)."""
    cfg = {"name": name, "seed": 0, "model": {"name": "ststnet"},
           "data": {"scale": 1 / 255, "task": "au", "aus": [4, 7, 12, 15], "au_min_count": 1},
           "train": TRAIN, "run": {"engine": "fold_batched", "workers": 1, **run}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def loso_argv(cfg: Path, flow: Path, sheets: Path, out: Path, *extra: str) -> list[str]:
    return ["loso", "--config", str(cfg), "--data-root", str(flow), "--set",
            f"data.au_sheets={sheets}", "--out", str(out), "--no-progress", *extra]


class _Rows:
    """An in-memory epoch log."""

    def __init__(self):
        self.rows = []

    def truncate_after(self, epoch: int) -> None:
        self.rows = [r for r in self.rows if r["epoch"] <= epoch]

    def append(self, **row) -> None:
        self.rows.append(row)


def _problem(n_folds=3, per_fold=6, n_aus=4, seed=0):
    torch.manual_seed(seed)
    x = torch.rand(n_folds * per_fold, 3, 28, 28) * 255
    y = (torch.rand(len(x), n_aus) < 0.4).float()
    y[0] = 1.0  # every AU present at least once outside some fold
    sample_fold = torch.arange(len(x)) % n_folds
    return x, y, sample_fold


def test_per_fold_loss_is_each_folds_multi_label_loss():
    """The sum over folds of the sequential AU loss, each built from that fold's training
    targets by the one loss builder."""
    x, y, fold = _problem()
    logits = torch.randn(len(x), 3, y.shape[1])
    for mode in ("none", "balanced"):
        weights = per_fold_positive_weights(y, fold, [0, 1, 2], mode)
        loss, mask = per_fold_binary_cross_entropy(logits, y, fold, weights)
        want = 0.0
        for f in range(3):
            keep = fold != f
            criterion = build_training_loss(TrainConfig(class_weights=mode), num_classes=4,
                                            feature_dim=None, train_labels=y[keep],
                                            multi_label=True)
            want += criterion(ModelOutput(logits[keep, f]), y[keep])[0]
            if weights is not None:
                torch.testing.assert_close(weights[f], positive_weights(y[keep]))
        torch.testing.assert_close(loss, want)
        assert mask[:, 1].tolist() == (fold != 1).float().tolist()
    assert per_fold_positive_weights(y, fold, [0], "none") is None


def _config(epochs=2, batch_size=40) -> LosoConfig:
    return LosoConfig(model={"name": "ststnet", "drop_rate": 0.0},
                      train={"lr": 1e-3, "batch_size": batch_size, "epochs": epochs,
                             "class_weights": "balanced"},
                      run={"engine": "fold_batched", "precision": "32-true", "chunk": 4,
                           "checkpoint_every_s": 1e9})


def _batched(cfg, x, y, fold, tmp_path, name):
    torch.manual_seed(1)
    models = [STSTNet(drop_rate=0.0, num_classes=y.shape[1]) for _ in range(3)]
    inits = [m.state_dict() for m in models]
    result = train_fold_batched(cfg, models, x, y, fold, [0, 1, 2], num_classes=y.shape[1],
                                device=torch.device("cpu"), checkpoint=tmp_path / f"{name}.pt",
                                log=_Rows(), progress=NoProgress())
    return result, inits


def test_batched_folds_equal_folds_trained_one_by_one(tmp_path):
    """Each fold's STSTNet, trained alone on its training samples of the engine's batches
    with the sequential AU loss, ends where the batched fold does."""
    cfg = _config(epochs=2, batch_size=8)
    x, y, fold = _problem()
    result, inits = _batched(cfg, x, y, fold, tmp_path, "batched")
    order = torch.Generator().manual_seed(cfg.seed)
    perms = [torch.randperm(len(x), generator=order) for _ in range(cfg.train.epochs)]
    starts = _batch_starts(len(x), cfg.train.batch_size, fold)
    for f in range(3):
        model = STSTNet(drop_rate=0.0, num_classes=y.shape[1])
        model.load_state_dict(inits[f])
        model.train()
        keep = fold != f
        criterion = build_training_loss(cfg.train, num_classes=4, feature_dim=None,
                                        train_labels=y[keep], multi_label=True)
        optimizer = make_optimizer(cfg.train, model.parameters())
        for perm in perms:
            for s, e in zip(starts, starts[1:] + [len(x)], strict=True):
                idx = perm[s:e]
                idx = idx[fold[idx] != f]
                loss, _ = criterion(model(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        for key, value in model.state_dict().items():
            torch.testing.assert_close(result.states[f][key], value, rtol=1e-3, atol=1e-4,
                                       msg=f"fold {f}: {key}")
        model.eval()
        with torch.no_grad():
            torch.testing.assert_close(result.probs[:, f], model(x).logits.sigmoid(),
                                       rtol=1e-3, atol=1e-4)


def test_a_held_out_sample_never_reaches_its_fold(tmp_path):
    """Changing fold 0's held-out samples (images and AU targets) leaves fold 0's trained
    weights as they were; fold 1, which trains on them, changes."""
    cfg = _config()
    x, y, fold = _problem()
    first, _ = _batched(cfg, x, y, fold, tmp_path, "a")
    held = fold == 0
    x2, y2 = x.clone(), y.clone()
    x2[held] = torch.rand_like(x2[held]) * 255
    y2[held] = 1 - y2[held]
    second, _ = _batched(cfg, x2, y2, fold, tmp_path, "b")
    for key, value in first.states[0].items():
        assert torch.equal(second.states[0][key], value), key
    assert not torch.equal(second.states[1]["fc.weight"], first.states[1]["fc.weight"])


def test_cli_writes_the_sequential_au_files_and_resumes(tmp_path, au_data):  # noqa: F811
    """Through ``fervid loso``: AU fold files and metrics as the sequential engine writes
    them (sigmoid probabilities, per-AU and per-dataset F1, MEB's macro variant); a second
    invocation trains nothing again."""
    flow, sheets = au_data
    cfg = au_config(tmp_path, "batched_au")
    out = tmp_path / "run"
    result = runner.invoke(app, loso_argv(cfg, flow, sheets, out))
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    aus = metrics["classes"]
    assert metrics["task"] == "au" and metrics["complete"] and metrics["n_folds"] == 4
    assert aus == ["AU4", "AU7", "AU12"] and metrics["n_samples"] == 30
    for key in ("au_f1", "au_f1_mean", "au_f1_macro_mean", "au_f1_constant_mean"):
        assert key in metrics
    assert set(metrics["au_f1"]) == set(aus) and set(metrics["per_dataset"]) == {"casme2"}
    folds = sorted((out / "folds").glob("fold_*.csv"))
    frame = pd.read_csv(folds[0])
    assert list(frame.columns) == ["dataset", "subject", "clip", "fold",
                                   *(f"y_{a}" for a in aus), *(f"p_{a}" for a in aus)]
    probs = frame[[f"p_{a}" for a in aus]].to_numpy()
    assert ((probs > 0) & (probs < 1)).all()
    state = torch.load(out / "models" / "fold_000.pt", weights_only=False)["state_dict"]
    assert state["fc.weight"].shape[0] == len(aus)
    assert not list((out / "checkpoints").glob("*.pt"))
    stamps = [p.stat().st_mtime_ns for p in folds]
    again = runner.invoke(app, loso_argv(cfg, flow, sheets, out))
    assert again.exit_code == 0, again.output
    assert [p.stat().st_mtime_ns for p in folds] == stamps
    assert json.loads((out / "metrics.json").read_text())["au_f1"] == metrics["au_f1"]
    report = runner.invoke(app, ["report", str(out)])
    assert report.exit_code == 0 and "binary F1" in report.output


def test_a_killed_batched_au_run_resumes_to_the_same_files(launcher, tmp_path,  # noqa: F811
                                                            au_data):  # noqa: F811
    """Killed twice at seeded moments (checkpointed every epoch), then finished: the files
    of an uninterrupted run, finished folds untouched (see test_kill_anywhere)."""
    flow, sheets = au_data
    cfg = au_config(tmp_path, "kill_batched_au", checkpoint_every_s=1e-9)  # every epoch
    kill_twice_then_finish(launcher, lambda out: loso_argv(cfg, flow, sheets, out), tmp_path,
                           11, fold_files, moved=fold_csvs)
    out = tmp_path / "killed"
    assert json.loads((out / "metrics.json").read_text())["complete"]
    assert not list((out / "checkpoints").glob("*.pt"))


@pytest.mark.parametrize("option", ["run.trace_every=1", "train.au_weight=1"])
def test_what_the_batched_au_path_does_not_read_is_refused(tmp_path, au_data,  # noqa: F811
                                                           option):
    flow, sheets = au_data
    cfg = au_config(tmp_path, "refused")
    result = runner.invoke(app, loso_argv(cfg, flow, sheets, tmp_path / "r", "--set", option))
    assert result.exit_code == 2, result.output
    assert option.split("=")[0] in result.output
