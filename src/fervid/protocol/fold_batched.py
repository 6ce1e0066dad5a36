"""LOSO engine that trains every fold's STSTNet at once (see models/fold_batched_ststnet.py).

One shared, seeded permutation of all samples is cut into batches each epoch; in every batch,
fold ``f`` trains on the samples not of its held-out subject. No evaluation runs inside the
epochs; each fold is evaluated once, with its last-epoch model. The state (model, optimiser,
generators, epoch) is checkpointed every ``run.checkpoint_every_s`` seconds, so a killed run
resumes where it stopped and ends with the same results as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch

from fervid.config import LosoConfig
from fervid.files import atomic_write
from fervid.models.fold_batched_ststnet import FoldBatchedSTSTNet, im2col_patches
from fervid.progress import ProgressLike
from fervid.protocol.folds import LosoData, LosoFolds
from fervid.protocol.training import (
    class_weights,
    fold_model_payload,
    init_fold_model,
    make_optimizer,
    per_fold_cross_entropy,
)
from fervid.runs.epoch_log import EpochLog
from fervid.runs.store import FoldPredictions, RunStore


def train_fold_batched(cfg: LosoConfig, data: LosoData, folds: LosoFolds, todo: list[int],
                       store: RunStore, device: torch.device, progress: ProgressLike
                       ) -> list[FoldPredictions]:
    """Train the folds ``todo`` together and return their held-out predictions."""
    if cfg.model.name != "ststnet":
        raise ValueError(f"run.engine=fold_batched supports model ststnet only, not "
                         f"{cfg.model.name!r}; use run.engine=sequential")
    dtypes = {"32-true": torch.float32, "bf16-mixed": torch.bfloat16}
    if cfg.run.precision not in dtypes:
        raise ValueError(f"run.engine=fold_batched supports run.precision 32-true or "
                         f"bf16-mixed, not {cfg.run.precision!r}")
    n, in_chans = len(data.x), data.in_chans
    num_classes = len(data.classes)
    local = {f: j for j, f in enumerate(todo)}
    test_fold = torch.tensor([local.get(int(f), -1) for f in folds.sample_fold])
    model = FoldBatchedSTSTNet.from_models(
        [init_fold_model(cfg, f, in_chans, num_classes) for f in todo], chunk=cfg.run.chunk)
    model.to(device)
    optimizer = make_optimizer(cfg, model.parameters())
    patches = im2col_patches(data.x).to(device=device, dtype=dtypes[cfg.run.precision])
    weights = class_weights(data.y, folds.sample_fold, todo, num_classes,
                            cfg.train.class_weights)
    y, test_fold = data.y.to(device), test_fold.to(device)
    weights = None if weights is None else weights.to(device)
    order = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # dropout draws from the default generator

    tag = _fold_tag(todo)
    ckpt = store.root / "checkpoints" / f"batched_{tag}.pt"
    log = EpochLog(store.root / "train_logs" / f"batched_{tag}.csv")
    start = 0
    if ckpt.exists():
        # Generator states must come back on the CPU; parameters and Adam state are copied
        # to the device by load_state_dict.
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        order.set_state(state["order_rng"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        start = state["epoch"]
    log.truncate_after(start)

    epochs, bs = cfg.train.epochs, cfg.train.batch_size
    starts = _batch_starts(n, bs, folds.sample_fold)
    task = progress.add_task(f"LOSO {len(todo)} folds", total=epochs, completed=start,
                             status="")
    last_save = time.monotonic()
    model.train()
    for epoch in range(start, epochs):
        perm = torch.randperm(n, generator=order).to(device)
        total_loss, correct, seen = 0.0, 0.0, 0.0
        for s, e in zip(starts, starts[1:] + [n], strict=True):
            idx = perm[s:e]
            logits = model(patches[idx], test_fold[idx])
            loss, mask = per_fold_cross_entropy(logits, y[idx], test_fold[idx], weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                hit = (logits.argmax(-1) == y[idx, None]).float()
                correct += float((hit * mask).sum())
                seen += float(mask.sum())
                total_loss += float(loss) / len(todo) * len(idx)
        log.append(epoch=epoch + 1, loss=round(total_loss / n, 6),
                   train_acc=round(correct / max(seen, 1), 6))
        progress.update(task, advance=1, status=f"loss {total_loss / n:.4f}")
        done = epoch + 1
        # The last epoch is always saved: a kill while the folds are written out then
        # resumes by writing them again, not by training again.
        if done == epochs or time.monotonic() - last_save >= cfg.run.checkpoint_every_s:
            _save(ckpt, model, optimizer, order, done, device)
            last_save = time.monotonic()

    model.eval()
    results = []
    with torch.no_grad():
        logits = torch.cat([model(patches[s:s + bs]) for s in range(0, n, bs)])
        probs = logits.softmax(-1).cpu()
    for j, f in enumerate(todo):
        index = folds.test_index(f)
        p = probs[index, j]
        results.append(FoldPredictions(f, index, p.argmax(-1), p))
    results_states = {f: model.fold_state_dict(j) for j, f in enumerate(todo)}
    for r in results:
        store.write_fold(r, data.table, data.classes,
                         model=fold_model_payload(cfg, data, results_states[r.fold]))
    ckpt.unlink(missing_ok=True)
    progress.remove_task(task)
    return results


def _fold_tag(todo: list[int]) -> str:
    digest = hashlib.sha1(",".join(map(str, todo)).encode()).hexdigest()[:8]
    return f"{len(todo)}folds_{digest}"


def _batch_starts(n: int, bs: int, sample_fold: torch.Tensor) -> list[int]:
    """Start of each batch of a permutation of ``n`` samples.

    Every fold needs a training sample in every batch (an independent model takes no step on
    an empty batch; a batched one would still move through Adam's momentum). A batch larger
    than the biggest subject always has one, so a too-small last batch joins the one before.
    """
    largest = int(torch.bincount(sample_fold).max())
    if bs <= largest and bs < n:
        raise ValueError(f"train.batch_size={bs} must exceed the largest subject's sample count "
                         f"({largest}) for run.engine=fold_batched, so every batch trains every "
                         "fold; use a larger batch or run.engine=sequential")
    starts = list(range(0, n, bs))
    if len(starts) > 1 and n - starts[-1] <= largest:
        starts.pop()
    return starts


def _save(path: Path, model, optimizer, order: torch.Generator, epoch: int,
          device: torch.device) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "order_rng": order.get_state(), "torch_rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
             "epoch": epoch}
    atomic_write(path, lambda p: torch.save(state, p))
