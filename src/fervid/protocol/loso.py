"""Leave-one-subject-out: inputs → folds → engine → per-fold files → merged report."""

from __future__ import annotations

import json
import os
import socket
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from fervid.config import LosoConfig
from fervid.files import atomic_write
from fervid.progress import ProgressLike, progress_bar
from fervid.protocol.fold_batched import train_fold_batched
from fervid.protocol.folds import LosoData, LosoFolds, parse_folds
from fervid.protocol.run_store import RunStore
from fervid.protocol.sequential import train_sequential
from fervid.protocol.workers import run_in_workers
from fervid.report import LosoReport, build_report


def load_precomputed_data(cfg: LosoConfig, folder: Path) -> LosoData:
    """A precomputed-input folder (index.csv + images) as model tensors."""
    from fervid.datasets.precomputed import read_precomputed

    pre = read_precomputed(Path(folder), classes=tuple(cfg.data.classes))
    images = pre.images
    if images.ndim == 3:
        images = images[..., None]
    if cfg.data.channels is not None:
        bad = [c for c in cfg.data.channels if not 0 <= c < images.shape[-1]]
        if bad:
            raise ValueError(f"data.channels {cfg.data.channels}: {folder} images have "
                             f"{images.shape[-1]} channels")
        images = images[..., cfg.data.channels]
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
    x.mul_(cfg.data.scale)
    y = torch.tensor([s.label for s in pre.table], dtype=torch.long)
    return LosoData(x, y, pre.table)


def run_loso(cfg: LosoConfig, data: LosoData, out: Path, *, folds_spec: str | None = None,
             data_root: str = "", progress: bool = True) -> LosoReport | None:
    """Run (or resume) the folds ``folds_spec`` of a LOSO experiment into ``out``.

    Finished folds (``out/folds/fold_NNN.csv``) are skipped. Returns the merged report of
    every fold finished so far (on the rank-0 process; other ranks get None).
    """
    from lightning_fabric import Fabric

    started = time.monotonic()
    folds = LosoFolds.from_table(data.table)
    chosen = parse_folds(folds_spec, len(folds))
    store = RunStore(out)
    fabric = Fabric(accelerator=cfg.run.accelerator, devices=cfg.run.devices,
                    num_nodes=cfg.run.num_nodes, precision=cfg.run.precision)
    if fabric.world_size > 1:
        fabric.launch()
    if fabric.global_rank == 0:
        store.open(cfg, folds.subjects, data_root)
    fabric.barrier()
    # Shards are fixed by the chosen folds alone, so a resumed run regroups them the same way.
    # Ranks and local workers train disjoint shards: LOSO folds need no syncing.
    n_local = cfg.run.workers
    mine = chosen[fabric.global_rank::fabric.world_size]
    shards = [mine[i::n_local] for i in range(n_local)]
    finished = set(store.finished(chosen))
    if cfg.run.engine == "fold_batched":
        # A batched shard's folds train together: it is finished whole or redone whole.
        shards = [shard for shard in shards if not finished.issuperset(shard)]
    else:
        shards = [[f for f in shard if f not in finished] for shard in shards]
        shards = [shard for shard in shards if shard]
    train = partial(_train_shard, cfg, data, folds, store, fabric.device)
    with progress_bar(progress and fabric.global_rank == 0) as bar:
        if n_local > 1 and shards:
            # Threads per worker depend on the config only, so a resumed shard computes
            # exactly as it would have in the first run.
            threads = cfg.run.threads or max(1, torch.get_num_threads() // n_local)
            run_in_workers(train, shards, threads, bar)
        else:
            if cfg.run.threads:
                torch.set_num_threads(cfg.run.threads)
            for shard in shards:
                train(shard, bar, fabric=fabric)
    wall = {"wall_s": time.monotonic() - started, "folds": [f for s in shards for f in s],
            "host": socket.gethostname(),
            "rank": fabric.global_rank}
    fabric.barrier()
    if fabric.global_rank == 0:  # one record per invocation, however many ranks
        wall["wall_s"] = time.monotonic() - started
        stamp = f"{socket.gethostname()}_{os.getpid()}_{int(time.time() * 1000)}"
        atomic_write(store.root / "wall" / f"{stamp}.json",
                     lambda p: p.write_text(json.dumps(wall)))
    if fabric.global_rank != 0:
        return None
    return build_report(out)


def _train_shard(cfg: LosoConfig, data: LosoData, folds: LosoFolds, store: RunStore,
                 device: torch.device, shard: list[int], progress: ProgressLike,
                 fabric=None) -> None:
    if cfg.run.engine == "fold_batched":
        train_fold_batched(cfg, data, folds, shard, store, device, progress)
    else:
        if fabric is None:  # in a worker process: a single-device Fabric of its own
            from lightning_fabric import Fabric

            fabric = Fabric(accelerator=cfg.run.accelerator, devices=1,
                            precision=cfg.run.precision)
        train_sequential(cfg, data, folds, shard, store, fabric, progress)
