"""The training loss: cross-entropy plus an optional feature loss that owns its weight λ, or
for AU detection binary cross-entropy per action unit with positive weights from the training
fold's own targets.

:func:`build_training_loss` is the one place a config's ``train`` section becomes a loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fervid.config import ConfigError, TrainConfig
from fervid.losses.ec_stfl import EcStflLoss
from fervid.losses.feature import CenterLoss, DeviationEnhancementLoss
from fervid.models.output import ModelOutput


@dataclass(frozen=True)
class LossParts:
    """Detached loss terms for logging (tensors, so logging forces no device sync).

    ``feature`` is the unweighted feature loss (zero when there is none).
    """

    total: torch.Tensor
    ce: torch.Tensor
    feature: torch.Tensor


class ClassificationWithFeatureLoss(nn.Module):
    """``CE(logits, y; class_weights) + weight * feature_loss(features, y)``.

    Parameters
    ----------
    feature_loss : nn.Module or None
        E.g. :class:`DeviationEnhancementLoss`; None gives plain cross-entropy (the ablation).
    weight : float
        λ of methods.md (0.1 for DE-Loss, 10 for EC-STFL).
    class_weights : torch.Tensor or None
        ``(C,)`` cross-entropy class weights (a buffer: it moves with the module).
    label_smoothing : float
        Cross-entropy's label smoothing (``fervid fit``'s ``train.label_smoothing``).

    Shapes
    ------
    ``output.logits (B, C)``, ``labels (B,)``, ``output.features (B, D)`` (needed only with a
    feature loss) → ``(total scalar, LossParts)``. Both terms are computed in float32.
    """

    def __init__(self, feature_loss: nn.Module | None = None, weight: float = 0.1,
                 class_weights: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.feature_loss, self.weight = feature_loss, weight
        self.label_smoothing = label_smoothing
        self.register_buffer("class_weights", class_weights)

    def forward(self, output: ModelOutput, labels: torch.Tensor
                ) -> tuple[torch.Tensor, LossParts]:
        ce = F.cross_entropy(output.logits.float(), labels, weight=self.class_weights,
                             label_smoothing=self.label_smoothing)
        if self.feature_loss is None:
            feature = ce.new_zeros(())
            total = ce
        else:
            if output.features is None:
                raise ValueError("this criterion has a feature loss: the model must return "
                                 "features (B, D)")
            feature = self.feature_loss(output.features.float(), labels)
            total = ce + self.weight * feature
        return total, LossParts(total.detach(), ce.detach(), feature.detach())


def positive_weights(targets: torch.Tensor) -> torch.Tensor:
    """``n_neg / n_pos`` per AU over training ``targets`` ``(N, A)`` 0/1: a present AU weighs
    as much in total as its absences (an AU without positives in the fold gets 1). Returns
    ``(A,)`` float32."""
    pos = targets.double().sum(0)
    neg = len(targets) - pos
    return torch.where(pos > 0, neg / pos.clamp_min(1), torch.ones_like(pos)).float()


class MultiLabelLoss(nn.Module):
    """Mean binary cross-entropy over samples and AUs on the logits, ``pos_weight`` (a
    buffer, moving with the module) multiplying the present AUs' terms.

    Shapes
    ------
    ``output.logits (B, A)``, ``targets (B, A)`` 0/1 float → ``(total scalar, LossParts)``
    (``ce`` the BCE, ``feature`` zero), in float32.
    """

    def __init__(self, pos_weight: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, output: ModelOutput, targets: torch.Tensor):
        bce = F.binary_cross_entropy_with_logits(output.logits.float(), targets.float(),
                                                 pos_weight=self.pos_weight)
        return bce, LossParts(bce.detach(), bce.detach(), bce.new_zeros(()))


def build_feature_loss(train: TrainConfig, num_classes: int, dim: int) -> nn.Module | None:
    """The loss ``train.feature_loss`` names on ``dim``-dimensional clip features, or None
    (centre-based losses draw their centres from torch's generator: seed it first)."""
    if train.feature_loss == "none":
        return None
    if train.feature_loss == "de":
        return DeviationEnhancementLoss(num_classes, dim, margin=train.de_margin)
    if train.feature_loss == "center":
        return CenterLoss(num_classes, dim)
    return EcStflLoss(variant=train.ec_stfl_variant)


def build_training_loss(train: TrainConfig, *, num_classes: int, feature_dim: int | None,
                        train_labels: torch.Tensor | None = None, multi_label: bool = False
                        ) -> ClassificationWithFeatureLoss | MultiLabelLoss:
    """The loss a config's ``train`` section asks for: cross-entropy, weighted by
    ``train.class_weights`` over the fold's ``train_labels`` ``(N,)``, plus ``train.feature_loss``
    weighted by ``train.feature_loss_weight``. Centres are drawn from torch's generator: seed it
    first.

    ``multi_label`` (AU detection, ``train_labels`` ``(N, A)`` 0/1): binary cross-entropy per
    AU (:class:`MultiLabelLoss`), with ``train.class_weights: balanced`` positive weights
    ``n_neg / n_pos`` from those training targets only.

    Raises
    ------
    ConfigError
        A feature loss is asked for but the model exposes no features (``feature_dim`` None).
    """
    if multi_label:
        if train.feature_loss != "none":
            raise ConfigError(f"train.feature_loss={train.feature_loss}: the AU task "
                              "(data.task: au) trains binary cross-entropy alone")
        weights = None
        if train.class_weights == "balanced":
            if train_labels is None:
                raise ValueError("train.class_weights=balanced needs the training targets")
            weights = positive_weights(train_labels)
        return MultiLabelLoss(weights)
    if train.feature_loss != "none" and feature_dim is None:
        raise ConfigError(f"train.feature_loss={train.feature_loss} needs a model that returns "
                          f"its features")
    weights = None
    if train.class_weights == "balanced":
        if train_labels is None:
            raise ValueError("train.class_weights=balanced needs the training labels")
        weights = balanced_class_weights(train_labels, num_classes)
    feature_loss = (None if feature_dim is None
                    else build_feature_loss(train, num_classes, feature_dim))
    return ClassificationWithFeatureLoss(feature_loss, train.feature_loss_weight, weights,
                                         getattr(train, "label_smoothing", 0.0))


def balanced_class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``n / (K · n_c)`` over ``labels`` ``(N,)`` (scikit-learn's ``balanced``): every class
    carries the same total weight, as UF1 and UAR count it. Returns ``(K,)`` float32."""
    counts = torch.bincount(labels, minlength=num_classes).double()
    return (counts.sum() / (num_classes * counts.clamp_min(1))).float()


def per_fold_class_weights(y: torch.Tensor, test_fold: torch.Tensor, folds: list[int],
                           num_classes: int, mode: str) -> torch.Tensor | None:
    """Per-fold class weights ``(F, K)`` from each fold's training labels, or None for
    ``mode`` ``none`` (``balanced``: :func:`balanced_class_weights`)."""
    if mode == "none":
        return None
    return torch.stack([balanced_class_weights(y[test_fold != f], num_classes) for f in folds])


def per_fold_cross_entropy(logits: torch.Tensor, y: torch.Tensor, test_fold: torch.Tensor,
                           weights: torch.Tensor | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over folds of each fold's mean loss on its own training samples (the fold-batched
    engine's loss).

    ``logits`` ``(B, F, K)``, ``y`` ``(B,)``, ``test_fold`` ``(B,)`` (-1: trains every fold),
    ``weights`` ``(F, K)`` class weights or None. A weighted mean divides by the summed weights,
    as ``F.cross_entropy`` does. The folds' parameters are disjoint, so each fold gets exactly
    its own gradient. Returns the loss and the ``(B, F)`` float mask of training pairs.
    """
    b, n_folds, _ = logits.shape
    mask = (test_fold[:, None] != torch.arange(n_folds, device=logits.device)[None]).float()
    ce = F.cross_entropy(logits.permute(0, 2, 1), y[:, None].expand(b, n_folds),
                         reduction="none")
    w = mask if weights is None else mask * weights[:, y].t()
    return ((ce * w).sum(0) / w.sum(0).clamp_min(1e-12)).sum(), mask
