"""What made a run, recorded in run.json (a segment per machine or version it ran on), shown
by the reports, warned about when runs of different makings are combined; ``--version``."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import fervid
from conftest import shared_path
from fervid.cli import app
from fervid.report.html import write_html_report
from fervid.runs import provenance
from generated import make_precomputed

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
FIELDS = {"fervid", "git_commit", "git_dirty", "python", "torch", "torchvision", "numpy",
          "opencv", "dlib", "cpu", "cpu_cores", "cpu_bf16", "gpu", "gpu_count", "precision",
          "argv", "recorded"}
OTHER_CPU = "Other CPU 9000"


def _loso(config: Path, data: Path, out: Path, *args: str):
    argv = ["loso", "--config", str(config), "--data-root", str(data), "--out", str(out),
            "--no-progress", *args]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["fervid", *argv])  # as the console script sees it
        result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    return result


def _meta(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A whole tiny LOSO run, and the same run in two shards, the second "on another machine"
    (another CPU model); the output of each invocation."""
    base = tmp_path_factory.mktemp("prov")
    data = make_precomputed(base / "flow", n_subjects=4, per_subject=6)
    config = base / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "name": "t", "seed": 0, "model": {"name": "ststnet"},
        "train": {"lr": 1e-3, "batch_size": 16, "epochs": 3}, "run": {"engine": "sequential"}}))
    whole = _loso(config, data, base / "whole")
    first = _loso(config, data, base / "sharded", "--folds", "0-1")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(provenance, "cpu_model", lambda: OTHER_CPU)
        second = _loso(config, data, base / "sharded", "--folds", "2-3")
    again = _loso(config, data, base / "sharded")  # back on this machine, nothing to do
    return {"whole": base / "whole", "sharded": base / "sharded", "config": config,
            "data": data, "outputs": [whole.output, first.output, second.output, again.output]}


def test_run_json_records_what_made_the_run(runs):
    meta = _meta(runs["whole"])
    assert meta["fingerprint"] and len(meta["provenance"]) == 1
    record = meta["provenance"][0]
    assert set(record) >= FIELDS
    assert record["fervid"] == version("fervid") == fervid.__version__
    assert record["torch"] == version("torch") and record["numpy"] == version("numpy")
    assert record["precision"] == meta["precision"] == "32-true"
    assert record["cpu"] == provenance.cpu_model() and record["cpu_cores"] >= 1
    assert isinstance(record["cpu_bf16"], bool) and record["gpu_count"] >= 0
    assert record["argv"][:2] == ["fervid", "loso"]
    if record["git_commit"] is not None:  # run from the checkout
        assert re.fullmatch(r"[0-9a-f]{40}", record["git_commit"])
        assert isinstance(record["git_dirty"], bool)
    summary = runs["outputs"][0]
    assert f"provenance: fervid {fervid.__version__}" in summary
    assert "torch " + record["torch"] in summary and "precision 32-true" in summary


def test_a_resume_elsewhere_is_a_new_segment_with_a_notice(runs):
    segments = _meta(runs["sharded"])["provenance"]
    assert [s["cpu"] for s in segments] == [provenance.cpu_model(), OTHER_CPU,
                                            provenance.cpu_model()]
    assert "resumed" not in segments[0] and segments[1]["resumed"] and segments[2]["resumed"]
    assert "--folds" in segments[1]["argv"] and "2-3" in segments[1]["argv"]
    _, first, second, again = runs["outputs"]
    notice = [line for line in second.splitlines() if line.startswith("notice:")]
    assert notice == [f"notice: resumed on a different machine/version: cpu "
                      f"{provenance.cpu_model()} → {OTHER_CPU}"]
    assert "notice:" not in first and "notice: resumed" in again
    # Provenance is not part of the fingerprint: the shards merge into the whole run.
    assert ((runs["sharded"] / "predictions.csv").read_bytes()
            == (runs["whole"] / "predictions.csv").read_bytes())
    assert f"resumed with cpu {provenance.cpu_model()} → {OTHER_CPU}" in second


def test_same_machine_resume_adds_nothing_and_old_runs_stay_readable(runs, tmp_path):
    run = tmp_path / "old"
    _loso(runs["config"], runs["data"], run, "--folds", "0")
    before = (run / "run.json").read_bytes()
    result = _loso(runs["config"], runs["data"], run, "--folds", "1")
    assert (run / "run.json").read_bytes() == before and "notice:" not in result.output
    meta = _meta(run)
    del meta["provenance"]  # as written by an older fervid
    (run / "run.json").write_text(json.dumps(meta))
    report = runner.invoke(app, ["report", str(run)])
    assert report.exit_code == 0 and "provenance: not recorded" in report.output
    result = _loso(runs["config"], runs["data"], run, "--folds", "2")
    assert "notice:" not in result.output  # nothing to compare with
    assert [s.get("resumed") for s in _meta(run)["provenance"]] == [True]


def test_html_report_shows_provenance_and_flags_mixed_runs(runs, tmp_path):
    html = write_html_report([runs["whole"], runs["sharded"]], tmp_path / "r.html").read_text()
    assert "<th>CPU</th>" in html and "<th>torch</th>" in html and "<th>command</th>" in html
    assert f"{provenance.cpu_model()} (" in html and f"→ {OTHER_CPU} (" in html
    assert "changed when the run was resumed" in html
    assert "Runs made by different fervid versions or machines: cpu" in html


def test_ensemble_and_leaderboard_warn_once_about_mixed_runs(runs, tmp_path, capsys):
    result = runner.invoke(app, ["ensemble", str(runs["whole"]), str(runs["sharded"]),
                                 "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if "different fervid" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: ensemble of runs made by "
                                                     "different fervid versions or machines")
    assert OTHER_CPU in warned[0]
    spec = importlib.util.spec_from_file_location("leaderboard", REPO / "scripts" /
                                                  "leaderboard.py")
    leaderboard = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(leaderboard)
    leaderboard.warn_if_mixed([runs["whole"], runs["sharded"]])
    leaderboard.warn_if_mixed([runs["whole"], runs["whole"]])
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: the table combines runs made by")


def test_version_option():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == provenance.version_line()
    assert re.fullmatch(rf"fervid {re.escape(fervid.__version__)}"
                        r"( \(commit [0-9a-f]{12}(, dirty)?\))?", result.output.strip())


def test_version_without_git(monkeypatch):
    monkeypatch.setattr(provenance, "_git", lambda *args: None)
    provenance.git_state.cache_clear()
    try:
        assert provenance.git_state() == (None, None)
        assert runner.invoke(app, ["--version"]).output.strip() == f"fervid {fervid.__version__}"
        assert provenance.collect()["git_commit"] is None
    finally:
        provenance.git_state.cache_clear()


def test_predictions_json_carries_provenance(tmp_path):
    import torch

    from fervid.cli.demo import VARIANTS, demo_config
    from fervid.models import model_from_config
    from fervid.runs.checkpoint import save_checkpoint

    video = shared_path("videos", "single_face.mp4")
    cfg = demo_config(VARIANTS[0], epochs=1)
    model_cfg = cfg.model.model_copy(update={"pretrained_path": None})
    torch.manual_seed(0)
    model = model_from_config(model_cfg, in_chans=1, num_classes=len(cfg.data.classes))
    ckpt = save_checkpoint(tmp_path / "m.pt", model.state_dict(), config=cfg,
                           classes=cfg.data.classes)
    result = runner.invoke(app, ["predict", str(video), "--checkpoint", str(ckpt), "--out",
                                 str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "p" / "predictions.json").read_text())["provenance"]
    assert set(record) >= FIELDS and record["precision"] == "32-true"
    assert record["fervid"] == fervid.__version__
