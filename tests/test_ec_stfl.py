import math

import pytest
import torch

from fervid.losses import ClassificationWithFeatureLoss
from fervid.losses.ec_stfl import EcStflLoss
from fervid.models import ModelOutput

# Class 0: (0,0), (0,2), (2,0); class 1: (3,4). Unequal class sizes tell N_{x_i} from N_{x_j}.
FEATURES = [[0.0, 0.0], [0.0, 2.0], [2.0, 0.0], [3.0, 4.0]]
LABELS = [0, 0, 0, 1]


def _batch():
    return torch.tensor(FEATURES, dtype=torch.float64), torch.tensor(LABELS)


def test_eq9_hand_worked():
    # L2 within class 0: d01 = 2, d02 = 2, d12 = sqrt(8); N_0 = 3, N_1 = 1.
    within = (2 + 2) / 3 + (2 + math.sqrt(8)) / 3 + (2 + math.sqrt(8)) / 3 + 0.0
    # Between: d03 = 5, d13 = sqrt(13), d23 = sqrt(17); i in class 0 divides by N_1 = 1,
    # i = 3 divides by N_0 = 3.
    cross = 5 + math.sqrt(13) + math.sqrt(17)
    between = cross / 1 + cross / 3
    loss = EcStflLoss()(*_batch())
    assert loss.item() == pytest.approx(within / between, rel=1e-9)


def test_code2024_hand_worked():
    # L1: d01 = 2, d02 = 2, d12 = 4, d03 = 7, d13 = 5, d23 = 5; self-pairs count in n_same.
    terms = [
        (0 + 2 + 2) / 3 * (1 / (7 + 1e-6)) / (1 + 1),
        (2 + 0 + 4) / 3 * (1 / (5 + 1e-6)) / (1 + 1),
        (2 + 4 + 0) / 3 * (1 / (5 + 1e-6)) / (1 + 1),
        0 / 1 * (1 / (7 + 1e-6) + 1 / (5 + 1e-6) + 1 / (5 + 1e-6)) / (3 + 1),
    ]
    expected = sum(terms) / 4 / 4
    loss = EcStflLoss(variant="code2024")(*_batch())
    assert loss.item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("variant", ["eq9", "code2024"])
def test_single_class_batch_is_zero_with_finite_grad(variant):
    x = torch.randn(5, 8, requires_grad=True)
    loss = EcStflLoss(variant=variant)(x, torch.full((5,), 2))
    assert loss.item() == 0.0
    loss.backward()
    assert x.grad is not None and torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("variant", ["eq9", "code2024"])
def test_gradient_step_pulls_same_class_together(variant):
    x0, labels = _batch()
    x = x0.clone().requires_grad_(True)
    EcStflLoss(variant=variant)(x, labels).backward()
    assert torch.isfinite(x.grad).all()
    moved = (x - 0.05 * x.grad).detach()

    def within(z):
        c0 = z[labels == 0]
        return torch.cdist(c0, c0).sum()

    assert within(moved) < within(x0)
    assert EcStflLoss(variant=variant)(moved, labels) < EcStflLoss(variant=variant)(x0, labels)


def test_duplicate_features_give_finite_grad():
    x = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 3.0]], requires_grad=True)
    EcStflLoss()(x, torch.tensor([0, 0, 1])).backward()
    assert torch.isfinite(x.grad).all()


def test_bad_input_and_variant():
    with pytest.raises(ValueError, match="variant"):
        EcStflLoss(variant="eq7")
    with pytest.raises(ValueError, match=r"features must be \(B, D\)"):
        EcStflLoss()(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be"):
        EcStflLoss()(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))


def test_plugs_into_classification_criterion():
    features, labels = _batch()
    logits = torch.zeros(4, 2, dtype=torch.float64)
    total, parts = ClassificationWithFeatureLoss(EcStflLoss(), weight=10.0)(
        ModelOutput(logits, features), labels)
    assert total.item() == pytest.approx(math.log(2) + 10.0 * parts.feature.item())
