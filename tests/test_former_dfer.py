"""Former-DFER: shapes, one-batch overfitting, EC-STFL on its features, a k-fold epoch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from conftest import shared_path
from dfew_fixture import fold1_release
from fervid.cli import app
from fervid.config import KfoldConfig, TrainConfig, load_config
from fervid.losses import build_training_loss
from fervid.models import create_model, model_names
from fervid.models.video import FormerDFER

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_registered_for_kfold_only():
    assert "former_dfer" in model_names("kfold")
    assert "former_dfer" not in model_names("loso")


@pytest.mark.parametrize("shape", [(2, 3, 4, 32, 32), (1, 1, 8, 48, 40), (2, 3, 1, 16, 16)],
                         ids=["small", "gray-odd-size", "one-frame"])
def test_output_and_feature_shapes(shape):
    torch.manual_seed(0)
    model = create_model("former_dfer", in_chans=shape[1], num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.randn(shape))
    assert out.logits.shape == (shape[0], 5)
    assert out.features.shape == (shape[0], model.num_features) == (shape[0], 512)
    assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("stage, grid", [("layer1", 28), ("layer2", 14), ("layer3", 7),
                                         ("layer4", 4)])
def test_papers_input_on_the_meta_device(stage, grid):
    # 16 frames of 112 px: the full layer arithmetic, no compute. The position embedding is
    # learnt at the stage's token grid, so the paper's input needs no resampling.
    with torch.device("meta"):
        model = FormerDFER(spatial_stage=stage)
        out = model(torch.empty(2, 3, 16, 112, 112))
    assert model.spatial.pos.shape[-2:] == (grid, grid)
    assert model.temporal.frame_pos.shape[-1] == 16
    assert out.logits.shape == (2, 7) and out.features.shape == (2, 512)


def test_default_size_is_the_papers():
    # Paper: about 18M parameters (the measured figures are in the module docstring).
    model = create_model("former_dfer")
    params = sum(p.numel() for p in model.parameters())
    assert 17.5e6 < params < 18.5e6


def test_wrong_input_and_options_are_clear_errors():
    with torch.device("meta"):
        model = create_model("former_dfer", in_chans=1)
        with pytest.raises(ValueError, match=r"expects a clip \(B, 1, T, H, W\)"):
            model(torch.empty(2, 3, 4, 32, 32))
    with pytest.raises(ValueError, match="spatial_stage"):
        create_model("former_dfer", spatial_stage="layer5")
    with pytest.raises(ValueError, match="drop_rate"):
        create_model("former_dfer", drop_rate=1.0)


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = create_model("former_dfer", num_classes=4, drop_rate=0.0).train()
    x, y = torch.randn(4, 3, 4, 32, 32), torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    first = None
    for _ in range(40):
        logits = model(x).logits
        loss = F.cross_entropy(logits, y)
        first = loss.item() if first is None else first
        if loss.item() < 0.05 and torch.equal(logits.argmax(1), y):
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05 < first
    assert torch.equal(logits.argmax(1), y)


def test_ec_stfl_reads_its_features():
    torch.manual_seed(0)
    model = create_model("former_dfer", num_classes=3, drop_rate=0.0).train()
    train = TrainConfig(feature_loss="ec_stfl", feature_loss_weight=10.0)
    criterion = build_training_loss(train, num_classes=3, feature_dim=model.num_features)
    x, y = torch.randn(4, 3, 2, 32, 32), torch.tensor([0, 0, 1, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    features = []
    for _ in range(3):
        total, parts = criterion(model(x), y)
        features.append(parts.feature.item())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert parts.total.item() == pytest.approx(parts.ce.item() + 10 * parts.feature.item(),
                                               rel=1e-5)
    # The loss reaches the T-Former's class token and the conv trunk through the features.
    assert model.temporal.cls_token.grad.abs().sum() > 0
    assert model.stem[0].weight.grad.abs().sum() > 0
    assert features[-1] < features[0]


def test_shipped_configs_are_the_authors_setting():
    for name in ("dfew_former_dfer.yaml", "dfew_former_dfer_ecstfl.yaml"):
        cfg = load_config(CONFIGS / name, schema=KfoldConfig)
        assert cfg.model.name == "former_dfer" and cfg.model.spatial_stage == "layer3"
        assert (cfg.data.num_frames, cfg.data.size) == (16, 112)
        t = cfg.train
        assert (t.optimizer, t.lr, t.weight_decay, t.batch_size, t.epochs) == (
            "sgd", 0.01, 1e-4, 32, 100)
        assert (t.feature_loss == "ec_stfl") == name.endswith("_ecstfl.yaml")


def test_one_kfold_epoch_through_the_cli(tmp_path):
    release = fold1_release(tmp_path / "DFEW", shared_path("annotations", "dfew"))
    result = CliRunner().invoke(app, [
        "kfold", "--config", str(CONFIGS / "dfew_former_dfer_ecstfl.yaml"), "--data-root",
        str(release), "--out", str(tmp_path / "run"), "--folds", "1", "--epochs", "1",
        "--batch-size", "2", "--set", "data.num_frames=4", "--set", "data.size=32",
        "--set", "run.num_workers=0", "--no-progress"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n_samples"] == 3 and 0 <= metrics["pooled"]["war"] <= 1
    assert (tmp_path / "run" / "models" / "fold_001.pt").exists()
