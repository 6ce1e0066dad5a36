"""A release's own folds (DFEW's five, MAFW's five, FERV39k's train/test split as fold 1):
train on a fold's training list, test once on its test list.

The release is ``data.dataset`` (the dataset table's k-fold default, DFEW, when left out), read
through its registered ``read_splits`` (:mod:`fervid.datasets.video_release`). Each fold trains
through Lightning Fabric (one device, several, or several nodes under DDP)
with the shared loop (:mod:`fervid.training.loop`), with DataLoader workers decoding only the
sampled frames. Under DDP ``train.batch_size`` stays the whole batch: each of the W ranks
takes every W-th clip of the same shuffled order, BatchNorm is synchronised across ranks
(:mod:`fervid.training.sync_batchnorm`) and the gradients are averaged, so a step computes
what one process computes on that batch (dropout masks aside; a training list that W does not
divide is padded with repeated clips, as torch's ``DistributedSampler`` does). Only rank 0
writes to the run directory. The state is checkpointed after every epoch, so a killed run
resumes at the epoch it had finished; a fold's predictions are written when it ends, and
finished folds are skipped. The model of the last epoch is evaluated;
nothing is chosen on the test list.

``RUN_DIR/`` (the shared run store, :mod:`fervid.runs.store`): ``run.json`` (``"protocol":
"<dataset>_<k>fold"``, e.g. ``"dfew_5fold"``; the ``dataset``, ``source`` and ``classes`` in
label order), ``config.yaml`` (with the release's source and classes filled in),
``checkpoints/fold_NNN.pt``, ``train_logs/fold_NNN.csv``, ``folds/fold_NNN.csv`` (clip, label,
pred, fold and class probabilities), ``models/fold_NNN.pt``, ``predictions.csv`` and
``metrics.json``, NNN the release's fold number (001..005).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, DistributedSampler

from fervid.config import ConfigError, KfoldConfig
from fervid.datasets.registry import DatasetSpec, dataset_spec, default_dataset
from fervid.datasets.video_release import VideoRelease, kfold_protocol, release_of
from fervid.errors import OptionError
from fervid.losses import build_training_loss
from fervid.metrics import split_summary
from fervid.models import model_from_config
from fervid.progress import ProgressLike, progress_bar
from fervid.protocol.fold_runner import FoldOutcome, run_folds
from fervid.protocol.selection import best_choice, selection_score
from fervid.protocol.splits import Fold, carve_samples, release_folds
from fervid.runs.checkpoint import checkpoint_payload
from fervid.runs.epoch_log import EpochLog
from fervid.runs.store import RunStore
from fervid.training.hooks import BestValidation, EveryEpochs, WeightAveraging
from fervid.training.loop import evaluate
from fervid.training.setup import (
    make_fabric,
    make_optimizer,
    make_scheduler,
    with_resolved_precision,
)
from fervid.training.sync_batchnorm import convert_sync_batchnorm
from fervid.training.trainer import Trained, Trainer, seeded

log = logging.getLogger(__name__)

#: How training batches are drawn (``run.json``; a resume must match): each epoch one
#: permutation seeded by (seed, fold, epoch), rank r taking every W-th clip of it. Runs made
#: before this rule (no ``batch_order``) drew their order otherwise, so they are not resumed.
BATCH_ORDER = "seeded-permutation-rank-strided"


def resolved_config(cfg: KfoldConfig) -> tuple[KfoldConfig, DatasetSpec, VideoRelease]:
    """``cfg`` with the release it reads filled in (``data.dataset``; ``data.source`` and
    ``data.classes`` where left out: the release's default source and its label order), the
    release's spec and what its reader declares.

    Raises
    ------
    ConfigError
        A dataset without folds of its own, a source it has not, or classes other than its
        own; one line naming the valid values.
    """
    d = cfg.data
    try:
        spec = dataset_spec(d.dataset or default_dataset("kfold"),
                            lambda s: s.read_splits is not None,
                            "by fervid kfold (it has no folds of its own)")
        release = release_of(spec)
    except OptionError as e:
        raise ConfigError(f"data.dataset: {e}") from None
    source = d.source or release.default_source
    if source not in release.sources:
        raise ConfigError(f"data.source {source!r}: {release.title} has the sources "
                          f"{', '.join(release.sources)}")
    classes = list(release.classes) if d.classes is None else list(d.classes)
    if tuple(classes) != release.classes:
        raise ConfigError(f"data.classes {classes} differ from {release.title}'s label order "
                          f"{list(release.classes)} (leave data.classes out to use it)")
    data = d.model_copy(update={"dataset": spec.name, "source": source, "classes": classes})
    return cfg.model_copy(update={"data": data}), spec, release


def run_kfold(cfg: KfoldConfig, data_root: Path, out: Path, *, folds: list[int] | None = None,
              progress: bool = True) -> dict | None:
    """Run (or resume) the chosen folds of ``cfg`` (default: all of the release's) on the
    release at ``data_root`` (``data.dataset``).

    Returns the merged metrics of the finished folds on rank 0 (None on other ranks).
    """
    cfg, spec, release = resolved_config(cfg)
    try:
        folds = sorted(release.check_folds(folds or release.folds))
    except OptionError as e:
        raise ConfigError(f"--folds: {e}") from None
    d = cfg.data
    split_dir = None if d.split_dir is None else Path(data_root) / d.split_dir
    split = spec.read_splits(Path(data_root), source=d.source, folds=folds,
                             skip_missing=d.skip_missing, split_dir=split_dir)
    if split.missing:
        log.warning("skipped %d missing or unreadable clip(s) (data.skip_missing)",
                    len(split.missing))
    out = Path(out)
    cfg = with_resolved_precision(cfg)
    r = cfg.run
    fabric = make_fabric(r.accelerator, r.precision, devices=r.devices, num_nodes=r.num_nodes)
    if cfg.train.batch_size % fabric.world_size:
        raise ConfigError(f"train.batch_size {cfg.train.batch_size} must be a multiple of the "
                          f"{fabric.world_size} DDP ranks (devices x nodes): each rank takes an "
                          f"equal share of every batch")
    if fabric.world_size > 1:
        fabric.launch()
    if r.threads:
        torch.set_num_threads(r.threads)
    store = RunStore(out)
    if fabric.global_rank == 0:
        store.open(cfg, {"protocol": kfold_protocol(spec.name, release),
                         "dataset": spec.name, "source": d.source,
                         "fingerprint": cfg.fingerprint(
                             precision=fabric.strategy.precision.precision),
                         "precision": fabric.strategy.precision.precision,
                         "batch_order": BATCH_ORDER,
                         "seed": cfg.seed, "name": cfg.name, "classes": list(cfg.data.classes),
                         "skipped_clips": list(split.missing)},
                   same=("fingerprint", "batch_order"))
    fabric.barrier()
    clips = split.clips
    where = {c.clip_id: i for i, c in enumerate(clips)}
    members = {n: ([where[c.clip_id] for c in split.fold(n).train],
                   [where[c.clip_id] for c in split.fold(n).test]) for n in folds}
    with progress_bar(progress and fabric.global_rank == 0) as bar:
        run_folds(release_folds(members, cfg.seed), store,
                  partial(_train_fold, cfg, fabric, clips, store, bar), bar,
                  writes=fabric.global_rank == 0,
                  state_names=lambda f: (f"fold_{f.number:03d}", f"fold_{f.number:03d}_inner"))
    fabric.barrier()
    if fabric.global_rank != 0:
        return None
    from fervid.runs.results import build_kfold_results

    return build_kfold_results(out)


def _loader(dataset, cfg: KfoldConfig, *, shuffle: bool, seed: int, rank: int = 0,
            world_size: int = 1) -> DataLoader:
    """Training (``shuffle``): rank ``rank``'s share, every ``world_size``-th clip of one
    permutation seeded by ``seed``, in batches of ``batch_size / world_size``. With one rank
    this is the permutation a ``RandomSampler`` seeded by ``seed`` gives."""
    r = cfg.run
    extra = ({"prefetch_factor": r.prefetch_factor, "persistent_workers": False}
             if r.num_workers > 0 else {})
    if not shuffle:
        return DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=False,
                          num_workers=r.num_workers, drop_last=False, **extra)
    share = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                               seed=seed, drop_last=False)
    # The generator seeds the workers (and is drawn from even with none): not the order.
    return DataLoader(dataset, batch_size=cfg.train.batch_size // world_size, sampler=share,
                      num_workers=r.num_workers, drop_last=False,
                      generator=torch.Generator().manual_seed(seed), **extra)


def _train_fold(cfg: KfoldConfig, fabric, clips: list, store: RunStore, bar: ProgressLike,
                fold: Fold) -> FoldOutcome | None:
    """Train fold ``fold`` of ``clips`` through the one trainer and score its test clips
    (rank 0; other ranks return None).

    ``train.select: inner_val`` first trains on the fold's training clips less a validation
    share of them, scoring that share every ``train.select_every`` epochs, then trains again
    on all of them for the best epoch count; ``train.selection: best_validation`` keeps the
    epoch of best accuracy on such a share. The test clips choose nothing.
    """
    from fervid.representation.video_clips import VideoClipDataset

    number, seed, t = fold.number, fold.seed, cfg.train
    test_clips = [clips[i] for i in fold.test.tolist()]
    if not len(fold.train) or not test_clips:
        raise ConfigError(f"fold {number} has {len(fold.train)} training and "
                          f"{len(test_clips)} test clips; both must be non-empty")
    labels = [c.label for c in clips]

    def predictor(index: torch.Tensor):
        """``model → (labels, predictions)`` on the clips ``index`` (a validation share)."""
        held = [clips[i] for i in index.tolist()]
        held_set = VideoClipDataset(held, cfg.data, train=False, seed=seed)
        return lambda m: ([c.label for c in held], _test_probs(
            cfg, fabric, getattr(m, "module", m), held_set).argmax(1).tolist())

    epochs, selection = t.epochs, None
    if t.select == "inner_val":
        inner = carve_samples(fold, labels, t.select_fraction)
        predict = predictor(inner.validation)

        def score(m) -> float:
            return selection_score(*predict(m), cfg.data.classes)

        check = EveryEpochs("inner_val", t.select_every, t.epochs, lambda e, m: score(m))
        trained = _fit_clips(cfg, fabric, store, bar, inner, clips, t.epochs, "_inner",
                             lambda model, train_set: [check])
        scores = {**check.results, t.epochs: score(trained.model)}  # the last is a candidate
        epochs = best_choice(scores, sorted(scores))
        selection = {"choice": {"epochs": epochs}, "validation_clips": len(inner.validation),
                     "score": "(UF1 + UAR) / 2 over the validation clips (carved from the "
                              "training clips)",
                     "scores": {str(e): round(v, 6) for e, v in sorted(scores.items())}}
    validation = None
    if t.selection == "best_validation":
        fold = carve_samples(fold, labels, t.select_fraction)
        predict_val = predictor(fold.validation)
        validation = BestValidation(
            lambda m: split_summary(*predict_val(m), cfg.data.classes), keep_best=True)
    test_set = VideoClipDataset(test_clips, cfg.data, train=False, seed=seed)
    trace = (EveryEpochs("trace", cfg.run.trace_every, epochs,
                         lambda e, m: _test_probs(cfg, fabric, m.module, test_set))
             if cfg.run.trace_every else None)

    def hooks(model, train_set) -> list:
        made = [h for h in (validation, trace) if h is not None]
        if t.average_last:
            # BatchNorm statistics of the averaged weights: the training clips, in order.
            made.append(WeightAveraging(model.module, t.average_last, epochs, lambda: (
                x.to(fabric.device) for x, _ in _loader(train_set, cfg, shuffle=False, seed=0)),
                fabric.device))
        return made

    trained = _fit_clips(cfg, fabric, store, bar, fold, clips, epochs, "", hooks)
    outcome = None
    if fabric.global_rank == 0:
        net = getattr(trained.model, "module", trained.model)
        probs = _test_probs(cfg, fabric, net, test_set)
        traced = None
        if trace is not None:
            traced = pd.concat([_fold_frame(cfg, test_clips, number, p).assign(epoch=e)
                                for e, p in [*sorted(trace.results.items()), (epochs, probs)]],
                               ignore_index=True)
            traced.insert(0, "epoch", traced.pop("epoch"))
        if validation is not None:
            selection = {
                "choice": {"epoch": trained.epoch}, "validation_clips": len(fold.validation),
                "validation_split": fold.validation_source,
                "score": "accuracy over the validation clips (carved from the training clips)",
                "scores": validation.record()}
        outcome = FoldOutcome(_fold_frame(cfg, test_clips, number, probs),
                              checkpoint_payload(net.state_dict(), cfg, list(cfg.data.classes)),
                              selection, traced)
    fabric.barrier()
    return outcome


def _fit_clips(cfg: KfoldConfig, fabric, store: RunStore, bar: ProgressLike, fold: Fold,
               clips: list, epochs: int, suffix: str, hooks) -> Trained:
    """Fold ``fold``'s model trained on its training clips for ``epochs`` epochs, resumable
    from ``checkpoints/fold_NNN<suffix>.pt``; ``hooks(model, train_set)`` gives the hooks."""
    from fervid.representation.video_clips import VideoClipDataset

    number, seed = fold.number, fold.seed
    train_clips = [clips[i] for i in fold.train.tolist()]
    num_classes, in_chans = len(cfg.data.classes), 1 if cfg.data.grayscale else 3
    train_set = VideoClipDataset(train_clips, cfg.data, train=True, seed=seed)
    labels = torch.tensor([c.label for c in train_clips], dtype=torch.long)
    net = seeded(seed, lambda: model_from_config(cfg.model, in_chans=in_chans,
                                                 num_classes=num_classes))
    criterion = seeded(seed + 1, lambda: build_training_loss(
        cfg.train, num_classes=num_classes, feature_dim=net.num_features, train_labels=labels))
    if fabric.world_size > 1:
        net = convert_sync_batchnorm(net, fabric.device)
    optimizer = make_optimizer(cfg.train, [*net.parameters(), *criterion.parameters()])
    model, optimizer = fabric.setup(net, optimizer)
    criterion = fabric.to_device(criterion)

    def batches(epoch: int):
        # Order and sampling depend on (seed, fold, epoch) only (BATCH_ORDER).
        train_set.set_epoch(epoch)
        return fabric.setup_dataloaders(
            _loader(train_set, cfg, shuffle=True, seed=seed * 1000 + epoch,
                    rank=fabric.global_rank, world_size=fabric.world_size),
            use_distributed_sampler=False)

    made = hooks(model, train_set)
    validates = any(isinstance(h, BestValidation) for h in made)
    name = f"fold_{number:03d}{suffix}"
    log = EpochLog(store.log_path(name), ("epoch", "loss", "train_acc",
                                          *(("val_acc", "val_uar") if validates else ()),
                                          "wall_s"))
    steps = len(_loader(train_set, cfg, shuffle=True, seed=0, rank=fabric.global_rank,
                        world_size=fabric.world_size))
    trainer = Trainer(fabric, seed=seed, epochs=epochs, log=log,
                      state_path=store.checkpoint_path(name), hooks=made,
                      shared_batches=True, progress=bar, label=f"fold {number}{suffix}",
                      time_field="wall_s")
    return trainer.fit(model, criterion, optimizer, batches,
                       make_scheduler(cfg.train, optimizer, steps * epochs))


def _test_probs(cfg: KfoldConfig, fabric, net, test_set) -> torch.Tensor:
    """Class probabilities ``(n_test, C)`` of ``net`` (unwrapped) on the whole test list."""
    batches = (x.to(fabric.device) for x, _ in _loader(test_set, cfg, shuffle=False, seed=0))
    return evaluate(net, batches, fabric.autocast).probs


def _fold_frame(cfg: KfoldConfig, test_clips: list, number: int, p: torch.Tensor
                ) -> pd.DataFrame:
    """A k-fold fold file: ``clip, label, pred, fold, p_<class>...``."""
    frame = pd.DataFrame({"clip": [c.clip_id for c in test_clips],
                          "label": [c.label for c in test_clips],
                          "pred": p.argmax(1).tolist(), "fold": number})
    for k, c in enumerate(cfg.data.classes):
        frame[f"p_{c}"] = p[:, k].numpy().round(6)
    return frame
