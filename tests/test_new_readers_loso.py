"""`fervid loso` end to end through the CLI on a generated tree of every newer micro-expression
reader: the trees of ``tests/release_trees`` (built from the real sheets where there is one),
their frames made decodable, one fold of a one-epoch apex-frame ResNet under MEGC's 3class."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fervid.cli import app

#: (tree module, registered name, folds its LOSO has: subjects with a 3class sample).
READERS = [("casme", "casme"), ("fourdme", "4dme"), ("mmew", "mmew"), ("casme3", "casme3"),
           ("dfme", "dfme"), ("mmme", "mmme"), ("casme_sq", "casme_sq"),
           ("smic_apex", "smic")]


def _decodable(tmp: Path, root: Path) -> int:
    """Write one small JPEG into every empty file of ``tmp`` outside ``root``: the trees' frames
    are hard links to such blanks, so every frame then decodes. Returns how many were filled."""
    ok, jpeg = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (24, 24, 3),
                                                                        np.uint8))
    assert ok
    filled = 0
    for folder, dirs, files in os.walk(tmp):
        dirs[:] = [d for d in dirs if Path(folder, d) != root]
        for name in files:
            path = Path(folder, name)
            if path.stat().st_size == 0:
                path.write_bytes(jpeg.tobytes())
                filled += 1
    return filled


@pytest.mark.parametrize("module, dataset", READERS, ids=[r[1] for r in READERS])
def test_one_loso_fold_runs_through_the_cli(tmp_path, module, dataset):
    tree = importlib.import_module(f"release_trees.{module}").build(tmp_path / "tree")
    assert _decodable(tmp_path / "tree", tree["root"]) >= 1
    data = {"format": "apex", "size": 24, "dataset": dataset, "protocol": "3class",
            "classes": ["negative", "positive", "surprise"]}
    if tree.get("sheet") is not None:
        data["sheet"] = str(tree["sheet"])
    config = tmp_path / "apex.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "name": f"{dataset}_apex", "seed": 0, "model": {"name": "apex_resnet", "drop_rate": 0.0},
        # batches of 64: a few steps even over DFME's thousands of clips
        "data": data, "train": {"lr": 1e-3, "batch_size": 64, "epochs": 1},
        "run": {"engine": "sequential", "workers": 1, "precision": "32-true"}}))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "loso", "--config", str(config), "--data-root", str(tree["root"]), "--out", str(out),
        "--cache-dir", str(tmp_path / "cache"), "--folds", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    predictions = (out / "folds" / "fold_000.csv").read_text().splitlines()
    assert len(predictions) >= 2  # a header and the held-out subject's clips
    meta = json.loads((out / "run.json").read_text())
    assert meta["classes"] == ["negative", "positive", "surprise"]
