"""Losses: cross-entropy, feature losses (DE-Loss, centre loss, EC-STFL) and the one builder."""

from fervid.losses.ec_stfl import EcStflLoss
from fervid.losses.feature import (
    CenterLoss,
    ClassificationWithFeatureLoss,
    DeviationEnhancementLoss,
    LossParts,
)

__all__ = ["CenterLoss", "ClassificationWithFeatureLoss", "DeviationEnhancementLoss",
           "EcStflLoss", "LossParts"]
