"""``fervid evaluate --fold-weights``: LOSO scored from per-subject weights, no training."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from fervid.cli import app
from fervid.config import load_config
from fervid.errors import FervidError
from fervid.models import create_model
from fervid.protocol.fold_weights import evaluate_fold_weights
from fervid.protocol.loso import load_loso_data
from generated import make_precomputed

runner = CliRunner()

#: Real data made by others, beside the project (../shared/data/README.md); never copied here.
SHARED = Path(__file__).parents[1].parent / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (SHARED / "megc2019_flow").is_dir()
                    or not (SHARED / "ststnet_weights").is_dir(),
                    reason=f"real data not available: {SHARED}/megc2019_flow and "
                           f"ststnet_weights are absent (they live in ../shared/data)")
def test_released_ststnet_weights_give_the_known_figures(tmp_path):
    # The published check of these weights on these images (../shared/data/README.md).
    out = tmp_path / "run"
    result = runner.invoke(app, [
        "evaluate", "--config", str(REPO / "configs" / "ststnet_megc2019.yaml"),
        "--data-root", str(SHARED / "megc2019_flow"),
        "--fold-weights", str(SHARED / "ststnet_weights"), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    m = json.loads((out / "metrics.json").read_text())
    assert (round(m["uf1"], 4), round(m["uar"], 4)) == (0.7209, 0.7250)
    assert m["n_samples"] == 442 and m["n_folds"] == 68 and m["complete"]
    assert m["trained"] is False and Path(m["fold_weights"]).name == "ststnet_weights"


def _config(tmp_path: Path) -> Path:
    # bf16-mixed training precision: scoring must still run in float32.
    cfg = {"name": "fw", "seed": 0, "model": {"name": "ststnet"},
           "train": {"batch_size": 16}, "run": {"precision": "bf16-mixed"}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def flow(tmp_path_factory) -> Path:
    return make_precomputed(tmp_path_factory.mktemp("pre") / "flow", n_subjects=4,
                            per_subject=5)


def _save_models(folder: Path, subjects: list[str]) -> dict[str, torch.nn.Module]:
    """A freshly initialised STSTNet per subject, its state dict saved as ``<subject>.pth``."""
    folder.mkdir(parents=True, exist_ok=True)
    models = {}
    for i, s in enumerate(subjects):
        torch.manual_seed(100 + i)
        model = create_model("ststnet", in_chans=3, num_classes=3)
        with torch.no_grad():  # BatchNorm statistics unlike the defaults, so they must load
            for bn in (model.bn1, model.bn2, model.bn3):
                bn.running_mean.uniform_(0, 50)
                bn.running_var.uniform_(100, 900)
        torch.save(model.state_dict(), folder / f"{s}.pth")
        models[s] = model.eval()
    return models


def test_predictions_equal_running_the_models(tmp_path, flow):
    config = _config(tmp_path)
    subjects = [f"s{i:02d}" for i in range(4)]
    models = _save_models(tmp_path / "weights", subjects)
    out = tmp_path / "run"
    result = runner.invoke(app, ["evaluate", "--config", str(config), "--data-root", str(flow),
                                 "--fold-weights", str(tmp_path / "weights"), "--out",
                                 str(out), "--no-progress"])
    assert result.exit_code == 0, result.output

    data = load_loso_data(load_config(config), flow, progress=False)
    with torch.no_grad():
        expected = torch.cat([models[s.subject](data.x[i:i + 1]).logits.softmax(-1)
                              for i, s in enumerate(data.table)])
    folds = pd.concat(pd.read_csv(f, dtype={"subject": str})
                      for f in sorted((out / "folds").glob("fold_*.csv")))
    folds = folds.set_index(["subject", "clip"]).loc[[(s.subject, s.clip) for s in data.table]]
    got = torch.tensor(folds[["p_negative", "p_positive", "p_surprise"]].to_numpy())
    assert torch.allclose(got, expected.double(), atol=1e-6)
    assert folds["pred"].tolist() == expected.argmax(-1).tolist()
    assert folds["fold"].tolist() == [int(s.subject[1:]) for s in data.table]

    meta = json.loads((out / "run.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert meta["protocol"] == "loso" and meta["trained"] is False
    assert metrics["fold_weights"] == str((tmp_path / "weights").resolve())
    assert metrics["n_folds"] == 4 and (out / "predictions.csv").exists()
    assert sorted(p.name for p in (out / "models").iterdir()) == [
        f"fold_{f:03d}.pt" for f in range(4)]
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0


def test_missing_and_unusable_weight_files_are_named(tmp_path, flow):
    cfg = load_config(_config(tmp_path))
    data = load_loso_data(cfg, flow, progress=False)
    weights = tmp_path / "weights"
    _save_models(weights, ["s00", "s01", "s02", "s03"])

    def fails(out: str, where: Path, problem: str) -> None:
        with pytest.raises(FervidError, match=re.escape(f"{where}: ") + problem):
            evaluate_fold_weights(cfg, data, weights, tmp_path / out, progress=False)

    (weights / "s01.pth").unlink()
    (weights / "s03.pth").unlink()
    fails("a", weights, r"no weight file for 2 of the 4 .*: s01\.pth, s03\.pth$")
    assert not (tmp_path / "a").exists()  # checked before the run directory is made

    torch.save([torch.zeros(3)], weights / "s01.pth")  # a list, not a state dict
    (weights / "s03.pth").write_text("not torch")
    fails("b", weights / "s01.pth", "not a state dict")

    torch.save(create_model("ststnet", num_classes=5).state_dict(), weights / "s01.pth")
    fails("c", weights / "s01.pth", r"does not fit model 'ststnet' .*fc\.weight is \(5, 400\)")

    _save_models(weights, ["s01"])
    fails("d", weights / "s03.pth", "not readable as PyTorch weights")


@pytest.mark.parametrize("args", [["--config", "c.yaml"], ["--fold-weights", "w"],
                                  ["--checkpoint", "m.pt", "--config", "c.yaml"]])
def test_evaluate_option_combinations_are_usage_errors(args):
    result = runner.invoke(app, ["evaluate", "--data-root", "d", "--out", "o", *args])
    assert result.exit_code == 2
    assert "error:" in result.output
