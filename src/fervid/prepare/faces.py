"""Crop and align the faces of raw dataset clips into the layouts fervid's readers load.

Every clip is read as a video (a folder's frames in numeric order, or an ``.mp4``); one face is
tracked through it (:func:`fervid.faces.track_faces`) and each frame is warped onto the
alignment template (:func:`fervid.faces.align_face`). Written under ``out_dir``::

    casme2  subXX/EPxx_yy[f]/reg_img{N}.jpg    the Cropped release's names (read_casme2, same sheet)
    samm    006/006_1_2/006_05562.jpg          the input's names (read_samm, same sheet)
    smic    [HS/]s1/micro/negative/s1_ne_01/image059447.bmp   the input's names (read_smic)
    dfew    Clip/clip_224x224/00001/00001_00001.jpg (frames numbered from 1) and a copy of
            EmoLabel_DataSplit/, so read_dfew(out_dir, source="clip_224x224") reads it
    ckplus  cohn-kanade-images/S052/001/S052_001_00000001.png (the input's names; grey PNGs
            stay grey), each sequence's Emotion/ and FACS/ folders copied and its Landmarks/
            files rewritten in crop pixels, so read_ckplus(out_dir) reads it
    _face_tracks/<clip key>.csv   per frame: status, box and 68 landmarks in source pixels
    prepare_faces.json            the settings, so a resumed run cannot mix settings

This module lists a release's clips, checks the settings and resumes: a re-run skips the
clips whose folder and track exist and agree on the frame count, and redoes the others. Each
clip's own work (track, align, register, write) is :func:`fervid.prepare.face_clip.prepare_clip`.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from fervid.datasets.registry import dataset_spec
from fervid.errors import OptionError
from fervid.faces import check_motion, dlib_model_path, template_points
from fervid.faces.prepared import PREPARED_SETTINGS
from fervid.prepare.face_clip import (
    ALIGNS,
    JPEG_QUALITY,
    FaceSettings,
    prepare_clip,
    registration_warps,
    tmp_dir_for,
)
from fervid.prepare.pool import OutputFolderError, check_settings, map_clips
from fervid.prepare.raw_clips import ClipJob, find_clips
from fervid.progress import progress_bar

SETTINGS_NAME = PREPARED_SETTINGS
TRACKS_DIR = "_face_tracks"

# The one-clip pieces are re-exported for the code that imports them from here.
__all__ = ["ALIGNS", "JPEG_QUALITY", "SETTINGS_NAME", "TRACKS_DIR", "FaceSettings",
           "PrepareFacesResult", "is_finished", "prepare_clip", "prepare_faces",
           "registration_warps", "track_csv_path"]


@dataclass
class PrepareFacesResult:
    """What :func:`prepare_faces` did.

    Attributes
    ----------
    written, skipped : int
        Clips written by this run; clips already finished (a resumed run), left untouched.
    frames : int
        Frames written by this run.
    frames_without_face : int
        Of those, frames where the track had no face, aligned with the nearest face's landmarks.
    failed : list of (str, str)
        ``(clip key, message)`` per clip that could not be prepared, in clip order.
    seconds : float
        Wall time of the clips' work.
    out : Path
        The output folder.
    """

    written: int = 0
    skipped: int = 0
    frames: int = 0
    frames_without_face: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    out: Path = Path()

    @property
    def ok(self) -> bool:
        """True when no clip failed."""
        return not self.failed


def track_csv_path(out_dir: Path, key: str) -> Path:
    """Where the face track of clip ``key`` is written."""
    return Path(out_dir) / TRACKS_DIR / f"{key}.csv"


def is_finished(job: ClipJob, track_csv: Path) -> bool:
    """The clip folder and its track exist and hold as many frames as the track has rows."""
    if not job.out_dir.is_dir() or not track_csv.is_file():
        return False
    with open(track_csv, "rb") as f:
        rows = sum(1 for _ in f) - 1
    written = sum(1 for e in os.scandir(job.out_dir) if e.is_file())
    return written == rows and (job.frames is None or rows == len(job.frames))


def _copy_release_folder(data_root: Path, out_dir: Path, name: str) -> None:
    """Copy the release's folder ``name`` (DFEW's split CSVs) so the output is a complete
    release (skipped if absent or already copied)."""
    src, dst = Path(data_root) / name, out_dir / name
    if src.is_dir() and not dst.exists():
        tmp = tmp_dir_for(dst)  # also removes the copies killed runs left
        shutil.copytree(src, tmp)
        os.rename(tmp, dst)


def prepare_faces(dataset: str, data_root: Path, out_dir: Path, *, size: int = 224,
                  margin: float = 0.1, template: str = "5point", align: str | None = None,
                  detector: str = "hog", detect_every: int = 5, clips: set[int] | None = None,
                  workers: int | None = None, progress: bool = True,
                  motion: str = "euclidean") -> PrepareFacesResult:
    """Write the aligned faces of every clip of a raw release (layouts: module docstring).

    Parameters
    ----------
    dataset : {'casme2', 'samm', 'smic', 'dfew', 'ckplus'}
        Which release ``data_root`` holds (see :func:`fervid.prepare.raw_clips.find_clips`).
    data_root, out_dir : Path
        The raw release and the output folder (created; must differ). Finished clips already
        in ``out_dir`` are kept (resume).
    size, margin, template
        Crop side in pixels, border around the face, and ``'5point'`` or ``'68point'`` (see
        :func:`fervid.faces.align_face`).
    align : {'clip', 'onset', 'frame', 'register'}, optional
        One warp per clip (from its mean landmarks, or from its first face's), one per frame,
        or the onset's then each frame registered onto the onset frame (see
        :class:`FaceSettings`); default: the release's (``PrepareHook.align``): ``frame``
        for dfew, ``onset`` for ckplus, ``clip`` for the micro-expression sets.
    detector : {'hog', 'cnn'}
        dlib face detector (frames shrunk to 480 px, upsampled once).
    detect_every : int
        Run the detector every N frames; the landmark tracker follows the face in between.
    clips : set of int, optional
        DFEW only: the clip numbers to prepare.
    workers : int, optional
        Processes (``spawn``; scripts need an ``if __name__ == "__main__":`` guard); default
        ``os.cpu_count()``; 1 works in this process.
    progress : bool
        Show a progress bar.
    motion : {'translation', 'euclidean', 'affine'}
        ``register`` only: the registration's motion model.

    Returns
    -------
    PrepareFacesResult
        A clip that fails (no face: ``no face found in <clip path>``; unreadable frames) is
        listed in ``failed``; the others are written.

    Raises
    ------
    FervidError
        Unusable input (:class:`~fervid.errors.PathNotFoundError`,
        :class:`~fervid.samples.DatasetFormatError`) or options
        (:class:`~fervid.errors.OptionError`), ``out_dir`` holding faces made with other
        settings (:class:`~fervid.prepare.pool.OutputFolderError`), or a missing dlib model
        (:class:`~fervid.faces.FaceModelMissingError`).
    """
    out_dir, data_root = Path(out_dir), Path(data_root)
    hook = dataset_spec(dataset, lambda s: s.prepare is not None,
                        "by prepare faces (it registers no raw layout)").prepare
    align = align or hook.align
    settings = FaceSettings(dataset, size, float(margin), template, align, detector, detect_every,
                            check_motion(motion))
    if align not in ALIGNS or detector not in ("hog", "cnn") or detect_every < 1:
        raise OptionError(f"need align clip|onset|frame|register, detector hog|cnn and "
                          f"detect_every >= 1, got {align!r}, {detector!r}, {detect_every}")
    template_points(template, size=size, margin=margin)  # checks size, margin and template
    dlib_model_path("shape_predictor_68_face_landmarks.dat")
    if detector == "cnn":
        dlib_model_path("mmod_human_face_detector.dat")
    if out_dir.resolve() == data_root.resolve():
        raise OutputFolderError(f"{out_dir} is the data folder itself: the faces would overwrite "
                                "its frames; choose another output folder")
    jobs = find_clips(dataset, data_root, out_dir, clips)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_settings(out_dir / SETTINGS_NAME, settings.stored(), "faces")
    for name in hook.copies:
        _copy_release_folder(data_root, out_dir, name)

    workers = max(1, workers or os.cpu_count() or 1)
    result = PrepareFacesResult(out=out_dir)
    csvs = {j.key: track_csv_path(out_dir, j.key) for j in jobs}
    todo = [j for j in jobs if not is_finished(j, csvs[j.key])]
    result.skipped = len(jobs) - len(todo)
    started = time.perf_counter()
    with progress_bar(progress and bool(todo)) as bar:
        task = bar.add_task("faces", total=len(todo), status="clips")

        def advance() -> None:
            bar.advance(task)

        results, errors = map_clips(
            prepare_clip, [(j.key, (j, settings, csvs[j.key], hook.grey)) for j in todo],
            workers=workers, advance=advance)
    counts = list(results.values())
    result.seconds = time.perf_counter() - started
    result.failed = [(j.key, errors[j.key]) for j in jobs if j.key in errors]
    result.written = len(todo) - len(errors)
    result.frames = sum(c for c, _ in counts)
    result.frames_without_face = sum(m for _, m in counts)
    return result
