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
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fervid.config import ConfigError, FitConfig
from fervid.datasets.image_folder import FaceImageSet
from fervid.files import atomic_write
from fervid.losses import build_training_loss
from fervid.metrics import split_summary
from fervid.models import model_from_config
from fervid.progress import progress_bar
from fervid.protocol.splits import holdout_fold
from fervid.representation.face_images import (
    FaceTensors,
    eval_face_batches,
    load_face_images,
    train_face_batches,
)
from fervid.runs.checkpoint import checkpoint_payload
from fervid.runs.epoch_log import EpochLog
from fervid.runs.store import RunStore, split_prediction_frame
from fervid.training.hooks import BestValidation, WeightAveraging
from fervid.training.loop import evaluate
from fervid.training.setup import (
    make_fabric,
    make_optimizer,
    make_scheduler,
    with_resolved_precision,
)
from fervid.training.trainer import Trainer, seeded

log = logging.getLogger("fervid")

SPLITS = ("train", "validation", "test")


def run_holdout(cfg: FitConfig, images: FaceImageSet, out: Path, *, data_root: str = "",
                progress: bool = True) -> dict:
    """Train ``cfg``'s model on the training split of ``images`` and score the others.

    Returns the ``metrics.json`` dict. See the module docstring for the protocol.
    """
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
    splits = holdout_fold([s.split for s in table], labels, d.validation_fraction, cfg.seed,
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
    fabric = make_fabric(cfg.run.accelerator, cfg.run.precision)
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
    in_chans = faces.x.shape[1]
    model = seeded(cfg.seed, lambda: model_from_config(cfg.model, in_chans=in_chans,
                                                       num_classes=len(classes)))
    pretrained = getattr(model, "pretrained", None)
    criterion = seeded(cfg.seed + 1, lambda: build_training_loss(
        t, num_classes=len(classes), feature_dim=getattr(model, "num_features", None),
        train_labels=faces.y[splits.train]))
    criterion = fabric.to_device(criterion)
    optimizer = make_optimizer(t, [*model.parameters(), *criterion.parameters()])
    steps = -(-len(splits.train) // t.batch_size)
    scheduler = make_scheduler(t, optimizer, steps * t.epochs)
    # NHWC convolutions are faster on CPUs (oneDNN); weights and results are the same layout-free
    # state dict either way.
    model = model.to(memory_format=torch.channels_last)
    model, optimizer = fabric.setup(model, optimizer)
    order = torch.Generator().manual_seed(cfg.seed)

    def batches(epoch: int):
        return _to_device(train_face_batches(faces, splits.train, t.batch_size, d.size, order,
                                             hflip=d.hflip), fabric)

    validation = BestValidation(
        lambda m: _score_split(m, faces, splits.validation, d.size, t.batch_size, classes,
                               fabric), keep_best=selection == "best_validation")
    hooks = [validation]
    if t.average_last:
        hooks.append(WeightAveraging(model, t.average_last, t.epochs, lambda: (
            fabric.to_device(x) for x in eval_face_batches(faces, splits.train, t.batch_size,
                                                           d.size)), fabric.device))
    epoch_log = EpochLog(store.log_path("fit"), ("epoch", "loss", "train_acc", "val_acc",
                                                 "val_uar", "lr", "seconds"))
    with progress_bar(progress) as bar:
        trainer = Trainer(fabric, seed=cfg.seed, epochs=t.epochs, log=epoch_log,
                          state_path=store.checkpoint_path("fit"), hooks=hooks,
                          generators={"order": order}, progress=bar,
                          batches_total=len(splits.train), time_field="seconds", log_lr=True)
        trained = trainer.fit(model, criterion, optimizer, batches, scheduler)
    model, chosen_epoch = trained.model, trained.epoch
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
    trainer.finished()  # only now: a kill above redoes just the scoring
    return metrics


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
