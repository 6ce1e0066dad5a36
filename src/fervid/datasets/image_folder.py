"""Still face images in ``<class>/<image>`` folders (torchvision's ``ImageFolder`` layout).

Each image is taken as an already-cropped face: no detection, only resizing. Folder names go
through :func:`~fervid.datasets.class_names.require_class` (``angry/`` reads as ``anger``), so
any static FER set laid out this way reads with no code. Every image becomes a one-frame
:class:`~fervid.samples.Sample` whose ``clip`` is ``<folder>_<file name>`` (unique in a split).
A root holding split folders (``train/``, ``validation/`` or ``val/``, ``test/``, each
``<class>/<image>``) is read split by split (:func:`read_face_folders`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fervid.datasets.class_names import VOCABULARY, require_class
from fervid.datasets.registry import DatasetSpec, register_dataset
from fervid.errors import PathNotFoundError
from fervid.samples import DatasetFormatError, Sample, SampleTable

#: Suffixes read as images (lower case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


#: Split folder names (lower case) → split.
FOLDER_SPLITS = {"train": "train", "training": "train", "validation": "validation",
                 "val": "validation", "publictest": "validation", "test": "test",
                 "privatetest": "test"}


@dataclass(frozen=True)
class FaceImageSet:
    """Still faces: the sample table plus, for releases that store pixels inline (the FER2013
    CSV), those pixels ``(N, H, W)`` uint8 in table order; None where each sample names its
    file."""

    table: SampleTable
    pixels: np.ndarray | None = None


class SkippedFilesWarning(UserWarning):
    """Files that are not images were found in a class folder and skipped."""


def read_image_folder(root: Path | str, *, dataset: str = "image_folder", split: str = "",
                      classes: Sequence[str] | None = None) -> SampleTable:
    """Read ``root/<class>/<image>``.

    Parameters
    ----------
    root
        The folder holding one sub-folder per class.
    dataset
        The ``dataset`` field of every sample.
    split
        The ``split`` field of every sample (``train``, ``validation``, ``test`` or ``""``).
    classes
        Canonical class names in label order; None: the folders' classes, in the order of
        :data:`~fervid.datasets.class_names.VOCABULARY`.

    Raises
    ------
    PathNotFoundError
        ``root`` is not a folder.
    UnknownClassError
        A folder name outside the vocabulary (the message names the folder).
    DatasetFormatError
        No class folder, an empty one, two folders naming one class, or a class outside
        ``classes``.
    """
    root = Path(root)
    if not root.is_dir():
        raise PathNotFoundError(f"{root}: image folder not found")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetFormatError(root, ["no class folders (expected <class>/<image> files)"])
    problems: list[str] = []
    by_class: dict[str, Path] = {}
    for folder in folders:
        name = require_class(folder.name, str(folder))
        if name in by_class:
            problems.append(f"{folder.name}/ and {by_class[name].name}/ both name class {name}")
        by_class[name] = folder
    if classes is None:
        classes = sorted(by_class, key=VOCABULARY.index)
    label_of = {c: i for i, c in enumerate(classes)}
    samples: list[Sample] = []
    skipped: list[Path] = []
    for name, folder in sorted(by_class.items(), key=lambda kv: kv[1].name):
        if name not in label_of:
            problems.append(f"{folder.name}/: class {name} is not one of {list(classes)}")
            continue
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        skipped += [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
        if not images:
            problems.append(f"{folder.name}/: no images ({', '.join(IMAGE_SUFFIXES)})")
        samples += [Sample(dataset, "", f"{folder.name}_{p.name}", 0, 0, 0, name,
                           label_of[name], (p,), split) for p in images]
    if problems:
        raise DatasetFormatError(root, problems)
    if skipped:
        warnings.warn(f"{root}: skipped {len(skipped)} file(s) that are not images, e.g. "
                      f"{skipped[0]}", SkippedFilesWarning, stacklevel=2)
    return SampleTable(samples, tuple(classes), "image_folder")


def read_face_folders(root: Path | str, *, dataset: str = "image_folder",
                      classes: Sequence[str] | None = None) -> SampleTable:
    """:func:`read_image_folder` of ``root``, or of each split folder in it (see the module
    docstring; the classes are the union over the splits unless ``classes`` is given)."""
    root = Path(root)
    if not root.is_dir():
        raise PathNotFoundError(f"{root}: image folder not found")
    splits = {p: FOLDER_SPLITS[p.name.lower()] for p in sorted(root.iterdir())
              if p.is_dir() and p.name.lower() in FOLDER_SPLITS}
    if not splits:
        return read_image_folder(root, dataset=dataset, classes=classes)
    if classes is None:
        names = {require_class(c.name, str(c)) for folder in splits for c in folder.iterdir()
                 if c.is_dir() and not c.name.startswith(".")}
        classes = sorted(names, key=VOCABULARY.index)
    tables = [read_image_folder(folder, dataset=dataset, split=split, classes=classes)
              for folder, split in splits.items()]
    return SampleTable.concat(tables)


def read_image_folder_faces(root: Path | str) -> FaceImageSet:
    """:func:`read_face_folders` as a :class:`FaceImageSet` (``fervid fit``)."""
    return FaceImageSet(read_face_folders(root))


register_dataset(DatasetSpec(
    name="image_folder", subject="", layouts=("images",), protocols=("holdout",),
    read_faces=read_image_folder_faces))
