"""Still face images in ``<class>/<image>`` folders (torchvision's ``ImageFolder`` layout).

Each image is taken as an already-cropped face: no detection, only resizing. Folder names go
through :func:`~fervid.datasets.class_names.require_class` (``angry/`` reads as ``anger``), so
any static FER set laid out this way reads with no code. Every image becomes a one-frame
:class:`~fervid.samples.Sample` whose ``clip`` is the file's stem.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from fervid.datasets.class_names import VOCABULARY, require_class
from fervid.errors import PathNotFoundError
from fervid.samples import DatasetFormatError, Sample, SampleTable

#: Suffixes read as images (lower case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


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
        samples += [Sample(dataset, "", p.stem, 0, 0, 0, name, label_of[name], (p,), split)
                    for p in images]
    if problems:
        raise DatasetFormatError(root, problems)
    if skipped:
        warnings.warn(f"{root}: skipped {len(skipped)} file(s) that are not images, e.g. "
                      f"{skipped[0]}", SkippedFilesWarning, stacklevel=2)
    return SampleTable(samples, tuple(classes), "image_folder")
