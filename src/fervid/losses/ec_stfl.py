"""EC-STFL, the expression-clustered spatiotemporal feature learning loss (methods.md §2).

Like the losses of :mod:`fervid.losses` it takes ``(features (B, D), labels (B,))`` and returns a
scalar, so it can be the ``feature_loss`` of
:class:`~fervid.losses.ClassificationWithFeatureLoss`. The weight lambda (10 in the DFEW paper)
belongs to the training code, not to this module. It has no parameters (centre loss, with
learnable centres, is :class:`fervid.losses.CenterLoss`).
"""

from __future__ import annotations

import torch
from torch import nn

#: Named forms of the loss; "eq9" is the paper's Eq. 9, "code2024" the authors' 2024 code.
VARIANTS = ("eq9", "code2024")


def _l2_distances(x: torch.Tensor) -> torch.Tensor:
    # Exact pairwise L2 distances (B, B) with a zero (not NaN) gradient at distance 0.
    sq = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)
    return torch.where(sq > 0, sq.clamp_min(1e-30).sqrt(), torch.zeros_like(sq))


class EcStflLoss(nn.Module):
    """EC-STFL: within-class distances over between-class distances, on a mini-batch.

    ``variant="eq9"`` (default), Eq. 9 of the DFEW paper with L2 distances, where ``N_k`` is the
    number of batch samples of class k (sample i itself included)::

        L = [sum_i sum_{j: y_j = y_i} ||x_i - x_j|| / N_{y_i}]
            / [sum_i sum_{j: y_j != y_i} ||x_i - x_j|| / N_{y_j}]

    ``variant="code2024"``, the form the authors' 2024 code computes, with L1 distances::

        L = mean_i[(sum_{j: y_j = y_i} |x_i - x_j|_1 / n_same_i)
                   * (sum_{j: y_j != y_i} 1 / (|x_i - x_j|_1 + 1e-6) / (n_diff_i + 1))] / B

    Self-pairs: ``j = i`` belongs to the same class in both variants. It adds 0 to the sums
    and 1 to the counts (``N_{y_i}``, ``n_same_i``), so a class seen once in the batch
    contributes 0 and never divides by zero.

    A batch holding one class only returns exactly 0 (still attached to the graph, so
    ``backward`` gives zero gradients): there is nothing to push apart.

    Parameters
    ----------
    variant : str
        One of :data:`VARIANTS`.
    eps : float
        Lower bound of the Eq. 9 denominator (all between-class features identical).

    Shapes
    ------
    ``features (B, D)``, ``labels (B,)`` integer classes → scalar.
    """

    def __init__(self, variant: str = "eq9", eps: float = 1e-12):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown EC-STFL variant {variant!r}; choose one of {VARIANTS}")
        self.variant, self.eps = variant, eps

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if features.ndim != 2:
            raise ValueError(f"features must be (B, D), got {tuple(features.shape)}")
        if labels.shape != features.shape[:1]:
            raise ValueError(f"labels must be ({features.shape[0]},), got {tuple(labels.shape)}")
        same = labels[:, None] == labels[None, :]  # (B, B), diagonal True
        if bool(same.all()):
            return features.sum() * 0.0
        if self.variant == "eq9":
            return self._eq9(features, same)
        return self._code2024(features, same)

    def _eq9(self, x: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        dist = _l2_distances(x)
        class_size = same.sum(1).to(x.dtype)  # N_{y_i}, row i
        within = (dist * same / class_size[:, None]).sum()
        between = (dist * ~same / class_size[None, :]).sum()
        return within / between.clamp_min(self.eps)

    def _code2024(self, x: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        dist = torch.cdist(x, x, p=1)
        n_same = same.sum(1).to(x.dtype)
        n_diff = (~same).sum(1).to(x.dtype)
        attract = (dist * same).sum(1) / n_same
        repel = ((1.0 / (dist + 1e-6)) * ~same).sum(1) / (n_diff + 1.0)
        return (attract * repel).mean() / x.shape[0]
