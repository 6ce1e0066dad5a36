"""The training loss: cross-entropy plus an optional feature loss that owns its weight λ, or
for AU detection binary cross-entropy per action unit with positive weights from the training
fold's own targets; with AUs as an aid to emotion (``train.au_weight``), the emotion loss plus
that weight times the AU loss over the samples with AU labels.

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

    ``feature`` is the unweighted feature loss (zero when there is none); ``au`` the
    unweighted AU loss of an AU-aided emotion loss (None without one).
    """

    total: torch.Tensor
    ce: torch.Tensor
    feature: torch.Tensor
    au: torch.Tensor | None = None


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


@dataclass(frozen=True)
class AuAidedTargets:
    """The targets of an emotion run aided by action units (``train.au_weight``).

    ``labels`` ``(N,)`` long class indices; ``aus`` ``(N, A)`` float 0/1 AU targets;
    ``coded`` ``(N,)`` bool, False for a sample without AU labels (its ``aus`` row is never
    read). Indexing, ``len`` and ``to`` act on the three together, so the training loop batches
    it as it batches a label tensor.
    """

    labels: torch.Tensor
    aus: torch.Tensor
    coded: torch.Tensor

    def __post_init__(self):
        if not (len(self.labels) == len(self.aus) == len(self.coded)) or self.aus.ndim != 2:
            raise ValueError(f"labels {tuple(self.labels.shape)}, aus {tuple(self.aus.shape)} "
                             f"and coded {tuple(self.coded.shape)} must be (N,), (N, A), (N,)")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> AuAidedTargets:
        return AuAidedTargets(self.labels[index], self.aus[index], self.coded[index])

    def to(self, device) -> AuAidedTargets:
        return AuAidedTargets(self.labels.to(device), self.aus.to(device),
                              self.coded.to(device))

    def cpu(self) -> AuAidedTargets:
        return self.to("cpu")

    @property
    def coded_aus(self) -> torch.Tensor:
        """``(M, A)``: the AU targets of the samples with AU labels."""
        return self.aus[self.coded]


def masked_au_loss(logits: torch.Tensor, targets: torch.Tensor, coded: torch.Tensor,
                   pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean binary cross-entropy over the AUs of the samples with AU labels only.

    ``logits``, ``targets`` ``(B, A)``, ``coded`` ``(B,)`` bool, ``pos_weight`` ``(A,)``.
    A sample without AU labels adds nothing and gets no gradient from it; a batch without any
    adds 0 (not NaN). In float32.
    """
    terms = F.binary_cross_entropy_with_logits(logits.float(), targets.float(),
                                               pos_weight=pos_weight, reduction="none")
    terms = terms.masked_fill(~coded[:, None], 0.0)
    return terms.sum() / (coded.sum() * logits.shape[1]).clamp_min(1)


class AuAidedLoss(nn.Module):
    """``emotion(output, labels) + weight * masked_au_loss(au_logits, aus, coded)``.

    Parameters
    ----------
    emotion : ClassificationWithFeatureLoss
        The emotion loss the recipe sets, unchanged.
    weight : float
        ``train.au_weight``.
    pos_weight : torch.Tensor or None
        ``(A,)`` positive weights of the AUs (a buffer, moving with the module).

    Shapes
    ------
    ``output.logits (B, C)``, ``output.au_logits (B, A)``, ``targets`` an
    :class:`AuAidedTargets` of B samples → ``(total scalar, LossParts)`` (``au``: the
    unweighted AU term).
    """

    def __init__(self, emotion: ClassificationWithFeatureLoss, weight: float,
                 pos_weight: torch.Tensor | None = None):
        super().__init__()
        self.emotion, self.weight = emotion, weight
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, output: ModelOutput, targets: AuAidedTargets
                ) -> tuple[torch.Tensor, LossParts]:
        if output.au_logits is None:
            raise ValueError("an AU-aided loss needs the model's au_logits (B, A): build the "
                             "model with its AU head")
        emotion, parts = self.emotion(output, targets.labels)
        au = masked_au_loss(output.au_logits, targets.aus, targets.coded, self.pos_weight)
        total = emotion + self.weight * au
        return total, LossParts(total.detach(), parts.ce, parts.feature, au.detach())


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
                        train_labels: torch.Tensor | None = None, multi_label: bool = False,
                        train_aus: torch.Tensor | None = None
                        ) -> ClassificationWithFeatureLoss | MultiLabelLoss | AuAidedLoss:
    """The loss a config's ``train`` section asks for: cross-entropy, weighted by
    ``train.class_weights`` over the fold's ``train_labels`` ``(N,)``, plus ``train.feature_loss``
    weighted by ``train.feature_loss_weight``. Centres are drawn from torch's generator: seed it
    first.

    ``multi_label`` (AU detection, ``train_labels`` ``(N, A)`` 0/1): binary cross-entropy per
    AU (:class:`MultiLabelLoss`), with ``train.class_weights: balanced`` positive weights
    ``n_neg / n_pos`` from those training targets only.

    ``train.au_weight`` > 0 (an emotion run aided by AUs): the emotion loss above wrapped in
    :class:`AuAidedLoss`, with positive weights from ``train_aus`` ``(M, A)``, the AU targets of
    the fold's training samples that have AU labels (whatever ``train.class_weights`` says:
    rare AUs would otherwise barely be learnt).

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
    emotion = ClassificationWithFeatureLoss(feature_loss, train.feature_loss_weight, weights,
                                            getattr(train, "label_smoothing", 0.0))
    if not getattr(train, "au_weight", 0.0):
        return emotion
    if train_aus is None:
        raise ValueError("train.au_weight needs the AU targets of the fold's training samples")
    return AuAidedLoss(emotion, train.au_weight, positive_weights(train_aus))


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
