"""Ensembles (``fervid ensemble``, configs with ``members``), the hold-out-database grouping
and the linear engine, on generated flow images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fervid.cli import app
from generated import make_precomputed

runner = CliRunner()

LINEAR = {"model": {"name": "logistic_regression", "c": 0.01},
          "train": {"class_weights": "balanced"}, "run": {"engine": "linear"}}
STSTNET = {"model": {"name": "ststnet"}, "train": {"lr": 1e-3, "batch_size": 32, "epochs": 5},
           "run": {"engine": "fold_batched"}}


def _config(tmp_path: Path, body: dict, name: str = "t") -> Path:
    path = tmp_path / f"cfg_{len(list(tmp_path.glob('cfg_*')))}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "seed": 0, **body}))
    return path


def _invoke(*args: str):
    return runner.invoke(app, [*args, "--no-progress"] if args[0] == "loso" else list(args))


def _loso(config: Path, data: Path, out: Path, *args: str):
    result = _invoke("loso", "--config", str(config), "--data-root", str(data), "--out",
                     str(out), *args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_precomputed(tmp_path_factory.mktemp("pre") / "flow", n_datasets=3)


def _predictions(run: Path) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in sorted((run / "folds").glob("fold_*.csv"))]
    return pd.concat(frames, ignore_index=True).sort_values(["subject", "clip"]).reset_index(
        drop=True)


def test_ensemble_averages_member_probabilities(tmp_path, data):
    a, b, e = tmp_path / "a", tmp_path / "b", tmp_path / "e"
    _loso(_config(tmp_path, LINEAR), data, a)
    _loso(_config(tmp_path, STSTNET), data, b)
    result = _invoke("ensemble", str(a), str(b), "--out", str(e))
    assert result.exit_code == 0, result.output
    pa, pb, pe = (_predictions(r) for r in (a, b, e))
    probs = ["p_negative", "p_positive", "p_surprise"]
    np.testing.assert_allclose(pe[probs], (pa[probs] + pb[probs]) / 2, atol=2e-6)
    assert (pe["pred"] == pe[probs].to_numpy().argmax(1)).all()
    assert (pe["label"] == pa["label"]).all()
    m = json.loads((e / "metrics.json").read_text())
    assert m["complete"] and m["n_samples"] == 48
    for name in ("predictions.csv", "per_subject.csv", "confusion.png", "config.yaml"):
        assert (e / name).exists()
    html = tmp_path / "r.html"
    assert _invoke("report", str(e), "--html", str(html)).exit_code == 0
    assert "ensemble" in html.read_text()


def test_ensemble_refuses_runs_of_other_folds_or_one_run(tmp_path, data):
    a, d = tmp_path / "a", tmp_path / "d"
    _loso(_config(tmp_path, LINEAR), data, a)
    _loso(_config(tmp_path, LINEAR), data, d, "--group", "dataset")
    result = _invoke("ensemble", str(a), str(d), "--out", str(tmp_path / "e"))
    assert result.exit_code == 2
    assert "differs" in result.output and str(d) in result.output.replace("\n", "")
    result = _invoke("ensemble", str(a), "--out", str(tmp_path / "e1"))
    assert result.exit_code == 2 and "at least two runs" in result.output
    result = _invoke("ensemble", str(a), str(tmp_path / "nope"), "--out", str(tmp_path / "e2"))
    assert result.exit_code == 2 and "not a fervid run directory" in result.output


def test_config_members_equal_separate_runs_plus_ensemble(tmp_path, data):
    # Members lay their sections over the run's: "ststnet" is the run's own config.
    members = {**STSTNET, "members": [{"name": "linear", **LINEAR}, {"name": "ststnet"}]}
    run = tmp_path / "run"
    _loso(_config(tmp_path, members), data, run)
    _loso(_config(tmp_path, LINEAR), data, tmp_path / "a")
    _loso(_config(tmp_path, STSTNET), data, tmp_path / "b")
    assert _invoke("ensemble", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                   str(tmp_path / "e")).exit_code == 0
    pd.testing.assert_frame_equal(_predictions(run), _predictions(tmp_path / "e"))
    assert (run / "members" / "linear" / "metrics.json").exists()
    meta = json.loads((run / "run.json").read_text())
    assert meta["members"] == ["linear", "ststnet"]
    # Rerunning resumes: nothing is trained again, the result is the same.
    before = (run / "members" / "ststnet" / "folds" / "fold_000.csv").stat().st_mtime_ns
    _loso(_config(tmp_path, members), data, run)
    assert (run / "members" / "ststnet" / "folds" / "fold_000.csv").stat().st_mtime_ns == before


@pytest.mark.parametrize("members, message", [
    ([{"model": {"name": "ststnet"}}], "needs a name"),
    ([{"name": "a"}, {"name": "a"}], "used twice"),
    ([{"name": "a", "train": {"epochs": 0}}], "members[0] (a)"),
])
def test_bad_members_are_named(tmp_path, data, members, message):
    result = _invoke("loso", "--config", str(_config(tmp_path, {**LINEAR, "members": members})),
                     "--data-root", str(data), "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert message in result.output.replace("\n", "")


def test_group_dataset_holds_out_whole_datasets(tmp_path, data):
    out = tmp_path / "run"
    _loso(_config(tmp_path, LINEAR), data, out, "--group", "dataset")
    folds = pd.read_csv(out / "folds.csv")
    assert list(folds["dataset"]) == ["gen0", "gen1", "gen2"]
    assert set(folds["subject"]) == {"*"}
    pred = pd.read_csv(out / "predictions.csv")
    assert pred.groupby("fold")["dataset"].nunique().eq(1).all()
    assert json.loads((out / "run.json").read_text())["group"] == "dataset"
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_folds"] == 3 and set(m["per_dataset"]) == {"gen0", "gen1", "gen2"}
    # another grouping in the same folder is another run
    result = _invoke("loso", "--config", str(_config(tmp_path, LINEAR)), "--data-root",
                     str(data), "--out", str(out))
    assert result.exit_code == 2 and "another config" in result.output


def test_group_needs_two_groups(tmp_path):
    one = make_precomputed(tmp_path / "one", n_subjects=3)
    result = _invoke("loso", "--config", str(_config(tmp_path, LINEAR)), "--data-root", str(one),
                     "--out", str(tmp_path / "run"), "--group", "dataset")
    assert result.exit_code == 2 and "at least two datasets" in result.output


def test_linear_engine_learns_and_records_inner_choice(tmp_path, data):
    out = tmp_path / "run"
    body = {**LINEAR, "train": {"class_weights": "balanced", "select": "inner_val"}}
    _loso(_config(tmp_path, body), data, out)
    m = json.loads((out / "metrics.json").read_text())
    assert m["acc"] > 0.6  # the blob's place is linear in the pixels; chance is about 1/3
    sel = json.loads((out / "selection" / "fold_000.json").read_text())
    assert sel["choice"]["c"] in (0.001, 0.003, 0.01, 0.03, 0.1)
    assert set(sel["scores"]) == {"0.001", "0.003", "0.01", "0.03", "0.1"}


@pytest.mark.parametrize("body, message", [
    ({"model": {"name": "logistic_regression"}, "run": {"engine": "fold_batched"}},
     "run.engine=linear"),
    ({"model": {"name": "ststnet"}, "run": {"engine": "linear"}}, "run.engine=linear"),
    ({**LINEAR, "train": {"label_smoothing": 0.1}}, "trains no epochs"),
    ({**STSTNET, "train": {"flow_flip": True, "batch_size": 32}}, "fold_batched does not"),
    ({"model": {"name": "ststnet"}, "train": {"flow_flip": True},
      "run": {"engine": "sequential"}}, "data.flow_u_channel"),
    ({"model": {"name": "ststnet"}, "train": {"average_last": 9, "epochs": 3},
      "run": {"engine": "sequential"}}, "more than train.epochs"),
])
def test_options_that_do_not_fit_are_refused(tmp_path, data, body, message):
    result = _invoke("loso", "--config", str(_config(tmp_path, body)), "--data-root", str(data),
                     "--out", str(tmp_path / "run"))
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", "")


def test_members_traces_average_into_a_test_selected_row(tmp_path, data):
    """A traced deep member and an untraced linear one: the ensemble's trace uses the linear
    member's final probabilities at every traced epoch."""
    body = {**STSTNET, "run": {"engine": "fold_batched", "trace_every": 2},
            "members": [{"name": "linear", **LINEAR}, {"name": "ststnet"}]}
    run = tmp_path / "run"
    _loso(_config(tmp_path, body), data, run)
    trace = pd.read_csv(run / "traces" / "fold_000.csv")
    assert sorted(trace["epoch"].unique()) == [2, 4, 5]
    deep = pd.read_csv(run / "members" / "ststnet" / "traces" / "fold_000.csv")
    linear = pd.read_csv(run / "members" / "linear" / "folds" / "fold_000.csv")
    probs = ["p_negative", "p_positive", "p_surprise"]
    at2 = trace[trace["epoch"] == 2].reset_index(drop=True)
    expect = (deep[deep["epoch"] == 2].reset_index(drop=True)[probs] + linear[probs]) / 2
    np.testing.assert_allclose(at2[probs], expect, atol=2e-6)
    m = json.loads((run / "metrics.json").read_text())
    assert m["test_selected"]["acc"] >= m["acc"]
