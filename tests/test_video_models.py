import pytest
import torch
import torch.nn.functional as F

from fervid.models import create_model
from fervid.models.video import VIDEO_MODELS

NAMES = list(VIDEO_MODELS)
# The paper's input, grayscale, and 224 pixels (T=8, batch 1 to stay small).
SHAPES = [(2, 3, 16, 112, 112), (1, 1, 16, 112, 112), (1, 3, 8, 224, 224)]


@pytest.mark.parametrize("shape", SHAPES, ids=["rgb112", "gray112", "rgb224"])
@pytest.mark.parametrize("name", NAMES)
def test_output_and_feature_shapes(name, shape):
    # Shapes are propagated on the meta device: the full-size layer arithmetic, no compute
    # (the real kernels run in the overfitting test below).
    with torch.device("meta"):
        model = create_model(name, in_chans=shape[1], num_classes=5)
        x = torch.empty(shape)
        features = model.forward_features(x)
        logits = model(x).logits
    assert features.shape == (shape[0], model.num_features)
    assert logits.shape == (shape[0], 5)
    assert model.forward_head(features).shape == (shape[0], 5)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_input_is_a_clear_error(name):
    with torch.device("meta"):
        model = create_model(name, in_chans=1)
        with pytest.raises(ValueError, match=r"expects a clip \(B, 1, T, H, W\)"):
            model(torch.empty(2, 3, 8, 32, 32))
        with pytest.raises(ValueError, match="got shape"):
            model(torch.empty(2, 1, 32, 32))


def test_options_are_checked():
    with pytest.raises(ValueError, match="drop_rate"):
        create_model("i3d", drop_rate=1.0)
    with pytest.raises(ValueError, match="temporal_pool"):
        create_model("resnet18_lstm", temporal_pool="max")


# One-batch overfitting on the smallest clips each network takes: 4 clips (B, 3, 4, 16, 16)
# (VGG11 needs 32 pixels for its five pools), 2 labels, Adam, stop once the loss is low.
OVERFIT = {"c3d": ((4, 3, 4, 16, 16), 3e-4), "p3d": ((4, 3, 4, 16, 16), 1e-3),
           "r2plus1d_18": ((4, 3, 4, 16, 16), 3e-4), "r3d_18": ((4, 3, 4, 16, 16), 3e-4),
           "i3d": ((4, 3, 4, 16, 16), 1e-3), "resnet18_lstm": ((4, 3, 4, 16, 16), 1e-3),
           # No BatchNorm in VGG11: a smaller step, and more of them.
           "vgg11_lstm": ((4, 3, 4, 32, 32), 1e-4)}
#: Step limit per network (30 unless listed).
OVERFIT_STEPS = {"vgg11_lstm": 60}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OVERFIT))
def test_overfits_one_batch(name):
    shape, lr = OVERFIT[name]
    torch.manual_seed(0)
    model = create_model(name, num_classes=4, drop_rate=0.0).train()
    x, y = torch.randn(shape), torch.tensor([0, 1, 0, 1])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    first = None
    for _ in range(OVERFIT_STEPS.get(name, 30)):
        logits = model(x).logits
        loss = F.cross_entropy(logits, y)
        first = loss.item() if first is None else first
        if loss.item() < 0.1 and torch.equal(logits.argmax(1), y):
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 < first
    assert torch.equal(logits.argmax(1), y)
