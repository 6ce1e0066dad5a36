"""The one training loop: :func:`train_one_epoch` and :func:`evaluate`, objects in, no config.

Every protocol calls this pair (LOSO's sequential engine, the DFEW k-fold). Batches come from
an iterable of ``(x, y)``; the model returns a :class:`~fervid.models.output.ModelOutput`, the
criterion takes that output and the labels (:mod:`fervid.losses`). ``backward`` is Fabric's
``fabric.backward`` (mixed precision, DDP) or ``Tensor.backward``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from fervid.errors import FervidError
from fervid.losses.training_loss import AuAidedTargets


class TrainingDivergedError(FervidError, FloatingPointError):
    """The training loss became NaN or infinite: what was trained is garbage, so the run stops
    before anything is scored or saved from it."""


class EpochLogger(Protocol):
    """Where per-epoch rows go (:class:`fervid.runs.epoch_log.EpochLog` is one)."""

    def truncate_after(self, epoch: int) -> None: ...

    def append(self, **row) -> None: ...


@dataclass(frozen=True)
class EpochStats:
    """Mean training loss and accuracy of one epoch over ``n`` samples."""

    loss: float
    train_acc: float
    n: int


@dataclass(frozen=True)
class Evaluation:
    """Class probabilities ``(N, C)`` of the evaluated samples, in order, and the model's
    named extras concatenated over batches (e.g. ``segment_weights`` ``(N, K)``)."""

    probs: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


#: PyTorch's message when BatchNorm trains on one value per channel.
SINGLE_SAMPLE_BATCHNORM = "Expected more than 1 value per channel when training"


def _warn_single_sample_batch() -> None:
    warnings.warn("a training batch of one sample was skipped: BatchNorm cannot train on it "
                  "(choose train.batch_size so that no batch holds a single sample to use "
                  "every sample)", SkippedBatchWarning, stacklevel=3)


class SkippedBatchWarning(UserWarning):
    """A training batch the model cannot train on was skipped."""


def train_one_epoch(model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    backward: Callable[[torch.Tensor], None] | None = None,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                    on_batch: Callable[[int], None] | None = None) -> EpochStats:
    """One pass over ``batches``: forward, ``criterion(output, y)``, backward, step.

    ``x`` as the model takes it (e.g. ``(B, K+1, C, H, W)``), ``y`` ``(B,)`` class indices,
    or ``(B, A)`` 0/1 targets of a multi-label task (its accuracy: the share of sample-AU
    pairs whose logit sign agrees), or an :class:`~fervid.losses.AuAidedTargets` of B
    samples (an emotion run aided by AUs: its accuracy is the emotion's).
    ``backward`` defaults to ``loss.backward()``; ``scheduler`` (a per-step learning-rate
    schedule) steps after each optimiser step; ``on_batch(n)`` is told each batch's size
    (progress bars).
    """
    model.train()
    total, correct, seen = 0.0, 0, 0
    for batch, (x, y) in enumerate(batches, 1):
        try:
            out = model(x)
        except ValueError as err:
            # A training set of n = k * batch_size + 1 samples ends with a batch of one, on
            # which BatchNorm over one value per channel cannot train: that batch is skipped
            # (only where it would fail, so every other run trains exactly as before).
            if len(y) == 1 and SINGLE_SAMPLE_BATCHNORM in str(err):
                _warn_single_sample_batch()
                continue
            raise
        loss, _ = criterion(out, y)
        optimizer.zero_grad(set_to_none=True)
        if backward is None:
            loss.backward()
        else:
            backward(loss)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if on_batch is not None:
            on_batch(len(y))
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDivergedError(
                f"the training loss became {value} at batch {batch} of the "
                "epoch: the run diverged; lower train.lr, or set run.precision=32-true "
                "if it computes in bf16-mixed or 16-mixed")
        total += value * len(y)
        labels = y.labels if isinstance(y, AuAidedTargets) else y
        if labels.ndim == 2:  # multi-label: agreement per sample, averaged over its labels
            correct += float(((out.logits > 0) == (labels > 0.5)).float().mean(1).sum())
        else:
            correct += int((out.logits.argmax(1) == labels).sum())
        seen += len(y)
    return EpochStats(total / max(seen, 1), correct / max(seen, 1), seen)


def evaluate(model: nn.Module, batches: Iterable[torch.Tensor],
             autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
             *, multi_label: bool = False) -> Evaluation:
    """Softmax probabilities of ``model`` on every batch (eval mode, no gradients), on the
    CPU in float32; ``multi_label``: each logit's sigmoid (AU probabilities ``(N, A)``).
    ``autocast`` is Fabric's ``fabric.autocast`` for an unwrapped module."""
    model.eval()
    probs, extras = [], {}
    with torch.no_grad(), autocast():
        for x in batches:
            out = model(x)
            logits = out.logits.float()
            probs.append((logits.sigmoid() if multi_label else logits.softmax(-1)).cpu())
            for name, value in out.extras.items():
                extras.setdefault(name, []).append(value.float().cpu())
    return Evaluation(torch.cat(probs), {k: torch.cat(v) for k, v in extras.items()})


def tensor_batches(x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, batch_size: int,
                   generator: torch.Generator, views: torch.Tensor | None = None
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled training batches of in-memory tensors: ``index`` ``(n,)`` permuted with
    ``generator``, cut into batches of ``batch_size``, ``x[idx]`` cast to float32 (``y`` may
    also be an :class:`~fervid.losses.AuAidedTargets`, indexed alike).

    With ``views`` ``(V, *x.shape)``, each sample of a batch is one view drawn with the same
    generator (after the permutation, one draw per batch, as the batch is produced).
    """
    device = x.device
    perm = index[torch.randperm(len(index), generator=generator).to(device)]
    for s in range(0, len(perm), batch_size):
        idx = perm[s:s + batch_size]
        if views is None:
            xb = x[idx]
        else:
            pick = torch.randint(len(views), (len(idx),), generator=generator)
            xb = views[pick.to(device), idx]
        yield xb.float(), y[idx]


def tensor_eval_batches(x: torch.Tensor, index: torch.Tensor, batch_size: int
                        ) -> Iterator[torch.Tensor]:
    """``x[index]`` in order, in batches of ``batch_size``, cast to float32."""
    for s in range(0, len(index), batch_size):
        yield x[index[s:s + batch_size].to(x.device)].float()
