"""One raw clip's faces: tracked, aligned (and registered) and written, with what goes with it.

:func:`prepare_clip` is the work ``fervid prepare faces`` runs per clip, in a worker process
(:func:`fervid.prepare.faces.prepare_faces` lists the clips, checks the settings and resumes).
:class:`FaceSettings` holds everything that changes the written pixels. A clip's frames are
written into a hidden temporary folder renamed into place once complete, after its face track
and its copied label folders.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from fervid.faces import (
    ANALYSIS_SIZE,
    DlibFaceDetector,
    align_face,
    compose,
    read_video_frames,
    register_frames,
    track_faces,
    transform_points,
)
from fervid.files import TMP_MARK, remove_stale_tmp
from fervid.prepare.raw_clips import ClipJob
from fervid.representation.frame_loading import FrameReadError

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


_DETECTORS: dict[str, DlibFaceDetector] = {}


def face_detector(model: str) -> DlibFaceDetector:
    """The dlib detector ``model`` (``hog``, ``cnn``) on frames shrunk to 480 px, upsampled
    once; one per process (loading the landmark model takes a fraction of a second)."""
    if model not in _DETECTORS:
        _DETECTORS[model] = DlibFaceDetector(model=model, upsample=1, max_side=480)
    return _DETECTORS[model]


def read_clip_frames(job: ClipJob):
    """The clip's frames as BGR arrays (what cv2.imencode writes back with true colours)."""
    if job.frames is None:
        yield from read_video_frames(job.source).as_format("bgr24")
        return
    for path in job.frames:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FrameReadError(path, "not an image OpenCV can decode")
        yield image


def frame_landmarks(landmarks: np.ndarray, present: np.ndarray, align: str) -> np.ndarray:
    """Landmarks ``(T, 68, 2)`` to align each frame with: the clip mean (``clip``), the first
    face's (``onset``, ``register``), or each frame's own, the nearest face's on frames
    without one (``frame``)."""
    have = np.flatnonzero(present)
    if align in ("clip", "onset", "register"):
        fixed = landmarks[have].mean(axis=0) if align == "clip" else landmarks[have[0]]
        return np.repeat(fixed[None], len(landmarks), axis=0)
    frames = np.arange(len(landmarks))
    after = have[np.searchsorted(have, frames).clip(0, len(have) - 1)]
    before = have[(np.searchsorted(have, frames, side="right") - 1).clip(0)]
    return landmarks[np.where(frames - before <= after - frames, before, after)]


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
    for index, frame in enumerate(read_clip_frames(job)):
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


def clip_crops(job: ClipJob, settings: FaceSettings, track):
    """``(crop, matrix)`` per frame of the clip: its face aligned as ``settings`` say, BGR (or
    grey), and the ``(2, 3)`` warp from source pixels to crop pixels."""
    points = frame_landmarks(track.landmarks, track.present, settings.align)
    warps = (registration_warps(job, settings, track, points)
             if settings.align == "register" else None)
    for index, frame in enumerate(read_clip_frames(job)):
        if index >= len(track):
            break
        aligned = align_face(frame, points[index], size=settings.size, margin=settings.margin,
                             template=settings.template)
        image, matrix = aligned.image, aligned.matrix
        if warps is not None:  # one warp from the source frame: no second interpolation
            matrix = compose(warps[index], matrix)
            image = cv2.warpAffine(frame, matrix, (settings.size, settings.size),
                                   flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        yield image, matrix


# --- Writing a clip ------------------------------------------------------------------------

def encode_image(image: np.ndarray, name: str) -> bytes:
    """``image`` in the format of ``name``'s suffix (JPEG at :data:`JPEG_QUALITY`)."""
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


def replace_dir(tmp: Path, dst: Path) -> None:
    """Move the finished folder ``tmp`` to ``dst``, replacing what is there."""
    if dst.exists():
        shutil.rmtree(dst)
    os.rename(tmp, dst)


def tmp_dir_for(dst: Path) -> Path:
    """A fresh hidden temporary folder beside ``dst``, removing any a killed run left."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    for stale in dst.parent.glob(f".{dst.name}{TMP_MARK}*"):
        shutil.rmtree(stale, ignore_errors=True)
    return dst.parent / f".{dst.name}{TMP_MARK}{os.getpid()}"


def _write_landmarks(job: ClipJob, matrices: list[np.ndarray]) -> None:
    """CK+: the release's landmark files of the clip's frames, moved into crop pixels by each
    frame's warp and written in the release's format under ``job.landmarks_out``."""
    from fervid.datasets.ckplus import read_landmark_file

    tmp = tmp_dir_for(job.landmarks_out)
    try:
        tmp.mkdir()
        for source, matrix in zip(job.landmarks, matrices, strict=True):
            if source is None:
                continue
            points = transform_points(read_landmark_file(source), matrix)
            (tmp / source.name).write_text("".join(f"   {x:.7e}   {y:.7e}\n" for x, y in points))
        replace_dir(tmp, job.landmarks_out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _copy_with_clip(job: ClipJob) -> None:
    """Copy the clip's label folders (CK+ Emotion/, FACS/), each replacing its old copy."""
    for src, dst in job.copies:
        tmp = tmp_dir_for(dst)
        try:
            shutil.copytree(src, tmp)
            replace_dir(tmp, dst)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


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
    tmp = tmp_dir_for(job.out_dir)
    try:
        track = track_faces(read_clip_frames(job), detector=face_detector(settings.detector),
                            detect_every=settings.detect_every, fps=job.fps,
                            source=str(job.source))
        crops = clip_crops(job, settings, track)  # a generator: tracking's frames are gone
        tmp.mkdir()
        count = 0
        matrices = []
        for index, (image, matrix) in enumerate(crops):
            matrices.append(matrix)
            crop = _grey_if_grey(image) if grey else image
            out_name = job.names[index] if job.names else f"{job.key}_{index + 1:05d}.jpg"
            (tmp / out_name).write_bytes(encode_image(crop, out_name))
            count += 1
        if count != len(track):
            raise ValueError(f"{job.source}: {count} frames decoded for writing, {len(track)} "
                             "when tracking")
        remove_stale_tmp(track_csv)  # a killed run's half-written track of this clip
        track.write_csv(track_csv, with_landmarks=True)
        _copy_with_clip(job)
        if job.landmarks is not None and job.landmarks_out is not None:
            _write_landmarks(job, matrices)
        replace_dir(tmp, job.out_dir)  # over an unfinished or outdated folder
        return count, int((~track.present).sum())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
