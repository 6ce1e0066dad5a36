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

A clip's frames are written into a hidden temporary folder renamed into place once complete,
after its face track and its copied label folders; a re-run skips the clips whose folder and
track exist and agree on the frame count (resume), and redoes the others.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fervid.datasets.registry import dataset_spec
from fervid.errors import OptionError
from fervid.faces import (
    ANALYSIS_SIZE,
    DlibFaceDetector,
    align_face,
    check_motion,
    compose,
    dlib_model_path,
    read_video_frames,
    register_frames,
    template_points,
    track_faces,
    transform_points,
)
from fervid.files import TMP_MARK, remove_stale_tmp
from fervid.prepare.pool import OutputFolderError, check_settings, map_clips
from fervid.prepare.raw_clips import ClipJob, find_clips
from fervid.progress import progress_bar
from fervid.representation.frame_loading import FrameReadError

SETTINGS_NAME = "prepare_faces.json"
TRACKS_DIR = "_face_tracks"
JPEG_QUALITY = 95
ALIGNS = ("clip", "onset", "frame", "register")


@dataclass(frozen=True)
class FaceSettings:
    """Everything that changes the written pixels (stored in ``prepare_faces.json``).

    ``align``: ``clip`` warps every frame of a clip with one transform, fitted to the mean
    landmarks over the clip (micro-expression motion is about a pixel, smaller than the
    frame-to-frame landmark noise a per-frame warp would add); ``onset`` also uses one
    transform per clip, fitted to the landmarks of its first frame with a face (CK+: the
    neutral face); ``frame`` fits each frame (heads that move, as in DFEW).

    Why ``onset`` for CK+: a sequence goes from neutral to a full, posed expression with no
    offset, so its mean landmarks are pulled by the expression itself (a dropped jaw, stretched
    mouth corners) and the crop would move with the class. Fitted to the neutral face, every
    sequence starts on the template, and a fixed warp keeps the expression's motion in the
    frames (a per-frame warp would cancel part of it, and dynamic images are built from that
    motion); CK+ heads are near still, so little head motion is kept with it.

    ``register``: the ``onset`` warp, then each frame registered onto the onset frame from the
    regions an expression moves least (:mod:`fervid.faces.registration`, model ``motion``), so
    the head's drift and tremor leave the frames and the expression's motion stays; each frame
    is warped once, with the two warps composed.
    """

    dataset: str
    size: int = 224
    margin: float = 0.1
    template: str = "5point"
    align: str = "clip"
    detector: str = "hog"
    detect_every: int = 5
    motion: str = "euclidean"

    def stored(self) -> dict:
        """What ``prepare_faces.json`` holds: ``motion`` only under ``register`` (folders
        written before it existed stay resumable)."""
        d = asdict(self)
        if self.align != "register":
            d.pop("motion")
        return d


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


_DETECTORS: dict[str, DlibFaceDetector] = {}


def _detector(model: str) -> DlibFaceDetector:
    # One per process: loading the landmark model takes a fraction of a second.
    if model not in _DETECTORS:
        _DETECTORS[model] = DlibFaceDetector(model=model, upsample=1, max_side=480)
    return _DETECTORS[model]


def _read_frames(job: ClipJob):
    """The clip's frames as BGR arrays (what cv2.imencode writes back with true colours)."""
    if job.frames is None:
        yield from read_video_frames(job.source).as_format("bgr24")
        return
    for path in job.frames:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FrameReadError(path, "not an image OpenCV can decode")
        yield image


def _frame_landmarks(landmarks: np.ndarray, present: np.ndarray, align: str) -> np.ndarray:
    """Landmarks to align each frame with: the clip mean (``clip``), the first face's
    (``onset``, ``register``), or each frame's own, the nearest face's on frames without one
    (``frame``)."""
    have = np.flatnonzero(present)
    if align in ("clip", "onset", "register"):
        fixed = landmarks[have].mean(axis=0) if align == "clip" else landmarks[have[0]]
        return np.repeat(fixed[None], len(landmarks), axis=0)
    frames = np.arange(len(landmarks))
    after = have[np.searchsorted(have, frames).clip(0, len(have) - 1)]
    before = have[(np.searchsorted(have, frames, side="right") - 1).clip(0)]
    return landmarks[np.where(frames - before <= after - frames, before, after)]


def _encode(image: np.ndarray, name: str) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if name.lower().endswith(".jpg") else []
    ok, data = cv2.imencode(Path(name).suffix, image, params)
    if not ok:
        raise RuntimeError(f"encoding {name} failed")
    return data.tobytes()


def _grey_if_grey(crop: np.ndarray) -> np.ndarray:
    """One channel when the three are equal (a grey source, decoded as BGR), else ``crop``."""
    if crop.ndim == 3 and np.array_equal(crop[..., 0], crop[..., 1]) and np.array_equal(
            crop[..., 0], crop[..., 2]):
        return np.ascontiguousarray(crop[..., 0])
    return crop


def _replace_dir(tmp: Path, dst: Path) -> None:
    """Move the finished folder ``tmp`` to ``dst``, replacing what is there."""
    if dst.exists():
        shutil.rmtree(dst)
    os.rename(tmp, dst)


def _tmp_dir(dst: Path) -> Path:
    """A fresh hidden temporary folder beside ``dst``, removing any a killed run left."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    for stale in dst.parent.glob(f".{dst.name}{TMP_MARK}*"):
        shutil.rmtree(stale, ignore_errors=True)
    return dst.parent / f".{dst.name}{TMP_MARK}{os.getpid()}"


def _write_landmarks(job: ClipJob, matrices: list[np.ndarray]) -> None:
    """CK+: the release's landmark files of the clip's frames, moved into crop pixels by each
    frame's warp and written in the release's format under ``job.landmarks_out``."""
    from fervid.datasets.ckplus import read_landmark_file

    tmp = _tmp_dir(job.landmarks_out)
    try:
        tmp.mkdir()
        for source, matrix in zip(job.landmarks, matrices, strict=True):
            if source is None:
                continue
            points = transform_points(read_landmark_file(source), matrix)
            (tmp / source.name).write_text("".join(f"   {x:.7e}   {y:.7e}\n" for x, y in points))
        _replace_dir(tmp, job.landmarks_out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _copy_with_clip(job: ClipJob) -> None:
    """Copy the clip's label folders (CK+ Emotion/, FACS/), each replacing its old copy."""
    for src, dst in job.copies:
        tmp = _tmp_dir(dst)
        try:
            shutil.copytree(src, tmp)
            _replace_dir(tmp, dst)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def registration_warps(job: ClipJob, settings: FaceSettings, track, points: np.ndarray
                        ) -> list[np.ndarray]:
    """Per frame, the ``(2, 3)`` warp in crop pixels taking its onset-aligned crop onto the
    onset's (:func:`fervid.faces.registration.register_frames`).

    Estimated on crops of at least ``ANALYSIS_SIZE`` px (a 48 px crop holds too few pixels for
    a sub-pixel estimate), then scaled to ``settings.size``; the mask and starting warps come
    from the tracked landmarks moved into those crops.
    """
    analysis = max(settings.size, ANALYSIS_SIZE)
    crops, landmarks = [], []
    for index, frame in enumerate(_read_frames(job)):
        if index >= len(track):
            break
        aligned = align_face(frame, points[index], size=analysis, margin=settings.margin,
                             template=settings.template)
        crops.append(cv2.cvtColor(aligned.image, cv2.COLOR_BGR2GRAY)
                     if aligned.image.ndim == 3 else aligned.image)
        landmarks.append(transform_points(track.landmarks[index], aligned.matrix))
    reference = int(np.flatnonzero(track.present)[0])
    reg = register_frames(crops, landmarks=np.stack(landmarks), motion=settings.motion,
                          reference=reference, analysis_size=0)
    k = settings.size / analysis
    scale, unscale = np.diag([k, k, 1.0]), np.diag([1 / k, 1 / k, 1.0])
    return [(scale @ np.vstack([m, [0, 0, 1]]) @ unscale)[:2] for m in reg.matrices]


def prepare_clip(job: ClipJob, settings: FaceSettings, track_csv: Path,
                 grey: bool = False) -> tuple[int, int]:
    """Track, align and write one clip; returns (frames written, frames without a face).

    The clip's copied folders and rewritten landmarks (CK+) are written before its frame
    folder is moved into place, so a finished clip always has them. ``grey``: a crop whose
    three channels are equal is written as one (``PrepareHook.grey``).

    Raises
    ------
    NoFaceFoundError
        ``no face found in <clip path>``.
    FrameReadError, VideoReadError, OSError
        An unreadable frame or video, naming it.
    """
    tmp = _tmp_dir(job.out_dir)
    try:
        track = track_faces(_read_frames(job), detector=_detector(settings.detector),
                             detect_every=settings.detect_every, fps=job.fps,
                             source=str(job.source))
        present = track.present
        points = _frame_landmarks(track.landmarks, present, settings.align)
        warps = (registration_warps(job, settings, track, points)
                 if settings.align == "register" else None)
        tmp.mkdir()
        count = 0
        matrices = []
        for index, frame in enumerate(_read_frames(job)):
            if index >= len(track):
                break
            aligned = align_face(frame, points[index], size=settings.size,
                                 margin=settings.margin, template=settings.template)
            image, matrix = aligned.image, aligned.matrix
            if warps is not None:  # one warp from the source frame: no second interpolation
                matrix = compose(warps[index], matrix)
                image = cv2.warpAffine(frame, matrix, (settings.size, settings.size),
                                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            matrices.append(matrix)
            crop = _grey_if_grey(image) if grey else image
            out_name = job.names[index] if job.names else f"{job.key}_{index + 1:05d}.jpg"
            (tmp / out_name).write_bytes(_encode(crop, out_name))
            count += 1
        if count != len(track):
            raise ValueError(f"{job.source}: {count} frames decoded for writing, {len(track)} "
                             "when tracking")
        remove_stale_tmp(track_csv)  # a killed run's half-written track of this clip
        track.write_csv(track_csv, with_landmarks=True)
        _copy_with_clip(job)
        if job.landmarks is not None and job.landmarks_out is not None:
            _write_landmarks(job, matrices)
        _replace_dir(tmp, job.out_dir)  # over an unfinished or outdated folder
        return count, int((~present).sum())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _copy_release_folder(data_root: Path, out_dir: Path, name: str) -> None:
    """Copy the release's folder ``name`` (DFEW's split CSVs) so the output is a complete
    release (skipped if absent or already copied)."""
    src, dst = Path(data_root) / name, out_dir / name
    if src.is_dir() and not dst.exists():
        tmp = _tmp_dir(dst)  # also removes the copies killed runs left
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
