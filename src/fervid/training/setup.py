"""What every training run sets up the same way: seeds, the optimiser, precision checks."""

from __future__ import annotations

from pathlib import Path

import torch

from fervid.config import TrainConfig


def fold_seed(seed: int, fold: int) -> int:
    """Each fold's initialisation and randomness depend on (seed, fold) only."""
    return seed * 1_000_003 + fold


def make_optimizer(train: TrainConfig, params) -> torch.optim.Optimizer:
    """Adam (fused when ``train.fused_optimizer``) or SGD with momentum 0.9 (Nesterov's when
    the config has ``nesterov: true``)."""
    if train.optimizer == "adam":
        fused = {"fused": True} if train.fused_optimizer else {}
        return torch.optim.Adam(params, lr=train.lr, weight_decay=train.weight_decay, **fused)
    return torch.optim.SGD(params, lr=train.lr, momentum=0.9, weight_decay=train.weight_decay,
                           nesterov=bool(getattr(train, "nesterov", False)))


def make_scheduler(train: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int
                   ) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-step learning-rate schedule of ``train.schedule`` (``fervid fit``'s configs):
    one-cycle (a 20% warm-up to ``lr``, then cosine annealing; SGD's momentum cycles the other
    way, 0.95 → 0.85 → 0.95, as torch's ``OneCycleLR`` does), or None for a constant rate."""
    if getattr(train, "schedule", "constant") != "onecycle":
        return None
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=train.lr,
                                               total_steps=max(total_steps, 1), pct_start=0.2)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (Linux flags ``avx512_bf16`` or
    ``amx_bf16``); True where the flags cannot be read, so no false warning is given."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return "avx512_bf16" in flags or "amx_bf16" in flags
