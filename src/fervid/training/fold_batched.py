"""The one specialised fast path: every LOSO fold's STSTNet trained at once, as one batched
model (see models/fold_batched_ststnet.py).

One shared, seeded permutation of all samples is cut into batches each epoch; in every batch,
fold ``f`` trains on the samples not of its held-out subject. No evaluation runs inside the
epochs; each fold is evaluated once, with its last-epoch model. The state (model, optimiser,
generators, epoch) is checkpointed every ``run.checkpoint_every_s`` seconds, so a killed run
resumes where it stopped and ends with the same results as an uninterrupted one.

Emotion labels ``(N,)`` train per-fold cross-entropy; AU targets ``(N, A)`` (``data.task:
au``) per-fold binary cross-entropy with each fold's own positive weights, and come out as
sigmoid probabilities.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from fervid.config import ConfigError, LosoConfig
from fervid.files import atomic_write, remove_stale_tmp
from fervid.losses import per_fold_class_weights, per_fold_cross_entropy
from fervid.losses.per_fold_au import per_fold_binary_cross_entropy, per_fold_positive_weights
from fervid.models.fold_batched_ststnet import FoldBatchedSTSTNet, im2col_patches
from fervid.progress import ProgressLike
from fervid.training.loop import EpochLogger, TrainingDivergedError
from fervid.training.setup import make_optimizer

#: Compute dtypes of the batched convolution, by ``run.precision``.
DTYPES = {"32-true": torch.float32, "bf16-mixed": torch.bfloat16}


def check_fold_batched(cfg: LosoConfig) -> None:
    """Raise :class:`ConfigError` unless ``cfg`` can run on the fold-batched engine."""
    if cfg.model.name != "ststnet":
        raise ConfigError(f"run.engine=fold_batched supports model ststnet only, not "
                          f"{cfg.model.name!r}; use run.engine=sequential")
    if cfg.run.precision not in DTYPES:
        raise ConfigError(f"run.engine=fold_batched supports run.precision 32-true or "
                          f"bf16-mixed, not {cfg.run.precision!r}")
    unsupported = [name for name, on in (
        ("train.select=inner_val", cfg.train.select == "inner_val"),
        ("train.flow_flip", cfg.train.flow_flip), ("train.average_last", cfg.train.average_last),
        ("train.label_smoothing", cfg.train.label_smoothing),
        ("train.feature_loss", cfg.train.feature_loss != "none"),
        ("train.au_weight", bool(getattr(cfg.train, "au_weight", 0.0)))) if on]
    if unsupported:
        raise ConfigError(f"run.engine=fold_batched does not support {', '.join(unsupported)}; "
                          "use run.engine=sequential")


def fold_group_tag(todo: list[int]) -> str:
    """The name of a group of folds trained together (its checkpoint and log files)."""
    digest = hashlib.sha1(",".join(map(str, todo)).encode()).hexdigest()[:8]
    return f"{len(todo)}folds_{digest}"


@dataclass(frozen=True)
class FoldBatchedResult:
    """``probs`` ``(N, F, C)``: every sample's class probabilities (softmax), or with AU
    targets its C AUs' probabilities (sigmoids), under each of the F trained folds' models
    (CPU); ``states[j]``: the plain STSTNet state dict of fold ``todo[j]``;
    ``trace``: with ``run.trace_every`` N, ``(epoch, probs (n, C))`` every N epochs before the
    last, each sample under its own fold's model (rows of samples of other folds are 0)."""

    probs: torch.Tensor
    states: list[dict]
    trace: list[tuple[int, torch.Tensor]]


def train_fold_batched(cfg: LosoConfig, models: list[nn.Module], x: torch.Tensor,
                       y: torch.Tensor, sample_fold: torch.Tensor, todo: list[int], *,
                       num_classes: int, device: torch.device, checkpoint: Path,
                       log: EpochLogger, progress: ProgressLike,
                       load_state: Callable[[Path], dict] | None = None) -> FoldBatchedResult:
    """Train the STSTNets ``models`` of the folds ``todo`` together.

    ``x`` ``(N, C, H, W)`` flow images, ``y`` ``(N,)`` labels or ``(N, A)`` 0/1 AU targets
    (``num_classes`` then A, the models' outputs), ``sample_fold`` ``(N,)`` the
    fold each sample is held out of. The resumable state lives in ``checkpoint``, saved after
    the last epoch too: the caller removes it once the folds are written, so a kill while
    they are written resumes by writing them again, not by training again. ``log`` gets one
    row per epoch. ``load_state(path)`` reads a saved state (the run store's checker of damaged
    files; default ``torch.load``).
    """
    check_fold_batched(cfg)
    n = len(x)
    local = {f: j for j, f in enumerate(todo)}
    test_fold = torch.tensor([local.get(int(f), -1) for f in sample_fold])
    model = FoldBatchedSTSTNet.from_models(models, chunk=cfg.run.chunk)
    model.to(device)
    optimizer = make_optimizer(cfg.train, model.parameters())
    patches = im2col_patches(x).to(device=device, dtype=DTYPES[cfg.run.precision])
    multi_label = y.ndim == 2
    if multi_label:
        weights = per_fold_positive_weights(y, sample_fold, todo, cfg.train.class_weights)
        fold_loss = per_fold_binary_cross_entropy
    else:
        weights = per_fold_class_weights(y, sample_fold, todo, num_classes,
                                         cfg.train.class_weights)
        fold_loss = per_fold_cross_entropy
    y, test_fold = y.to(device), test_fold.to(device)
    weights = None if weights is None else weights.to(device)
    order = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # dropout draws from the default generator

    start, trace = 0, []
    remove_stale_tmp(checkpoint)  # one shard trains this group: a killed save's leftovers
    if checkpoint.exists():
        # Generator states must come back on the CPU; parameters and Adam state are copied
        # to the device by load_state_dict.
        state = (load_state or partial(torch.load, weights_only=False))(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        order.set_state(state["order_rng"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        start = state["epoch"]
        trace = state.get("trace", [])
    log.truncate_after(start)

    epochs, bs = cfg.train.epochs, cfg.train.batch_size
    starts = _batch_starts(n, bs, sample_fold)
    task = progress.add_task(f"LOSO {len(todo)} folds", total=epochs, completed=start,
                             status="")
    last_save = time.monotonic()
    model.train()
    for epoch in range(start, epochs):
        perm = torch.randperm(n, generator=order).to(device)
        total_loss, correct, seen = 0.0, 0.0, 0.0
        for s, e in zip(starts, starts[1:] + [n], strict=True):
            idx = perm[s:e]
            logits = model(patches[idx], test_fold[idx]).logits
            loss, mask = fold_loss(logits, y[idx], test_fold[idx], weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                if multi_label:  # agreement per sample and fold, averaged over its AUs
                    hit = ((logits > 0) == (y[idx, None] > 0.5)).float().mean(-1)
                else:
                    hit = (logits.argmax(-1) == y[idx, None]).float()
                correct += float((hit * mask).sum())
                seen += float(mask.sum())
                value = float(loss)
                if not math.isfinite(value):
                    raise TrainingDivergedError(
                        f"the training loss of folds {todo} became {value} in epoch "
                        f"{epoch + 1}: the run diverged; lower train.lr, or set "
                        "run.precision=32-true")
                total_loss += value / len(todo) * len(idx)
        log.append(epoch=epoch + 1, loss=round(total_loss / n, 6),
                   train_acc=round(correct / max(seen, 1), 6))
        progress.update(task, advance=1, status=f"loss {total_loss / n:.4f}")
        done = epoch + 1
        every = cfg.run.trace_every
        if every and done % every == 0 and done < epochs:
            own = _all_probs(model, patches, bs, multi_label)[
                torch.arange(n), test_fold.clamp_min(0).cpu()]
            trace.append((done, own * (test_fold >= 0).cpu()[:, None]))
            model.train()
        # The last epoch is always saved (see the docstring).
        if done == epochs or time.monotonic() - last_save >= cfg.run.checkpoint_every_s:
            _save(checkpoint, model, optimizer, order, done, device, trace)
            last_save = time.monotonic()

    probs = _all_probs(model, patches, bs, multi_label)
    states = [model.fold_state_dict(j) for j in range(len(todo))]
    progress.remove_task(task)
    return FoldBatchedResult(probs, states, trace)


def _all_probs(model: FoldBatchedSTSTNet, patches: torch.Tensor, bs: int,
               multi_label: bool = False) -> torch.Tensor:
    """``(N, F, C)`` class probabilities (or, ``multi_label``, per-output sigmoids) of every
    sample under every fold's model (eval mode, on the CPU); draws nothing from any
    generator."""
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(patches[s:s + bs]).logits
                            for s in range(0, len(patches), bs)])
    return (logits.sigmoid() if multi_label else logits.softmax(-1)).cpu()


def _batch_starts(n: int, bs: int, sample_fold: torch.Tensor) -> list[int]:
    """Start of each batch of a permutation of ``n`` samples.

    Every fold needs a training sample in every batch (an independent model takes no step on
    an empty batch; a batched one would still move through Adam's momentum). A batch larger
    than the biggest subject always has one, so a too-small last batch joins the one before.
    """
    largest = int(torch.bincount(sample_fold).max())
    if bs <= largest and bs < n:
        raise ConfigError(f"train.batch_size={bs} must exceed the largest subject's sample "
                          f"count ({largest}) for run.engine=fold_batched, so every batch trains "
                          "every fold; use a larger batch or run.engine=sequential")
    starts = list(range(0, n, bs))
    if len(starts) > 1 and n - starts[-1] <= largest:
        starts.pop()
    return starts


def _save(path: Path, model, optimizer, order: torch.Generator, epoch: int,
          device: torch.device, trace: list) -> None:
    state = {"trace": trace, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "order_rng": order.get_state(), "torch_rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
             "epoch": epoch}
    atomic_write(path, lambda p: torch.save(state, p))
