"""Raw video → expression probabilities: decode, track the face, align, cut windows, classify.

:func:`predict_video` makes two passes over the video's frames (three with ``annotate``), so
memory holds the small aligned crops only, never the decoded frames. The first pass decodes
the luma plane only; the second decodes colour only for colour models:

1. decode + detect/track (:func:`fervid.faces.track_faces`) one face: the largest by default,
   or the one ``face`` names (:func:`fervid.faces.tracking.face_choice`);
2. decode + align every frame with a face to the checkpoint's input size and pixel mode;

then cuts sliding windows (seconds → frames with the video's mean frame rate; GIFs are timed
by their frame delays, see :mod:`fervid.faces.video`) and classifies, in one of two ways:

* window models (DSSI, dynamic image, apex, clip): each window's input is built as the model
  was trained (:func:`fervid.predict.windows.window_input`) and classified; windows with a
  frame without a face are skipped and listed. The clip's probabilities are the mean of the
  windows'.
* frame models (``fervid fit``, :mod:`fervid.predict.frames`): every frame with a face is
  classified alone; a window's probabilities are the mean of its face frames' (windows with a
  face in fewer than ``min_face_fraction`` of their frames are skipped and listed), and the
  clip's are the mean over all frames with a face, so each face frame counts once (windows
  overlap, and skipped windows would drop frames).

The model runs with torch, or with onnxruntime on an exported file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from fervid.errors import OptionError
from fervid.faces import FaceTrack, align_face, read_video_frames, track_faces
from fervid.faces.detection import DlibFaceDetector, FaceDetector
from fervid.faces.tracking import FaceChooser, landmark_jitter
from fervid.predict.frames import frame_crop, frame_inputs, frame_target
from fervid.predict.outputs import write_annotated_video
from fervid.predict.prediction import (  # noqa: F401  (re-exported)
    STAGES,
    PredictError,
    Prediction,
    WindowPrediction,
    frame_labels,
    write_figures,
    write_predictions,
)
from fervid.predict.windows import Window, sliding_windows, window_input, window_means
from fervid.progress import progress_bar
from fervid.runs.checkpoint import Checkpoint, build_model_from_checkpoint, load_checkpoint

#: How frames are decoded for each checkpoint pixel mode.
_PIXEL_FORMATS = {"gray": "gray", "rgb": "rgb24", "bgr": "bgr24"}


class _Timer:
    """Seconds spent per stage, summed over calls."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def timed_frames(self, frames: Iterable[np.ndarray],
                     advance: Callable[[], object]) -> Iterator[np.ndarray]:
        """``frames``, with the time spent producing each one added to ``decode``, calling
        ``advance()`` after each one is used (a progress bar)."""
        iterator = iter(frames)
        while True:
            started = time.perf_counter()
            try:
                frame = next(iterator)
            except StopIteration:
                self.seconds["decode"] += time.perf_counter() - started
                return
            self.seconds["decode"] += time.perf_counter() - started
            yield frame
            advance()


def predict_video(video: Path | str, checkpoint: Path | str | Checkpoint, *,
                  window_s: float = 1.0, stride_s: float = 0.5, out_dir: Path | str,
                  annotate: bool = False, onnx_path: Path | str | None = None,
                  detector: FaceDetector | None = None, detect_every: int = 5,
                  margin: float = 0.1, batch_size: int = 32,
                  refine_landmarks: bool = False, progress: bool = False,
                  face: str | FaceChooser = "largest",
                  min_face_fraction: float = 0.5) -> Prediction:
    """Classify the expression of the face in ``video`` over sliding windows.

    Parameters
    ----------
    video
        Any video PyAV reads, GIFs included.
    checkpoint
        A self-describing checkpoint or a run's fold model
        (:func:`fervid.runs.checkpoint.load_checkpoint`).
    window_s, stride_s
        Window length and step in seconds (converted with the video's frame rate).
    out_dir
        Receives ``predictions.json``, ``timeline.png``, ``face_track.csv``, for frame models
        ``frame_probs.csv`` and, with ``annotate``, ``annotated.mp4``.
    onnx_path
        Run the model from this exported file (:func:`fervid.predict.onnx.export_onnx`) with
        onnxruntime instead of torch.
    detector, detect_every
        Face detector (default dlib HOG on frames shrunk to 480 px, no upsampling: faces
        smaller than about 80 px in the shrunk frame are missed) and how often it runs; the
        landmark tracker follows the face in between.
    refine_landmarks
        Fit the landmarks twice on tracked frames (see :func:`fervid.faces.track_faces`);
        off by default, for speed.
    progress
        Show progress bars (frames tracked, frames aligned) with their ETA.
    margin
        Border around the aligned face (see :func:`fervid.faces.align_face`); frame models
        trained on FER2013 use that release's own face framing instead
        (:func:`fervid.predict.frames.frame_target`).
    batch_size
        Windows (frames, for frame models) per model call.
    face
        Which face to follow when several are in view: ``largest`` (default), ``left:N`` (the
        N-th from the left) or ``at:X,Y`` (nearest that pixel), applied when the track starts
        or is lost (:func:`fervid.faces.tracking.face_choice`).
    min_face_fraction
        Frame models: the least fraction of a window's frames with a face for the window to
        be kept.

    Raises
    ------
    FileNotFoundError
        ``video`` (:class:`~fervid.errors.PathNotFoundError`) or the checkpoint does not
        exist.
    fervid.faces.VideoReadError
        ``video`` is not a readable video (the message names it).
    fervid.faces.NoFaceFoundError
        No frame has a face: ``no face found in VIDEO``.
    PredictError
        No window has a face in every frame (window models), or the frame rate is unknown.
    fervid.errors.OptionError
        An invalid ``face`` rule or ``min_face_fraction``.
    """
    started = time.perf_counter()
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    spec = ckpt.input_spec
    if spec.representation == "flow":
        raise PredictError(
            f"{ckpt.path}: model {ckpt.model_name!r} takes precomputed optical-flow images "
            "(data.format: precomputed); predict builds dssi, global_di, apex, clip or frame "
            "inputs from video")
    per_frame = spec.representation == "frame"
    if per_frame and not 0 < min_face_fraction <= 1:
        raise OptionError(f"min_face_fraction must be in (0, 1], got {min_face_fraction}")
    out = Path(out_dir)
    timer = _Timer()
    frames = read_video_frames(video)
    if frames.fps <= 0:
        raise PredictError(f"{video}: the frame rate is unknown, cannot cut windows in seconds")
    if per_frame:
        alignment, target = frame_target(ckpt, margin)
        side = spec.resize or spec.size

        def crop(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
            return frame_crop(frame, landmarks, target, side)
    else:
        alignment, side = f"5point, margin {margin:g}", spec.size

        def crop(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
            return align_face(frame, landmarks, size=side, margin=margin).image
    detect_started = time.perf_counter()
    with progress_bar(progress) as bar:
        total = frames.frame_count or None
        task = bar.add_task("detect + track", total=total, status="frames")
        # Detection and landmarks work on intensity: decode the luma plane only.
        gray = timer.timed_frames(frames.as_format("gray"), lambda: bar.advance(task))
        track = track_faces(gray,
                            detector=detector or DlibFaceDetector(upsample=0, max_side=480),
                            detect_every=detect_every, fps=frames.fps, source=str(video),
                            refine=refine_landmarks, choose=face)
        timer.seconds["detect_track"] = (time.perf_counter() - detect_started
                                         - timer.seconds["decode"])
        task = bar.add_task("align", total=len(track), status="frames")
        source = timer.timed_frames(frames.as_format(_PIXEL_FORMATS[spec.mode]),
                                    lambda: bar.advance(task))
        crops, present = _aligned_crops(timer, source, track, crop, side, spec.channels)

    if per_frame:
        result = _classify_frames(ckpt, crops, present, frames.fps, timer, onnx_path,
                                  batch_size, window_s, stride_s, min_face_fraction)
    else:
        result = _classify_windows(ckpt, crops, track, frames.fps, timer, onnx_path,
                                   batch_size, window_s, stride_s, video)
    usable, probs, skipped, clip_probs, frame_probs = result
    prediction = Prediction(
        video=str(video), checkpoint=str(ckpt.path), classes=ckpt.classes,
        windows=[WindowPrediction(w.start, w.end, round(w.start_s, 4), round(w.end_s, 4),
                                  tuple(float(p) for p in row))
                 for w, row in zip(usable, probs, strict=True)],
        probs=clip_probs, label=ckpt.classes[int(clip_probs.argmax())], fps=frames.fps,
        n_frames=len(track), stage_s=dict(timer.seconds),
        skipped=[(w.start_s, w.end_s) for w in skipped], landmark_jitter=_jitter(track),
        frame_probs=frame_probs, face=face if isinstance(face, str) else "custom",
        max_faces=int(track.n_faces.max()) if track.n_faces is not None else 1,
        alignment=alignment, fps_source=frames.fps_source)
    if per_frame:
        prediction.clip_method = "mean of frame probabilities over frames with a face"
        prediction.skip_reason = f"face in fewer than {min_face_fraction:.0%} of its frames"
    write_figures(prediction, track, usable, out)
    if annotate:
        prediction.files["annotated"] = out / "annotated.mp4"
        write_annotated_video(prediction.files["annotated"], read_video_frames(video),
                              frames.fps, track.boxes, frame_labels(prediction, len(track)))
    prediction.stage_s = {k: round(v, 4) for k, v in prediction.stage_s.items()}
    prediction.stage_s["total"] = round(time.perf_counter() - started, 4)
    write_predictions(prediction, ckpt, track, window_s, stride_s, onnx_path,
                       min_face_fraction if per_frame else None)
    return prediction


#: What a classification returns: kept windows, their probabilities ``(W, K)``, skipped
#: windows, the clip's probabilities ``(K,)`` and the per-frame ones ``(T, K)`` (or None).
_Result = tuple[list[Window], np.ndarray, list[Window], np.ndarray, np.ndarray | None]


def _classify_windows(ckpt: Checkpoint, crops: np.ndarray, track: FaceTrack, fps: float,
                      timer: _Timer, onnx_path: Path | str | None, batch_size: int,
                      window_s: float, stride_s: float, video: Path | str) -> _Result:
    """Window models: one input per window with a face in every frame."""
    present = track.present
    if len(track) < 2:
        raise PredictError(f"{video}: {len(track)} frame decoded; a window needs at least 2")
    windows = sliding_windows(len(track), fps, window_s, stride_s)
    usable = [w for w in windows if present[w.start:w.end].all()]
    skipped = [w for w in windows if not present[w.start:w.end].all()]
    if not usable:
        raise PredictError(f"{video}: no {window_s:g} s window has a face in every frame "
                           f"(face in {track.present_fraction:.0%} of {len(track)} frames)")
    t0 = time.perf_counter()
    inputs = np.stack([window_input(crops[w.start:w.end], ckpt.input_spec) for w in usable])
    timer.seconds["representation"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    probs = _softmax(_classify(ckpt, inputs, onnx_path, batch_size))
    timer.seconds["model"] = time.perf_counter() - t0
    return usable, probs, skipped, probs.mean(axis=0), None


def _classify_frames(ckpt: Checkpoint, crops: np.ndarray, present: np.ndarray, fps: float,
                     timer: _Timer, onnx_path: Path | str | None, batch_size: int,
                     window_s: float, stride_s: float, min_face_fraction: float) -> _Result:
    """Frame models: every frame with a face alone, then window and clip means."""
    faces = np.flatnonzero(present)
    t0 = time.perf_counter()
    inputs = frame_inputs(crops[faces], ckpt.input_spec)
    timer.seconds["representation"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    frame_probs = np.full((len(present), len(ckpt.classes)), np.nan)
    frame_probs[faces] = _softmax(_classify(ckpt, inputs, onnx_path, batch_size))
    timer.seconds["model"] = time.perf_counter() - t0
    # A one-frame input (a still GIF) is one window of one frame.
    windows = (sliding_windows(len(present), fps, window_s, stride_s) if len(present) >= 2
               else [Window(0, len(present), fps)])
    usable, probs, skipped = window_means(frame_probs, present, windows, min_face_fraction)
    return usable, probs, skipped, frame_probs[faces].mean(axis=0), frame_probs


def _softmax(logits: np.ndarray) -> np.ndarray:
    return torch.from_numpy(logits).double().softmax(-1).numpy()


def _aligned_crops(timer: _Timer, frames: Iterable[np.ndarray], track: FaceTrack,
                   crop: Callable[[np.ndarray, np.ndarray], np.ndarray], size: int,
                   channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``(T, size, size, C) uint8`` crops ``crop(frame, landmarks)`` of ``frames`` (decoded in
    the model's pixel mode; zeros where no face) and the face mask; ``frames`` come through
    ``timer.timed_frames``."""
    present = track.present
    crops = np.zeros((len(track), size, size, channels), np.uint8)
    decode_before = timer.seconds["decode"]
    started = time.perf_counter()
    for index, frame in enumerate(frames):
        if index >= len(track) or not present[index]:
            continue
        crops[index] = crop(frame, track.landmarks[index]).reshape(size, size, -1)
    timer.seconds["align"] = (time.perf_counter() - started
                              - (timer.seconds["decode"] - decode_before))
    return crops, present


def _classify(ckpt: Checkpoint, inputs: np.ndarray, onnx_path: Path | str | None,
              batch_size: int) -> np.ndarray:
    """Logits ``(N, n_classes)`` of ``inputs``, in batches, with torch or onnxruntime."""
    if onnx_path is not None:
        from fervid.predict.onnx import OnnxClassifier

        model = OnnxClassifier(onnx_path)
        return np.concatenate([model(inputs[s:s + batch_size])
                               for s in range(0, len(inputs), batch_size)])
    model = build_model_from_checkpoint(ckpt)
    outputs = []
    with torch.inference_mode():
        for s in range(0, len(inputs), batch_size):
            outputs.append(model(torch.from_numpy(inputs[s:s + batch_size])).logits.numpy())
    return np.concatenate(outputs)


def _jitter(track: FaceTrack) -> dict[str, float] | None:
    """Mean frame-to-frame landmark motion in pixels of a 112 px aligned crop, before and
    after smoothing (it includes the face's real motion)."""
    try:
        return {"raw": round(landmark_jitter(track.raw_landmarks), 4),
                "smoothed": round(landmark_jitter(track.landmarks), 4), "crop_px": 112}
    except ValueError:  # no two consecutive frames with a face
        return None
