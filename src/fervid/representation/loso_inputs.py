"""A LOSO run's model inputs as tensors: precomputed images, or DSSI / global DI / apex frames
computed from a release (cached), with their labels and sample table."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from fervid.config import ConfigError, LosoConfig
from fervid.progress import progress_bar
from fervid.samples import SampleTable

if TYPE_CHECKING:
    from fervid.config.sections import DataConfig
    from fervid.representation.dssi import DssiParams


@dataclass(frozen=True)
class AuLabels:
    """AU labels beside an emotion run's labels (``train.au_weight``): ``y`` ``(N, A)``
    float32 0/1 over the AUs ``names``, ``coded`` ``(N,)`` bool (False: the sample has no AU
    labels, its row of ``y`` is zeros and never read)."""

    y: torch.Tensor
    coded: torch.Tensor
    names: tuple[str, ...]


@dataclass(frozen=True)
class LosoData:
    """Model inputs of a LOSO run.

    ``x`` ``(N, C, H, W)`` (images), ``(N, K+1, C, H, W)`` (DSSI stacks) or ``(N, D)``
    (hand-crafted feature vectors, for linear models), float32 or float16
    (cast per batch), ``y`` ``(N,)`` long class indices (or, for an AU run, ``(N, A)`` float
    0/1 targets of the action units ``aus``), and the sample table they came from (same
    order). ``train_views`` ``(V, *x.shape)``, when given, holds V jittered versions of every
    input: each training epoch draws one per sample; evaluation always uses ``x``.
    ``au_info``: an AU run's record for ``run.json`` (each AU's count, samples left out), or
    an AU-aided emotion run's (under ``au_aid``). ``au_aid``: that run's AU labels, for
    every sample of ``table``.
    """

    x: torch.Tensor
    y: torch.Tensor
    table: SampleTable
    train_views: torch.Tensor | None = None
    aus: tuple[str, ...] = ()
    au_info: dict | None = None
    au_aid: AuLabels | None = None

    def __post_init__(self):
        if not (len(self.x) == len(self.y) == len(self.table)):
            raise ValueError(f"x ({len(self.x)}), y ({len(self.y)}) and the table "
                             f"({len(self.table)}) differ in length")
        if self.au_aid is not None and not (len(self.au_aid.y) == len(self.au_aid.coded)
                                            == len(self.y)):
            raise ValueError(f"au_aid ({len(self.au_aid.y)}, {len(self.au_aid.coded)}) and y "
                             f"({len(self.y)}) differ in length")
        if self.train_views is not None and self.train_views.shape[1:] != self.x.shape:
            raise ValueError(f"train_views {tuple(self.train_views.shape)} must be (V, "
                             f"{', '.join(map(str, self.x.shape))})")

    @property
    def in_chans(self) -> int:
        """Channels of one image (dim -3 of ``x``)."""
        return self.x.shape[-3]

    @property
    def classes(self) -> tuple[str, ...]:
        """The emotion classes, or an AU run's AUs (its output columns)."""
        return self.aus or self.table.classes

    @property
    def multi_label(self) -> bool:
        """An AU run: ``y`` holds ``(N, A)`` targets."""
        return bool(self.aus)


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
            raise ConfigError(f"data.channels {cfg.data.channels}: {folder} images have "
                              f"{images.shape[-1]} channels")
        images = images[..., cfg.data.channels]
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
    x.mul_(cfg.data.scale)
    y = torch.tensor([s.label for s in pre.table], dtype=torch.long)
    return LosoData(x, y, pre.table)


def load_handcrafted_data(cfg: LosoConfig, folder: Path) -> LosoData:
    """MEGC2019's hand-crafted features (``data.features``, e.g. ``LBPTOP_TIM10_333_8``) as
    ``(N, D)`` vectors."""
    from fervid.datasets.megc2019_handcrafted import FEATURE_SETS, read_handcrafted

    if cfg.data.features is None:
        raise ConfigError("data.format=handcrafted needs data.features, one of "
                          f"{', '.join(FEATURE_SETS)}")
    found = read_handcrafted(Path(folder), cfg.data.features, classes=tuple(cfg.data.classes))
    y = torch.tensor([s.label for s in found.table], dtype=torch.long)
    return LosoData(torch.from_numpy(found.features).float(), y, found.table)


def load_loso_data(cfg: LosoConfig, data_root: Path, *, cache_dir: Path | None = None,
                   progress: bool = True) -> LosoData:
    """The inputs ``cfg.data`` asks for: precomputed images, hand-crafted features, or DSSI /
    global DI / apex frames computed from a release under ``data_root`` (cached under
    ``cache_dir``)."""
    if cfg.data.format == "precomputed":
        data = load_precomputed_data(cfg, data_root)
    elif cfg.data.format == "handcrafted":
        data = load_handcrafted_data(cfg, data_root)
    else:
        data = load_frame_data(cfg, data_root, cache_dir=cache_dir, progress=progress)
    if cfg.data.task == "au":
        return with_au_targets(cfg, data)
    return with_au_aid(cfg, data) if cfg.train.au_weight else data


def _sheet_aus(cfg: LosoConfig, table: SampleTable) -> tuple[SampleTable, int | None]:
    """``table`` with the AU strings of ``data.au_sheets`` (when set) and how many samples
    the sheets matched (None without sheets)."""
    from fervid.datasets.action_units import with_sheet_aus

    if cfg.data.au_sheets is None:
        return table, None
    return with_sheet_aus(table, Path(cfg.data.au_sheets))


def with_au_targets(cfg: LosoConfig, data: LosoData) -> LosoData:
    """``data`` as an AU run's: the samples with AU labels only (after ``data.au_sheets``
    gave AU strings to the samples its sheets name), ``y`` their ``(N, A)`` targets of the
    AUs of ``data.aus`` kept by ``data.au_min_count``.

    Raises
    ------
    DatasetFormatError
        An AU string that cannot be read, a folder without the sheets, or no AU left.
    """
    from fervid.datasets.action_units import au_targets

    table, matched = _sheet_aus(cfg, data.table)
    targets = au_targets(table, cfg.data.aus, min_count=cfg.data.au_min_count,
                         where=cfg.data.au_sheets or "")
    keep = torch.from_numpy(targets.coded)
    if not keep.any():
        raise ConfigError("data.task=au: no sample has AU labels (set data.au_sheets to a "
                          "folder with the CASME II / SAMM sheets for precomputed inputs)")
    left_out = table.filter(~targets.coded)
    info = {"aus": list(targets.names), "au_counts": targets.counts,
            "au_min_count": cfg.data.au_min_count,
            "n_with_aus": int(keep.sum()),
            "left_out_without_aus": {d: sum(s.dataset == d for s in left_out)
                                     for d in sorted({s.dataset for s in left_out})},
            "au_sheet_matches": matched}
    views = None if data.train_views is None else data.train_views[:, keep]
    return LosoData(data.x[keep], torch.from_numpy(targets.y[targets.coded]),
                    table.filter(targets.coded), views, aus=targets.names, au_info=info)


def with_au_aid(cfg: LosoConfig, data: LosoData) -> LosoData:
    """``data`` (an emotion run's, every sample kept) with the AU labels of
    ``train.au_weight``: the AUs of ``data.aus`` kept by ``data.au_min_count``, from the
    samples' AU strings (after ``data.au_sheets``); the samples without any are masked in the
    loss. ``au_info`` records the aid for ``run.json`` (``au_aid``).

    Raises
    ------
    ConfigError
        No sample has AU labels.
    DatasetFormatError
        An AU string that cannot be read, a folder without the sheets, or no AU left.
    """
    from fervid.datasets.action_units import au_targets

    table, matched = _sheet_aus(cfg, data.table)
    if not any(_codes_aus(s.au) for s in table):
        raise ConfigError(f"train.au_weight={cfg.train.au_weight:g}: no sample has AU labels "
                          "(set data.au_sheets to a folder with the CASME II / SAMM sheets for "
                          "precomputed inputs)")
    targets = au_targets(table, cfg.data.aus, min_count=cfg.data.au_min_count,
                         where=cfg.data.au_sheets or "")
    without = table.filter(~targets.coded)
    info = {"au_aid": {
        "weight": cfg.train.au_weight, "aus": list(targets.names),
        "au_counts": targets.counts, "au_min_count": cfg.data.au_min_count,
        "n_samples": len(table), "n_with_aus": int(targets.coded.sum()),
        "without_aus": {d: sum(s.dataset == d for s in without)
                        for d in sorted({s.dataset for s in without})},
        "au_sheet_matches": matched,
        "pos_weight": "n_neg / n_pos per AU, from each fold's training samples with AU labels"}}
    labels = AuLabels(torch.from_numpy(targets.y), torch.from_numpy(targets.coded),
                      targets.names)
    return replace(data, table=table, au_info=info, au_aid=labels)


def _codes_aus(text: object) -> bool:
    """Whether an AU string gives AU labels (an unreadable one counts: :func:`au_targets`
    reports it with its sample)."""
    from fervid.datasets.action_units import AuStringError, parse_au

    try:
        return parse_au(text).coded
    except AuStringError:
        return True


def load_frame_data(cfg: LosoConfig, data_root: Path, *, cache_dir: Path | None = None,
                    progress: bool = True) -> LosoData:
    """DSSI stacks, global dynamic images or apex frames of a release, as model tensors."""
    from fervid.datasets.from_config import read_release
    from fervid.representation.clip_inputs import build_clip_inputs

    table = read_release(cfg, data_root)
    d = cfg.data
    params = dssi_params(d)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    with progress_bar(progress) as bar:
        inputs = build_clip_inputs(table, d.format, size=d.size, params=params, cache_dir=cache,
                                   train_views=d.train_views, seed=cfg.seed,
                                   di_scaling=d.di_scaling, progress=bar)
    y = torch.tensor([s.label for s in table], dtype=torch.long)
    return LosoData(inputs.x, y, table, inputs.train_views)


def dssi_params(data: DataConfig) -> DssiParams:
    """The DSSI a LOSO config's frame-based input is pooled from (``data.dssi``, and
    ``data.register``): the key of its cached results."""
    from fervid.representation.dssi import DssiParams

    return DssiParams(**data.dssi.model_dump(), register=data.registered)


def default_cache_dir() -> Path:
    """``$FERVID_CACHE`` or ``~/.cache/fervid``: where computed DSSI results are kept."""
    return Path(os.environ.get("FERVID_CACHE", Path.home() / ".cache" / "fervid")) / "dssi"
