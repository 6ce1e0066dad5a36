"""Losses: cross-entropy, feature losses (DE-Loss, centre loss, EC-STFL) and the one builder of
the training loss from a config (:func:`build_training_loss`)."""

from fervid.losses.ec_stfl import EcStflLoss
from fervid.losses.feature import CenterLoss, DeviationEnhancementLoss
from fervid.losses.training_loss import (
    AuAidedLoss,
    AuAidedTargets,
    ClassificationWithFeatureLoss,
    LossParts,
    MultiLabelLoss,
    balanced_class_weights,
    build_feature_loss,
    build_training_loss,
    masked_au_loss,
    per_fold_class_weights,
    per_fold_cross_entropy,
    positive_weights,
)

__all__ = ["AuAidedLoss", "AuAidedTargets", "CenterLoss", "ClassificationWithFeatureLoss",
           "DeviationEnhancementLoss", "EcStflLoss", "LossParts", "MultiLabelLoss",
           "balanced_class_weights", "build_feature_loss", "build_training_loss",
           "masked_au_loss", "per_fold_class_weights", "per_fold_cross_entropy",
           "positive_weights"]
