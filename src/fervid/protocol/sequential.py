"""LOSO engine for any model: one fold after another, each written to disk when it ends.

Every fold is seeded from (seed, fold) alone, so its result does not depend on which other
folds ran before it, in this process or another shard. A killed run loses only the fold it was
training.
"""

from __future__ import annotations

import torch

from fervid.config import LosoConfig
from fervid.losses import ClassificationWithFeatureLoss
from fervid.progress import ProgressLike
from fervid.protocol.folds import LosoData, LosoFolds
from fervid.protocol.training import (
    build_feature_loss,
    class_weights,
    fold_model_payload,
    fold_seed,
    init_fold_model,
    make_optimizer,
)
from fervid.runs.epoch_log import EpochLog
from fervid.runs.store import FoldPredictions, RunStore


def train_sequential(cfg: LosoConfig, data: LosoData, folds: LosoFolds, todo: list[int],
                     store: RunStore, fabric, progress: ProgressLike) -> list[FoldPredictions]:
    """Train and evaluate each fold in ``todo`` in turn, through Lightning Fabric."""
    num_classes = len(data.classes)
    epochs, bs = cfg.train.epochs, cfg.train.batch_size
    x, y = data.x.to(fabric.device), data.y.to(fabric.device)
    views = None if data.train_views is None else data.train_views.to(fabric.device)
    fold_task = progress.add_task("folds", total=len(todo), status="")
    results = []
    for f in todo:
        train_idx = folds.train_index(f).to(fabric.device)
        test_idx = folds.test_index(f)
        weights = class_weights(data.y, folds.sample_fold, [f], num_classes,
                                cfg.train.class_weights)
        if weights is not None:
            weights = weights[0].to(fabric.device)
        model = init_fold_model(cfg, f, data.in_chans, num_classes)
        criterion = fabric.to_device(fold_criterion(cfg, f, model, num_classes))
        optimizer = make_optimizer(cfg, [*model.parameters(), *criterion.parameters()])
        if fabric.world_size == 1:
            model, optimizer = fabric.setup(model, optimizer)
        else:
            # Ranks train different folds: a DDP wrapper would average their gradients.
            if cfg.run.precision == "16-mixed":
                raise ValueError("run.precision=16-mixed needs a single device per LOSO "
                                 "process; use bf16-mixed or 32-true with several devices")
            model = _Autocast(fabric.to_device(model), fabric)
        order = torch.Generator().manual_seed(fold_seed(cfg.seed, f))
        torch.manual_seed(fold_seed(cfg.seed, f))
        log = EpochLog(store.root / "train_logs" / f"fold_{f:03d}.csv")
        log.truncate_after(0)
        epoch_task = progress.add_task(f"fold {f} ({folds.subjects[f]})", total=epochs,
                                       status="")
        model.train()
        for epoch in range(epochs):
            perm = train_idx[torch.randperm(len(train_idx), generator=order).to(fabric.device)]
            total, correct = 0.0, 0
            for s in range(0, len(perm), bs):
                idx = perm[s:s + bs]
                if views is None:
                    xb = x[idx]
                else:  # one of the precomputed jittered views per sample
                    pick = torch.randint(len(views), (len(idx),), generator=order)
                    xb = views[pick.to(fabric.device), idx]
                logits, features, _ = split_output(model(xb.float()))
                loss, _ = criterion(logits, y[idx], features, weights)
                optimizer.zero_grad(set_to_none=True)
                fabric.backward(loss)
                optimizer.step()
                total += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == y[idx]).sum())
            log.append(epoch=epoch + 1, loss=round(total / len(perm), 6),
                       train_acc=round(correct / len(perm), 6))
            progress.update(epoch_task, advance=1, status=f"loss {total / len(perm):.4f}")
        progress.remove_task(epoch_task)
        model.eval()
        probs, alphas = [], []
        with torch.no_grad():
            for s in range(0, len(test_idx), bs):
                logits, _, alpha = split_output(
                    model(x[test_idx[s:s + bs].to(fabric.device)].float()))
                probs.append(logits.float().softmax(-1).cpu())
                if alpha is not None:
                    alphas.append(alpha.float().cpu())
        probs = torch.cat(probs)
        result = FoldPredictions(f, test_idx, probs.argmax(-1), probs,
                                 torch.cat(alphas) if alphas else None)
        store.write_fold(result, data.table, data.classes,
                         model=fold_model_payload(cfg, data, model.state_dict()))
        results.append(result)
        progress.update(fold_task, advance=1, status=folds.subjects[f])
    progress.remove_task(fold_task)
    return results


def split_output(out) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """A model's output as ``(logits, features, segment_weights)``.

    Plain models return logits; SMA-STN returns a :class:`~fervid.models.smastn.SmaStnOutput`.
    """
    if isinstance(out, torch.Tensor):
        return out, None, None
    return out.logits, out.features, out.segment_weights


def fold_criterion(cfg: LosoConfig, fold: int, model: torch.nn.Module,
                   num_classes: int) -> ClassificationWithFeatureLoss:
    """Cross-entropy plus the configured feature loss, its centres seeded by (seed, fold)."""
    t = cfg.train
    if t.feature_loss == "none":
        return ClassificationWithFeatureLoss(None)
    dim = getattr(model, "num_features", None)
    if cfg.model.name != "smastn" or dim is None:
        raise ValueError(f"train.feature_loss={t.feature_loss} needs a model that returns its "
                         f"features (smastn), not {cfg.model.name!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(fold_seed(cfg.seed, fold) + 1)
        loss = build_feature_loss(t, num_classes, dim)
    return ClassificationWithFeatureLoss(loss, t.feature_loss_weight)


class _Autocast(torch.nn.Module):
    """A module run under Fabric's autocast, without Fabric's (DDP) wrapper."""

    def __init__(self, module: torch.nn.Module, fabric):
        super().__init__()
        self.module, self._fabric = module, fabric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self._fabric.autocast():
            return self.module(x)

    def state_dict(self, *args, **kwargs):
        return self.module.state_dict(*args, **kwargs)
