"""MAFW (Liu et al., ACM MM 2022), as released: 10,045 clips in the wild; its 11-class
single-label set (9,172 clips) in 5 folds.

::

    MAFW/
      data/clips/00019.mp4                          raw clips
      data/faces/00019/<N>.jpg                      face frames of each clip (what DFER projects
                                                    crop, and what fervid prepare faces writes)
      data/frames/00019/<N>.jpg                     whole frames of each clip
      Train & Test Set/single/no_caption/set_1/train.txt, test.txt .. set_5/
                                                    the folds, ``00025.mp4 anger`` per line
      Labels/single-set.xlsx, multi-set.xlsx, ...   not needed: the split files hold the labels

The folds as DFER projects list them (DFER-CLIP's ``MAFW_set_<N>_<train|test>.txt``:
``<path ending in the 5-digit clip id> <frame count> <label>``) are read too, from
``split_dir``. Their labels 0..10 follow that project's own order (:data:`LIST_ORDER`: happiness,
sadness, neutral, anger, surprise, disgust, fear, contempt, anxiety, helplessness,
disappointment) and are mapped to the release's.

Classes (:data:`MAFW_CLASSES`) are in the release's label order, that of its label files
(``Labels/annotation.xlsx``'s emotion columns and ``single-set.xlsx``'s labels 1..11): anger,
disgust, fear, happiness, neutral, sadness, surprise, contempt, anxiety, helplessness,
disappointment. The lists' order was checked against it by class size: the shared lists hold
per class exactly the clips ``single-set.xlsx`` is reported to hold (happiness 1,242, sadness
1,470, neutral 1,138, anger 1,390, ...). The MAFW paper lists the classes in yet another order.
The 43-class compound set (``Train & Test Set/compound``) is not read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from fervid.datasets.class_names import canonical_class
from fervid.datasets.clip_jobs import ClipJob
from fervid.datasets.registry import DatasetSpec, PrepareHook, register_dataset
from fervid.datasets.video_release import (
    VIDEO_SUFFIXES,
    VideoClip,
    VideoFold,
    VideoRelease,
    VideoSplit,
    build_folds,
    locate_clips,
    read_clip_list,
    read_lines,
    require_root,
    video_release,
    with_frames,
    with_video,
)
from fervid.errors import PathNotFoundError
from fervid.samples import DatasetFormatError

logger = logging.getLogger(__name__)

DATASET = "mafw"
#: The eleven classes in the release's label order (see the module docstring).
MAFW_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "neutral", "sadness",
                                 "surprise", "contempt", "anxiety", "helplessness",
                                 "disappointment")
#: The class order of the DFER lists' labels 0..10 (not the release's).
LIST_ORDER: tuple[str, ...] = ("happiness", "sadness", "neutral", "anger", "surprise",
                               "disgust", "fear", "contempt", "anxiety", "helplessness",
                               "disappointment")
MAFW_FOLDS: tuple[int, ...] = (1, 2, 3, 4, 5)
#: Frame sources, folders under ``data/``: face frames (default), whole frames, raw clips.
FACES, FRAMES, CLIPS = "faces", "frames", "clips"
#: The folder of the 11-class single-label folds (``set_N/{train,test}.txt``).
SPLIT_DIR = "Train & Test Set/single/no_caption"
_PARTS = ("train", "test")
_BY_NAME = {c: k for k, c in enumerate(MAFW_CLASSES)}

RELEASE = VideoRelease(title="MAFW", sources=(FACES, FRAMES, CLIPS), folds=MAFW_FOLDS,
                       classes=MAFW_CLASSES, split_dir=SPLIT_DIR)


def split_file(folder: Path, fold: int, part: str, listed: bool) -> Path:
    """``folder/set_<fold>/<part>.txt``, or the DFER list ``folder/MAFW_set_<fold>_<part>.txt``
    (``listed``)."""
    return folder / (f"MAFW_set_{fold}_{part}.txt" if listed else f"set_{fold}/{part}.txt")


def read_split_file(path: Path) -> list[tuple[str, int]]:
    """One split file as ``(clip id, label)`` rows: the release's form (``00025.mp4 anger``)
    or a DFER list (``MAFW_set_*.txt``, labels in :data:`LIST_ORDER`).

    Raises
    ------
    PathNotFoundError
        ``path`` does not exist.
    DatasetFormatError
        Every bad line with its number: a clip not named by a 5-digit id, an unknown class
        (the compound set's ``anger_disgust`` among them), a clip listed twice.
    """
    path = Path(path)
    if path.name.startswith("MAFW_set_"):
        listed, problems = read_clip_list(path, len(LIST_ORDER), "MAFW list")
        named = [(line, name.replace("\\", "/").rsplit("/", 1)[-1],
                  _BY_NAME[LIST_ORDER[label]]) for line, name, label in listed]
    else:
        named, problems = _release_rows(path)
    rows, first = [], {}
    for line, name, label in named:
        clip_id = name.split(".", 1)[0]
        if not (len(clip_id) == 5 and clip_id.isdigit()):
            problems.append(f"line {line}: {name!r} is not a 5-digit clip id")
        elif clip_id in first:
            problems.append(f"line {line}: clip {clip_id} repeats line {first[clip_id]}")
        else:
            first[clip_id] = line
            rows.append((clip_id, label))
    if problems:
        raise DatasetFormatError(path, problems)
    return rows


def _release_rows(path: Path) -> tuple[list[tuple[int, str, int]], list[str]]:
    """``(line, clip file, label)`` of a release split file, and its bad lines."""
    rows, problems = [], []
    for line, text in read_lines(path, "MAFW split file"):
        fields = text.split()
        if len(fields) != 2:
            problems.append(f"line {line}: {len(fields)} fields, expected 2 (<clip>.mp4 "
                            "<class>)")
            continue
        label = _BY_NAME.get(canonical_class(fields[1]) or "")
        if label is None:
            problems.append(f"line {line}: class {fields[1]!r} is none of MAFW's 11 "
                            f"({', '.join(MAFW_CLASSES)})")
            continue
        rows.append((line, fields[0], label))
    return rows, problems


def split_folder(root: Path | None, split_dir: Path | None, fold: int) -> tuple[Path, bool]:
    """Where fold ``fold``'s files are and whether they are DFER lists: in ``split_dir`` when
    given, else ``root/Train & Test Set/single/no_caption`` or ``root``.

    Raises
    ------
    PathNotFoundError
        No split file of the fold in any of them.
    """
    folders = [Path(split_dir)] if split_dir is not None else [root / SPLIT_DIR, root]
    for folder in folders:
        for listed in (False, True):
            if any(split_file(folder, fold, part, listed).is_file() for part in _PARTS):
                return folder, listed
    raise PathNotFoundError(f"{folders[0]}: no MAFW split files of fold {fold} (set_{fold}/"
                            f"train.txt and test.txt, or MAFW_set_{fold}_train.txt and "
                            f"MAFW_set_{fold}_test.txt)")


def read_mafw_splits(root: Path | None = None, folds: Iterable[int] = MAFW_FOLDS, *,
                     split_dir: Path | None = None) -> list[VideoFold]:
    """The folds alone (no frames needed): clips with ``frames=None``, from the release's split
    files or the DFER lists (see :func:`split_folder`).

    Raises
    ------
    OptionError
        A fold outside 1..5.
    PathNotFoundError, DatasetFormatError
        From :func:`split_folder` and :func:`read_split_file`; also a clip labelled
        differently in two files, or both trained and tested in one fold.
    """
    parts, where = [], None
    for fold in RELEASE.check_folds(folds):
        where, listed = split_folder(root, split_dir, fold)
        parts += [(fold, part, path, read_split_file(path)) for part in _PARTS
                  for path in [split_file(where, fold, part, listed)]]
    return build_folds(parts, MAFW_CLASSES, where)


@video_release(RELEASE)
def read_mafw(root: Path, *, source: str = FACES, folds: Iterable[int] = MAFW_FOLDS,
              skip_missing: bool = False, split_dir: Path | None = None) -> VideoSplit:
    """Read the MAFW release at ``root`` (11-class single-label folds) for one frame source;
    names only, no pixel.

    Parameters
    ----------
    root : Path
        The MAFW folder (holding ``data/``).
    source : {'faces', 'frames', 'clips'}
        Frame folders ``data/faces/<id>/`` or ``data/frames/<id>/``, or the raw clips
        ``data/clips/<id>.mp4``.
    folds : iterable of int
        The folds to read, in 1..5.
    skip_missing : bool
        Drop clips whose frames are missing or unreadable (a warning gives their count)
        instead of raising.
    split_dir : Path, optional
        The split files (see :func:`split_folder`).

    Raises
    ------
    OptionError
        Unknown source or fold.
    PathNotFoundError
        ``root`` or a split file is absent.
    DatasetFormatError
        A bad split file; or, without ``skip_missing``, clips whose frames are missing or
        unreadable, all listed in one error naming ``root``.
    """
    RELEASE.check_source(source)
    root = require_root(root, "MAFW")
    fold_lists = read_mafw_splits(root, folds, split_dir=split_dir)
    source_dir = root / "data" / source
    return locate_clips(root, source, fold_lists, lambda clip: _locate(source_dir, source, clip),
                        skip_missing=skip_missing, log=logger, title="MAFW",
                        classes=MAFW_CLASSES)


def _locate(source_dir: Path, source: str, clip: VideoClip) -> VideoClip | str:
    """The clip with its frame files or video, or why they cannot be used."""
    if source == CLIPS:
        return with_video(clip, source_dir, clip.clip_id)
    return with_frames(clip, source_dir / clip.clip_id)


def find_mafw_clips(root: Path, out_dir: Path) -> list[ClipJob]:
    """``root/data/clips/NNNNN.mp4`` (or another video format) for ``fervid prepare faces``;
    each goes to ``out_dir/data/faces/NNNNN/``, its frames named ``NNNNN_00001.jpg``...

    Raises
    ------
    PathNotFoundError
        No ``data/clips`` folder.
    """
    videos = Path(root) / "data" / CLIPS
    if not videos.is_dir():
        raise PathNotFoundError(f"{videos}: MAFW video folder not found (pass the MAFW folder "
                                "holding data/clips/)")
    found: dict[str, Path] = {}
    for suffix in reversed(VIDEO_SUFFIXES):  # the first suffix wins a shared id
        found.update({p.stem: p for p in videos.glob(f"*{suffix}")
                      if len(p.stem) == 5 and p.stem.isdigit()})
    return [ClipJob(stem, found[stem], out_dir / "data" / FACES / stem) for stem in sorted(found)]


register_dataset(DatasetSpec(
    name=DATASET, subject="", layouts=("video", "cropped"), protocols=("kfold",),
    read_splits=read_mafw, classes={"11class": MAFW_CLASSES},
    labels_from=f"{SPLIT_DIR}/set_N/{{train,test}}.txt",
    # Film and TV clips: heads move, one warp per frame (as DFEW). The folds are copied, so the
    # faces are a complete MAFW folder.
    prepare=PrepareHook(find_mafw_clips, "data/clips/NNNNN.mp4", align="frame",
                        copies=("Train & Test Set",))))
