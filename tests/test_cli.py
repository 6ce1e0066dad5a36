"""Every command has help; bad input gives one clear message and exit status 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fervid.cli import app

runner = CliRunner()


@pytest.mark.parametrize("cmd", [[], ["loso"], ["report"], ["demo"], ["dssi"], ["prepare"],
                                 ["prepare", "flow"], ["prepare", "faces"], ["predict"],
                                 ["export"], ["kfold"]])
def test_help(cmd):
    result = runner.invoke(app, [*cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_missing_data_root_is_named(tmp_path):
    result = runner.invoke(app, ["loso", "--config", "configs/ststnet_megc2019.yaml",
                                 "--data-root", str(tmp_path / "nowhere"), "--out",
                                 str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "nowhere" in result.output
    assert "Traceback" not in result.output


def test_bad_override_is_named(tmp_path):
    result = runner.invoke(app, ["loso", "--config", "configs/ststnet_megc2019.yaml",
                                 "--data-root", str(tmp_path), "--out", str(tmp_path / "r"),
                                 "--set", "train.epochs=zero"])
    assert result.exit_code == 2
    assert "train.epochs" in result.output


def test_report_of_a_non_run(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a fervid run directory" in result.output
