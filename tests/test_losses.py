"""DE-Loss, centre loss and the combined criterion against hand-computed values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fervid.config import TrainConfig
from fervid.losses import (
    CenterLoss,
    ClassificationWithFeatureLoss,
    DeviationEnhancementLoss,
    EcStflLoss,
    LossParts,
    balanced_class_weights,
    build_training_loss,
)
from fervid.models import ModelOutput


def _with_centers(loss, centers):
    with torch.no_grad():
        loss.centers.copy_(torch.tensor(centers))
    return loss


def test_de_loss_hand_value_unnormalised():
    loss = _with_centers(DeviationEnhancementLoss(2, 2, normalize=False), [[0.0, 0.0], [2.0, 0.0]])
    z = torch.tensor([[0.5, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    # hinges: max(0, 0.25 - 2.25 + 1) = 0; max(0, 1 - 1 + 1) = 1; max(0, 5 - 1 + 1) = 5
    torch.testing.assert_close(loss(z, y), torch.tensor(2.0))


def test_de_loss_hand_value_normalised():
    loss = _with_centers(DeviationEnhancementLoss(2, 2), [[3.0, 0.0], [0.0, 0.5]])
    z = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, -3.0]])
    y = torch.tensor([0, 0, 1])
    # unit vectors: (1,0) → 0 - 2 + 1 < 0; (.71,.71) → equal distances → 1; (0,-1) → 4 - 2 + 1
    torch.testing.assert_close(loss(z, y), torch.tensor(4.0 / 3.0))


def test_de_loss_zero_beyond_margin():
    centers = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    loss = _with_centers(DeviationEnhancementLoss(3, 3, margin=1.0), centers)
    y = torch.tensor([0, 1, 2, 0])
    z = 5 * torch.tensor(centers)[y] + 0.05 * torch.randn(4, 3)
    assert loss(z, y).item() == 0.0
    # ... but not with a margin larger than the gap (squared distance 2 between unit centres)
    assert _with_centers(DeviationEnhancementLoss(3, 3, margin=2.5), centers)(z, y) > 0


def test_de_loss_gradient_pulls_to_own_pushes_from_nearest_other():
    centers = torch.tensor([[0.0, 0.0], [1.5, 0.0], [-5.0, 0.0]])
    loss = _with_centers(DeviationEnhancementLoss(3, 2, normalize=False), centers.tolist())
    z = torch.tensor([[0.5, 0.5]], requires_grad=True)
    loss(z, torch.tensor([0])).backward()
    # d/dz = 2(z - c_own) - 2(z - c_nearest) = 2(c_nearest - c_own)
    torch.testing.assert_close(z.grad, torch.tensor([[3.0, 0.0]]))
    stepped = z.detach() - 0.1 * z.grad
    dist = lambda p, c: (p - c).pow(2).sum().item()  # noqa: E731
    assert dist(stepped, centers[0]) < dist(z.detach(), centers[0])
    assert dist(stepped, centers[1]) > dist(z.detach(), centers[1])
    # the far class takes no part; the own centre moves toward the sample
    assert torch.equal(loss.centers.grad[2], torch.zeros(2))
    assert (loss.centers.grad[0] @ (z.detach()[0] - centers[0])).item() < 0


def test_de_loss_checks():
    with pytest.raises(ValueError, match="2 classes"):
        DeviationEnhancementLoss(1, 4)
    with pytest.raises(ValueError, match="features"):
        DeviationEnhancementLoss(2, 4)(torch.zeros(3, 5), torch.zeros(3, dtype=torch.long))


def test_center_loss_hand_value():
    loss = _with_centers(CenterLoss(2, 2), [[0.0, 0.0], [2.0, 0.0]])
    z = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    torch.testing.assert_close(loss(z, torch.tensor([0, 1, 0])), torch.tensor(11.0 / 3.0))


def test_classification_without_feature_loss_is_ce():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]])
    y = torch.tensor([0, 2])
    total, parts = ClassificationWithFeatureLoss()(ModelOutput(logits), y)
    torch.testing.assert_close(total, F.cross_entropy(logits, y))
    assert isinstance(parts, LossParts) and parts.feature.item() == 0.0


def test_classification_with_feature_loss_adds_weighted_term():
    center = _with_centers(CenterLoss(2, 2), [[0.0, 0.0], [2.0, 0.0]])
    criterion = ClassificationWithFeatureLoss(center, weight=0.5)
    assert any(p is center.centers for p in criterion.parameters())
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    z = torch.tensor([[1.0, 0.0], [2.0, 2.0]])  # centre loss (1 + 4) / 2 = 2.5
    total, parts = criterion(ModelOutput(logits, z), y)
    ce = F.cross_entropy(logits, y)
    torch.testing.assert_close(total, ce + 0.5 * 2.5)
    torch.testing.assert_close(parts.feature, torch.tensor(2.5))
    torch.testing.assert_close(parts.ce, ce)
    with pytest.raises(ValueError, match="features"):
        criterion(ModelOutput(logits), y)


def test_class_weights_reweight_the_cross_entropy():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [0.3, 0.9, -0.2]])
    y = torch.tensor([0, 0, 2])
    w = balanced_class_weights(y, 3)
    # n / (K n_c): 3 / (3·2) for class 0, 3 / (3·1) for class 2; an absent class counts 1.
    torch.testing.assert_close(w, torch.tensor([0.5, 1.0, 1.0]))
    total, _ = ClassificationWithFeatureLoss(class_weights=w)(ModelOutput(logits), y)
    torch.testing.assert_close(total, F.cross_entropy(logits, y, weight=w))
    assert not torch.allclose(total, F.cross_entropy(logits, y))


@pytest.mark.parametrize("name, kind", [("none", type(None)), ("de", DeviationEnhancementLoss),
                                        ("center", CenterLoss), ("ec_stfl", EcStflLoss)])
def test_build_training_loss_from_config(name, kind):
    train = TrainConfig(feature_loss=name, feature_loss_weight=0.7)
    loss = build_training_loss(train, num_classes=3, feature_dim=4)
    assert isinstance(loss.feature_loss, kind) and loss.weight == 0.7
    if name != "none":
        with pytest.raises(ValueError, match="features"):
            build_training_loss(train, num_classes=3, feature_dim=None)


def test_build_training_loss_weights_classes_from_the_training_labels():
    labels = torch.tensor([0, 0, 0, 1, 2, 2])
    balanced = build_training_loss(TrainConfig(class_weights="balanced"), num_classes=3,
                                   feature_dim=4, train_labels=labels)
    torch.testing.assert_close(balanced.class_weights, balanced_class_weights(labels, 3))
    plain = build_training_loss(TrainConfig(), num_classes=3, feature_dim=4, train_labels=labels)
    assert plain.class_weights is None
