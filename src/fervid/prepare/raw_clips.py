"""The clips of a raw release, as :func:`fervid.prepare.faces.prepare_faces` reads them.

Each clip is a frame folder (CASME II, SAMM, SMIC, a CK+ sequence) or a video (DFEW), with the
folder its aligned faces go to under the output folder: the same path relative to the release,
so the dataset readers load the output as they load the release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from fervid.datasets import ckplus
from fervid.datasets.casme2 import CROPPED_FRAME, RAW_FRAME
from fervid.datasets.frames import index_frames
from fervid.datasets.samm import FRAME as SAMM_FRAME
from fervid.datasets.smic import CLIP_DIR as SMIC_CLIP_DIR
from fervid.datasets.smic import FRAME as SMIC_FRAME
from fervid.datasets.smic import SMIC_PROTOCOLS, find_hs
from fervid.errors import OptionError, PathNotFoundError, path_error
from fervid.samples import DatasetFormatError

DATASETS = ("casme2", "samm", "smic", "dfew", "ckplus")
#: The DFEW frame source the output is written as (``Clip/clip_224x224``), whatever the size.
DFEW_SOURCE = "clip_224x224"
#: Frame rates of the releases, passed to the tracker (FaceTrack.fps); 0 (unknown) for DFEW.
FPS = {"casme2": 200.0, "samm": 200.0, "smic": 100.0, "ckplus": 30.0}


@dataclass(frozen=True)
class ClipJob:
    """One clip: where its frames come from and where they go."""

    key: str                                  # 'sub01/EP02_01f', '00001': names the clip
    source: Path                              # the frame folder or the video
    out_dir: Path                             # its finished folder
    frames: tuple[Path, ...] | None = None    # folder clips: input files in temporal order
    names: tuple[str, ...] | None = None      # folder clips: output file names
    fps: float = 0.0
    #: (source folder, output folder) pairs copied with the clip (CK+: its Emotion/ and FACS/
    #: folders), so a finished clip always has its labels and a failed one has none.
    copies: tuple[tuple[Path, Path], ...] = ()
    #: CK+: the release's landmark file per frame (None where absent), rewritten in crop pixels
    #: into ``landmarks_out``.
    landmarks: tuple[Path | None, ...] | None = None
    landmarks_out: Path | None = None


def _natural(path: Path) -> tuple:
    # sub2 before sub10, s2_ne_3 before s2_ne_10.
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def _subdirs(folder: Path, pattern: str | None = None) -> list[Path]:
    try:
        dirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
    except OSError as err:  # no permission to list it
        raise path_error(folder, err, "data folder") from err
    return sorted((p for p in dirs if pattern is None or re.fullmatch(pattern, p.name)),
                  key=_natural)


def _folder_job(root: Path, out: Path, clip: Path, pattern: re.Pattern[str],
                rename=lambda name: name, fps: float = 0.0) -> ClipJob | None:
    index = index_frames(clip, pattern)
    if not index:
        return None
    frames = tuple(index[n] for n in sorted(index))
    rel = clip.relative_to(root)
    return ClipJob(rel.as_posix(), clip, out / rel, frames,
                   tuple(rename(f.name) for f in frames), fps)


def find_clips(dataset: str, data_root: Path, out_dir: Path,
               clips: set[int] | None = None) -> list[ClipJob]:
    """The clips of a raw release, in reading order.

    casme2: ``root/subXX/<clip>/img{N}.jpg`` (or ``reg_img{N}.jpg``); samm:
    ``root/NNN/<clip>/NNN_{N}.jpg``; smic: ``[HS/]s<N>/micro/<emotion>/<clip>/image{N}.bmp``
    (the micro clips the reader loads); dfew: ``root/Clip/original/NNNNN.mp4``, only the
    numbers in ``clips`` when given; ckplus: every sequence
    ``root/cohn-kanade-images/SXXX/NNN/SXXX_NNN_{N:08d}.png``, labelled or not (see
    :func:`ckplus_jobs`).

    Raises
    ------
    PathNotFoundError
        ``data_root`` (or DFEW's ``Clip/original``) is not a folder.
    UserPathError
        A folder of the release cannot be listed.
    OptionError
        An unknown dataset, ``clips`` given for another dataset or naming absent videos.
    DatasetFormatError
        No clip found.
    """
    root = Path(data_root)
    if dataset not in DATASETS:
        raise OptionError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    if not root.is_dir():
        raise PathNotFoundError(f"{root}: data folder not found")
    if clips is not None and dataset != "dfew":
        raise OptionError("a clip list selects DFEW videos; it does not apply to " + dataset)
    jobs: list[ClipJob | None] = []
    if dataset == "casme2":
        for clip in (c for s in _subdirs(root, r"sub\d+") for c in _subdirs(s)):
            raw = _folder_job(root, out_dir, clip, RAW_FRAME, lambda n: "reg_" + n, FPS[dataset])
            jobs.append(raw or _folder_job(root, out_dir, clip, CROPPED_FRAME, fps=FPS[dataset]))
        where = "subXX/<clip>/img{N}.jpg"
    elif dataset == "samm":
        jobs = [_folder_job(root, out_dir, clip, SAMM_FRAME, fps=FPS[dataset])
                for s in _subdirs(root, r"\d+") for clip in _subdirs(s)]
        where = "NNN/<clip>/NNN_{N}.jpg"
    elif dataset == "smic":
        hs = find_hs(root)
        emotions = SMIC_PROTOCOLS["3class"]
        jobs = [_folder_job(root, out_dir, clip, SMIC_FRAME, fps=FPS[dataset])
                for s in _subdirs(hs, r"s\d+") for e in emotions
                if (s / "micro" / e).is_dir() for clip in _subdirs(s / "micro" / e)
                if SMIC_CLIP_DIR.fullmatch(clip.name)]
        where = "s<N>/micro/<emotion>/<clip>/image{N}.bmp"
    elif dataset == "ckplus":
        jobs = ckplus_jobs(root, out_dir)
        where = f"{ckplus.IMAGES_DIR}/SXXX/NNN/SXXX_NNN_<N>.png"
    else:
        videos = root / "Clip" / "original"
        if not videos.is_dir():
            raise PathNotFoundError(f"{videos}: DFEW video folder not found (pass the DFEW "
                                    "folder holding Clip/original/)")
        found = {int(p.stem): p for p in videos.glob("*.mp4") if p.stem.isdigit()}
        absent = sorted((clips or set()) - set(found))
        if absent:
            raise OptionError(f"{len(absent)} requested clip(s) have no video in {videos}: "
                              f"{', '.join(f'{n:05d}' for n in absent[:10])}")
        jobs = [ClipJob(f"{n:05d}", found[n], out_dir / "Clip" / DFEW_SOURCE / f"{n:05d}")
                for n in sorted(found) if clips is None or n in clips]
        where = "Clip/original/NNNNN.mp4"
    kept = [j for j in jobs if j is not None]
    if not kept:
        raise DatasetFormatError(root, [f"no clips found (expected {where})"])
    return kept




def ckplus_jobs(root: Path, out_dir: Path) -> list[ClipJob | None]:
    """One job per CK+ sequence folder (None for one without frames); key ``S052/001``.

    Its frames go to ``out_dir/cohn-kanade-images/S052/001/`` with their names; its
    ``Emotion/`` and ``FACS/`` folders are copied with it and its ``Landmarks/`` files
    rewritten in crop pixels, where the release has them.

    Raises
    ------
    DatasetFormatError
        ``root`` has no ``cohn-kanade-images/`` folder.
    """
    images = root / ckplus.IMAGES_DIR
    if not images.is_dir():
        raise DatasetFormatError(root, [f"no {ckplus.IMAGES_DIR}/ folder: pass the CK+ folder "
                                        f"that holds {ckplus.IMAGES_DIR}/ and Emotion/"])
    jobs: list[ClipJob | None] = []
    for subject, sequence in ckplus.ckplus_sequences(root):
        job = _folder_job(images, out_dir / ckplus.IMAGES_DIR, images / subject / sequence,
                          ckplus.FRAME, fps=FPS["ckplus"])
        if job is None:
            jobs.append(None)
            continue
        copies = tuple((root / d / subject / sequence, out_dir / d / subject / sequence)
                       for d in (ckplus.EMOTION_DIR, ckplus.FACS_DIR)
                       if (root / d / subject / sequence).is_dir())
        marks = ckplus.landmark_files(root, subject, sequence)
        landmarks = landmarks_out = None
        if marks:
            numbers = [int(ckplus.FRAME.fullmatch(f.name).group(1)) for f in job.frames]
            landmarks = tuple(marks.get(n) for n in numbers)
            landmarks_out = out_dir / ckplus.LANDMARKS_DIR / subject / sequence
        jobs.append(replace(job, copies=copies, landmarks=landmarks,
                            landmarks_out=landmarks_out))
    return jobs
