"""Releases of clips in the wild that ship their own folds (``fervid kfold``): the clip, fold and
split types their readers return, what each release declares, and the listing helpers they
share.

A release's ``read_splits(root, *, source, folds, skip_missing, split_dir) -> VideoSplit`` is
registered in its reader file (``DatasetSpec.read_splits``) and declared with
:func:`video_release`: its frame sources, fold numbers and classes, so ``fervid kfold`` checks a
config against them before anything is read. A hold-out release (one train/test split) is a
release with one fold, numbered 1.

Clip labels are 0-based indices into the release's classes, in the release's own label order.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fervid.datasets.frames import NUMBERED_IMAGE
from fervid.errors import OptionError, PathNotFoundError, path_error
from fervid.samples import DatasetFormatError

#: Video files a ``clips``-like source reads, the release's own first (as they are tried).
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".gif")

#: ``run.json``'s protocol of a k-fold run: ``<dataset>_<number of folds>fold``.
KFOLD_PROTOCOL = re.compile(r"[a-z0-9_]+_\d+fold")


@dataclass(frozen=True)
class VideoClip:
    """One clip.

    ``frames`` lists the image files in temporal order (``None`` for a video source or when
    only the split lists were read); ``video`` is the video file of a video source, else
    ``None``. ``label`` indexes the release's classes; ``emotion`` is that class's name.
    """

    clip_id: str
    label: int
    frames: tuple[Path, ...] | None = field(default=None, repr=False)
    video: Path | None = None
    emotion: str = ""

    @property
    def num_frames(self) -> int | None:
        """Frame files on disk, or ``None`` when not known without decoding (a video)."""
        return None if self.frames is None else len(self.frames)


@dataclass
class VideoFold:
    """The train and test clips of one of the release's folds (numbered as it numbers them)."""

    fold: int
    train: list[VideoClip]
    test: list[VideoClip]


@dataclass
class VideoSplit:
    """A release read for one frame source.

    ``missing`` holds the ids dropped with ``skip_missing=True`` (empty otherwise); ``classes``
    are the class names in label order.
    """

    root: Path
    source: str
    folds: list[VideoFold]
    missing: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()

    def fold(self, number: int) -> VideoFold:
        """The fold numbered ``number``."""
        for fold in self.folds:
            if fold.fold == number:
                return fold
        read = ", ".join(str(f.fold) for f in self.folds)
        raise ValueError(f"fold {number} was not read (folds read: {read})")

    @property
    def clips(self) -> list[VideoClip]:
        """Every distinct clip over the folds read, in order of first appearance."""
        seen: dict[str, VideoClip] = {}
        for fold in self.folds:
            for clip in fold.train + fold.test:
                seen.setdefault(clip.clip_id, clip)
        return list(seen.values())


@dataclass(frozen=True)
class VideoRelease:
    """What a release's ``read_splits`` offers.

    ``title``: the release as people write it (messages); ``sources``: its frame sources, the
    default first; ``folds``: its fold numbers; ``classes``: class names in its label order;
    ``split_dir``: where its split files are by default, relative to the release.
    """

    title: str
    sources: tuple[str, ...]
    folds: tuple[int, ...]
    classes: tuple[str, ...]
    split_dir: str

    @property
    def default_source(self) -> str:
        return self.sources[0]

    def check_source(self, source: str) -> None:
        """:class:`OptionError` naming the valid sources unless ``source`` is one."""
        if source not in self.sources:
            raise OptionError(f"unknown {self.title} source {source!r}; valid sources: "
                              f"{', '.join(self.sources)}")

    def check_folds(self, folds: Iterable[int]) -> list[int]:
        """``folds`` as ints; :class:`OptionError` naming the release's when one is not."""
        folds = [int(f) for f in folds]
        if not folds or any(f not in self.folds for f in folds):
            raise OptionError(f"{self.title} folds are {describe_folds(self.folds)}, "
                              f"got {folds}")
        return folds


def describe_folds(folds: tuple[int, ...]) -> str:
    """``'1..5'`` for a run of numbers, else the numbers (``'1'``: a single train/test split)."""
    if len(folds) > 2 and list(folds) == list(range(folds[0], folds[-1] + 1)):
        return f"{folds[0]}..{folds[-1]}"
    return ", ".join(str(f) for f in folds)


def video_release(release: VideoRelease) -> Callable[[Callable[..., VideoSplit]],
                                                     Callable[..., VideoSplit]]:
    """Declare what the decorated ``read_splits`` offers (read back with :func:`release_of`)."""
    def declare(read: Callable[..., VideoSplit]) -> Callable[..., VideoSplit]:
        read.release = release
        return read
    return declare


def release_of(spec: Any) -> VideoRelease:
    """The :class:`VideoRelease` of a registered ``DatasetSpec`` (its ``read_splits``).

    Raises
    ------
    OptionError
        The spec has no ``read_splits``, or one not declared with :func:`video_release`.
    """
    release = getattr(spec.read_splits, "release", None)
    if not isinstance(release, VideoRelease):
        raise OptionError(f"dataset {spec.name!r} declares no folds, sources and classes for "
                          "fervid kfold (its read_splits needs @video_release(...))")
    return release


def kfold_protocol(name: str, release: VideoRelease) -> str:
    """``run.json``'s protocol of a k-fold run on the release registered as ``name``:
    ``dfew_5fold``, ``mafw_5fold``, ``ferv39k_1fold`` (its train/test split)."""
    return f"{name}_{len(release.folds)}fold"


def is_kfold_protocol(protocol: object) -> bool:
    """Whether ``run.json``'s ``protocol`` is one of :func:`kfold_protocol`'s."""
    return isinstance(protocol, str) and KFOLD_PROTOCOL.fullmatch(protocol) is not None


def frame_files(folder: Path, pattern: re.Pattern[str], name: str) -> tuple[Path, ...] | str:
    """The files of ``folder`` matching ``pattern`` (group 1: the frame number) in numeric
    order, or why there are none; ``name`` is the folder as messages show it."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return f"frame folder {name}/ not found"
    except OSError as error:
        return f"frame folder {name}/ unreadable ({error.strerror or error})"
    found = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match:  # numeric order: 2.jpg before 10.jpg
            found.append((int(match.group(1)), entry.path))
    if not found:
        return f"frame folder {name}/ holds no frames named like {pattern.pattern}"
    return tuple(Path(path) for _, path in sorted(found))


def video_file(folder: Path, stem: str, name: str,
               suffixes: tuple[str, ...] = VIDEO_SUFFIXES) -> Path | str:
    """``folder/<stem><suffix>`` for the first of ``suffixes`` present, or why there is none;
    ``name`` is the video as messages show it, without suffix."""
    for suffix in suffixes:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path if path.stat().st_size else f"video {name}{suffix} is empty"
    return f"video {name}{suffixes[0]} not found"


def with_frames(clip: VideoClip, folder: Path,
                pattern: re.Pattern[str] = NUMBERED_IMAGE) -> VideoClip | str:
    """``clip`` with the frames of ``folder`` (see :func:`frame_files`), or why it has none."""
    frames = frame_files(folder, pattern, clip.clip_id)
    return frames if isinstance(frames, str) else dataclasses.replace(clip, frames=frames)


def with_video(clip: VideoClip, folder: Path, stem: str,
               suffixes: tuple[str, ...] = VIDEO_SUFFIXES) -> VideoClip | str:
    """``clip`` with its video ``folder/<stem><suffix>`` (see :func:`video_file`), or why it
    has none."""
    video = video_file(folder, stem, clip.clip_id, suffixes)
    return video if isinstance(video, str) else dataclasses.replace(clip, video=video)


def require_root(root: Path, title: str) -> Path:
    """``root`` as a Path; :class:`PathNotFoundError` when it is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise PathNotFoundError(f"{root}: {title} folder not found")
    return root


def build_folds(parts: Iterable[tuple[int, str, Path, list[tuple[str, int]]]],
                classes: tuple[str, ...], where: Path) -> list[VideoFold]:
    """Folds from split files read as ``(fold, part, file, rows)``, ``part`` ``train`` or
    ``test`` and ``rows`` ``(clip id, label)``; clips without frames.

    Raises
    ------
    DatasetFormatError
        Naming ``where``: a clip labelled differently in two files, or in both parts of a fold.
    """
    labels: dict[str, tuple[int, Path]] = {}
    problems: list[str] = []
    folds: dict[int, dict[str, list[VideoClip]]] = {}
    for number, part, path, rows in parts:
        for clip_id, label in rows:
            known = labels.setdefault(clip_id, (label, path))
            if known[0] != label:
                problems.append(f"clip {clip_id}: {classes[label]} in {_file(path)}, "
                                f"{classes[known[0]]} in {_file(known[1])}")
        folds.setdefault(number, {})[part] = [VideoClip(c, k, emotion=classes[k])
                                              for c, k in rows]
    for number, fold in folds.items():
        both = {c.clip_id for c in fold.get("train", [])} & {c.clip_id
                                                              for c in fold.get("test", [])}
        problems += [f"clip {c}: in both the training and the test list of fold {number}"
                     for c in sorted(both)]
    if problems:
        raise DatasetFormatError(where, problems)
    return [VideoFold(n, f.get("train", []), f.get("test", [])) for n, f in folds.items()]


def _file(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def locate_clips(root: Path, source: str, fold_lists: list[VideoFold],
                 locate: Callable[[VideoClip], VideoClip | str], *, skip_missing: bool,
                 log: logging.Logger, title: str, classes: tuple[str, ...]) -> VideoSplit:
    """The split with each clip's frames or video (``locate(clip)``: the clip with them, or
    why they cannot be used).

    Raises
    ------
    DatasetFormatError
        Without ``skip_missing``, clips that cannot be used: all checked first, then one error
        naming ``root`` and listing up to ten. With it they are dropped (a warning gives their
        count) and listed in ``missing``.
    """
    located: dict[str, VideoClip | str] = {}
    for fold in fold_lists:
        for clip in fold.train + fold.test:
            if clip.clip_id not in located:
                located[clip.clip_id] = locate(clip)
    problems = {cid: found for cid, found in located.items() if isinstance(found, str)}
    if problems and not skip_missing:
        raise DatasetFormatError(root, [f"clip {cid}: {why}" for cid, why in problems.items()])
    if problems:
        log.warning("%s %s: skipping %d of %d clips whose frames are missing or unreadable "
                    "(first: %s)", title, source, len(problems), len(located),
                    ", ".join(list(problems)[:5]))
    found = {cid: clip for cid, clip in located.items() if not isinstance(clip, str)}
    kept = [VideoFold(f.fold, [found[c.clip_id] for c in f.train if c.clip_id in found],
                      [found[c.clip_id] for c in f.test if c.clip_id in found])
            for f in fold_lists]
    return VideoSplit(root, source, kept, tuple(problems), classes)


def read_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of the non-blank lines of a split file, stripped.

    Raises
    ------
    PathNotFoundError, UserPathError
        ``path`` is absent or cannot be read.
    DatasetFormatError
        It is not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise PathNotFoundError(f"{path}: {what} not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetFormatError(path, [f"not UTF-8 text: {error}"]) from error
    except OSError as error:
        raise path_error(path, error, what) from error
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)
            if line.strip()]


def read_clip_list(path: Path, n_classes: int,
                   what: str) -> tuple[list[tuple[int, str, int]], list[str]]:
    """A clip list as DFER projects write one, ``<path> <frame count> <label>`` per line
    (label 0-based), as ``(line number, path, label)`` rows (the path as written, the label as
    given) and its bad lines (field count, frame count, label outside ``0..n_classes-1``, a path
    repeated), each with its number: the caller adds its own and reports them all at once.
    """
    rows: list[tuple[int, str, int]] = []
    problems: list[str] = []
    first: dict[str, int] = {}
    for line, text in read_lines(path, what):
        fields = text.split()
        if len(fields) != 3:
            problems.append(f"line {line}: {len(fields)} fields, expected 3 (<path> <frame "
                            "count> <label>)")
            continue
        name, count, label = fields
        if not count.isdigit():
            problems.append(f"line {line}: frame count {count!r} is not a number")
            continue
        if not label.isdigit() or int(label) >= n_classes:
            problems.append(f"line {line}: label {label!r} outside 0..{n_classes - 1}")
            continue
        if name in first:
            problems.append(f"line {line}: {name} repeats line {first[name]}")
            continue
        first[name] = line
        rows.append((line, name, int(label)))
    return rows, problems
