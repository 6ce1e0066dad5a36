"""CK+ (the Extended Cohn-Kanade set), as released.

Layout under the CK+ root::

    cohn-kanade-images/S052/001/S052_001_00000001.png ... S052_001_00000015.png   the frames
    Emotion/S052/001/S052_001_00000015_emotion.txt     one code, written "   3.0000000e+00"
    Landmarks/S052/001/S052_001_00000001_landmarks.txt  optional: 68 (x, y) rows per frame
    FACS/S052/001/S052_001_00000015_facs.txt            optional: (AU, intensity) rows

Every sequence runs from a neutral face to the apex of a posed expression: there is no offset.
A sample is one sequence: dataset ``'ckplus'``, subject ``'S052'``, clip ``'S052_001'`` (the
file-name prefix, so ids stay unique across subjects), onset the first frame number, apex and
offset the last (the frame the emotion file names), frames all of the sequence's images.

Emotion codes (the release's codebook): 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear,
5 happy, 6 sadness, 7 surprise. Only 327 of the 593 sequences carry an emotion file; the others
are counted and left out with a warning. A code 0 is read, but neutral is no expression class:
such a sequence gets ``label`` None under both protocols (``table.labelled()`` drops it), so
it is never silently taught as an expression.

``Landmarks/`` and ``FACS/`` are never required and never read by :func:`read_ckplus` (it lists
names only); :func:`ckplus_landmarks` and :func:`ckplus_facs` read them for one sample.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from fervid.datasets.ckplus_annotations import (  # noqa: F401  (the reader's public API)
    FACS_DIR,
    LANDMARKS_DIR,
    ckplus_facs,
    ckplus_landmarks,
    landmark_files,
    read_landmark_file,
)
from fervid.datasets.class_names import BASIC_CLASSES, require_class
from fervid.datasets.clip_jobs import ClipJob, folder_job
from fervid.datasets.frames import describe_numbers, index_frames, release_table
from fervid.datasets.image_folder import FaceImageSet
from fervid.datasets.registry import DatasetSpec, PrepareHook, ReadRequest, register_dataset
from fervid.datasets.sheets import AnnotationWarning, check_protocol, require_dir
from fervid.errors import OptionError
from fervid.samples import ClipProblem, DatasetFormatError, Sample, SampleTable

DATASET = "ckplus"
FPS = 30.0

IMAGES_DIR = "cohn-kanade-images"
EMOTION_DIR = "Emotion"

#: Emotion code -> canonical class name (the codebook writes "happy"; fervid says happiness).
CKPLUS_CODES: dict[int, str] = {
    code: require_class(name, "CK+ codebook") for code, name in enumerate(
        ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"))}

#: Protocol name -> class names, in label order. ``7class``: codes 1..7 (label = code - 1);
#: ``6class``: the six basic emotions, contempt left out.
CKPLUS_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "7class": tuple(CKPLUS_CODES[code] for code in range(1, 8)),
    "6class": tuple(c for c in BASIC_CLASSES if c != "neutral"),
}

SUBJECT_DIR = re.compile(r"S\d+")
SEQUENCE_DIR = re.compile(r"\d+")
#: ``S052_001_00000015.png``; the last group is the frame number.
FRAME = re.compile(r"S\d+_\d+_(\d+)\.png", re.IGNORECASE)
EMOTION_FILE = re.compile(r"(S\d+)_(\d+)_(\d+)_emotion\.txt")


def _number_sorted(names: list[str]) -> list[str]:
    # S52 before S100 even where padding differs; 001 before 010.
    return sorted(names, key=lambda n: (int(re.sub(r"\D", "", n) or 0), n))


def _subdirs(folder: Path, pattern: re.Pattern[str]) -> list[str]:
    if not folder.is_dir():
        return []
    return _number_sorted([p.name for p in folder.iterdir()
                           if p.is_dir() and pattern.fullmatch(p.name)])


def ckplus_sequences(root: Path) -> list[tuple[str, str]]:
    """``(subject, sequence)`` of every sequence folder under ``root/cohn-kanade-images``
    (``('S052', '001')``), in numeric order; folders with other names are ignored."""
    images = Path(root) / IMAGES_DIR
    return [(s, q) for s in _subdirs(images, SUBJECT_DIR) for q in _subdirs(images / s,
                                                                          SEQUENCE_DIR)]


def _sequence_problem(text: str, subject: str, sequence: str) -> ClipProblem:
    """A problem of one sequence's frames, which ``skip_missing`` leaves out."""
    return ClipProblem(text, DATASET, subject, f"{subject}_{sequence}")


def read_emotion_code(path: Path) -> tuple[int | None, str | None]:
    """The code of one emotion file: ``(code, None)``, or ``(None, problem)`` for a file that
    does not hold exactly one whole number in 0..7 (or cannot be read)."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as err:
        return None, f"cannot read: {err.strerror or err}"
    values = text.split()
    if len(values) != 1:
        return None, f"needs one emotion code (e.g. '3.0000000e+00'), found {text.strip()[:40]!r}"
    try:
        value = float(values[0])
    except ValueError:
        return None, f"{values[0][:40]!r} is not a number"
    if not value.is_integer() or not 0 <= value <= 7:
        return None, f"emotion code {values[0]!r} is not a whole number in 0..7"
    return int(value), None


def _emotion_codes(root: Path, sequences: set[tuple[str, str]],
                   last_frames: Mapping[tuple[str, str], int]
                   ) -> tuple[dict[tuple[str, str], int], list[str]]:
    """Code per labelled sequence from ``root/Emotion``, and the problems found."""
    codes: dict[tuple[str, str], int] = {}
    problems: list[str] = []
    emotion = root / EMOTION_DIR
    for subject in _subdirs(emotion, SUBJECT_DIR):
        for sequence in _subdirs(emotion / subject, SEQUENCE_DIR):
            folder = emotion / subject / sequence
            where = f"{EMOTION_DIR}/{subject}/{sequence}"
            files = sorted(p for p in folder.iterdir() if EMOTION_FILE.fullmatch(p.name))
            if not files:
                continue  # the release keeps empty folders for unlabelled sequences
            if len(files) > 1:
                problems.append(f"{where}: {len(files)} emotion files, expected one: "
                                f"{', '.join(p.name for p in files)}")
                continue
            path = files[0]
            rel = f"{where}/{path.name}"
            name_subject, name_sequence, frame = EMOTION_FILE.fullmatch(path.name).groups()
            if (name_subject, name_sequence) != (subject, sequence):
                problems.append(f"{rel}: named for {name_subject}/{name_sequence}, not the "
                                f"folder's sequence {subject}/{sequence}")
                continue
            key = (subject, sequence)
            if key not in sequences:
                problems.append(_sequence_problem(
                    f"{rel}: emotion file for a sequence that does not exist (no folder "
                    f"{IMAGES_DIR}/{subject}/{sequence}/)", subject, sequence))
                continue
            code, problem = read_emotion_code(path)
            if problem:
                problems.append(f"{rel}: {problem}")
                continue
            if key in last_frames and int(frame) != last_frames[key]:
                problems.append(_sequence_problem(
                    f"{rel}: names frame {int(frame)}, but the sequence's last frame is "
                    f"{last_frames[key]} (the emotion is coded at the apex, the last frame)",
                    subject, sequence))
                continue
            codes[key] = int(code)
    return codes, problems


def _scan_frames(root: Path) -> tuple[dict[tuple[str, str], tuple[int, tuple[Path, ...]]],
                                      set[tuple[str, str]], list[str]]:
    """``(first frame, frames)`` per usable sequence, every sequence folder, and the problems."""
    found: dict[tuple[str, str], tuple[int, tuple[Path, ...]]] = {}
    problems: list[str] = []
    folders = ckplus_sequences(root)
    for subject, sequence in folders:
        where = f"{IMAGES_DIR}/{subject}/{sequence}"
        index = index_frames(root / IMAGES_DIR / subject / sequence, FRAME) or {}
        if not index:
            problems.append(_sequence_problem(f"{where}: no frames named "
                                              f"{subject}_{sequence}_<N>.png", subject, sequence))
            continue
        first, last = min(index), max(index)
        gaps = [n for n in range(first, last + 1) if n not in index]
        if gaps:
            problems.append(_sequence_problem(
                f"{where}: frame numbers have gaps ({subject}_{sequence}_<N>.png missing for N "
                f"in {describe_numbers(gaps)})", subject, sequence))
            continue
        found[subject, sequence] = first, tuple(index[n] for n in range(first, last + 1))
    return found, set(folders), problems


def read_ckplus(root: Path, protocol: str = "7class", *,
                skip_missing: bool = False) -> SampleTable:
    """Read CK+ as released (layout: the module docstring).

    Parameters
    ----------
    root : Path
        The CK+ folder holding ``cohn-kanade-images/`` and ``Emotion/`` (the raw release, or
        the output of ``fervid prepare faces --dataset ckplus``).
    protocol : {'7class', '6class'}
        ``7class``: anger, contempt, disgust, fear, happiness, sadness, surprise (label = code
        - 1; 327 sequences, 118 subjects in the full release). ``6class``: the six basic
        emotions; contempt sequences stay in the table with ``label`` None, counted in a
        warning (``table.labelled()`` leaves them out).
    skip_missing : bool
        Leave out the labelled sequences whose frames are missing or have gaps, listed in
        ``skipped``.

    Returns
    -------
    SampleTable
        One sample per sequence with an emotion file, by subject then sequence number.
        Sequences without one are left out, counted in an :class:`AnnotationWarning`.

    Raises
    ------
    OptionError
        Unknown protocol (a ``ValueError``).
    DatasetFormatError
        Naming the root and listing every problem: no ``cohn-kanade-images/`` or ``Emotion/``
        folder, a sequence folder without frames or with gaps in their numbers, an emotion file
        that is not one code in 0..7, names another frame than the last, or belongs to no
        sequence.
    """
    check_protocol(protocol, CKPLUS_PROTOCOLS, DATASET)
    root = require_dir(root, "CK+")
    missing = [f"no {d}/ folder: pass the CK+ folder that holds {IMAGES_DIR}/ and "
               f"{EMOTION_DIR}/" for d in (IMAGES_DIR, EMOTION_DIR) if not (root / d).is_dir()]
    if missing:
        raise DatasetFormatError(root, missing)
    frames, folders, problems = _scan_frames(root)
    last = {key: first + len(files) - 1 for key, (first, files) in frames.items()}
    # A folder without frames is already a problem; its emotion file is not reported again.
    codes, more = _emotion_codes(root, folders, last)
    classes = CKPLUS_PROTOCOLS[protocol]
    label_of = {name: i for i, name in enumerate(classes)}
    samples = []
    for (subject, sequence), (first, files) in frames.items():
        if (subject, sequence) not in codes:
            continue
        emotion = CKPLUS_CODES[codes[subject, sequence]]
        end = first + len(files) - 1
        samples.append(Sample(DATASET, subject, f"{subject}_{sequence}", first, end, end,
                              emotion, label_of.get(emotion), files))
    table = release_table(root, samples, problems + more, classes, protocol,
                          skip_missing=skip_missing)
    dropped = {p.clip for p in table.skipped}
    unlabelled = sum(key not in codes and f"{key[0]}_{key[1]}" not in dropped for key in frames)
    if unlabelled:
        warnings.warn(f"CK+ {root}: {unlabelled} of {len(frames)} sequences have no emotion "
                      f"file (unlabelled); left out", AnnotationWarning, stacklevel=2)
    outside = Counter(s.emotion for s in samples if s.label is None)
    if outside:
        counts = ", ".join(f"{n} {e}" for e, n in sorted(outside.items()))
        warnings.warn(f"CK+ {root}: {counts} sequence(s) outside the {protocol} protocol "
                      f"(label None; table.labelled() leaves them out)", AnnotationWarning,
                      stacklevel=2)
    return table


def _subject_order(subject: str) -> tuple[int, str]:
    digits = re.sub(r"\D", "", subject)
    return (int(digits) if digits else -1), subject


def ckplus_subject_folds(table: SampleTable, n_folds: int = 10) -> dict[str, int]:
    """Subject-independent folds: the fold (0..n_folds-1) of every subject of ``table``.

    The assignment is fixed by the subject ids alone: the distinct subjects of the table are
    sorted by their number (``S005`` < ``S010`` < ``S052``) and dealt round-robin, the k-th
    subject (from 0) going to fold ``k % n_folds``. This is the common CK+ practice of sorting
    the subject ids in ascending order and sampling them with a step of ``n_folds``. Every
    subject's sequences lie in one fold, so no subject is trained and tested on. With as
    many folds as subjects it is leave-one-subject-out (which ``fervid loso`` runs anyway, by
    subject).

    Parameters
    ----------
    table : SampleTable
        Folds are dealt over the subjects it holds; pass ``table.labelled()`` to deal only the
        subjects with a sequence in the protocol (under ``7class`` the full release's labelled
        table has 118 subjects).
    n_folds : int
        At least 2 and at most the number of subjects.

    Raises
    ------
    OptionError
        ``n_folds`` out of range.
    """
    subjects = sorted({s.subject for s in table}, key=_subject_order)
    if not 2 <= n_folds <= len(subjects):
        raise OptionError(f"n_folds must be between 2 and the number of subjects "
                          f"({len(subjects)}), got {n_folds}")
    return {subject: k % n_folds for k, subject in enumerate(subjects)}


def ckplus_clip_jobs(root: Path, out_dir: Path) -> list[ClipJob | None]:
    """One ``fervid prepare faces`` job per CK+ sequence folder (None for one without frames);
    key ``S052/001``, every sequence, labelled or not.

    Its frames go to ``out_dir/cohn-kanade-images/S052/001/`` with their names; its
    ``Emotion/`` and ``FACS/`` folders are copied with it and its ``Landmarks/`` files
    rewritten in crop pixels, where the release has them.

    Raises
    ------
    DatasetFormatError
        ``root`` has no ``cohn-kanade-images/`` folder.
    """
    images = root / IMAGES_DIR
    if not images.is_dir():
        raise DatasetFormatError(root, [f"no {IMAGES_DIR}/ folder: pass the CK+ folder "
                                        f"that holds {IMAGES_DIR}/ and Emotion/"])
    jobs: list[ClipJob | None] = []
    for subject, sequence in ckplus_sequences(root):
        job = folder_job(images, out_dir / IMAGES_DIR, images / subject / sequence, FRAME,
                         fps=FPS)
        if job is None:
            jobs.append(None)
            continue
        copies = tuple((root / d / subject / sequence, out_dir / d / subject / sequence)
                       for d in (EMOTION_DIR, FACS_DIR)
                       if (root / d / subject / sequence).is_dir())
        marks = landmark_files(root, subject, sequence)
        landmarks = landmarks_out = None
        if marks:
            numbers = [int(FRAME.fullmatch(f.name).group(1)) for f in job.frames]
            landmarks = tuple(marks.get(n) for n in numbers)
            landmarks_out = out_dir / LANDMARKS_DIR / subject / sequence
        jobs.append(replace(job, copies=copies, landmarks=landmarks,
                            landmarks_out=landmarks_out))
    return jobs


def read_ckplus_faces(root: Path) -> FaceImageSet:
    """The labelled sequences of :func:`read_ckplus` as still faces: each one's last (apex)
    frame, no split (``fervid fit``)."""
    table = read_ckplus(root).labelled()
    return FaceImageSet(SampleTable(
        [replace(s, frames=s.frames[-1:], onset=s.offset, apex=s.offset) for s in table],
        table.classes, table.protocol))


def _read(request: ReadRequest) -> SampleTable:
    return read_ckplus(request.root, request.protocol, skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="S052", layouts=("raw",), protocols=("loso", "holdout"), read=_read,
    read_faces=read_ckplus_faces, classes=CKPLUS_PROTOCOLS, labels_from="its Emotion/ files",
    # One warp per sequence, fitted to its neutral first frame (FaceSettings says why); a tree
    # of grey PNGs stays grey, at a third of the size.
    fps=FPS, prepare=PrepareHook(ckplus_clip_jobs, f"{IMAGES_DIR}/SXXX/NNN/SXXX_NNN_<N>.png",
                                 align="onset", grey=True)))
