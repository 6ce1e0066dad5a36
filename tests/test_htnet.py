"""HTNet: shapes, the registry, the region template, locality of level 1, and that it learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fervid.config import ConfigError, ModelConfig
from fervid.models import HTNet, ModelOutput, create_model, model_from_config
from fervid.models.htnet import PAPER_CONFIG, REGIONS, htnet, region_boxes, split_regions


def _flow(b=2, size=28, seed=0):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 255


def test_output_type_and_shapes():
    torch.manual_seed(0)
    model = htnet()
    out = model(_flow())
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (2, 3)
    assert out.features.shape == (2, model.num_features) == (2, 4 * 64)
    torch.testing.assert_close(model.forward_head(model.forward_features(_flow())), out.logits)
    g1, g2, g3 = model.forward_levels(_flow())
    assert (g1.shape, g2.shape, g3.shape) == ((2, 4, 4, 64), (2, 2, 2, 128), (2, 2, 2, 256))


def test_builds_by_name_and_from_config():
    model = create_model("htnet", in_chans=3, num_classes=3)
    assert isinstance(model, HTNet) and model.head.out_features == 3
    model = model_from_config(ModelConfig(name="htnet", drop_rate=0.1), in_chans=3,
                              num_classes=5)
    assert isinstance(model, HTNet)
    assert model.dropout.p == 0.1 and model.head.out_features == 5
    assert model(_flow()).logits.shape == (2, 5)


def test_paper_sized_model_runs():
    model = HTNet(**PAPER_CONFIG).eval()
    assert model.dims == (256, 512, 1024)
    assert [len(level) for level in (model.level1, model.level2, model.level3)] == [2, 2, 10]
    assert model.level3[0].attn.heads == 12  # 3 heads, doubled at each aggregation
    with torch.no_grad():
        out = model(_flow(b=1))
    assert out.logits.shape == (1, 3) and out.features.shape == (1, 1024)
    assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("kwargs", [
    {"img_size": 30},            # 15-px regions do not cut into 7-px patches
    {"img_size": 27},            # no four equal regions
    {"patch_size": 4},
    {"heads": 0},
    {"depths": (1, 1)},
    {"mlp_ratio": 0.0},
])
def test_bad_options_raise_config_error(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ConfigError, match=name):
        htnet(**kwargs)


def test_wrong_input_size_raises_config_error():
    with pytest.raises(ConfigError, match="img_size"):
        htnet()(_flow(size=32))


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = htnet(drop_rate=0.1)
    loss = F.cross_entropy(model(_flow(b=4)).logits, torch.tensor([0, 1, 2, 0]))
    loss.backward()
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient: {missing}"


def test_regions_are_the_template_quadrants():
    assert region_boxes(28) == {"left_eye": (0, 14, 0, 14), "right_eye": (0, 14, 14, 28),
                                "left_lip": (14, 28, 0, 14), "right_lip": (14, 28, 14, 28)}
    x = _flow()
    parts = split_regions(x)
    assert parts.shape == (2, 4, 3, 14, 14)
    covered = torch.zeros(28, 28, dtype=torch.int64)
    for i, (y0, y1, x0, x1) in enumerate(region_boxes(28).values()):
        assert torch.equal(parts[:, i], x[..., y0:y1, x0:x1])
        covered[y0:y1, x0:x1] += 1
    assert (covered == 1).all()  # the four regions tile the face exactly


def test_level_one_is_local_to_each_region():
    torch.manual_seed(0)
    model = htnet().eval()
    x = _flow()
    y0, y1, x0, x1 = region_boxes(28)["right_lip"]
    x2 = x.clone()
    x2[..., y0:y1, x0:x1] = torch.rand(2, 3, 14, 14) * 255
    with torch.no_grad():
        before, after = model.forward_levels(x), model.forward_levels(x2)
    t = model.region_tokens[0]
    for name, (r, c) in REGIONS.items():
        cell = (slice(None), slice(r * t, (r + 1) * t), slice(c * t, (c + 1) * t))
        if name == "right_lip":
            assert not torch.allclose(before[0][cell], after[0][cell])
        else:
            torch.testing.assert_close(before[0][cell], after[0][cell])
    # From level 2 on the regions see each other: the far corner (left eye) changes too.
    assert not torch.allclose(before[2][:, 0, 0], after[2][:, 0, 0])


def _bright_region_problem(n=96, seed=0):
    """Class k: a bright 6×6 spot somewhere inside region k, on 0..60 noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 28, 28, generator=g) * 60
    y = torch.arange(n) % 3
    boxes = list(region_boxes(28).values())
    for i in range(n):
        y0, _, x0, _ = boxes[int(y[i])]
        dy, dx = torch.randint(0, 9, (2,), generator=g).tolist()
        x[i, :, y0 + dy:y0 + dy + 6, x0 + dx:x0 + dx + 6] += 150
    return x, y


def test_learns_which_region_is_bright():
    torch.manual_seed(0)
    x, y = _bright_region_problem()
    model = htnet()
    # A transformer-sized rate: at 1e-3 Adam's first, sign-like steps knock the 3×3
    # aggregation convs far off (fervid's default train.lr is 5e-5).
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    for _ in range(30):
        opt.zero_grad()
        F.cross_entropy(model(x).logits, y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).logits.argmax(1) == y).float().mean().item()
    assert accuracy >= 0.9, f"train accuracy {accuracy:.2f} after 30 steps"
