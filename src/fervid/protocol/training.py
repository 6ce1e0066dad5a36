"""Pieces both LOSO engines share: seeding, optimisers and per-fold losses."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fervid.config import LosoConfig, TrainConfig
from fervid.losses import CenterLoss, DeviationEnhancementLoss
from fervid.losses.ec_stfl import EcStflLoss
from fervid.models import build_model
from fervid.protocol.folds import LosoData
from fervid.runs.checkpoint import checkpoint_payload, input_spec_from_config


def fold_seed(seed: int, fold: int) -> int:
    """Each fold's initialisation and randomness depend on (seed, fold) only."""
    return seed * 1_000_003 + fold


def init_fold_model(cfg: LosoConfig, fold: int, in_chans: int, num_classes: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(fold_seed(cfg.seed, fold))
        return build_model(cfg.model.name, in_chans=in_chans, num_classes=num_classes,
                           drop_rate=cfg.model.drop_rate, config=cfg.model)


def make_optimizer(cfg: LosoConfig, params) -> torch.optim.Optimizer:
    t = cfg.train
    if t.optimizer == "adam":
        fused = {"fused": True} if t.fused_optimizer else {}
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay, **fused)
    return torch.optim.SGD(params, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay)


def class_weights(y: torch.Tensor, test_fold: torch.Tensor, folds: list[int],
                  num_classes: int, mode: str) -> torch.Tensor | None:
    """Per-fold class weights ``(F, K)`` from each fold's training labels, or None.

    ``balanced``: ``n / (K · n_c)`` over the fold's training samples (scikit-learn's
    convention), so every class carries the same total weight, as UF1 and UAR count it.
    """
    if mode == "none":
        return None
    rows = []
    for f in folds:
        counts = torch.bincount(y[test_fold != f], minlength=num_classes).double()
        rows.append(counts.sum() / (num_classes * counts.clamp_min(1)))
    return torch.stack(rows).float()


def per_fold_cross_entropy(logits: torch.Tensor, y: torch.Tensor, test_fold: torch.Tensor,
                           weights: torch.Tensor | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over folds of each fold's mean loss on its own training samples.

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


def fold_model_payload(cfg: LosoConfig, data: LosoData, state: dict) -> dict:
    """A fold model as a self-describing checkpoint (:mod:`fervid.runs.checkpoint`)."""
    spec = input_spec_from_config(cfg, tuple(data.x.shape[1:]) if data.x.ndim == 4 else None)
    return checkpoint_payload(state, cfg, list(data.classes), spec)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (Linux flags ``avx512_bf16`` or
    ``amx_bf16``); True where the flags cannot be read, so no false warning is given."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return "avx512_bf16" in flags or "amx_bf16" in flags


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
