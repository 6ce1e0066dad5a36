"""Leave-one-subject-out: inputs → folds → engine → per-fold files → merged report."""

from __future__ import annotations

import json
import logging
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
from fervid.protocol.sequential import train_sequential
from fervid.protocol.training import cpu_has_bf16
from fervid.protocol.workers import run_in_workers
from fervid.runs.results import LosoReport, build_loso_results
from fervid.runs.store import RunStore
from fervid.samples import SampleTable

log = logging.getLogger(__name__)


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


def load_loso_data(cfg: LosoConfig, data_root: Path, *, cache_dir: Path | None = None,
                   progress: bool = True) -> LosoData:
    """The inputs ``cfg.data`` asks for: precomputed images, or DSSI / global DI / apex frames
    computed from a release under ``data_root`` (cached under ``cache_dir``)."""
    if cfg.data.format == "precomputed":
        return load_precomputed_data(cfg, data_root)
    return load_frame_data(cfg, data_root, cache_dir=cache_dir, progress=progress)


def read_release(cfg: LosoConfig, data_root: Path) -> SampleTable:
    """The labelled clips of the release ``cfg.data.dataset`` under ``data_root``."""
    from fervid.datasets import load_dataset, read_megc2019

    d, root = cfg.data, Path(data_root)
    if d.dataset is None:
        raise ValueError(f"data.format={d.format} reads frames: set data.dataset (casme2, samm, "
                         f"smic or megc2019)")
    if d.dataset == "megc2019":
        keys = ("gt", "casme2", "casme2_sheet", "samm", "samm_sheet", "smic")
        missing = [k for k in keys if k not in d.paths]
        if missing:
            raise ValueError(f"data.dataset=megc2019 needs data.paths for {missing} "
                             f"(relative to --data-root {root})")
        p = {k: root / d.paths[k] for k in keys}
        table = read_megc2019(p["gt"], p["casme2"], p["casme2_sheet"], p["samm"],
                              p["samm_sheet"], p["smic"])
    else:
        sheet = None if d.sheet is None else root / d.sheet
        table = load_dataset(d.dataset, root, d.protocol, sheet)
    table = table.labelled()
    if tuple(d.classes) != table.classes:
        raise ValueError(f"data.classes {list(d.classes)} differ from the classes of "
                         f"{d.dataset} {d.protocol}: {list(table.classes)}; set data.classes "
                         f"to those")
    return table


def load_frame_data(cfg: LosoConfig, data_root: Path, *, cache_dir: Path | None = None,
                    progress: bool = True) -> LosoData:
    """DSSI stacks, global dynamic images or apex frames of a release, as model tensors."""
    from fervid.representation.clip_inputs import build_clip_inputs
    from fervid.representation.dssi import DssiParams

    table = read_release(cfg, data_root)
    d = cfg.data
    params = DssiParams(**d.dssi.model_dump())
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    with progress_bar(progress) as bar:
        inputs = build_clip_inputs(table, d.format, size=d.size, params=params, cache_dir=cache,
                                   train_views=d.train_views, seed=cfg.seed, progress=bar)
    y = torch.tensor([s.label for s in table], dtype=torch.long)
    return LosoData(inputs.x, y, table, inputs.train_views)


def default_cache_dir() -> Path:
    """``$FERVID_CACHE`` or ``~/.cache/fervid``: where computed DSSI results are kept."""
    return Path(os.environ.get("FERVID_CACHE", Path.home() / ".cache" / "fervid")) / "dssi"


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
        if fabric.device.type == "cpu" and "bf16" in cfg.run.precision and not cpu_has_bf16():
            log.warning("this CPU has no native bfloat16 (no avx512_bf16 or amx_bf16 flag): "
                        "run.precision=%s is emulated here and can be over 10x slower than "
                        "float32; consider --set run.precision=32-true", cfg.run.precision)
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
    return build_loso_results(out)


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
