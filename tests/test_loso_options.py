"""LOSO training options (flow-aware flip, weight averaging, label smoothing) and HTNet under
the sequential engine, on generated flow images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from fervid.cli import app
from fervid.representation.optical_flow import minmax_uint8, mirror_flow
from generated import make_precomputed

runner = CliRunner()


def test_mirror_flow_is_the_flow_of_the_mirrored_face():
    """A field u(x, y) = x - 2 (moving right away from the column 2): mirrored, the motion
    points the other way, so its min-max scaled u is 255 minus the mirrored scaled u."""
    w = 6
    u = np.tile(np.arange(w, dtype=float) - 2, (4, 1))
    v = np.tile(np.arange(4, dtype=float)[:, None], (1, w))
    scaled = np.stack([minmax_uint8(c) for c in (v, u)]).astype(np.float32)  # (2, 4, 6)
    mirrored_field = np.stack([minmax_uint8(c) for c in (v[:, ::-1], -u[:, ::-1])])
    out = mirror_flow(torch.from_numpy(scaled)[None], u_channel=1, top=255.0)[0]
    np.testing.assert_allclose(out.numpy(), mirrored_field, atol=1)
    twice = mirror_flow(mirror_flow(torch.from_numpy(scaled), 1, 255.0), 1, 255.0)
    torch.testing.assert_close(twice, torch.from_numpy(scaled))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_precomputed(tmp_path_factory.mktemp("pre") / "flow", n_subjects=4)


def _run(tmp_path: Path, data: Path, name: str, model: str = "ststnet", **train) -> pd.DataFrame:
    cfg = {"name": name, "seed": 0, "model": {"name": model},
           "data": {"flow_u_channel": 2, "scale": 1 / 255},
           "train": {"lr": 1e-3, "batch_size": 16, "epochs": 4, **train},
           "run": {"engine": "sequential"}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / name
    result = runner.invoke(app, ["loso", "--config", str(path), "--data-root", str(data),
                                 "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "predictions.csv").merge(
        pd.concat([pd.read_csv(p) for p in sorted((out / "folds").glob("*.csv"))]))


@pytest.mark.parametrize("option", [{"flow_flip": True}, {"average_last": 2},
                                    {"label_smoothing": 0.1}, {"schedule": "onecycle"}],
                         ids=["flow_flip", "average_last", "label_smoothing", "schedule"])
def test_each_option_changes_training_and_is_repeatable(tmp_path, data, option):
    off = _run(tmp_path, data, "off")
    on = _run(tmp_path, data, "on", **option)
    again = _run(tmp_path, data, "again", **option)
    probs = [c for c in on.columns if c.startswith("p_")]
    pd.testing.assert_frame_equal(on, again)
    assert not np.allclose(on[probs], off[probs])


def test_htnet_trains_under_loso(tmp_path, data):
    pred = _run(tmp_path, data, "htnet", model="htnet", lr=1e-4)
    assert len(pred) == 32 and pred["pred"].between(0, 2).all()
