"""FERV39k (Wang et al., CVPR 2022), as released: 38,935 clips of 22 scenes, 7 classes, one
train/test split (31,088 / 7,847), read as a release with one fold, numbered 1.

::

    FERV39k/
      0_7_LabelClips/<Scene>/<Emotion>/<id>.mp4           raw clips
      2_ClipsforFaceCrop/<Scene>/<Emotion>/<id>/<N>.jpg    face frames of each clip
      4_setups/All_scenes/train_All.csv, test_All.csv     the split, ``<Scene>/<Emotion>/<id>
                                                          <Emotion>`` per line

A clip is ``<Scene>/<Emotion>/<id>`` (``Action/Happy/0267``): ids repeat across scenes and
emotions. The split as DFER projects list it (DFER-CLIP's ``FERV39K_train.txt`` and
``FERV39K_test.txt``: ``<path ending in the clip> <frame count> <label>``, labels 0..6) is read
too, from ``split_dir``.

Classes (:data:`FERV39K_CLASSES`): Happy, Sad, Neutral, Angry, Surprise, Disgust, Fear, in
this order (the lists' labels 0..6, DFEW's order), named in fervid's vocabulary (happiness,
...). The official files name each clip's emotion twice (its folder and the label column);
every clip's emotion folder must agree with its label.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from fervid.datasets.class_names import canonical_class
from fervid.datasets.clip_jobs import ClipJob, subdirs
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

DATASET = "ferv39k"
#: The emotion folders, in label order (list label ``k`` is ``EMOTION_FOLDERS[k]``).
EMOTION_FOLDERS: tuple[str, ...] = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust",
                                    "Fear")
#: The seven classes in label order, in fervid's vocabulary.
FERV39K_CLASSES: tuple[str, ...] = tuple(canonical_class(f) for f in EMOTION_FOLDERS)
#: Frame sources: face frame folders, or the raw clips (videos).
FACES, VIDEOS = "2_ClipsforFaceCrop", "0_7_LabelClips"
#: The official split files, and the lists DFER projects write.
SPLIT_DIR = "4_setups/All_scenes"
SPLIT_FILES = {"train": "train_All.csv", "test": "test_All.csv"}
LIST_FILES = {"train": "FERV39K_train.txt", "test": "FERV39K_test.txt"}
_BY_NAME = {c: k for k, c in enumerate(FERV39K_CLASSES)}

RELEASE = VideoRelease(title="FERV39k", sources=(FACES, VIDEOS), folds=(1,),
                       classes=FERV39K_CLASSES, split_dir=SPLIT_DIR)


def _clip_key(path: str) -> tuple[str, int | None] | str:
    """``<Scene>/<Emotion>/<id>`` and its emotion's label from a path ending in it, or why
    it does not end so."""
    parts = [p for p in re.split(r"[\\/]+", path) if p]
    if len(parts) < 3:
        return f"path {path!r} does not end in <Scene>/<Emotion>/<id>"
    label = _BY_NAME.get(canonical_class(parts[-2]) or "")
    if label is None:
        return f"path {path!r}: emotion folder {parts[-2]!r} is none of " \
               f"{', '.join(EMOTION_FOLDERS)}"
    return "/".join(parts[-3:]), label


def read_split_file(path: Path) -> list[tuple[str, int]]:
    """One split file as ``(clip, label)`` rows: the official form (``<Scene>/<Emotion>/<id>
    <Emotion>``, a header line allowed) or a DFER list (``FERV39K_*.txt``).

    Raises
    ------
    PathNotFoundError
        ``path`` does not exist.
    DatasetFormatError
        Every bad line with its number: a path not ending in a clip, an unknown emotion, an
        emotion folder that disagrees with the label, a clip listed twice.
    """
    path = Path(path)
    if path.name in LIST_FILES.values():
        named, problems = read_clip_list(path, len(FERV39K_CLASSES), "FERV39k list")
    else:
        named, problems = _official_rows(path)
    rows, first = [], {}
    for line, name, label in named:
        key = _clip_key(name)
        if isinstance(key, str):
            problems.append(f"line {line}: {key}")
            continue
        clip, folder_label = key
        if label != folder_label:
            problems.append(f"line {line}: {clip} is in the {EMOTION_FOLDERS[folder_label]} "
                            f"folder but labelled {EMOTION_FOLDERS[label]}")
        elif clip in first:
            problems.append(f"line {line}: {clip} repeats line {first[clip]}")
        else:
            first[clip] = line
            rows.append((clip, label))
    if problems:
        raise DatasetFormatError(path, problems)
    return rows


def _official_rows(path: Path) -> tuple[list[tuple[int, str, int]], list[str]]:
    """``(line, path, label)`` of an official split file (``Action/Sad/0010 Sad``), and its
    bad lines."""
    rows, problems = [], []
    for line, text in read_lines(path, "FERV39k split file"):
        fields = [f for f in re.split(r"[\s,]+", text) if f]
        if line == 1 and not re.search(r"[\\/]", text):
            continue  # a header line: no clip path
        label = _BY_NAME.get(canonical_class(fields[-1]) or "") if len(fields) == 2 else None
        if len(fields) != 2:
            problems.append(f"line {line}: {len(fields)} fields, expected 2 (<Scene>/<Emotion>/"
                            "<id> <Emotion>)")
        elif label is None:
            problems.append(f"line {line}: emotion {fields[1]!r} is none of "
                            f"{', '.join(EMOTION_FOLDERS)}")
        else:
            rows.append((line, fields[0], label))
    return rows, problems


def split_files(root: Path | None, split_dir: Path | None = None) -> dict[str, Path]:
    """The train and test files: in ``split_dir`` when given, else in ``root/4_setups/
    All_scenes`` or ``root``; the official names first, then the DFER lists.

    Raises
    ------
    PathNotFoundError
        None found.
    """
    folders = [Path(split_dir)] if split_dir is not None else [root / SPLIT_DIR, root]
    for folder in folders:
        for names in (SPLIT_FILES, LIST_FILES):
            if any((folder / name).is_file() for name in names.values()):
                return {part: folder / name for part, name in names.items()}
    raise PathNotFoundError(
        f"{folders[0]}: no FERV39k split files ({' and '.join(SPLIT_FILES.values())}, or "
        f"{' and '.join(LIST_FILES.values())})")


def read_ferv39k_splits(split_dir: Path) -> list[VideoFold]:
    """The split alone (no frames needed): fold 1 of clips with ``frames=None``, from the
    official files or the DFER lists in ``split_dir``."""
    files = split_files(None, split_dir)
    parts = [(1, part, path, read_split_file(path)) for part, path in files.items()]
    return build_folds(parts, FERV39K_CLASSES, Path(split_dir))


@video_release(RELEASE)
def read_ferv39k(root: Path, *, source: str = FACES, folds: Iterable[int] = (1,),
                 skip_missing: bool = False, split_dir: Path | None = None) -> VideoSplit:
    """Read the FERV39k release at ``root`` for one frame source; names only, no pixel.

    Parameters
    ----------
    root : Path
        The FERV39k folder (holding ``2_ClipsforFaceCrop/`` or ``0_7_LabelClips/``).
    source : {'2_ClipsforFaceCrop', '0_7_LabelClips'}
        Face frame folders, or the raw clips.
    folds : iterable of int
        ``(1,)``: the train/test split is fold 1.
    skip_missing : bool
        Drop clips whose frames are missing or unreadable (a warning gives their count)
        instead of raising.
    split_dir : Path, optional
        The split files (see :func:`split_files`).

    Raises
    ------
    OptionError
        Unknown source or fold.
    PathNotFoundError
        ``root`` or the split files are absent.
    DatasetFormatError
        A bad split file; or, without ``skip_missing``, clips whose frames are missing or
        unreadable, all listed in one error naming ``root``.
    """
    RELEASE.check_source(source)
    RELEASE.check_folds(folds)
    root = require_root(root, "FERV39k")
    files = split_files(root, split_dir)
    parts = [(1, part, path, read_split_file(path)) for part, path in files.items()]
    fold_lists = build_folds(parts, FERV39K_CLASSES, files["train"].parent)
    return locate_clips(root, source, fold_lists, lambda clip: _locate(root / source, source,
                                                                         clip),
                        skip_missing=skip_missing, log=logger, title="FERV39k",
                        classes=FERV39K_CLASSES)


def _locate(source_dir: Path, source: str, clip: VideoClip) -> VideoClip | str:
    """The clip with its frame files or video, or why they cannot be used."""
    if source == VIDEOS:
        folder, _, stem = clip.clip_id.rpartition("/")
        return with_video(clip, source_dir / folder, stem)
    return with_frames(clip, source_dir / clip.clip_id)


def find_ferv39k_clips(root: Path, out_dir: Path) -> list[ClipJob]:
    """``root/0_7_LabelClips/<Scene>/<Emotion>/<id>.mp4`` for ``fervid prepare faces``; each
    goes to ``out_dir/2_ClipsforFaceCrop/<Scene>/<Emotion>/<id>/``, its frames named
    ``<Scene>_<Emotion>_<id>_NNNNN.jpg``.

    Raises
    ------
    PathNotFoundError
        No ``0_7_LabelClips`` folder.
    """
    videos = Path(root) / VIDEOS
    if not videos.is_dir():
        raise PathNotFoundError(f"{videos}: FERV39k video folder not found (pass the FERV39k "
                                f"folder holding {VIDEOS}/)")
    jobs = []
    for scene in subdirs(videos):
        for emotion in subdirs(scene):
            found = {}
            for suffix in reversed(VIDEO_SUFFIXES):  # the first suffix wins a shared id
                found.update({p.stem: p for p in emotion.glob(f"*{suffix}")})
            for stem in sorted(found):
                clip = f"{scene.name}/{emotion.name}/{stem}"
                jobs.append(ClipJob(clip.replace("/", "_"), found[stem],
                                    out_dir / FACES / clip))
    return jobs


register_dataset(DatasetSpec(
    name=DATASET, subject="", layouts=("video", "cropped"), protocols=("kfold",),
    read_splits=read_ferv39k, classes={"7class": FERV39K_CLASSES},
    labels_from="4_setups/All_scenes/{train,test}_All.csv",
    # Film and TV clips: heads move, one warp per frame (as DFEW). The split is copied, so the
    # faces are a complete FERV39k folder.
    prepare=PrepareHook(find_ferv39k_clips, f"{VIDEOS}/<Scene>/<Emotion>/<id>.mp4",
                        align="frame", copies=("4_setups",))))
