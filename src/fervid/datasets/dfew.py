"""DFEW (Jiang et al., ACM MM 2020), as released: 5-fold splits over one of three frame sources.

::

    DFEW/
      Clip/original/00001.mp4                    raw clips (decoded with PyAV)
      Clip/clip_224x224/00001/00001_00001.jpg    aligned faces, original frame count
      Clip/clip_224x224_16f/00001/1.jpg..16.jpg  aligned faces time-interpolated to 16 frames
      EmoLabel_DataSplit/{train,test}(single-labeled)/set_1.csv .. set_5.csv

Split CSVs have the header ``video_name,label``; ``video_name`` is the clip number (zero-padded
to five digits to give the clip id, ``'00001'``) and ``label`` is 1-based in the order of
:data:`DFEW_CLASSES`. Labels here are 0-based indices into :data:`DFEW_CLASSES`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fervid.datasets.clip_jobs import ClipJob
from fervid.datasets.registry import DatasetSpec, PrepareHook, register_dataset
from fervid.errors import OptionError, PathNotFoundError, path_error
from fervid.samples import DatasetFormatError

logger = logging.getLogger(__name__)

DATASET = "dfew"
#: The frame source ``fervid prepare faces`` writes (``Clip/clip_224x224``), whatever the size.
PREPARED_SOURCE = "clip_224x224"
#: The folder of the official 5-fold split CSVs.
SPLIT_DIR = "EmoLabel_DataSplit"

#: The seven classes in the release's label order: CSV label ``k`` is ``DFEW_CLASSES[k - 1]``.
DFEW_CLASSES: tuple[str, ...] = ("happy", "sad", "neutral", "angry", "surprise", "disgust",
                                 "fear")

#: Frame sources :func:`read_dfew` accepts (folders under ``Clip/``).
DFEW_SOURCES: tuple[str, ...] = ("clip_224x224_16f", "clip_224x224", "original")

#: The official folds.
DFEW_FOLDS: tuple[int, ...] = (1, 2, 3, 4, 5)

#: Frames per clip in ``clip_224x224_16f``.
TIM_FRAMES = 16

SPLIT_HEADER = ("video_name", "label")
_PARTS = ("train", "test")
_TIM_FRAME = re.compile(r"(\d+)\.jpg", re.IGNORECASE)


@dataclass(frozen=True)
class DfewClip:
    """One DFEW clip.

    ``frames`` lists the image files in temporal order (``None`` for the ``original`` source
    or when only the split lists were read); ``video`` is the ``.mp4`` for the ``original``
    source, else ``None``. ``label`` indexes :data:`DFEW_CLASSES`.
    """

    clip_id: str
    label: int
    frames: tuple[Path, ...] | None = field(default=None, repr=False)
    video: Path | None = None

    @property
    def emotion(self) -> str:
        return DFEW_CLASSES[self.label]

    @property
    def num_frames(self) -> int | None:
        """Frame files on disk, or ``None`` when not known without decoding (``original``)."""
        return None if self.frames is None else len(self.frames)


@dataclass
class DfewFold:
    """The train and test clips of one official fold (``fold`` in 1..5)."""

    fold: int
    train: list[DfewClip]
    test: list[DfewClip]


@dataclass
class DfewSplit:
    """A DFEW release read for one frame source.

    ``missing`` holds the ids dropped with ``skip_missing=True`` (empty otherwise).
    """

    root: Path
    source: str
    folds: list[DfewFold]
    missing: tuple[str, ...] = ()
    classes: tuple[str, ...] = DFEW_CLASSES

    def fold(self, number: int) -> DfewFold:
        """The fold numbered ``number`` (1-based, as in ``set_<number>.csv``)."""
        for fold in self.folds:
            if fold.fold == number:
                return fold
        read = ", ".join(str(f.fold) for f in self.folds)
        raise ValueError(f"fold {number} was not read (folds read: {read})")

    @property
    def clips(self) -> list[DfewClip]:
        """Every distinct clip over the folds read, in order of first appearance."""
        seen: dict[str, DfewClip] = {}
        for fold in self.folds:
            for clip in fold.train + fold.test:
                seen.setdefault(clip.clip_id, clip)
        return list(seen.values())


def split_csv_path(split_dir: Path, part: str, fold: int) -> Path:
    """``<split_dir>/<part>(single-labeled)/set_<fold>.csv``."""
    return Path(split_dir) / f"{part}(single-labeled)" / f"set_{fold}.csv"


def read_split_csv(path: Path) -> list[tuple[str, int]]:
    """One split file as ``(clip_id, label)`` rows, ids zero-padded, labels 0-based.

    Raises
    ------
    PathNotFoundError
        ``path`` does not exist.
    UserPathError
        It cannot be read (no permission).
    DatasetFormatError
        Wrong header, or rows with a non-integer id, a label outside 1..7 or a repeated id; all
        bad rows are listed with their line numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise PathNotFoundError(f"{path}: DFEW split file not found")
    try:
        # Blank lines kept (and skipped below) so that reported line numbers match the file.
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                            skip_blank_lines=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetFormatError(path, [f"not a readable CSV: {error}"]) from error
    except OSError as error:
        raise path_error(path, error, "DFEW split file") from error
    header = tuple(str(c).strip() for c in table.columns)
    if header != SPLIT_HEADER:
        raise DatasetFormatError(path, [f"header is {','.join(header)!r}, expected "
                                        f"{','.join(SPLIT_HEADER)!r}"])
    rows: list[tuple[str, int]] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for line, (name, label) in enumerate(zip(table["video_name"], table["label"], strict=True),
                                         start=2):
        name, label = name.strip(), label.strip()
        if not name and not label:
            continue
        if not name.isdigit():
            problems.append(f"line {line}: video_name {name!r} is not a clip number")
            continue
        if not label.isdigit() or not 1 <= int(label) <= len(DFEW_CLASSES):
            problems.append(f"line {line}: label {label!r} outside 1..{len(DFEW_CLASSES)}")
            continue
        clip_id = f"{int(name):05d}"
        if clip_id in first_line:
            problems.append(f"line {line}: clip {clip_id} repeats line {first_line[clip_id]}")
            continue
        first_line[clip_id] = line
        rows.append((clip_id, int(label) - 1))
    if problems:
        raise DatasetFormatError(path, problems)
    return rows


def read_dfew_splits(split_dir: Path, folds: Iterable[int] = DFEW_FOLDS) -> list[DfewFold]:
    """The official split lists alone (no frames needed): clips with ``frames=None``.

    Parameters
    ----------
    split_dir : Path
        The ``EmoLabel_DataSplit`` folder.
    folds : iterable of int
        Fold numbers in 1..5.

    Raises
    ------
    OptionError
        A fold number outside 1..5.
    PathNotFoundError, DatasetFormatError
        From :func:`read_split_csv`; also a clip given two labels in different files.
    """
    folds = _check_folds(folds)
    labels: dict[str, tuple[int, Path]] = {}
    conflicts: list[str] = []
    result = []
    for number in folds:
        parts = {}
        for part in _PARTS:
            path = split_csv_path(split_dir, part, number)
            rows = read_split_csv(path)
            for clip_id, label in rows:
                known = labels.setdefault(clip_id, (label, path))
                if known[0] != label:
                    conflicts.append(f"clip {clip_id}: label {label + 1} in {path.name} of "
                                     f"{path.parent.name}, {known[0] + 1} in {known[1].name} "
                                     f"of {known[1].parent.name}")
            parts[part] = [DfewClip(clip_id, label) for clip_id, label in rows]
        result.append(DfewFold(number, parts["train"], parts["test"]))
    if conflicts:
        raise DatasetFormatError(split_dir, conflicts)
    return result


def read_dfew(root: Path, *, source: str = "clip_224x224_16f",
              folds: Iterable[int] = DFEW_FOLDS, skip_missing: bool = False,
              split_dir: Path | None = None) -> DfewSplit:
    """Read the DFEW release at ``root`` for one frame source.

    Only file names are listed; no pixel is decoded.

    Parameters
    ----------
    root : Path
        The DFEW folder (holding ``Clip/`` and ``EmoLabel_DataSplit/``).
    source : {'clip_224x224_16f', 'clip_224x224', 'original'}
        Which frames each clip points to (see the module docstring).
    folds : iterable of int
        The folds to read.
    skip_missing : bool
        Drop clips whose frames are missing or unreadable (logging a warning with their count)
        instead of raising.
    split_dir : Path, optional
        The split CSVs; ``root / 'EmoLabel_DataSplit'`` by default.

    Raises
    ------
    OptionError
        Unknown source or fold.
    PathNotFoundError
        ``root`` or a split file is absent.
    DatasetFormatError
        A bad split file; or, without ``skip_missing``, clips whose frames are missing or
        unreadable: all of them checked first, then one error naming ``root`` and listing up to
        ten.
    """
    if source not in DFEW_SOURCES:
        raise OptionError(f"unknown DFEW source {source!r}; valid sources: "
                          f"{', '.join(DFEW_SOURCES)}")
    root = Path(root)
    if not root.is_dir():
        raise PathNotFoundError(f"{root}: DFEW folder not found")
    fold_lists = read_dfew_splits(root / SPLIT_DIR if split_dir is None
                                  else Path(split_dir), folds)
    source_dir = root / "Clip" / source
    located: dict[str, DfewClip | str] = {}  # clip id -> clip with frames, or the problem
    for fold in fold_lists:
        for clip in fold.train + fold.test:
            if clip.clip_id not in located:
                located[clip.clip_id] = _locate(source_dir, source, clip)
    problems = {cid: found for cid, found in located.items() if isinstance(found, str)}
    if problems and not skip_missing:
        raise DatasetFormatError(root, [f"clip {cid}: {why}" for cid, why in problems.items()])
    if problems:
        logger.warning("DFEW %s: skipping %d of %d clips whose frames are missing or unreadable "
                       "under %s (first: %s)", source, len(problems), len(located), source_dir,
                       ", ".join(list(problems)[:5]))
    resolved = {cid: found for cid, found in located.items() if isinstance(found, DfewClip)}
    kept = [DfewFold(f.fold, [resolved[c.clip_id] for c in f.train if c.clip_id in resolved],
                     [resolved[c.clip_id] for c in f.test if c.clip_id in resolved])
            for f in fold_lists]
    return DfewSplit(root, source, kept, tuple(problems))


def _check_folds(folds: Iterable[int]) -> list[int]:
    folds = [int(f) for f in folds]
    bad = [f for f in folds if f not in DFEW_FOLDS]
    if bad or not folds:
        raise OptionError(f"DFEW folds are 1..5, got {folds}")
    return folds


def _locate(source_dir: Path, source: str, clip: DfewClip) -> DfewClip | str:
    """The clip with its frame files, or why they cannot be used."""
    if source == "original":
        video = source_dir / f"{clip.clip_id}.mp4"
        if not video.is_file():
            return f"video {video.name} not found"
        if video.stat().st_size == 0:
            return f"video {video.name} is empty"
        return DfewClip(clip.clip_id, clip.label, None, video)
    folder = source_dir / clip.clip_id
    if source == "clip_224x224_16f":
        pattern = _TIM_FRAME
    else:
        pattern = re.compile(rf"{clip.clip_id}_(\d+)\.jpg", re.IGNORECASE)
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return f"frame folder {clip.clip_id}/ not found"
    except OSError as error:
        return f"frame folder {clip.clip_id}/ unreadable ({error.strerror or error})"
    numbered = _numbered(entries, pattern)
    if not numbered:
        return f"frame folder {clip.clip_id}/ holds no frames named like {pattern.pattern}"
    if source == "clip_224x224_16f" and len(numbered) != TIM_FRAMES:
        return f"frame folder {clip.clip_id}/ holds {len(numbered)} frames, expected {TIM_FRAMES}"
    return DfewClip(clip.clip_id, clip.label, tuple(numbered), None)


def _numbered(entries: Sequence[os.DirEntry[str]], pattern: re.Pattern[str]) -> list[Path]:
    # Numeric order: 2.jpg before 10.jpg.
    found = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match:
            found.append((int(match.group(1)), Path(entry.path)))
    return [path for _, path in sorted(found)]


def find_dfew_clips(root: Path, out_dir: Path, clips: set[int] | None = None
                    ) -> list[ClipJob | None]:
    """``root/Clip/original/NNNNN.mp4``, only the numbers in ``clips`` when given, for
    ``fervid prepare faces``; each goes to ``out_dir/Clip/clip_224x224/NNNNN/``.

    Raises
    ------
    PathNotFoundError
        No ``Clip/original`` folder.
    OptionError
        ``clips`` names videos that are absent.
    """
    videos = root / "Clip" / "original"
    if not videos.is_dir():
        raise PathNotFoundError(f"{videos}: DFEW video folder not found (pass the DFEW "
                                "folder holding Clip/original/)")
    found = {int(p.stem): p for p in videos.glob("*.mp4") if p.stem.isdigit()}
    absent = sorted((clips or set()) - set(found))
    if absent:
        raise OptionError(f"{len(absent)} requested clip(s) have no video in {videos}: "
                          f"{', '.join(f'{n:05d}' for n in absent[:10])}")
    return [ClipJob(f"{n:05d}", found[n], out_dir / "Clip" / PREPARED_SOURCE / f"{n:05d}")
            for n in sorted(found) if clips is None or n in clips]


register_dataset(DatasetSpec(
    name=DATASET, subject="", layouts=("video", "cropped"), protocols=("kfold",),
    read_splits=read_dfew, classes={"7class": DFEW_CLASSES},
    # Heads move in these film clips: one warp per frame. The splits are copied, so the faces
    # are a complete DFEW folder.
    prepare=PrepareHook(find_dfew_clips, "Clip/original/NNNNN.mp4", takes_clip_numbers=True,
                        align="frame", copies=(SPLIT_DIR,))))
