"""DFEW's 5-fold protocol: train on a fold's training list, test once on its test list.

Each fold trains through Lightning Fabric (one device, several, or several nodes under DDP:
the batch is split across ranks), with DataLoader workers decoding only the sampled frames.
The state is checkpointed after every epoch, so a killed run resumes at the epoch it had
finished; a fold's predictions are written when it ends, and finished folds are skipped. The
model of the last epoch is evaluated; nothing is chosen on the test list.

``RUN_DIR/``: ``run.json``, ``config.yaml``, ``checkpoints/fold_N.pt``, ``train_logs/fold_N.csv``,
``folds/fold_N.csv`` (clip, label, pred, fold and class probabilities), ``models/fold_N.pt``,
``predictions.csv`` and ``metrics.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from fervid.config import KfoldConfig
from fervid.files import atomic_write
from fervid.progress import ProgressLike, progress_bar
from fervid.protocol.training import build_feature_loss, fold_seed, make_optimizer
from fervid.runs.checkpoint import save_checkpoint
from fervid.runs.epoch_log import EpochLog
from fervid.runs.store import claim_run_dir

log = logging.getLogger(__name__)


class FeaturesAndLogits(nn.Module):
    """Any model with ``forward_features`` / ``forward_head`` (or SMA-STN's output), returning
    ``(logits, features)`` from ``forward`` so that DDP sees one forward call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from fervid.models.smastn import SMASTN

        if isinstance(self.model, SMASTN):
            out = self.model(x)
            return out.logits, out.features
        features = self.model.forward_features(x)
        return self.model.forward_head(features), features


def build_video_model(cfg: KfoldConfig, in_chans: int, num_classes: int) -> nn.Module:
    """The configured network (``fervid.models.video``, or SMA-STN over DSSI)."""
    if cfg.model.name == "smastn":
        from fervid.models.smastn import smastn

        return smastn(in_chans=in_chans, num_classes=num_classes, drop_rate=cfg.model.drop_rate,
                      spatial_stage="layer3")
    from fervid.models.video import VIDEO_BUILDERS

    return VIDEO_BUILDERS[cfg.model.name](in_chans=in_chans, num_classes=num_classes,
                                          drop_rate=cfg.model.drop_rate)


def run_kfold(cfg: KfoldConfig, data_root: Path, out: Path, *, folds: list[int] | None = None,
              progress: bool = True) -> dict | None:
    """Run (or resume) the chosen folds (1..5) of ``cfg`` on the DFEW release at ``data_root``.

    Returns the merged metrics of the finished folds on rank 0 (None on other ranks).
    """
    from lightning_fabric import Fabric

    from fervid.datasets.dfew import read_dfew

    folds = sorted(folds or [1, 2, 3, 4, 5])
    bad = [f for f in folds if f not in range(1, 6)]
    if bad:
        raise ValueError(f"--folds {bad}: DFEW folds are 1..5")
    d = cfg.data
    split_dir = None if d.split_dir is None else Path(data_root) / d.split_dir
    split = read_dfew(Path(data_root), source=d.source, folds=folds,
                      skip_missing=d.skip_missing, split_dir=split_dir)
    if split.missing:
        log.warning("skipped %d missing or unreadable clip(s) (data.skip_missing)",
                    len(split.missing))
    if tuple(d.classes) != tuple(split.classes):
        raise ValueError(f"data.classes {d.classes} differ from DFEW's label order "
                         f"{list(split.classes)}")
    out = Path(out)
    r = cfg.run
    fabric = Fabric(accelerator=r.accelerator, devices=r.devices, num_nodes=r.num_nodes,
                    precision=r.precision)
    if fabric.world_size > 1:
        fabric.launch()
    if fabric.global_rank == 0:
        claim_run_dir(out, {"fingerprint": cfg.fingerprint(), "seed": cfg.seed, "name": cfg.name,
                            "protocol": "dfew_5fold", "classes": list(cfg.data.classes),
                            "skipped_clips": list(split.missing)}, cfg)
    fabric.barrier()
    with progress_bar(progress and fabric.global_rank == 0) as bar:
        fold_task = bar.add_task("folds", total=len(folds), status="")
        for number in folds:
            if not (out / "folds" / f"fold_{number}.csv").exists():
                _train_fold(cfg, fabric, split.fold(number), out, bar)
            bar.update(fold_task, advance=1, status=f"fold {number}")
    fabric.barrier()
    if fabric.global_rank != 0:
        return None
    from fervid.runs.results import build_kfold_results

    return build_kfold_results(out)


def _loader(dataset, cfg: KfoldConfig, *, shuffle: bool, seed: int) -> DataLoader:
    r = cfg.run
    extra = ({"prefetch_factor": r.prefetch_factor, "persistent_workers": False}
             if r.num_workers > 0 else {})
    return DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=shuffle,
                      num_workers=r.num_workers, drop_last=False,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None,
                      **extra)


def _train_fold(cfg: KfoldConfig, fabric, fold, out: Path, bar: ProgressLike) -> None:
    from fervid.representation.video_clips import DfewClipDataset

    number, seed = fold.fold, fold_seed(cfg.seed, fold.fold)
    if not fold.train or not fold.test:
        raise ValueError(f"fold {number} has {len(fold.train)} training and {len(fold.test)} "
                         f"test clips; both must be non-empty")
    num_classes, in_chans = len(cfg.data.classes), 1 if cfg.data.grayscale else 3
    train_set = DfewClipDataset(fold.train, cfg.data, train=True, seed=seed)
    test_set = DfewClipDataset(fold.test, cfg.data, train=False, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_video_model(cfg, in_chans, num_classes)
        feat_loss = build_feature_loss(cfg.train, num_classes, net.num_features)
    model = FeaturesAndLogits(net)
    params = [*model.parameters(), *(feat_loss.parameters() if feat_loss is not None else [])]
    optimizer = make_optimizer(cfg, params)
    model, optimizer = fabric.setup(model, optimizer)
    if feat_loss is not None:
        feat_loss = fabric.to_device(feat_loss)
    ckpt = out / "checkpoints" / f"fold_{number}.pt"
    state = {"model": model, "optimizer": optimizer, "epoch": 0}
    if feat_loss is not None:
        state["feature_loss"] = feat_loss
    if ckpt.exists():
        fabric.load(ckpt, state)
    epochs, lam = cfg.train.epochs, cfg.train.feature_loss_weight
    epoch_log = EpochLog(out / "train_logs" / f"fold_{number}.csv",
                         ("epoch", "loss", "train_acc", "wall_s"))
    if fabric.global_rank == 0:
        epoch_log.truncate_after(state["epoch"])
    task = bar.add_task(f"fold {number}", total=epochs, completed=state["epoch"], status="")
    model.train()
    for epoch in range(state["epoch"], epochs):
        started = time.monotonic()
        # Order, sampling and dropout depend on (seed, fold, epoch) only: a resumed run
        # trains its remaining epochs exactly as an uninterrupted one would.
        epoch_seed = seed * 1000 + epoch
        torch.manual_seed(epoch_seed)
        train_set.set_epoch(epoch)
        loader = fabric.setup_dataloaders(_loader(train_set, cfg, shuffle=True, seed=epoch_seed))
        if hasattr(loader.sampler, "set_epoch"):  # DistributedSampler under DDP
            loader.sampler.set_epoch(epoch)
        total, correct, seen = 0.0, 0, 0
        for x, y in loader:
            logits, features = model(x)
            loss = nn.functional.cross_entropy(logits.float(), y)
            if feat_loss is not None:
                loss = loss + lam * feat_loss(features.float(), y)
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(loss)
            optimizer.step()
            total += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        state["epoch"] = epoch + 1
        fabric.save(ckpt, state)  # every epoch: a killed run loses at most the current one
        if fabric.global_rank == 0:
            epoch_log.append(epoch=epoch + 1, loss=round(total / max(seen, 1), 6),
                             train_acc=round(correct / max(seen, 1), 6),
                             wall_s=round(time.monotonic() - started, 2))
        bar.update(task, advance=1, status=f"loss {total / max(seen, 1):.4f}")
    bar.remove_task(task)
    if fabric.global_rank == 0:
        _evaluate(cfg, fabric, model, test_set, fold, out)
    fabric.barrier()


def _evaluate(cfg: KfoldConfig, fabric, model, test_set, fold, out: Path) -> None:
    """The last epoch's model on the whole test list (rank 0, the unwrapped module)."""
    net = model.module
    net.eval()
    probs = []
    with torch.no_grad(), fabric.autocast():
        for x, _ in _loader(test_set, cfg, shuffle=False, seed=0):
            logits, _ = net(x.to(fabric.device))
            probs.append(logits.float().softmax(-1).cpu())
    p = torch.cat(probs)
    classes = cfg.data.classes
    frame = pd.DataFrame({"clip": [c.clip_id for c in fold.test],
                          "label": [c.label for c in fold.test],
                          "pred": p.argmax(1).tolist(), "fold": fold.fold})
    for k, c in enumerate(classes):
        frame[f"p_{c}"] = p[:, k].numpy().round(6)
    save_checkpoint(out / "models" / f"fold_{fold.fold}.pt", net.model.state_dict(),
                    config=cfg, classes=classes)
    atomic_write(out / "folds" / f"fold_{fold.fold}.csv",
                 lambda q: frame.to_csv(q, index=False))
