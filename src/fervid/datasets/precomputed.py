"""Precomputed inputs: one image per clip plus an ``index.csv``, e.g. ``megc2019_flow/``.

Layout::

    folder/index.csv      dataset,subject,clip,label,file   (extra columns are ignored)
    folder/<file>         one image per row, all of one size and channel count

Images are decoded with ``cv2.imread`` unchanged, so the channels stay in the order the file
stores them, which for images written by OpenCV is the order they were computed in (the STSTNet
flow images are u, v, strain stored as OpenCV BGR; reading them as RGB would swap u and strain).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fervid.datasets.sheets import as_ints
from fervid.errors import path_error
from fervid.samples import PROTOCOL_CLASSES, DatasetFormatError, Sample, SampleTable

INDEX_COLUMNS = ("dataset", "subject", "clip", "label", "file")


@dataclass(frozen=True, eq=False)
class PrecomputedSet:
    """A precomputed-input folder in memory.

    Attributes
    ----------
    table : SampleTable
        One sample per index row, in index order: ``frames`` = ``(image path,)``,
        ``onset = apex = offset = 0``, ``emotion`` the class name of ``label``.
    images : numpy.ndarray
        ``(N, H, W, C)`` uint8, row ``i`` the image of ``table[i]``, channels in file order.
    """

    table: SampleTable
    images: np.ndarray

    def __len__(self) -> int:
        return len(self.table)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


def _load_images(folder: Path, files: Sequence[str]) -> tuple[list[np.ndarray | None], list[str]]:
    """Decode each file (``None`` where it cannot be used) and list the problems."""
    images: list[np.ndarray | None] = []
    problems: list[str] = []
    for name in files:
        path = folder / name
        if not name:  # reported as a blank field
            images.append(None)
            continue
        if not path.is_file():
            problems.append(f"{name}: file missing")
            images.append(None)
            continue
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            problems.append(f"{name}: not a readable image")
        elif image.dtype != np.uint8:
            problems.append(f"{name}: {image.dtype} pixels, expected uint8")
            image = None
        elif image.ndim == 2:
            image = image[:, :, None]  # grayscale: keep a channel axis, so arrays are NHWC
        images.append(image)
    shapes = Counter(im.shape for im in images if im is not None)
    if len(shapes) > 1:
        common = shapes.most_common(1)[0][0]
        odd = [f for f, im in zip(files, images, strict=True)
               if im is not None and im.shape != common]
        problems.append("images differ in size or channels (H x W x C): "
                        + ", ".join(f"{_shape_text(s)} in {n} file(s)" for s, n in
                                    shapes.most_common())
                        + f"; first odd ones: {', '.join(odd[:5])}")
    return images, problems


def read_precomputed(folder: Path,
                     classes: Sequence[str] = PROTOCOL_CLASSES["3class"]) -> PrecomputedSet:
    """Read a precomputed-input folder.

    Parameters
    ----------
    folder : Path
        Holds ``index.csv`` (columns ``dataset, subject, clip, label, file``; ``file`` relative
        to the folder) and the images.
    classes : sequence of str
        Class names in label order; every ``label`` must index into it.

    Returns
    -------
    PrecomputedSet
        The sample table and the ``(N, H, W, C)`` uint8 images.

    Raises
    ------
    DatasetFormatError
        Naming the folder and listing every problem: no ``index.csv``, missing columns, blank
        fields, labels that are not integers in ``0..len(classes)-1``, duplicated clips, missing
        or unreadable images, images of different sizes or channel counts.
    """
    folder = Path(folder)
    classes = tuple(classes)
    if not folder.is_dir():
        raise DatasetFormatError(folder, ["folder does not exist"])
    index_csv = folder / "index.csv"
    if not index_csv.is_file():
        raise DatasetFormatError(folder, [f"no index.csv (columns {','.join(INDEX_COLUMNS)})"])
    try:
        index = pd.read_csv(index_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DatasetFormatError(folder, [f"index.csv: cannot read as CSV: {err}"]) from err
    except OSError as err:
        raise path_error(index_csv, err, "index file") from err
    index.columns = [str(c).strip() for c in index.columns]
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise DatasetFormatError(folder, [f"index.csv: missing column {c!r}" for c in missing]
                                 + [f"index.csv columns: {', '.join(index.columns)}"])
    if index.empty:
        raise DatasetFormatError(folder, ["index.csv has no rows"])
    index = index[list(INDEX_COLUMNS)].apply(lambda col: col.str.strip())

    problems: list[str] = []
    for column in ("dataset", "subject", "clip", "file"):
        problems += [f"index.csv line {i + 2}: {column} is blank"
                     for i in index.index[index[column] == ""]]
    labels = as_ints(index["label"])
    bad = (labels.isna() | (labels < 0) | (labels >= len(classes))).fillna(True)
    problems += [f"index.csv line {i + 2}: label {v!r} is not an integer in "
                 f"0..{len(classes) - 1} ({', '.join(classes)})"
                 for i, v in index.loc[bad, "label"].items()]
    dup = index.duplicated(["dataset", "subject", "clip"])
    # Index labels, not attributes: a Series row's .clip is its clip() method.
    problems += [f"index.csv line {i + 2}: {r['dataset']} {r['subject']}/{r['clip']} is listed "
                 "twice" for i, r in index[dup].iterrows()]
    images, more = _load_images(folder, list(index["file"]))
    problems += more
    if problems:
        raise DatasetFormatError(folder, problems)

    samples = [Sample(d, s, c, 0, 0, 0, classes[int(label)], int(label), (folder / f,))
               for (d, s, c, f), label in zip(
                   index[["dataset", "subject", "clip", "file"]].itertuples(index=False),
                   labels, strict=True)]
    protocol = next((k for k, v in PROTOCOL_CLASSES.items() if v == classes), "")
    return PrecomputedSet(SampleTable(samples, classes, protocol), np.stack(images))
