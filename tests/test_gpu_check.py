"""benchmarks/gpu_check.py in its smoke mode: tiny clips on the CPU, so that it never rots."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fervid.models import model_names
from fervid.models.video import VIDEO_MODELS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
gpu_check = pytest.importorskip("gpu_check")


def test_smoke_mode_has_a_row_per_network(tmp_path, capsys):
    out = tmp_path / "check.json"
    gpu_check.main(["--smoke", "--json", str(out), "--accelerator", "cpu"])
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    expected = {*VIDEO_MODELS, *model_names("kfold")} - {"smastn"}
    rows = {r["network"]: r for r in result["networks"]}
    assert set(rows) == expected and "former_dfer" in rows
    for name, row in rows.items():
        assert f"| {name} |" in printed
        for key in ("fervid_bf16", "plain_bf16", "fervid_fp32", "plain_fp32", "gflops",
                    "params_m", "hours_5fold"):
            assert row[key] > 0, (name, key)
    assert result["loader"]["clips_per_s"] > 0 < result["loader"]["one_process_clips_per_s"]


def test_hours_formula():
    # 4 of 5 folds train on every clip: 46,788 clips per epoch over the 5 folds.
    assert gpu_check.dfew_hours(epochs=1, rate=46_788 / 3600) == pytest.approx(1.0)
