"""Calling a release's registered reader (:mod:`fervid.datasets.registry`) from a config's
``data`` section."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from fervid.config import ConfigError, FitConfig, LosoConfig
from fervid.datasets.registry import ReadRequest, dataset_names, dataset_spec, default_dataset
from fervid.errors import OptionError
from fervid.samples import ClipProblem, SampleError, SampleTable

log = logging.getLogger(__name__)

#: Skipped clips named in a message; the rest are counted.
SKIPPED_SHOWN = 10


def read_release(cfg: LosoConfig, data_root: Path) -> SampleTable:
    """The labelled clips of the release ``cfg.data.dataset`` under ``data_root``.

    With ``data.skip_missing`` the clips whose folders or frames are missing or damaged are
    left out (``table.skipped``; their count and first names are logged as a warning).

    Raises
    ------
    SampleError
        Fewer than two subjects (or datasets, under ``group: dataset``) hold a labelled clip:
        leave-one-out has no fold with training data.
    """
    d, root = cfg.data, Path(data_root)
    if d.dataset is None:
        raise ConfigError(f"data.format={d.format} reads frames: set data.dataset (one of "
                          f"{', '.join(dataset_names('loso'))})")
    try:
        spec = dataset_spec(d.dataset, lambda s: "loso" in s.protocols and s.read is not None,
                            "for LOSO")
    except OptionError as e:
        raise ConfigError(f"data.dataset: {e}") from None
    missing = [k for k in spec.parts if k not in d.paths]
    if missing:
        raise ConfigError(f"data.dataset={d.dataset} needs data.paths for {missing} "
                          f"(relative to --data-root {root})")
    if spec.open_parts and not d.paths:
        raise ConfigError(f"data.dataset={d.dataset} needs data.paths naming its parts: each key "
                          f"a registered dataset, <name>_sheet its sheet (relative to "
                          f"--data-root {root})")
    problem = spec.sheet_problem(d.sheet is not None)
    if problem is not None:
        raise ConfigError(f"data.dataset={d.dataset} {problem}: "
                          + ("remove data.sheet" if d.sheet is not None else "set data.sheet"))
    sheet = None if spec.sheet is None or d.sheet is None else root / d.sheet
    # --data-root is the release's folder, or for a composite set the folder holding its parts.
    paths = {k: root / d.paths[k] for k in (d.paths if spec.open_parts else spec.parts)}
    table = spec.read(ReadRequest(root, d.protocol, sheet, paths,
                                  skip_missing=d.skip_missing)).labelled()
    if tuple(d.classes) != table.classes:
        raise ConfigError(f"data.classes {list(d.classes)} differ from the classes of "
                          f"{d.dataset} {d.protocol}: {list(table.classes)}; set data.classes "
                          f"to those")
    if table.skipped:
        log.warning("%s", skipped_line(table.skipped))
    check_groups(table, cfg.group)
    return table


def first_names(names: Sequence[str]) -> str:
    """The first :data:`SKIPPED_SHOWN` of ``names``, and how many more."""
    more = f" and {len(names) - SKIPPED_SHOWN} more" if len(names) > SKIPPED_SHOWN else ""
    return ", ".join(names[:SKIPPED_SHOWN]) + more


def skipped_line(skipped: Sequence[ClipProblem], option: str = "data.skip_missing") -> str:
    """One line on the clips a reader left out (``table.skipped``): their count and the first
    names."""
    return (f"skipped {len(skipped)} clip(s) whose folders or frames are missing or damaged "
            f"({option}): {first_names([p.name for p in skipped])}")


def subjects_without_clips(table: SampleTable) -> list[str]:
    """The subjects (``dataset/subject``) of skipped clips that kept no labelled clip: they
    get no fold."""
    kept = set(table.subjects)
    return list(dict.fromkeys(f"{p.dataset}/{p.subject}" for p in table.skipped
                              if f"{p.dataset}/{p.subject}" not in kept))


def check_groups(table: SampleTable, group: str) -> None:
    """Refuse a table leave-one-``group``-out cannot split (fewer than two groups), naming the
    skipped clips when skipping left too few; warn of subjects that lost every clip."""
    lost = subjects_without_clips(table)
    if lost and group == "subject":
        log.warning("no fold for %d subject(s) whose every clip was skipped: %s", len(lost),
                    first_names(lost))
    groups = table.subjects if group == "subject" else list(dict.fromkeys(
        s.dataset for s in table))
    if len(groups) >= 2:
        return
    held = ", ".join(groups) or "none"
    why = (f" after skipping {len(table.skipped)} clip(s) whose folders or frames are missing"
           if table.skipped else "")
    raise SampleError(f"leave-one-{group}-out needs at least two {group}s with labelled "
                      f"clips, and {len(groups)} remain{'s' if len(groups) == 1 else ''} "
                      f"({held}){why}: one {group} cannot make a fold with training data")


def read_face_release(cfg: FitConfig, data_root: Path):
    """The labelled still faces ``cfg.data`` names under ``data_root``, as a
    :class:`~fervid.datasets.image_folder.FaceImageSet`, from the release's registered
    ``read_faces``: FER2013 (with its splits), an image folder (split by split when it holds
    train/ validation/ test/) or CK+ (each sequence's last, apex frame; no split).
    ``data.classes``, when set, keeps the faces of those classes, in that label order."""
    from fervid.datasets.image_folder import FaceImageSet

    d, root = cfg.data, Path(data_root)
    try:
        # A config validated before the table was imported names no dataset yet.
        spec = dataset_spec(d.dataset or default_dataset("holdout"),
                            lambda s: s.read_faces is not None,
                            "for still faces (fervid fit)")
    except OptionError as e:
        raise ConfigError(f"data.dataset: {e}") from None
    images = spec.read_faces(root)
    if d.classes is None:
        return images
    classes = tuple(d.classes)
    unknown = [c for c in classes if c not in images.table.classes]
    if unknown:
        raise ConfigError(f"data.classes {unknown} are not classes of {d.dataset} "
                          f"({list(images.table.classes)})")
    keep = [s.emotion in classes for s in images.table]
    samples = [replace(s, label=classes.index(s.emotion))
               for s, k in zip(images.table, keep, strict=True) if k]
    pixels = None if images.pixels is None else images.pixels[np.asarray(keep, bool)]
    return FaceImageSet(SampleTable(samples, classes, images.table.protocol), pixels)
