"""The three ways LOSO trains its folds, each writing every finished fold to the run store.

``sequential``: one fold after another through the shared loop (:mod:`fervid.training.loop`),
any model; every fold is seeded from (seed, fold) alone, so its result does not depend on which
other folds ran before it, in this process or another shard. A killed run loses only the fold
it was training.

``fold_batched``: a group of folds' STSTNets trained at once (:mod:`fervid.training.fold_batched`),
resumable from its periodic checkpoint.

``linear``: a scikit-learn linear model per fold (:mod:`fervid.models.linear`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
import torch
from torch import nn

from fervid.config import ConfigError, LosoConfig
from fervid.losses import (
    AuAidedLoss,
    AuAidedTargets,
    ClassificationWithFeatureLoss,
    MultiLabelLoss,
    build_training_loss,
)
from fervid.metrics import split_summary
from fervid.models import model_from_config
from fervid.models.au_head import emotion_state
from fervid.progress import ProgressLike
from fervid.protocol.fold_runner import FoldOutcome, run_folds
from fervid.protocol.folds import LosoFolds
from fervid.protocol.selection import best_choice, inner_group_folds, selection_score
from fervid.protocol.splits import Fold, carve_validation, held_subjects, loso_folds
from fervid.representation.loso_inputs import LosoData
from fervid.representation.optical_flow import mirror_flow
from fervid.runs.au_results import au_fold_frame
from fervid.runs.checkpoint import (
    checkpoint_payload,
    input_spec_from_config,
)
from fervid.runs.epoch_log import EpochLog
from fervid.runs.store import FoldPredictions, RunStore, loso_fold_frame
from fervid.samples import subject_key
from fervid.training.fold_batched import fold_group_tag, train_fold_batched
from fervid.training.hooks import BestValidation, EveryEpochs, WeightAveraging
from fervid.training.loop import evaluate, tensor_batches, tensor_eval_batches
from fervid.training.setup import fold_seed, make_optimizer, make_scheduler
from fervid.training.trainer import Trainer, load_training_state, seeded


def init_fold_model(cfg: LosoConfig, fold: int, in_chans: int, num_classes: int,
                    num_aus: int = 0) -> nn.Module:
    """Fold ``fold``'s model, initialised from (seed, fold) alone (with ``num_aus``, plus an
    AU head: ``train.au_weight``)."""
    return seeded(fold_seed(cfg.seed, fold),
                  lambda: model_from_config(cfg.model, in_chans=in_chans,
                                            num_classes=num_classes, num_aus=num_aus))


def fold_criterion(cfg: LosoConfig, fold: int, model: nn.Module, num_classes: int,
                   train_labels: torch.Tensor | AuAidedTargets
                   ) -> ClassificationWithFeatureLoss | MultiLabelLoss | AuAidedLoss:
    """The configured training loss, its centres seeded by (seed, fold); an AU run's
    (``train_labels`` ``(N, A)``) is the multi-label loss with this fold's positive weights,
    an AU-aided run's (:class:`AuAidedTargets`) adds the AU loss with positive weights from
    this fold's training samples with AU labels."""
    aided = isinstance(train_labels, AuAidedTargets)
    labels = train_labels.labels if aided else train_labels
    return seeded(fold_seed(cfg.seed, fold) + 1,
                  lambda: build_training_loss(cfg.train, num_classes=num_classes,
                                              feature_dim=getattr(model, "num_features", None),
                                              train_labels=labels,
                                              multi_label=labels.ndim == 2,
                                              train_aus=train_labels.coded_aus if aided
                                              else None))


def training_targets(data: LosoData) -> torch.Tensor | AuAidedTargets:
    """What the loss trains on: ``data.y``, with the AU labels of ``train.au_weight``."""
    if data.au_aid is None:
        return data.y
    return AuAidedTargets(data.y, data.au_aid.y, data.au_aid.coded)


def fold_model_payload(cfg: LosoConfig, data: LosoData, state: dict) -> dict:
    """A fold model as a self-describing checkpoint (:mod:`fervid.runs.checkpoint`): an
    AU-aided model's emotion network alone (its AU head only aided training)."""
    if data.au_aid is not None:
        state = emotion_state(state)
    spec = input_spec_from_config(cfg, tuple(data.x.shape[1:]) if data.x.ndim == 4 else None,
                                  (s.frames[0] for s in data.table if s.frames))
    return checkpoint_payload(state, cfg, list(data.classes), spec)


def train_sequential(cfg: LosoConfig, data: LosoData, folds: LosoFolds, todo: list[int],
                     store: RunStore, fabric, progress: ProgressLike) -> None:
    """Train and evaluate each fold in ``todo`` in turn through the one trainer.

    ``train.select: inner_val`` first trains on the fold's training subjects less a validation
    share of them (:func:`~fervid.protocol.splits.carve_validation`), checks the validation
    score every ``train.select_every`` epochs, then trains again on all the training subjects
    for the best epoch count. ``run.trace_every`` keeps the test predictions every N epochs
    (never used to choose).
    """
    num_classes = len(data.classes)
    x, y = data.x.to(fabric.device), training_targets(data).to(fabric.device)
    views = None if data.train_views is None else data.train_views.to(fabric.device)
    bs = cfg.train.batch_size

    def _validation_summary(model, index: torch.Tensor) -> dict:
        probs = evaluate(model, tensor_eval_batches(x, index, bs)).probs
        return split_summary(data.y[index].numpy(), probs.argmax(-1).numpy(), data.classes)

    def train(fold: Fold) -> FoldOutcome:
        f = fold.number
        fit = partial(_fit_fold, cfg, f, x, y, views, fabric, progress, num_classes)
        epochs, selection = cfg.train.epochs, None
        if cfg.train.select == "inner_val":
            inner_fold = carve_validation(fold, data.table, cfg.train.select_fraction)
            val_idx = inner_fold.validation
            scores: dict[int, float] = {}

            def check(epoch: int, model) -> None:
                probs = evaluate(model, tensor_eval_batches(x, val_idx, bs)).probs
                scores[epoch] = selection_score(data.y[val_idx].tolist(),
                                                probs.argmax(-1).tolist(), data.classes)

            inner, _ = fit(inner_fold.train, cfg.train.epochs,
                           store.log_path(f"fold_{f:03d}_inner"), every=cfg.train.select_every,
                           probe=check, label=f"fold {f} inner")
            check(cfg.train.epochs, inner)  # the last epoch is a candidate too
            epochs = best_choice(scores, sorted(scores))
            selection = {"choice": {"epochs": epochs},
                         "validation_subjects": held_subjects(inner_fold, data.table),
                         "score": "(UF1 + UAR) / 2 over the validation subjects",
                         "scores": {str(e): round(v, 6) for e, v in sorted(scores.items())}}
        trace: list[tuple[int, torch.Tensor]] = []

        def keep(epoch: int, model) -> None:
            trace.append((epoch, evaluate(model, tensor_eval_batches(x, fold.test, bs)).probs))

        validation = None
        if cfg.train.selection == "best_validation":
            fold = carve_validation(fold, data.table, cfg.train.select_fraction)
            validation = BestValidation(lambda m: _validation_summary(m, fold.validation),
                                        keep_best=True)
        model, chosen = fit(fold.train, epochs, store.log_path(f"fold_{f:03d}"),
                            every=cfg.run.trace_every,
                            probe=keep if cfg.run.trace_every else None,
                            label=f"fold {f} ({fold.name})", validation=validation)
        if validation is not None:
            selection = {"choice": {"epoch": chosen},
                         "validation_subjects": held_subjects(fold, data.table),
                         "score": "accuracy over the validation subjects",
                         "scores": validation.record()}
        result = evaluate(model, tensor_eval_batches(x, fold.test, bs),
                          multi_label=data.multi_label)
        if data.multi_label:
            return FoldOutcome(au_fold_frame(f, fold.test.tolist(), result.probs,
                                             data.y[fold.test], data.table, data.classes),
                               fold_model_payload(cfg, data, model.state_dict()))
        predictions = FoldPredictions(f, fold.test, result.probs.argmax(-1), result.probs,
                                      result.extras.get("segment_weights"))
        traced = None
        if cfg.run.trace_every:
            trace.append((epochs, result.probs))
            traced = trace_frame(f, fold.test, trace, data.table, data.classes)
        return FoldOutcome(loso_fold_frame(predictions, data.table, data.classes),
                           fold_model_payload(cfg, data, model.state_dict()), selection, traced)

    run_folds(loso_folds(folds, cfg.seed, todo), store, train, progress)


def _fit_fold(cfg: LosoConfig, fold: int, x: torch.Tensor, y: torch.Tensor | AuAidedTargets,
              views: torch.Tensor | None, fabric, progress: ProgressLike, num_classes: int,
              train_idx: torch.Tensor, epochs: int, log_path, *, every: int = 0,
              probe: Callable[[int, nn.Module], None] | None = None, label: str = "",
              validation: BestValidation | None = None) -> tuple[nn.Module, int]:
    """Fold ``fold``'s model trained from its (seed, fold) initialisation on ``train_idx`` for
    ``epochs`` epochs through the one trainer; ``probe(epoch, model)`` after every ``every``-th
    epoch but the last; with ``validation``, each epoch is scored on the fold's validation
    subjects and the best epoch kept. Returns the model (of the last epoch, the weight average
    of ``train.average_last`` or the best validation epoch) and the epoch it stands for."""
    bs = cfg.train.batch_size
    seed = fold_seed(cfg.seed, fold)
    train_idx = train_idx.to(fabric.device)
    num_aus = y.aus.shape[1] if isinstance(y, AuAidedTargets) else 0
    model = init_fold_model(cfg, fold, x.shape[-3], num_classes, num_aus)
    criterion = fabric.to_device(fold_criterion(cfg, fold, model, num_classes,
                                                y[train_idx].cpu()))
    optimizer = make_optimizer(cfg.train, [*model.parameters(), *criterion.parameters()])
    if fabric.world_size == 1:
        model, optimizer = fabric.setup(model, optimizer)
    else:
        # Ranks train different folds: a DDP wrapper would average their gradients.
        if cfg.run.precision == "16-mixed":
            raise ConfigError("run.precision=16-mixed needs a single device per LOSO "
                              "process; use bf16-mixed or 32-true with several devices")
        model = _Autocast(fabric.to_device(model), fabric)
    order = torch.Generator().manual_seed(seed)
    flips = torch.Generator().manual_seed(seed + 2)

    def batches(epoch: int):
        out = tensor_batches(x, y, train_idx, bs, order, views)
        return _flipped(out, cfg, flips) if cfg.train.flow_flip else out

    hooks = []
    if cfg.train.average_last:
        hooks.append(WeightAveraging(model, cfg.train.average_last, epochs,
                                     lambda: tensor_eval_batches(x, train_idx, bs),
                                     fabric.device))
    if probe is not None:
        hooks.append(EveryEpochs("probe", every, epochs, probe))
    fields = ("epoch", "loss", "train_acc")
    if validation is not None:
        hooks.append(validation)
        fields += ("val_acc", "val_uar")
    trainer = Trainer(fabric, seed=seed, epochs=epochs, log=EpochLog(log_path, fields),
                      hooks=hooks, generators={"order": order, "flips": flips},
                      progress=progress, label=label)
    steps = -(-len(train_idx) // bs)
    trained = trainer.fit(model, criterion, optimizer, batches,
                          make_scheduler(cfg.train, optimizer, steps * epochs))
    return trained.model, trained.epoch


def _flipped(batches, cfg: LosoConfig, generator: torch.Generator):
    """``train.flow_flip``: each training sample mirrored with probability 1/2."""
    top = 255.0 * cfg.data.scale
    for xb, yb in batches:
        pick = (torch.rand(len(xb), generator=generator) < 0.5).to(xb.device)
        if pick.any():
            xb = xb.clone()
            xb[pick] = mirror_flow(xb[pick], cfg.data.flow_u_channel, top)
        yield xb, yb


def trace_frame(fold: int, index: torch.Tensor, trace: list[tuple[int, torch.Tensor]], table,
                classes) -> pd.DataFrame:
    """A fold's ``traces/fold_NNN.csv``: its fold-file rows once per traced epoch, with an
    ``epoch`` column first."""
    frames = []
    for epoch, probs in trace:
        rows = loso_fold_frame(FoldPredictions(fold, index, probs.argmax(-1), probs), table,
                               classes)
        rows.insert(0, "epoch", epoch)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def train_linear(cfg: LosoConfig, data: LosoData, folds: LosoFolds, todo: list[int],
                 store: RunStore, progress: ProgressLike) -> None:
    """Fit a scikit-learn linear model (:mod:`fervid.models.linear`) in each fold of ``todo``
    on the flattened inputs; ``train.select: inner_val`` chooses C from ``model.c_grid`` by
    leave-subjects-out folds of the training subjects."""
    from fervid.models.linear import class_scores, linear_estimator

    num_classes = len(data.classes)
    x = data.x.reshape(len(data.x), -1).double().numpy()
    y = data.y.numpy()
    subjects = np.array([subject_key(s) for s in data.table])

    def train(fold: Fold) -> FoldOutcome:
        tr, te = fold.train.numpy(), fold.test
        build = partial(linear_estimator, cfg.model, class_weights=cfg.train.class_weights,
                        seed=fold.seed)
        if data.multi_label:
            probs = _per_au_probs(build(c=cfg.model.c), x[tr], y[tr], x[te.numpy()])
            return FoldOutcome(au_fold_frame(fold.number, te.tolist(), probs, y[te.numpy()],
                                             data.table, data.classes))
        c, selection = cfg.model.c, None
        if cfg.train.select == "inner_val":
            c, selection = _choose_c(build, x[tr], y[tr], subjects[tr], cfg, fold.seed,
                                     data.classes)
        estimator = build(c=c).fit(x[tr], y[tr])
        probs = torch.from_numpy(class_scores(estimator, x[te.numpy()], num_classes)).float()
        predictions = FoldPredictions(fold.number, te, probs.argmax(-1), probs)
        return FoldOutcome(loso_fold_frame(predictions, data.table, data.classes),
                           selection=selection)

    run_folds(loso_folds(folds, cfg.seed, todo), store, train, progress)


def _per_au_probs(estimator, x_train: np.ndarray, targets: np.ndarray, x_test: np.ndarray
                  ) -> np.ndarray:
    """One linear model per AU (a clone of ``estimator`` on each column of ``targets``
    ``(n, A)``): the test samples' probabilities ``(m, A)`` of each AU being present. An AU
    that the fold's training samples never (or always) show gets its training rate."""
    from sklearn.base import clone

    from fervid.models.linear import class_scores

    probs = np.empty((len(x_test), targets.shape[1]))
    for a in range(targets.shape[1]):
        column = targets[:, a].astype(int)
        if column.min() == column.max():
            probs[:, a] = column.mean()
            continue
        probs[:, a] = class_scores(clone(estimator).fit(x_train, column), x_test, 2)[:, 1]
    return probs


def _choose_c(build, x: np.ndarray, y: np.ndarray, subjects: np.ndarray, cfg: LosoConfig,
              seed: int, classes) -> tuple[float, dict]:
    """C from ``model.c_grid`` by pooled inner leave-subjects-out predictions."""
    masks = inner_group_folds(subjects, cfg.train.select_fraction, seed)
    scores = {}
    for c in sorted(cfg.model.c_grid):
        preds = np.zeros(len(y), dtype=int)
        for val in masks:
            preds[val] = build(c=c).fit(x[~val], y[~val]).predict(x[val])
        scores[c] = selection_score(y, preds, classes)
    c = best_choice(scores, sorted(scores))
    return c, {"choice": {"c": c}, "inner_folds": len(masks),
               "score": "(UF1 + UAR) / 2 of the pooled inner-fold predictions",
               "scores": {str(k): round(v, 6) for k, v in scores.items()}}


def train_batched(cfg: LosoConfig, data: LosoData, folds: LosoFolds, todo: list[int],
                  store: RunStore, device: torch.device, progress: ProgressLike) -> None:
    """Train the folds ``todo`` as one fold-batched STSTNet and write each fold (an AU run's
    as the sequential engine writes it: AU targets and probabilities)."""
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
        model = fold_model_payload(cfg, data, result.states[j])
        if data.multi_label:
            store.write_fold(f, au_fold_frame(f, index.tolist(), probs, data.y[index],
                                              data.table, data.classes), model=model)
            continue
        predictions = FoldPredictions(f, index, probs.argmax(-1), probs)
        traced = None
        if cfg.run.trace_every:
            traced = trace_frame(f, index, [*((e, p[index]) for e, p in result.trace),
                                            (cfg.train.epochs, probs)],
                                 data.table, data.classes)
        store.write_fold(f, loso_fold_frame(predictions, data.table, data.classes),
                         model=model, trace=traced)
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
