"""The two ways LOSO trains its folds, each writing every finished fold to the run store.

``sequential``: one fold after another through the shared loop (:mod:`fervid.training.loop`),
any model; every fold is seeded from (seed, fold) alone, so its result does not depend on which
other folds ran before it, in this process or another shard. A killed run loses only the fold
it was training.

``fold_batched``: a group of folds' STSTNets trained at once (:mod:`fervid.training.fold_batched`),
resumable from its periodic checkpoint.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from fervid.config import ConfigError, LosoConfig
from fervid.losses import ClassificationWithFeatureLoss, build_training_loss
from fervid.models import model_from_config
from fervid.progress import ProgressLike
from fervid.protocol.folds import LosoFolds
from fervid.representation.loso_inputs import LosoData
from fervid.runs.checkpoint import (
    checkpoint_payload,
    input_spec_from_config,
    load_training_state,
)
from fervid.runs.epoch_log import EpochLog
from fervid.runs.store import FoldPredictions, RunStore, loso_fold_frame
from fervid.training.fold_batched import fold_group_tag, train_fold_batched
from fervid.training.loop import evaluate, tensor_batches, tensor_eval_batches, train_one_epoch
from fervid.training.setup import fold_seed, make_optimizer


def init_fold_model(cfg: LosoConfig, fold: int, in_chans: int, num_classes: int) -> nn.Module:
    """Fold ``fold``'s model, initialised from (seed, fold) alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(fold_seed(cfg.seed, fold))
        return model_from_config(cfg.model, in_chans=in_chans, num_classes=num_classes)


def fold_criterion(cfg: LosoConfig, fold: int, model: nn.Module, num_classes: int,
                   train_labels: torch.Tensor) -> ClassificationWithFeatureLoss:
    """The configured training loss, its centres seeded by (seed, fold)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(fold_seed(cfg.seed, fold) + 1)
        return build_training_loss(cfg.train, num_classes=num_classes,
                                   feature_dim=getattr(model, "num_features", None),
                                   train_labels=train_labels)


def fold_model_payload(cfg: LosoConfig, data: LosoData, state: dict) -> dict:
    """A fold model as a self-describing checkpoint (:mod:`fervid.runs.checkpoint`)."""
    spec = input_spec_from_config(cfg, tuple(data.x.shape[1:]) if data.x.ndim == 4 else None)
    return checkpoint_payload(state, cfg, list(data.classes), spec)


def train_sequential(cfg: LosoConfig, data: LosoData, folds: LosoFolds, todo: list[int],
                     store: RunStore, fabric, progress: ProgressLike) -> None:
    """Train and evaluate each fold in ``todo`` in turn, through Lightning Fabric."""
    num_classes = len(data.classes)
    epochs, bs = cfg.train.epochs, cfg.train.batch_size
    x, y = data.x.to(fabric.device), data.y.to(fabric.device)
    views = None if data.train_views is None else data.train_views.to(fabric.device)
    fold_task = progress.add_task("folds", total=len(todo), status="")
    for f in todo:
        train_idx = folds.train_index(f).to(fabric.device)
        test_idx = folds.test_index(f)
        model = init_fold_model(cfg, f, data.in_chans, num_classes)
        criterion = fabric.to_device(fold_criterion(cfg, f, model, num_classes,
                                                    data.y[folds.sample_fold != f]))
        optimizer = make_optimizer(cfg.train, [*model.parameters(), *criterion.parameters()])
        if fabric.world_size == 1:
            model, optimizer = fabric.setup(model, optimizer)
        else:
            # Ranks train different folds: a DDP wrapper would average their gradients.
            if cfg.run.precision == "16-mixed":
                raise ConfigError("run.precision=16-mixed needs a single device per LOSO "
                                  "process; use bf16-mixed or 32-true with several devices")
            model = _Autocast(fabric.to_device(model), fabric)
        order = torch.Generator().manual_seed(fold_seed(cfg.seed, f))
        torch.manual_seed(fold_seed(cfg.seed, f))
        log = EpochLog(store.log_path(f"fold_{f:03d}"))
        log.truncate_after(0)
        epoch_task = progress.add_task(f"fold {f} ({folds.subjects[f]})", total=epochs,
                                       status="")
        for epoch in range(epochs):
            stats = train_one_epoch(model, criterion, optimizer,
                                    tensor_batches(x, y, train_idx, bs, order, views),
                                    fabric.backward)
            log.append(epoch=epoch + 1, loss=round(stats.loss, 6),
                       train_acc=round(stats.train_acc, 6))
            progress.update(epoch_task, advance=1, status=f"loss {stats.loss:.4f}")
        progress.remove_task(epoch_task)
        result = evaluate(model, tensor_eval_batches(x, test_idx, bs))
        predictions = FoldPredictions(f, test_idx, result.probs.argmax(-1), result.probs,
                                      result.extras.get("segment_weights"))
        store.write_fold(f, loso_fold_frame(predictions, data.table, data.classes),
                         model=fold_model_payload(cfg, data, model.state_dict()))
        progress.update(fold_task, advance=1, status=folds.subjects[f])
    progress.remove_task(fold_task)


def train_batched(cfg: LosoConfig, data: LosoData, folds: LosoFolds, todo: list[int],
                  store: RunStore, device: torch.device, progress: ProgressLike) -> None:
    """Train the folds ``todo`` as one fold-batched STSTNet and write each fold."""
    num_classes = len(data.classes)
    models = [init_fold_model(cfg, f, data.in_chans, num_classes) for f in todo]
    tag = f"batched_{fold_group_tag(todo)}"
    checkpoint = store.checkpoint_path(tag)
    result = train_fold_batched(cfg, models, data.x, data.y, folds.sample_fold, todo,
                                num_classes=num_classes, device=device, checkpoint=checkpoint,
                                log=EpochLog(store.log_path(tag)), progress=progress,
                                load_state=partial(load_training_state, weights_only=False))
    for j, f in enumerate(todo):
        if store.fold_path(f).exists():  # written before a kill: finished, kept as it is
            continue
        index = folds.test_index(f)
        probs = result.probs[index, j]
        predictions = FoldPredictions(f, index, probs.argmax(-1), probs)
        store.write_fold(f, loso_fold_frame(predictions, data.table, data.classes),
                         model=fold_model_payload(cfg, data, result.states[j]))
    checkpoint.unlink(missing_ok=True)  # only now: a kill above writes the other folds on resume


class _Autocast(nn.Module):
    """A module run under Fabric's autocast, without Fabric's (DDP) wrapper."""

    def __init__(self, module: nn.Module, fabric):
        super().__init__()
        self.module, self._fabric = module, fabric

    def forward(self, x: torch.Tensor):
        with self._fabric.autocast():
            return self.module(x)

    def state_dict(self, *args, **kwargs):
        return self.module.state_dict(*args, **kwargs)
