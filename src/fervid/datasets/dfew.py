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
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from fervid.datasets.clip_jobs import ClipJob
from fervid.datasets.registry import DatasetSpec, PrepareHook, register_dataset
from fervid.datasets.video_release import (
    VideoClip,
    VideoFold,
    VideoRelease,
    VideoSplit,
    build_folds,
    locate_clips,
    require_root,
    video_release,
    with_frames,
    with_video,
)
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


#: DFEW's clips are the k-fold readers' shared type; the old name stays for code importing it.
DfewClip = VideoClip

#: What :func:`read_dfew` offers ``fervid kfold``.
RELEASE = VideoRelease(title="DFEW", sources=DFEW_SOURCES, folds=DFEW_FOLDS,
                       classes=DFEW_CLASSES, split_dir=SPLIT_DIR)


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


def read_dfew_splits(split_dir: Path, folds: Iterable[int] = DFEW_FOLDS) -> list[VideoFold]:
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
    folds = RELEASE.check_folds(folds)
    parts = [(number, part, path, read_split_csv(path))
             for number in folds for part in _PARTS
             for path in [split_csv_path(split_dir, part, number)]]
    return build_folds(parts, DFEW_CLASSES, Path(split_dir))


@video_release(RELEASE)
def read_dfew(root: Path, *, source: str = "clip_224x224_16f",
              folds: Iterable[int] = DFEW_FOLDS, skip_missing: bool = False,
              split_dir: Path | None = None) -> VideoSplit:
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
    RELEASE.check_source(source)
    root = require_root(root, "DFEW")
    fold_lists = read_dfew_splits(root / SPLIT_DIR if split_dir is None
                                  else Path(split_dir), folds)
    source_dir = root / "Clip" / source
    return locate_clips(root, source, fold_lists,
                        lambda clip: _locate(source_dir, source, clip),
                        skip_missing=skip_missing, log=logger, title="DFEW",
                        classes=DFEW_CLASSES)


def _locate(source_dir: Path, source: str, clip: VideoClip) -> VideoClip | str:
    """The clip with its frame files, or why they cannot be used."""
    if source == "original":
        return with_video(clip, source_dir, clip.clip_id, suffixes=(".mp4",))
    if source == "clip_224x224_16f":
        pattern = _TIM_FRAME
    else:
        pattern = re.compile(rf"{clip.clip_id}_(\d+)\.jpg", re.IGNORECASE)
    found = with_frames(clip, source_dir / clip.clip_id, pattern)
    if source == "clip_224x224_16f" and not isinstance(found, str) \
            and found.num_frames != TIM_FRAMES:
        return f"frame folder {clip.clip_id}/ holds {found.num_frames} frames, expected " \
               f"{TIM_FRAMES}"
    return found


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
    read_splits=read_dfew, classes={"7class": DFEW_CLASSES}, default_for=("kfold",),
    # Heads move in these film clips: one warp per frame. The splits are copied, so the faces
    # are a complete DFEW folder.
    prepare=PrepareHook(find_dfew_clips, "Clip/original/NNNNN.mp4", takes_clip_numbers=True,
                        align="frame", copies=(SPLIT_DIR,))))
