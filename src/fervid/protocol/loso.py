"""Leave-one-subject-out: inputs → folds → engine → per-fold files → merged results."""

from __future__ import annotations

import logging
import socket
import time
from functools import partial
from pathlib import Path

import torch

from fervid.config import ConfigError, LosoConfig
from fervid.models import model_from_config
from fervid.models.linear import LINEAR_MODELS
from fervid.progress import ProgressLike, progress_bar
from fervid.protocol.folds import LosoFolds, parse_folds
from fervid.protocol.loso_engines import train_batched, train_linear, train_sequential
from fervid.protocol.workers import run_in_workers
from fervid.representation.loso_inputs import (  # noqa: F401  (re-exported for callers)
    LosoData,
    default_cache_dir,
    load_frame_data,
    load_loso_data,
    load_precomputed_data,
)
from fervid.runs.results import LosoReport, build_loso_results
from fervid.runs.store import RunStore
from fervid.samples import SampleTable
from fervid.training.fold_batched import check_fold_batched, fold_group_tag
from fervid.training.setup import cpu_has_bf16, make_fabric, with_resolved_precision

log = logging.getLogger(__name__)


def run_loso(cfg: LosoConfig, data: LosoData, out: Path, *, folds_spec: str | None = None,
             data_root: str = "", progress: bool = True) -> LosoReport | None:
    """Run (or resume) the folds ``folds_spec`` of a LOSO experiment into ``out``.

    Finished folds (``out/folds/fold_NNN.csv``) are skipped. Returns the merged report of
    every fold finished so far (on the rank-0 process; other ranks get None). Clips the
    release left out (``data.skip_missing``) are recorded in ``run.json`` (``skipped``).
    """
    started = time.monotonic()
    cfg = with_resolved_precision(cfg)
    check_loso_config(cfg)
    folds = LosoFolds.from_table(data.table, cfg.group)
    chosen = parse_folds(folds_spec, len(folds))
    store = RunStore(out)
    fabric = make_fabric(cfg.run.accelerator, cfg.run.precision, devices=cfg.run.devices,
                         num_nodes=cfg.run.num_nodes)
    if fabric.world_size > 1:
        fabric.launch()
    if fabric.global_rank == 0:
        groups = (fabric.world_size * cfg.run.workers if cfg.run.engine == "fold_batched"
                  else None)
        # An AU run names its AUs as its classes; its counts need not match on a resume.
        au = {"task": "au", "classes": list(data.classes)} if data.multi_label else None
        open_loso_run(store, cfg, folds, data_root,
                      precision=fabric.strategy.precision.precision, fold_groups=groups,
                      extra=au, meta={**skipped_record(data.table), **(data.au_info or {})})
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
        for shard in shards:  # a kill after its last fold file left its checkpoint behind
            if finished.issuperset(shard):
                store.checkpoint_path(f"batched_{fold_group_tag(shard)}").unlink(
                    missing_ok=True)
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
        store.write_wall(wall)
    if fabric.global_rank != 0:
        return None
    return build_loso_results(out)


def check_loso_config(cfg: LosoConfig) -> None:
    """Raise :class:`ConfigError` for a model, engine and option that do not go together."""
    linear = cfg.model.name in LINEAR_MODELS
    if linear != (cfg.run.engine == "linear"):
        raise ConfigError(f"model {cfg.model.name!r} with run.engine={cfg.run.engine}: the "
                          f"linear models ({', '.join(LINEAR_MODELS)}) run on run.engine=linear, "
                          "and only they do")
    if cfg.data.skip_missing and cfg.data.format in ("precomputed", "handcrafted"):
        raise ConfigError(f"data.skip_missing leaves out clips of a release read from its "
                          f"frames (data.format dssi, apex or global_di); data.format="
                          f"{cfg.data.format} reads prepared files, which it does not skip")
    if cfg.data.format == "handcrafted" and not linear:
        raise ConfigError("data.format=handcrafted holds feature vectors, not images: use a "
                          f"linear model ({', '.join(LINEAR_MODELS)})")
    if linear:
        # run.trace_every is no error: a linear model has no epochs to trace (an ensemble's
        # trace counts its final probabilities at every epoch).
        epochs_only = [name for name, on in (
            ("train.flow_flip", cfg.train.flow_flip),
            ("train.average_last", cfg.train.average_last),
            ("train.label_smoothing", cfg.train.label_smoothing)) if on]
        if epochs_only:
            raise ConfigError(f"{', '.join(epochs_only)}: a linear model trains no epochs")
    if cfg.run.engine == "fold_batched":
        check_fold_batched(cfg)
    if cfg.train.flow_flip and cfg.data.flow_u_channel is None:
        raise ConfigError("train.flow_flip needs data.flow_u_channel: the input channel that "
                          "holds the horizontal flow u")
    if cfg.data.task == "au":
        check_au_config(cfg)
    if cfg.train.selection == "best_validation" and cfg.run.engine != "sequential":
        raise ConfigError("train.selection=best_validation keeps the epoch of best accuracy on "
                          "validation subjects, trained by the sequential engine; it does not "
                          f"go with run.engine={cfg.run.engine}")


def check_au_config(cfg: LosoConfig) -> None:
    """Raise :class:`ConfigError` for an option the AU task does not read yet: it trains on
    the sequential, fold_batched or linear engine and keeps the last epoch (or ``model.c``)."""
    unread = [name for name, on in (
        ("train.select=inner_val", cfg.train.select == "inner_val"),
        ("train.selection=best_validation", cfg.train.selection == "best_validation"),
        ("run.trace_every", bool(cfg.run.trace_every)),
        ("members", bool(cfg.members))) if on]
    if unread:
        raise ConfigError(f"data.task=au does not go with {', '.join(unread)}: AU runs train on "
                          "run.engine sequential (any model), fold_batched (its models) or "
                          "linear, and keep the last epoch")


def skipped_record(table: SampleTable) -> dict:
    """``run.json``'s ``skipped``: how many clips the release left out (``data.skip_missing``),
    the first names, and the subjects left without a clip (so without a fold); empty when
    none were."""
    from fervid.datasets.from_config import SKIPPED_SHOWN, subjects_without_clips

    if not table.skipped:
        return {}
    return {"skipped": {"count": len(table.skipped),
                        "first": [p.name for p in table.skipped[:SKIPPED_SHOWN]],
                        "subjects_without_clips": subjects_without_clips(table)}}


def open_loso_run(store: RunStore, cfg: LosoConfig, folds: LosoFolds, data_root: str, *,
                  precision: str, fold_groups: int | None = None, extra: dict | None = None,
                  meta: dict | None = None) -> None:
    """Create (or check, on a resume) the run directory of a LOSO run.

    ``precision``: the precision the folds are computed in (part of the fingerprint);
    ``fold_groups``: see :func:`fervid.config.fingerprint`; ``extra``: more ``run.json``
    fields, which a resume must match too (e.g. the fold weights a run was evaluated from);
    ``meta``: more ``run.json`` fields a resume need not match (the clips skipped).
    """
    extra = extra or {}
    info = {"protocol": "loso",
            "fingerprint": cfg.fingerprint(precision=precision, fold_groups=fold_groups),
            "precision": precision, "seed": cfg.seed, "name": cfg.name, "n_folds": len(folds),
            "data_root": data_root, "classes": cfg.data.classes, "group": folds.group,
            **(meta or {}), **extra}
    pretrained = None if extra.get("trained") is False else pretrained_backbone(cfg)
    if pretrained is not None:  # a resume must start from the same file
        info["pretrained"] = pretrained
    same = ("fingerprint", "n_folds", *extra, *(["pretrained"] if pretrained else []))
    store.open(cfg, info, same=same, folds=folds.table())


def pretrained_backbone(cfg: LosoConfig) -> dict | None:
    """What ``model.pretrained_path`` loads into the backbone (the file, its sha1, its kind and
    the layers filled), for ``run.json``; None without one. Raises the loader's ConfigError
    before any fold trains when the file does not fit."""
    if getattr(cfg.model, "pretrained_path", None) is None:
        return None
    in_chans = 1 if cfg.data.dssi.mode == "gray" else 3
    model = model_from_config(cfg.model, in_chans=in_chans, num_classes=len(cfg.data.classes))
    return model.pretrained.to_dict()


def _train_shard(cfg: LosoConfig, data: LosoData, folds: LosoFolds, store: RunStore,
                 device: torch.device, shard: list[int], progress: ProgressLike,
                 fabric=None) -> None:
    if cfg.run.engine == "fold_batched":
        train_batched(cfg, data, folds, shard, store, device, progress)
    elif cfg.run.engine == "linear":
        train_linear(cfg, data, folds, shard, store, progress)
    else:
        if fabric is None:  # in a worker process: a single-device Fabric of its own
            fabric = make_fabric(cfg.run.accelerator, cfg.run.precision)
        train_sequential(cfg, data, folds, shard, store, fabric, progress)
