"""Honest selection inside LOSO folds (train.select: inner_val) and test-selection traces
(run.trace_every), on generated flow images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fervid.cli import app
from fervid.protocol.selection import best_choice, inner_group_folds, inner_validation_subjects
from generated import make_precomputed

runner = CliRunner()

LINEAR = {"model": {"name": "logistic_regression", "c_grid": [0.0001, 0.01, 1.0]},
          "train": {"class_weights": "balanced", "select": "inner_val"},
          "run": {"engine": "linear"}}
DEEP = {"model": {"name": "ststnet"},
        "train": {"lr": 1e-3, "batch_size": 16, "epochs": 6, "select": "inner_val",
                  "select_every": 2},
        "run": {"engine": "sequential"}}


def _config(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / f"cfg_{len(list(tmp_path.glob('cfg_*')))}.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "seed": 0, **body}))
    return path


def _loso(config: Path, data: Path, out: Path, *args: str):
    result = runner.invoke(app, ["loso", "--config", str(config), "--data-root", str(data),
                                 "--out", str(out), "--no-progress", *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_precomputed(tmp_path_factory.mktemp("pre") / "flow", signal=30.0)


def _relabelled(data: Path, dest: Path, subject: str) -> Path:
    """A copy of ``data`` with every label of ``subject`` moved to the next class."""
    shutil.copytree(data, dest)
    index = pd.read_csv(dest / "index.csv")
    mine = index["subject"] == subject
    assert mine.any()
    index.loc[mine, "label"] = (index.loc[mine, "label"] + 1) % 3
    index.to_csv(dest / "index.csv", index=False)
    return dest


def _p_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if c.startswith("p_")]]


BEST = {"model": {"name": "ststnet"},
        "train": {"lr": 1e-3, "batch_size": 16, "epochs": 4, "selection": "best_validation"},
        "run": {"engine": "sequential"}}


@pytest.mark.parametrize("body", [LINEAR, DEEP, BEST],
                         ids=["linear", "sequential", "best_validation"])
def test_inner_selection_never_reads_the_test_subject(tmp_path, data, body):
    """Fold 0 holds out s00: changing s00's labels changes neither what fold 0 chose nor its
    predictions; changing a training subject's labels does change the selection scores (so
    the check could fail)."""
    cfg = _config(tmp_path, body)
    _loso(cfg, data, tmp_path / "a", "--folds", "0")
    _loso(cfg, _relabelled(data, tmp_path / "test_relabelled", "s00"), tmp_path / "b",
          "--folds", "0")
    _loso(cfg, _relabelled(data, tmp_path / "train_relabelled", "s03"), tmp_path / "c",
          "--folds", "0")
    read = lambda run: json.loads((run / "selection" / "fold_000.json").read_text())  # noqa: E731
    a, b, c = (read(tmp_path / r) for r in "abc")
    assert a == b
    assert "gen/s00" not in a.get("validation_subjects", [])
    assert a["scores"] != c["scores"]
    fold = lambda run: pd.read_csv(run / "folds" / "fold_000.csv")  # noqa: E731
    pd.testing.assert_frame_equal(_p_columns(fold(tmp_path / "a")),
                                  _p_columns(fold(tmp_path / "b")))


def test_deep_inner_selection_retrains_for_the_chosen_epochs(tmp_path, data):
    out = tmp_path / "run"
    _loso(_config(tmp_path, DEEP), data, out, "--folds", "0-1")
    for f in (0, 1):
        sel = json.loads((out / "selection" / f"fold_{f:03d}.json").read_text())
        assert set(sel["scores"]) == {"2", "4", "6"}
        epochs = sel["choice"]["epochs"]
        assert epochs == best_choice({int(k): v for k, v in sel["scores"].items()},
                                     [2, 4, 6])
        log = pd.read_csv(out / "train_logs" / f"fold_{f:03d}.csv")
        assert log["epoch"].max() == epochs  # trained again on all subjects, that long
        assert (out / "train_logs" / f"fold_{f:03d}_inner.csv").exists()


def test_inner_folds_split_subjects_not_samples():
    groups = [f"d/s{i // 3}" for i in range(24)]  # 8 subjects, 3 samples each
    masks = inner_group_folds(groups, 0.25, seed=1)
    assert len(masks) == 4
    assert sum(int(m.sum()) for m in masks) == 24
    for m in masks:
        held = {g for g, v in zip(groups, m, strict=True) if v}
        kept = {g for g, v in zip(groups, m, strict=True) if not v}
        assert held and not held & kept
    val = inner_validation_subjects(groups, 0.25, seed=1)
    assert len(val) == 2 and val == inner_validation_subjects(groups, 0.25, seed=1)
    assert val != inner_validation_subjects(groups, 0.25, seed=2) or len(set(groups)) < 3


def test_best_choice_breaks_ties_towards_the_first():
    assert best_choice({0.1: 0.5, 1.0: 0.5, 10.0: 0.4}, [0.1, 1.0, 10.0]) == 0.1


@pytest.mark.parametrize("engine", ["fold_batched", "sequential"])
def test_trace_changes_nothing_and_adds_the_test_selected_row(tmp_path, data, engine):
    body = {"model": {"name": "ststnet"},
            "train": {"lr": 1e-3, "batch_size": 32 if engine == "fold_batched" else 16,
                      "epochs": 8},
            "run": {"engine": engine}}
    plain, traced = tmp_path / "plain", tmp_path / "traced"
    _loso(_config(tmp_path, body), data, plain)
    body["run"]["trace_every"] = 3
    result = _loso(_config(tmp_path, body), data, traced)
    for f in range(6):
        pd.testing.assert_frame_equal(pd.read_csv(plain / "folds" / f"fold_{f:03d}.csv"),
                                      pd.read_csv(traced / "folds" / f"fold_{f:03d}.csv"))
        trace = pd.read_csv(traced / "traces" / f"fold_{f:03d}.csv")
        assert sorted(trace["epoch"].unique()) == [3, 6, 8]
        last = trace[trace["epoch"] == 8].drop(columns="epoch").reset_index(drop=True)
        fold = pd.read_csv(traced / "folds" / f"fold_{f:03d}.csv")
        pd.testing.assert_frame_equal(_p_columns(last), _p_columns(fold), atol=1e-6)
    honest = json.loads((plain / "metrics.json").read_text())
    m = json.loads((traced / "metrics.json").read_text())
    assert "test_selected" not in honest
    sel = m["test_selected"]
    assert sel["label"] == "test-selected (not a valid result)"
    assert sel["acc"] >= m["acc"]  # each fold keeps its best-accuracy epoch
    assert set(sel["epochs"].values()) <= {3, 6, 8}
    assert m["uf1"] == honest["uf1"]  # the honest figure is untouched
    assert "test-selected" in result.output  # the row, beside the honest one
    html = tmp_path / "report.html"
    assert runner.invoke(app, ["report", str(traced), "--html", str(html)]).exit_code == 0
    assert "test-selected (not a valid result)" in html.read_text()


def test_test_selected_keeps_each_folds_best_epoch(tmp_path):
    """The scorer picks, per fold, the epoch of highest test accuracy (later on ties)."""
    from fervid.runs.results import test_selected_scores
    from fervid.runs.store import RunStore

    store = RunStore(tmp_path)
    rows = []
    # fold 0: epoch 2 is right on both samples; fold 1: epochs 1 and 2 tie, 2 wins.
    for fold, epoch, preds in [(0, 1, [0, 0]), (0, 2, [0, 1]), (1, 1, [2, 2]), (1, 2, [2, 2])]:
        for i, pred in enumerate(preds):
            rows.append({"epoch": epoch, "dataset": "d", "subject": f"s{fold}", "clip": f"c{i}",
                         "label": [0, 1][i] if fold == 0 else 2, "pred": pred, "fold": fold,
                         "p_a": 0.0, "p_b": 0.0, "p_c": 0.0})
    frame = pd.DataFrame(rows)
    for fold in (0, 1):
        path = store.trace_path(fold)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame[frame["fold"] == fold].to_csv(path, index=False)
    sel = test_selected_scores(store, [0, 1], ["a", "b", "c"])
    assert sel["epochs"] == {0: 2, 1: 2}
    assert sel["acc"] == 1.0
    assert test_selected_scores(store, [0, 1, 2], ["a", "b", "c"]) is None  # fold 2 untraced


def test_best_validation_keeps_the_best_epoch_of_carved_validation_subjects(tmp_path, data):
    out = tmp_path / "run"
    _loso(_config(tmp_path, BEST), data, out, "--folds", "0")
    sel = json.loads((out / "selection" / "fold_000.json").read_text())
    scores = {int(k): v for k, v in sel["scores"].items()}
    assert sorted(scores) == [1, 2, 3, 4]
    assert sel["choice"]["epoch"] == best_choice(scores, sorted(scores))
    assert sel["validation_subjects"] and "gen/s00" not in sel["validation_subjects"]
    log = pd.read_csv(out / "train_logs" / "fold_000.csv")
    assert log["val_acc"].round(6).tolist() == [scores[e] for e in (1, 2, 3, 4)]


@pytest.mark.parametrize("clash", [{"train": {"select": "inner_val"}},
                                   {"train": {"average_last": 2}},
                                   {"run": {"engine": "fold_batched"}}])
def test_best_validation_refuses_what_it_does_not_go_with(tmp_path, data, clash):
    body = {k: {**v, **clash.get(k, {})} for k, v in BEST.items()}
    result = runner.invoke(app, ["loso", "--config", str(_config(tmp_path, body)),
                                 "--data-root", str(data), "--out", str(tmp_path / "x"),
                                 "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "best_validation" in result.output and "Traceback" not in result.output
