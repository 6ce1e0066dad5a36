"""What every training run sets up the same way: seeds, the optimiser, precision checks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TypeVar

import torch
from pydantic import BaseModel

from fervid.config import TrainConfig

#: A run config (LOSO, k-fold, fit): anything with a ``run`` section of device settings.
C = TypeVar("C", bound=BaseModel)

log = logging.getLogger(__name__)

#: Where Linux lists the CPU's feature flags.
CPUINFO = Path("/proc/cpuinfo")


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


def cpu_has_bf16(*, unknown: bool = True) -> bool:
    """Whether this CPU computes bfloat16 natively (Linux flags ``avx512_bf16`` or
    ``amx_bf16``); ``unknown`` where the flags cannot be read (True by default, so no false
    warning is given)."""
    try:
        flags = CPUINFO.read_text()
    except OSError:
        return unknown
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(accelerator: str, precision: str, *, cpu_bf16: bool = True) -> str:
    """The precision a run computes in: ``precision`` itself, or for ``auto``:

    * on a CUDA GPU: ``bf16-mixed`` where it supports bfloat16, else ``32-true``;
    * on a CPU with native bfloat16 (``avx512_bf16`` or ``amx_bf16``): ``bf16-mixed`` when
      ``cpu_bf16`` (the fold-batched STSTNet engine: its own bfloat16 products, accumulated in
      float32), else ``32-true``. Under Fabric's CPU autocast BatchNorm runs in bfloat16, and a
      3-D ResNet diverged to NaN in its second epoch on such a CPU where float32 did not
      (docs/design.md); emulated bfloat16 is about 9x slower than float32;
    * elsewhere (MPS, a CPU without native bfloat16): ``32-true``.
    """
    if precision != "auto":
        return precision
    cuda = torch.cuda.is_available()
    if accelerator in ("cuda", "gpu") or (accelerator == "auto" and cuda):
        return "bf16-mixed" if cuda and torch.cuda.is_bf16_supported() else "32-true"
    mps = getattr(torch.backends, "mps", None)
    if accelerator == "cpu" or (accelerator == "auto" and not (mps and mps.is_available())):
        return "bf16-mixed" if cpu_bf16 and cpu_has_bf16(unknown=False) else "32-true"
    return "32-true"


def with_resolved_precision(cfg: C) -> C:
    """``cfg`` with ``run.precision`` resolved (:func:`resolve_precision`); the run records
    the result as ``precision`` in ``run.json``."""
    chosen = resolve_precision(cfg.run.accelerator, cfg.run.precision,
                               cpu_bf16=getattr(cfg.run, "engine", None) == "fold_batched")
    if chosen != cfg.run.precision:
        log.info("run.precision auto: %s on this machine", chosen)
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"precision": chosen})})
    return cfg


def make_fabric(accelerator: str, precision: str, *, devices: int = 1, num_nodes: int = 1):
    """The Lightning Fabric of a run: every device, DDP and precision choice is made here."""
    from lightning_fabric import Fabric

    return Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                  precision=precision)
