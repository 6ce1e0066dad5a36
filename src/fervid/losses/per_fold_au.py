"""The fold-batched engine's AU loss: every fold's multi-label loss at once, each from its own
training samples only (the per-fold counterpart of
:class:`~fervid.losses.training_loss.MultiLabelLoss`, with the same positive weights)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fervid.losses.training_loss import positive_weights


def per_fold_positive_weights(y: torch.Tensor, test_fold: torch.Tensor, folds: list[int],
                              mode: str) -> torch.Tensor | None:
    """``(F, A)``: :func:`~fervid.losses.training_loss.positive_weights` of each fold in
    ``folds`` over its training targets (``y`` ``(N, A)`` 0/1 where ``test_fold`` ``(N,)`` is
    not that fold), or None for ``mode`` ``none`` (``train.class_weights``)."""
    if mode == "none":
        return None
    return torch.stack([positive_weights(y[test_fold != f]) for f in folds])


def per_fold_binary_cross_entropy(logits: torch.Tensor, y: torch.Tensor, test_fold: torch.Tensor,
                                  pos_weights: torch.Tensor | None = None
                                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over folds of each fold's mean binary cross-entropy over its own training samples
    and the AUs, as ``MultiLabelLoss`` takes it (the positive weight multiplies a present AU's
    term; the mean divides by the number of terms).

    ``logits`` ``(B, F, A)``, ``y`` ``(B, A)`` 0/1, ``test_fold`` ``(B,)`` (-1: trains every
    fold), ``pos_weights`` ``(F, A)`` or None. The folds' parameters are disjoint, so each
    fold gets exactly its own gradient. In float32. Returns the loss and the ``(B, F)`` float
    mask of training pairs.
    """
    b, n_folds, n_aus = logits.shape
    mask = (test_fold[:, None] != torch.arange(n_folds, device=logits.device)[None]).float()
    terms = F.binary_cross_entropy_with_logits(
        logits.float(), y.float()[:, None].expand(b, n_folds, n_aus), pos_weight=pos_weights,
        reduction="none")
    per_fold = (terms.sum(-1) * mask).sum(0) / (mask.sum(0) * n_aus).clamp_min(1)
    return per_fold.sum(), mask
