"""Choosing and calling a release reader from a config's ``data`` section."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from fervid.config import ConfigError, FitConfig, LosoConfig
from fervid.samples import SampleTable


def read_release(cfg: LosoConfig, data_root: Path) -> SampleTable:
    """The labelled clips of the release ``cfg.data.dataset`` under ``data_root``."""
    from fervid.datasets import load_dataset, read_megc2019

    d, root = cfg.data, Path(data_root)
    if d.dataset is None:
        raise ConfigError(f"data.format={d.format} reads frames: set data.dataset (casme2, samm, "
                          f"smic, megc2019 or ckplus)")
    if d.dataset == "megc2019":
        keys = ("gt", "casme2", "casme2_sheet", "samm", "samm_sheet", "smic")
        missing = [k for k in keys if k not in d.paths]
        if missing:
            raise ConfigError(f"data.dataset=megc2019 needs data.paths for {missing} "
                              f"(relative to --data-root {root})")
        p = {k: root / d.paths[k] for k in keys}
        table = read_megc2019(p["gt"], p["casme2"], p["casme2_sheet"], p["samm"],
                              p["samm_sheet"], p["smic"])
    elif d.dataset == "ckplus":
        # --data-root is the CK+ folder holding cohn-kanade-images/ and Emotion/.
        if d.sheet is not None:
            raise ConfigError("data.dataset=ckplus has no coding sheet (labels come from its "
                              "Emotion/ files): remove data.sheet")
        table = load_dataset("ckplus", root, d.protocol)
    else:
        sheet = None if d.sheet is None else root / d.sheet
        table = load_dataset(d.dataset, root, d.protocol, sheet)
    table = table.labelled()
    if tuple(d.classes) != table.classes:
        raise ConfigError(f"data.classes {list(d.classes)} differ from the classes of "
                          f"{d.dataset} {d.protocol}: {list(table.classes)}; set data.classes "
                          f"to those")
    return table


def read_face_release(cfg: FitConfig, data_root: Path):
    """The labelled still faces ``cfg.data`` names under ``data_root``, as a
    :class:`~fervid.datasets.image_folder.FaceImageSet`: FER2013 (with its splits), an image folder,
    (split by split when it holds train/ validation/ test/) or CK+ (each sequence's last, apex
    frame; no split). ``data.classes``, when set, keeps the
    faces of those classes, in that label order."""
    from fervid.datasets.fer2013 import read_fer2013
    from fervid.datasets.image_folder import FaceImageSet, read_face_folders

    d, root = cfg.data, Path(data_root)
    if d.dataset == "fer2013":
        images = read_fer2013(root)
    elif d.dataset == "image_folder":
        images = FaceImageSet(read_face_folders(root))
    else:
        from fervid.datasets.ckplus import read_ckplus

        table = read_ckplus(root).labelled()
        images = FaceImageSet(SampleTable(
            [replace(s, frames=s.frames[-1:], onset=s.offset, apex=s.offset) for s in table],
            table.classes, table.protocol))
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
