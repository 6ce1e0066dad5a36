"""The hold-out protocol of ``fervid fit``: one model trained on a release's training split.

- **Splits.** The release's own (FER2013: Training, PublicTest, PrivateTest → train,
  validation, test). A release without splits trains on every sample; a validation split is
  then carved from the training samples (``data.validation_fraction``, stratified, seeded) so
  that an epoch can be chosen. The test split chooses nothing: it is scored once, at the end.
- **Selection.** ``train.selection: best_validation`` keeps the epoch of best validation
  accuracy (ties: the earlier); ``last`` keeps the last epoch. ``metrics.json`` says which.
- **Resume.** The whole training state (model, optimiser, schedule, random generators, the
  best model so far) is saved after every epoch to ``RUN/checkpoints/fit.pt``; a rerun with
  the same config continues from the last finished epoch and gives the same model.

Writes ``RUN/model.pt`` (a self-describing checkpoint that ``predict``, ``export`` and
``evaluate`` take), ``RUN/metrics.json`` (``validation``, ``test``, ``selection``),
``RUN/predictions.csv`` and ``RUN/train_logs/fit.csv``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fervid.config import ConfigError, FitConfig
from fervid.datasets.image_folder import FaceImageSet
from fervid.files import atomic_write, remove_stale_tmp
from fervid.losses import build_training_loss
from fervid.metrics import split_summary
from fervid.models import model_from_config
from fervid.progress import progress_bar
from fervid.representation.face_images import (
    FaceTensors,
    eval_face_batches,
    load_face_images,
    train_face_batches,
)
from fervid.runs.checkpoint import checkpoint_payload, load_training_state
from fervid.runs.epoch_log import EpochLog
from fervid.runs.store import RunStore, split_prediction_frame
from fervid.training.loop import evaluate, train_one_epoch
from fervid.training.setup import make_optimizer, make_scheduler, with_resolved_precision

log = logging.getLogger("fervid")

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class HoldoutSplits:
    """Sample indices ``(n,)`` of each split, and how the validation split was made
    (``release``, ``carved`` from the training samples, or ``none``)."""

    train: torch.Tensor
    validation: torch.Tensor
    test: torch.Tensor
    validation_source: str


def holdout_splits(splits: list[str], labels: np.ndarray, fraction: float, seed: int,
                   subjects: list[str] | None = None) -> HoldoutSplits:
    """The split of each sample (``train``, ``validation``, ``test`` or ``""`` for a release
    without splits, read as ``train``), with a validation split carved from the training
    samples when the release has none and ``fraction > 0``: whole subjects when ``subjects``
    names them (CK+: no person in both parts), else per class; seeded by ``seed``."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    names = np.array([s or "train" for s in splits])
    index = {k: np.flatnonzero(names == k) for k in SPLITS}
    source = "release" if len(index["validation"]) else "none"
    train = index["train"]
    if not len(index["validation"]) and fraction > 0 and len(train) > 1:
        groups = None if subjects is None else np.array(subjects)[train]
        if groups is not None and len(set(groups)) >= 2 and all(groups):
            n_splits = min(max(2, round(1 / fraction)), len(set(groups)))
            folds = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
            fit_part, val_part = next(folds.split(train, labels[train], groups))
            train, val = train[fit_part], train[val_part]
            source = "carved by subject"
        else:
            n_val = int(np.ceil(fraction * len(train)))
            k = len(np.unique(labels[train]))
            counts = np.bincount(labels[train])
            stratified = (counts[counts > 0].min() >= 2 and n_val >= k
                          and len(train) - n_val >= k)
            train, val = train_test_split(train, test_size=n_val, random_state=seed,
                                          stratify=labels[train] if stratified else None)
            source = "carved"
        index["train"], index["validation"] = np.sort(train), np.sort(val)
    as_tensor = {k: torch.from_numpy(v.astype(np.int64)) for k, v in index.items()}
    return HoldoutSplits(as_tensor["train"], as_tensor["validation"], as_tensor["test"], source)


def run_holdout(cfg: FitConfig, images: FaceImageSet, out: Path, *, data_root: str = "",
                progress: bool = True) -> dict:
    """Train ``cfg``'s model on the training split of ``images`` and score the others.

    Returns the ``metrics.json`` dict. See the module docstring for the protocol.
    """
    from lightning_fabric import Fabric

    started = time.monotonic()
    cfg = with_resolved_precision(cfg)
    d, t = cfg.data, cfg.train
    if cfg.run.devices != 1 or cfg.run.num_nodes != 1:
        raise ConfigError("fervid fit trains on one device: set run.devices=1, run.num_nodes=1")
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    table, classes = images.table, list(images.table.classes)
    if len(classes) < 2:
        raise ConfigError(f"{data_root}: a classifier needs at least 2 classes, the data has "
                          f"{classes}")
    labels = np.array([s.label for s in table], dtype=np.int64)
    splits = holdout_splits([s.split for s in table], labels, d.validation_fraction, cfg.seed,
                            [s.subject for s in table])
    if not len(splits.train):
        raise ConfigError(f"{data_root}: no training samples")
    absent = [c for i, c in enumerate(classes) if not (labels[splits.train] == i).any()]
    if absent:
        log.warning("%s: no training samples of %s", data_root, ", ".join(absent))
    selection = t.selection
    if selection == "best_validation" and not len(splits.validation):
        log.warning("no validation split: train.selection=best_validation falls back to the "
                    "last epoch")
        selection = "last"
    fabric = Fabric(accelerator=cfg.run.accelerator, devices=1, precision=cfg.run.precision)
    store = RunStore(out)
    counts = {k: len(getattr(splits, k)) for k in SPLITS}
    info = {"protocol": "holdout", "name": cfg.name,
            "fingerprint": cfg.fingerprint(precision=fabric.strategy.precision.precision),
            "precision": fabric.strategy.precision.precision,
            "seed": cfg.seed, "classes": classes, "data_root": data_root, "samples": counts,
            "validation_split": splits.validation_source, "selection": selection}
    store.open(cfg, info, same=("fingerprint", "samples"))
    done = store.root / "metrics.json"
    if done.exists() and (store.root / "model.pt").exists():
        log.info("%s is finished; its metrics are kept (use another --out to retrain)", out)
        # A kill between metrics.json and the end left the training state behind.
        store.checkpoint_path("fit").unlink(missing_ok=True)
        return json.loads(done.read_text())

    faces = load_face_images(table, d.resize, gray=d.grayscale, pixels=images.pixels,
                             show_progress=progress)
    torch.manual_seed(cfg.seed)
    model = model_from_config(cfg.model, in_chans=faces.x.shape[1], num_classes=len(classes))
    pretrained = getattr(model, "pretrained", None)
    criterion = build_training_loss(t, num_classes=len(classes),
                                    feature_dim=getattr(model, "num_features", None),
                                    train_labels=faces.y[splits.train])
    criterion = fabric.to_device(criterion)
    optimizer = make_optimizer(t, [*model.parameters(), *criterion.parameters()])
    steps = -(-len(splits.train) // t.batch_size)
    scheduler = make_scheduler(t, optimizer, steps * t.epochs)
    # NHWC convolutions are faster on CPUs (oneDNN); weights and results are the same layout-free
    # state dict either way.
    model = model.to(memory_format=torch.channels_last)
    model, optimizer = fabric.setup(model, optimizer)
    order = torch.Generator().manual_seed(cfg.seed)
    state = _TrainingState(store.checkpoint_path("fit"))
    start = state.restore(model, optimizer, scheduler, order, criterion)
    epoch_log = EpochLog(store.log_path("fit"), ("epoch", "loss", "train_acc", "val_acc",
                                                 "val_uar", "lr", "seconds"))
    epoch_log.truncate_after(start)
    with progress_bar(progress) as bar:
        epochs = bar.add_task("epochs", total=t.epochs, completed=start, status="")
        batches = bar.add_task("batches", total=len(splits.train), status="")
        for epoch in range(start, t.epochs):
            tick = time.monotonic()
            bar.update(batches, completed=0, status=f"epoch {epoch + 1}")
            stats = train_one_epoch(
                model, criterion, optimizer,
                _to_device(train_face_batches(faces, splits.train, t.batch_size, d.size,
                                              order, hflip=d.hflip), fabric),
                fabric.backward, scheduler, lambda n: bar.advance(batches, n))
            val = _score_split(model, faces, splits.validation, d.size, t.batch_size, classes,
                               fabric)
            # The row before the state: a kill between them redoes the epoch, and the resume
            # drops the row (truncate_after); the other order would lose it.
            epoch_log.append(epoch=epoch + 1, loss=round(stats.loss, 6),
                             train_acc=round(stats.train_acc, 6),
                             val_acc=_round(val and val["acc"]), val_uar=_round(val and val["uar"]),
                             lr=optimizer.param_groups[0]["lr"],
                             seconds=round(time.monotonic() - tick, 1))
            state.epoch_done(epoch + 1, model, optimizer, scheduler, order, val, selection,
                             criterion)
            bar.update(epochs, advance=1, status=(f"loss {stats.loss:.3f}" + (
                f" val acc {val['acc']:.3f}" if val else "")))
    chosen_epoch, chosen_state = state.chosen(selection)
    model.load_state_dict(chosen_state)
    metrics = {split: _score_split(model, faces, getattr(splits, split), d.size, t.batch_size,
                                   classes, fabric, frame=(split, table))
               for split in ("validation", "test")}
    frames = [m.pop("_frame") for m in metrics.values() if m and "_frame" in m]
    metrics["selection"] = {
        "rule": selection, "epoch": chosen_epoch, "epochs": t.epochs,
        "validation_split": splits.validation_source,
        "note": ("epoch of best validation accuracy; the test split chose nothing"
                 if selection == "best_validation" else "last epoch; no split chose it")}
    metrics["samples"] = counts
    if pretrained is not None:
        metrics["pretrained"] = pretrained.to_dict()
    metrics["wall_s"] = round(time.monotonic() - started, 1)
    payload = checkpoint_payload(model.state_dict(), cfg, classes, where=store.root)
    atomic_write(store.root / "model.pt", lambda p: torch.save(payload, p))
    if frames:
        atomic_write(store.root / "predictions.csv",
                     lambda p: pd.concat(frames).to_csv(p, index=False))
    atomic_write(store.root / "metrics.json",
                 lambda p: p.write_text(json.dumps(metrics, indent=2)))
    state.path.unlink(missing_ok=True)  # only now: a kill above redoes just the scoring
    return metrics


def _round(v: float | None) -> float | str:
    return "" if v is None else round(v, 6)


def _to_device(batches, fabric):
    for x, y in batches:
        yield (fabric.to_device(x).contiguous(memory_format=torch.channels_last),
               fabric.to_device(y))


def _score_split(model, faces: FaceTensors, index: torch.Tensor, size: int, batch_size: int,
                 classes: list[str], fabric, frame: tuple | None = None) -> dict | None:
    """One split's :func:`~fervid.metrics.split_summary` (None when it is empty); with
    ``frame`` ``(split, table)`` also its per-sample predictions under ``_frame``."""
    if not len(index):
        return None
    batches = (fabric.to_device(x) for x in eval_face_batches(faces, index, batch_size, size))
    probs = evaluate(model, batches).probs
    preds = probs.argmax(1).numpy()
    labels = faces.y[index].numpy()
    out = split_summary(labels, preds, classes)
    if frame is not None:
        split, table = frame
        out["_frame"] = split_prediction_frame(split, [table[i].clip for i in index.tolist()],
                                               labels, preds, probs, classes)
    return out


class _TrainingState:
    """The resumable state of a fit, saved after every epoch; and the best model so far."""

    def __init__(self, path: Path):
        self.path = path
        self.best_acc, self.best_epoch, self.best_state = -1.0, 0, None
        self._last_epoch, self._last_state = 0, None

    def restore(self, model, optimizer, scheduler, order: torch.Generator, criterion) -> int:
        """Load the saved state into the objects; returns the epochs already done (0)."""
        remove_stale_tmp(self.path)  # left by a save a kill interrupted
        if not self.path.exists():
            return 0
        saved = load_training_state(self.path)
        model.load_state_dict(saved["model"])
        criterion.load_state_dict(saved["criterion"])  # e.g. the centres of a centre loss
        if saved.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        order.set_state(saved["order"])
        torch.set_rng_state(saved["torch_rng"])
        self.best_acc, self.best_epoch = saved["best_acc"], saved["best_epoch"]
        self.best_state = saved["best_state"]
        self._last_epoch, self._last_state = int(saved["epoch"]), saved["model"]
        log.info("resuming %s after epoch %d", self.path, saved["epoch"])
        return int(saved["epoch"])

    def epoch_done(self, epoch: int, model, optimizer, scheduler, order: torch.Generator,
                   val: dict | None, selection: str, criterion) -> None:
        if selection == "best_validation" and val is not None and val["acc"] > self.best_acc:
            self.best_acc, self.best_epoch = val["acc"], epoch
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        saved = {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": None if scheduler is None else scheduler.state_dict(),
                 "order": order.get_state(), "torch_rng": torch.get_rng_state(),
                 "criterion": criterion.state_dict(),
                 "cuda_rng": (torch.cuda.get_rng_state_all() if torch.cuda.is_available()
                              else None),
                 "best_acc": self.best_acc, "best_epoch": self.best_epoch,
                 "best_state": self.best_state}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, lambda p: torch.save(saved, p))
        self._last_epoch = epoch
        self._last_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}

    def chosen(self, selection: str) -> tuple[int, dict]:
        """The epoch and weights the selection rule keeps."""
        if selection == "best_validation" and self.best_state is not None:
            return self.best_epoch, self.best_state
        return self._last_epoch, self._last_state
