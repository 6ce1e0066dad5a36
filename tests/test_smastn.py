"""SMA-STN: shapes, the STMA parts, ImageNet weight loading, and that it can learn."""

from __future__ import annotations

import pytest
import torch
import torchvision

from fervid.config import ConfigError
from fervid.models.pretrained import load_backbone_weights as load_imagenet_weights
from fervid.models.smastn import (
    SMASTN,
    SingleImageResNet,
    SpatialNonLocal,
    TemporalSegmentAttention,
    apex_resnet,
    global_di_resnet,
    smastn,
)


def _clip(b=2, k=4, c=3, size=64, seed=0):
    return torch.randn(b, k + 1, c, size, size, generator=torch.Generator().manual_seed(seed))


def test_output_shapes_k4():
    torch.manual_seed(0)
    model = smastn(num_classes=5)
    out = model(_clip())
    assert out.logits.shape == (2, 5)
    assert out.segment_weights.shape == (2, 4)
    assert out.features.shape == (2, 1024)
    torch.testing.assert_close(out.segment_weights.sum(1), torch.ones(2))
    assert model.backbone.spatial.channels == 256  # after layer3 of a resnet18


def test_mean_pooling_is_uniform_and_local_first_global_last():
    torch.manual_seed(0)
    model = smastn(temporal_attention=False, num_classes=3).eval()  # eval: per-image BN
    x = _clip(k=3, size=32)
    with torch.no_grad():
        z, alpha = model.forward_features(x)
        per_image = model.backbone(x.flatten(0, 1)).unflatten(0, (2, 4))
        logits = model.forward_head(z)
    torch.testing.assert_close(alpha, torch.full((2, 3), 1 / 3))
    torch.testing.assert_close(z[:, :512], per_image[:, :3].mean(1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(z[:, 512:], per_image[:, 3], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(x).logits, logits)


def test_temporal_attention_hand_value():
    att = TemporalSegmentAttention(2, hidden=2)
    with torch.no_grad():
        att.proj.weight.copy_(torch.eye(2))
        att.proj.bias.zero_()
        att.score.weight.copy_(torch.tensor([[1.0, 0.0]]))
    f = torch.tensor([[[3.0, 0.0], [0.0, 5.0]]])  # s = (tanh 3, 0)
    pooled, alpha = att(f)
    a0 = torch.sigmoid(torch.tanh(torch.tensor(3.0)))
    torch.testing.assert_close(alpha, torch.stack([a0, 1 - a0])[None])
    torch.testing.assert_close(pooled, (a0 * f[0, 0] + (1 - a0) * f[0, 1])[None])


def test_non_local_is_identity_at_init_then_learns():
    torch.manual_seed(0)
    block = SpatialNonLocal(8)
    x = torch.randn(2, 8, 4, 4)
    assert torch.equal(block(x), x)
    opt = torch.optim.SGD(block.parameters(), lr=0.1)
    ((block(x) - torch.randn_like(x)) ** 2).mean().backward()
    opt.step()
    assert not torch.allclose(block(x), x, atol=1e-4)


def test_non_local_relates_distant_positions():
    torch.manual_seed(0)
    block = SpatialNonLocal(8).eval()
    with torch.no_grad():
        block.bn.weight.fill_(1.0)  # switch the residual branch on
        x = torch.randn(1, 8, 4, 4)
        y = x.clone()
        y[..., 0, 0] += 3.0  # perturb one corner only
        # The opposite corner changes: attention spans all positions, unlike a local conv.
        assert not torch.allclose(block(x)[..., 3, 3], block(y)[..., 3, 3], atol=1e-4)


def test_non_local_attention_weights_sum_to_one_over_positions():
    torch.manual_seed(0)
    block = SpatialNonLocal(8).eval()
    with torch.no_grad():
        block.g.weight.zero_()
        block.g.bias.fill_(1.0)  # g(x_j) = 1 at every position j
        block.out.weight.fill_(1.0)
        block.bn.weight.fill_(1.0)
        x = torch.randn(2, 8, 4, 4)
        # A convex combination (softmax over j) of a constant is that constant, everywhere.
        delta = block(x) - x
    torch.testing.assert_close(delta, delta[..., :1, :1].expand_as(delta))
    torch.testing.assert_close(delta, torch.full_like(delta, 4.0), rtol=1e-4, atol=1e-4)


def test_non_local_block_is_in_the_forward_path():
    torch.manual_seed(0)
    model = smastn(num_classes=3).eval()
    x = _clip(k=2, size=32)
    with torch.no_grad():
        before = model(x).features
        model.backbone.spatial.bn.weight.fill_(1.0)
        assert not torch.allclose(model(x).features, before, atol=1e-4)


def test_grayscale_and_options():
    torch.manual_seed(0)
    gray = smastn(in_chans=1, num_classes=3).eval()
    with torch.no_grad():
        assert gray(_clip(k=2, c=1, size=32)).logits.shape == (2, 3)
        with pytest.raises(ValueError, match="expects"):
            gray(_clip(k=2, c=3, size=32))
    assert smastn(spatial_stage="layer2").backbone.spatial.channels == 128
    assert isinstance(smastn(spatial_attention=False).backbone.spatial, torch.nn.Identity)
    with pytest.raises(ValueError, match="spatial_stage"):
        smastn(spatial_stage="layer5")
    with pytest.raises(ValueError, match="backbone"):
        smastn(backbone="vgg11")


def test_use_global_false_drops_the_global_feature():
    torch.manual_seed(0)
    model = smastn(use_global=False, num_classes=3).eval()
    assert model.fc.in_features == 512
    x = _clip(k=2, size=32)
    y = x.clone()
    y[:, -1] = 100.0  # the global DI must not matter
    with torch.no_grad():
        out = model(x)
        assert out.features.shape == (2, 512)
        torch.testing.assert_close(model(y).logits, out.logits)


def test_baselines_take_one_image():
    torch.manual_seed(0)
    for builder in (apex_resnet, global_di_resnet):
        model = builder(in_chans=1, num_classes=4, drop_rate=0.0, backbone="resnet18")
        assert isinstance(model, SingleImageResNet)
        out = model(torch.randn(2, 1, 32, 32))
        assert out.logits.shape == (2, 4) and out.features.shape == (2, model.num_features)


def test_load_imagenet_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    source = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(source, path)
    model = smastn(pretrained_path=path)
    got = model.backbone.resnet.state_dict()
    for key, value in source.items():
        if not key.startswith("fc."):
            assert torch.equal(got[key], value), key
    # Grayscale: the RGB filters are averaged.
    gray = SMASTN(in_chans=1)
    load_imagenet_weights(gray, path)
    torch.testing.assert_close(gray.backbone.resnet.conv1.weight,
                               source["conv1.weight"].mean(1, keepdim=True))
    torch.testing.assert_close(gray.backbone.resnet.layer2[0].conv1.weight,
                               source["layer2.0.conv1.weight"])


def test_load_imagenet_weights_errors(tmp_path):
    model = smastn()
    with pytest.raises(ConfigError, match="nothere.pth"):
        load_imagenet_weights(model, tmp_path / "nothere.pth")
    # resnet34 has every resnet18 key with the same shape, plus more: must still be refused.
    wrong = tmp_path / "resnet34-b627a593.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), wrong)
    with pytest.raises(ValueError, match="resnet34-b627a593.pth.*unexpected"):
        load_imagenet_weights(model, wrong)
    partial = tmp_path / "partial.pth"
    state = torchvision.models.resnet18(weights=None).state_dict()
    del state["layer4.1.bn2.weight"]
    torch.save(state, partial)
    with pytest.raises(ValueError, match="partial.pth.*missing.*layer4.1.bn2.weight"):
        load_imagenet_weights(model, partial)


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = smastn(num_classes=4, drop_rate=0.0)
    x = _clip(b=4, k=2, size=32, seed=1)
    y = torch.tensor([0, 1, 2, 3])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.no_grad():
        assert not (model(x).logits.argmax(1) == y).all()  # there is something to learn
    for _ in range(30):
        out = model(x)
        if (out.logits.argmax(1) == y).all():
            break
        opt.zero_grad()
        torch.nn.functional.cross_entropy(out.logits, y).backward()
        opt.step()
    assert (out.logits.argmax(1) == y).all()
