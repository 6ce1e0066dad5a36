"""A fervid checkpoint (``fervid fit``'s frame model) initialises other models' backbones."""

from __future__ import annotations

import pytest
import torch

from fervid.config import ConfigError, FitConfig, ModelConfig
from fervid.models import create_model, model_from_config
from fervid.runs.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def frame_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("frame_resnet", in_chans=1, num_classes=7)
    path = tmp_path_factory.mktemp("fit") / "model.pt"
    save_checkpoint(path, model.state_dict(), config=FitConfig(),
                    classes=["anger", "disgust", "fear", "happiness", "sadness", "surprise",
                             "neutral"])
    return path, model


def _trunk_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", ["smastn", "apex_resnet", "global_di_resnet"])
def test_fervid_checkpoint_initialises_single_and_dssi_models(frame_checkpoint, name):
    path, source = frame_checkpoint
    cfg = ModelConfig(name=name, stem="small", pretrained_path=str(path))
    model = model_from_config(cfg, in_chans=1, num_classes=6)
    assert _trunk_equal(model.backbone.resnet, source.backbone.resnet)
    assert model.pretrained.kind == "fervid"
    assert model.pretrained.layers == ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
    assert model.fc.out_features == 6  # the head is the new model's own


def test_fervid_checkpoint_initialises_resnet18_lstm(frame_checkpoint):
    path, source = frame_checkpoint
    cfg = ModelConfig(name="resnet18_lstm", stem="small", pretrained_path=str(path))
    model = model_from_config(cfg, in_chans=1, num_classes=7)
    assert _trunk_equal(model.encoder.trunk, source.backbone.resnet)
    out = model(torch.randn(1, 1, 4, 40, 40))
    assert out.logits.shape == (1, 7)


def test_mismatched_stem_or_model_is_refused(frame_checkpoint):
    path, _ = frame_checkpoint
    with pytest.raises(ConfigError, match=r"does not fit a resnet18 backbone.*conv1.weight"):
        model_from_config(ModelConfig(name="smastn", pretrained_path=str(path)), in_chans=1,
                          num_classes=3)
    with pytest.raises(ConfigError, match="does not take it"):
        model_from_config(ModelConfig(name="c3d", pretrained_path=str(path)), in_chans=3,
                          num_classes=7)
    with pytest.raises(ConfigError, match="not found"):
        model_from_config(ModelConfig(name="smastn", pretrained_path="nothere.pt"),
                          in_chans=1, num_classes=3)
