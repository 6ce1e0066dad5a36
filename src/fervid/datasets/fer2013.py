"""FER2013 (Goodfellow et al., 2013): 35,887 grey 48×48 faces, in either of its two releases.

- The official ``fer2013.csv``: columns ``emotion,pixels,Usage``; ``emotion`` 0..6 = angry,
  disgust, fear, happy, sad, surprise, neutral; ``pixels`` 2,304 space-separated values;
  ``Usage`` ``Training`` / ``PublicTest`` / ``PrivateTest``.
- The image-folder release: ``train/``, ``validation/`` (or ``val/``) and ``test/``, each
  ``<emotion>/<image>`` (read with :func:`~fervid.datasets.image_folder.read_image_folder`).

Training, PublicTest and PrivateTest become the splits ``train``, ``validation`` and ``test``.
FER2013 has no subject ids: ``subject`` is empty.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fervid.datasets.class_names import BASIC_CLASSES
from fervid.datasets.image_folder import FaceImageSet, read_face_folders
from fervid.datasets.registry import DatasetSpec, register_dataset
from fervid.errors import PathNotFoundError, path_error
from fervid.samples import DatasetFormatError, Sample, SampleTable

DATASET = "fer2013"
#: The CSV's label order: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral.
FER2013_CLASSES: tuple[str, ...] = BASIC_CLASSES
#: ``Usage`` → split.
USAGE_SPLITS = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}
SIDE = 48
#: Eye centres, nose tip and mouth corners (image-left first) of the mean FER2013 face, in
#: unit image coordinates. Measured: dlib's 68 landmarks on 987 random FER2013 training faces
#: (upscaled 4×), 5 points averaged, then made mirror-symmetric about x = 0.5 (training flips
#: faces at random). FER2013 faces are framed tighter and higher than fervid's 5-point
#: template (eye distance 0.36 of the image against 0.26 at margin 0.1).
FER2013_FIVE_POINTS = np.array([
    [0.321, 0.386],
    [0.679, 0.386],
    [0.500, 0.576],
    [0.346, 0.764],
    [0.654, 0.764],
], dtype=np.float32)


def read_fer2013(root: Path | str) -> FaceImageSet:
    """Read FER2013 from ``fer2013.csv`` (the file, or a folder holding it) or from the
    image-folder release (a folder with ``train/``, ``validation/``, ``test/``).

    Raises
    ------
    PathNotFoundError
        Neither form is found at ``root``.
    DatasetFormatError
        A malformed CSV (the message names the rows) or image tree.
    """
    root = Path(root)
    if root.is_file():
        return read_fer2013_csv(root)
    if (root / "fer2013.csv").is_file():
        return read_fer2013_csv(root / "fer2013.csv")
    if not root.is_dir():
        raise PathNotFoundError(f"{root}: FER2013 not found (expected fer2013.csv or a folder "
                                f"with train/, validation/, test/)")
    table = read_face_folders(root, dataset=DATASET, classes=FER2013_CLASSES)
    if not any(s.split for s in table):
        raise DatasetFormatError(root, ["neither fer2013.csv nor split folders (train/, "
                                        "validation/, test/)"])
    return FaceImageSet(SampleTable(table.samples, FER2013_CLASSES, "7class"))


def read_fer2013_csv(path: Path | str) -> FaceImageSet:
    """Read the official ``fer2013.csv`` (see the module docstring). Every row is checked;
    one :class:`~fervid.samples.DatasetFormatError` lists the bad rows (1-based, header = 1)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise path_error(path, e, "FER2013 CSV") from e
    except UnicodeDecodeError as e:
        raise DatasetFormatError(path, [f"not a UTF-8 text file: {e}"]) from None
    if not rows:
        raise DatasetFormatError(path, ["empty file"])
    header = [h.strip() for h in rows[0]]
    missing = [c for c in ("emotion", "pixels", "Usage") if c not in header]
    if missing:
        raise DatasetFormatError(path, [f"header {header} lacks column(s) {missing}"])
    col = {c: header.index(c) for c in ("emotion", "pixels", "Usage")}
    problems: list[str] = []
    samples: list[Sample] = []
    pixels = np.zeros((len(rows) - 1, SIDE, SIDE), np.uint8)
    for n, row in enumerate(rows[1:], start=2):
        if len(row) < len(header):
            problems.append(f"row {n}: {len(row)} fields, expected {len(header)}")
            continue
        emotion, values, usage = (row[col[c]].strip() for c in ("emotion", "pixels", "Usage"))
        if usage not in USAGE_SPLITS:
            problems.append(f"row {n}: Usage {usage!r} is not one of {list(USAGE_SPLITS)}")
            continue
        if emotion not in {str(i) for i in range(len(FER2013_CLASSES))}:
            problems.append(f"row {n}: emotion {emotion!r} is not 0..6")
            continue
        parts = values.split()
        if len(parts) != SIDE * SIDE:
            problems.append(f"row {n}: {len(parts)} pixel values, expected {SIDE * SIDE}")
            continue
        try:
            flat = np.array(parts, dtype=np.int64)
        except ValueError:
            problems.append(f"row {n}: pixels are not integers")
            continue
        if flat.min() < 0 or flat.max() > 255:
            problems.append(f"row {n}: pixel values outside 0..255")
            continue
        pixels[len(samples)] = flat.reshape(SIDE, SIDE)
        label = int(emotion)
        samples.append(Sample(DATASET, "", f"{usage}_{n - 1}", 0, 0, 0,
                              FER2013_CLASSES[label], label, (), USAGE_SPLITS[usage]))
    if not samples and not problems:
        problems.append("no rows below the header")
    if problems:
        raise DatasetFormatError(path, problems)
    return FaceImageSet(SampleTable(samples, FER2013_CLASSES, "7class"),
                        pixels[:len(samples)])


register_dataset(DatasetSpec(
    name=DATASET, subject="", layouts=("csv", "images"), protocols=("holdout",),
    read_faces=read_fer2013, classes={"7class": FER2013_CLASSES},
    face_points=FER2013_FIVE_POINTS, default_for=("holdout",)))
