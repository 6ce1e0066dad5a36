"""Feature losses added to cross-entropy: DE-Loss (methods.md §1) and the centre loss.

Every feature loss takes ``(features (B, D), labels (B,))`` and returns a scalar, so that any
model's ``ModelOutput.features`` can feed any of them and readings can be compared. Feature
losses with learnable centres are modules: the training loss registers them, so
``criterion.parameters()`` holds their centres for the optimiser.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check(features: torch.Tensor, labels: torch.Tensor, feat_dim: int) -> None:
    if features.ndim != 2 or features.shape[1] != feat_dim:
        raise ValueError(f"features must be (B, {feat_dim}), got {tuple(features.shape)}")
    if labels.shape != features.shape[:1]:
        raise ValueError(f"labels must be ({features.shape[0]},), got {tuple(labels.shape)}")


class DeviationEnhancementLoss(nn.Module):
    """DE-Loss as read in methods.md §1: a margin between own-centre and nearest-other distances.

    ``L = mean_i max(0, ||z_i - c_{y_i}||^2 - min_{k != y_i} ||z_i - c_k||^2 + margin)``
    with learnable centres ``c_k``; features and centres are L2-normalised first when
    ``normalize`` (squared distances then lie in [0, 4]).

    Parameters
    ----------
    num_classes : int
        Number of centres (at least 2: the loss compares against the other classes).
    feat_dim : int
        Feature size D.
    margin : float
        Required gap between the two squared distances (1.0).
    normalize : bool
        L2-normalise features and centres (True).

    Shapes
    ------
    ``features (B, D)``, ``labels (B,)`` integer classes → scalar.
    """

    def __init__(self, num_classes: int, feat_dim: int, margin: float = 1.0,
                 normalize: bool = True):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"DE-Loss needs at least 2 classes, got {num_classes}")
        self.num_classes, self.feat_dim = num_classes, feat_dim
        self.margin, self.normalize = margin, normalize
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _check(features, labels, self.feat_dim)
        z, c = features, self.centers
        if self.normalize:
            z, c = F.normalize(z, dim=1), F.normalize(c, dim=1)
        # Exact squared distances (B, K); the expanded form loses precision near zero.
        d = (z[:, None, :] - c[None, :, :]).pow(2).sum(-1)
        own = d.gather(1, labels[:, None]).squeeze(1)
        is_own = F.one_hot(labels, self.num_classes).bool()
        nearest_other = d.masked_fill(is_own, float("inf")).min(1).values
        return F.relu(own - nearest_other + self.margin).mean()


class CenterLoss(nn.Module):
    """Centre loss: ``mean_i ||z_i - c_{y_i}||^2`` with learnable centres (no 1/2 factor).

    Shapes
    ------
    ``features (B, D)``, ``labels (B,)`` → scalar.
    """

    def __init__(self, num_classes: int, feat_dim: int):
        super().__init__()
        self.num_classes, self.feat_dim = num_classes, feat_dim
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _check(features, labels, self.feat_dim)
        return (features - self.centers[labels]).pow(2).sum(1).mean()


