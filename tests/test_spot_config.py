"""``fervid spot --config``: a release spotted leave-one-subject-out into a run folder, its
files, its resume and its one-line config errors."""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from typer.testing import CliRunner

from fervid.cli import app
from fervid.config.spotting import SpotConfig

runner = CliRunner()

TINY = ["--set", "data.generate={subjects: 2, videos: 1, seconds: 10, micro: 1, macro: 1, "
                 "size: 128, seed: 6}"]


def _spot(config, data, out, *extra):
    return runner.invoke(app, ["spot", "--config", str(config), "--data-root", str(data),
                               "--out", str(out), *TINY, *extra])


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spot_config")
    config = tmp / "flow.yaml"
    config.write_text("name: tiny\nspotter: flow\ndata: {dataset: synthme_long}\n")
    result = _spot(config, tmp / "data", tmp / "run")
    assert result.exit_code == 0, result.output
    return tmp, config, result.output


def test_a_config_run_writes_the_run_files(flow_run):
    tmp, _, output = flow_run
    run = tmp / "run"
    assert "flow, leave-one-subject-out: micro F1" in output
    meta = json.loads((run / "run.json").read_text())
    assert meta["kind"] == "spotting" and meta["spotter"] == "flow"
    assert meta["subjects"] == ["s15", "s16"] and meta["provenance"][0]["argv"]
    assert SpotConfig.model_validate(yaml.safe_load((run / "config.yaml").read_text())).name \
        == "tiny"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["videos"] == 2 and metrics["frames"] == 600
    for kind in ("micro", "macro", "overall"):
        assert set(metrics[kind]) == {"tp", "fp", "fn", "precision", "recall", "f1"}
        assert metrics[kind] == metrics["loso"][kind]
    assert metrics["overall"]["tp"] + metrics["overall"]["fn"] == 4
    intervals = _rows(run / "intervals.csv")
    assert len(intervals) == metrics["overall"]["tp"] + metrics["overall"]["fp"]
    assert sum(int(r["tp"]) for r in intervals) == metrics["overall"]["tp"]
    truth = _rows(run / "truth.csv")
    assert len(truth) == 4 and sum(int(r["matched"]) for r in truth) == metrics["overall"]["tp"]
    assert [r["subject"] for r in _rows(run / "folds.csv")] == ["s15", "s16"]
    assert sorted(p.name for p in (run / "folds").iterdir()) == ["s15.json", "s16.json"]
    assert len(list((run / "signals").glob("*.npz"))) == 2


def test_a_rerun_resumes_from_the_finished_folds(flow_run):
    tmp, config, _ = flow_run
    run = tmp / "run"
    before = json.loads((run / "metrics.json").read_text())
    kept = (run / "folds" / "s15.json").stat().st_mtime_ns
    (run / "folds" / "s16.json").unlink()
    (run / "metrics.json").unlink()
    result = _spot(config, tmp / "data", run)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "1 finished folds" in result.output
    assert "flow signals" not in result.output  # the signals were kept
    assert (run / "folds" / "s15.json").stat().st_mtime_ns == kept
    after = json.loads((run / "metrics.json").read_text())
    assert {k: after[k] for k in ("micro", "macro", "folds")} == \
        {k: before[k] for k in ("micro", "macro", "folds")}


def test_another_config_in_the_same_folder_is_refused(flow_run):
    tmp, config, _ = flow_run
    result = _spot(config, tmp / "data", tmp / "run", "--set", "flow.crop=96")
    assert result.exit_code == 2 and "another config" in result.output


@pytest.mark.parametrize("setting, said", [
    ("colour=red", "colour"),
    ("spotter=magic", "spotter"),
    ("data.dataset=casme2", "data.dataset"),
    ("softnet.epochs=0", "softnet.epochs"),
    ("select.grid=[]", "select.grid"),
])
def test_a_bad_config_is_one_line_exit_2(tmp_path, setting, said):
    config = tmp_path / "c.yaml"
    config.write_text("spotter: flow\n")
    result = runner.invoke(app, ["spot", "--config", str(config), "--data-root",
                                 str(tmp_path), "--out", str(tmp_path / "run"), "--set",
                                 setting])
    assert result.exit_code == 2, result.output
    assert said in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_missing_config_or_release_is_exit_2(tmp_path):
    result = runner.invoke(app, ["spot", "--config", str(tmp_path / "none.yaml"),
                                 "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "not found" in result.output
    config = tmp_path / "c.yaml"
    config.write_text("spotter: flow\n")
    result = runner.invoke(app, ["spot", "--config", str(config), "--data-root",
                                 str(tmp_path / "empty"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "SynthME" in result.output, result.output
