"""CK+'s optional annotations of one sequence: ``Landmarks/`` (68 points per frame) and
``FACS/`` (the apex's action units), read for one sample (layout: :mod:`fervid.datasets.ckplus`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fervid.datasets.frames import describe_numbers, index_frames
from fervid.samples import DatasetFormatError, Sample

LANDMARKS_DIR = "Landmarks"
FACS_DIR = "FACS"
LANDMARK_FILE = re.compile(r"S\d+_\d+_(\d+)_landmarks\.txt")
FACS_FILE = re.compile(r"S\d+_\d+_\d+_facs\.txt")
#: Points per CK+ landmark file (the same 68-point order as dlib's).
NUM_LANDMARKS = 68


def _sequence_parts(sample: Sample) -> tuple[str, str]:
    subject, _, sequence = sample.clip.partition("_")
    return subject, sequence


def read_landmark_file(path: Path) -> np.ndarray:
    """One CK+ landmark file as ``(68, 2)`` float32 ``(x, y)`` pixels.

    Raises
    ------
    DatasetFormatError
        Naming the file: unreadable, or not 68 rows of two numbers.
    """
    path = Path(path)
    try:
        values = [float(v) for v in path.read_text(encoding="ascii").split()]
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DatasetFormatError(path, [f"not a landmark file of numbers: {err}"]) from err
    if len(values) != 2 * NUM_LANDMARKS:
        raise DatasetFormatError(path, [f"needs {NUM_LANDMARKS} rows of x y, found "
                                        f"{len(values)} numbers"])
    return np.asarray(values, np.float32).reshape(NUM_LANDMARKS, 2)


def landmark_files(root: Path, subject: str, sequence: str) -> dict[int, Path] | None:
    """Frame number -> landmark file of one sequence, or None without ``Landmarks/S/NNN``."""
    return index_frames(Path(root) / LANDMARKS_DIR / subject / sequence, LANDMARK_FILE)


def ckplus_landmarks(root: Path, sample: Sample) -> np.ndarray | None:
    """The release's landmarks of ``sample``'s frames, ``(T, 68, 2)`` float32, in the pixels of
    the frames under ``root``; None when ``root`` has no landmarks for the sequence.

    Raises
    ------
    DatasetFormatError
        A frame without its landmark file, or a file that is not 68 rows of x y.
    """
    subject, sequence = _sequence_parts(sample)
    files = landmark_files(root, subject, sequence)
    if not files:
        return None
    numbers = range(sample.onset, sample.offset + 1)
    absent = [n for n in numbers if n not in files]
    if absent:
        raise DatasetFormatError(Path(root) / LANDMARKS_DIR / subject / sequence, [
            f"no landmark file for frame(s) {describe_numbers(absent)}"])
    return np.stack([read_landmark_file(files[n]) for n in numbers])


def ckplus_facs(root: Path, sample: Sample) -> list[tuple[int, float]] | None:
    """The FACS coding of ``sample``'s apex: ``(action unit, intensity)`` rows as the release
    writes them (intensity 0: not rated); None when ``root`` has no FACS file for it.

    Raises
    ------
    DatasetFormatError
        Naming the file: unreadable, or not pairs of numbers with whole AU codes.
    """
    subject, sequence = _sequence_parts(sample)
    folder = Path(root) / FACS_DIR / subject / sequence
    files = sorted(folder.glob("*_facs.txt")) if folder.is_dir() else []
    files = [p for p in files if FACS_FILE.fullmatch(p.name)]
    if not files:
        return None
    path = files[-1]
    try:
        values = [float(v) for v in path.read_text(encoding="ascii").split()]
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DatasetFormatError(path, [f"not a FACS file of numbers: {err}"]) from err
    if len(values) % 2 or not all(v.is_integer() for v in values[::2]):
        raise DatasetFormatError(path, ["needs rows of 'AU intensity' with whole AU codes"])
    return [(int(au), intensity) for au, intensity in zip(values[::2], values[1::2],
                                                          strict=True)]
