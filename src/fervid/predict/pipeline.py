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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fervid.errors import FervidError, OptionError
from fervid.faces import FaceTrack, align_face, read_video_frames, track_faces
from fervid.faces.detection import DlibFaceDetector, FaceDetector
from fervid.faces.tracking import FaceChooser, landmark_jitter
from fervid.predict.frames import frame_crop, frame_inputs, frame_target
from fervid.predict.outputs import (
    write_annotated_video,
    write_frame_probs_csv,
    write_predictions_json,
    write_timeline,
)
from fervid.predict.windows import Window, sliding_windows, window_input, window_means
from fervid.progress import progress_bar
from fervid.runs.checkpoint import Checkpoint, build_model_from_checkpoint, load_checkpoint

#: How frames are decoded for each checkpoint pixel mode.
_PIXEL_FORMATS = {"gray": "gray", "rgb": "rgb24", "bgr": "bgr24"}
#: Per-stage times, in the order the pipeline runs them.
STAGES = ("decode", "detect_track", "align", "representation", "model")


class PredictError(FervidError, ValueError):
    """A video that cannot be classified (e.g. no window with a face in every frame)."""


@dataclass(frozen=True)
class WindowPrediction:
    """Class probabilities of one window, frames ``start_frame..end_frame - 1``."""

    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    probs: tuple[float, ...]


@dataclass
class Prediction:
    """The result of :func:`predict_video`.

    ``probs`` is the clip-level result (``clip_method``: the mean of the windows'
    probabilities, or for frame models the mean over frames with a face); ``label`` its
    argmax. ``frame_probs`` ``(T, K)``: frame models' per-frame probabilities, NaN rows on
    frames without a face (None for window models). ``stage_s`` holds seconds per stage
    (:data:`STAGES`) and ``total``.
    """

    video: str
    checkpoint: str
    classes: tuple[str, ...]
    windows: list[WindowPrediction]
    probs: np.ndarray
    label: str
    fps: float
    n_frames: int
    stage_s: dict[str, float] = field(default_factory=dict)
    skipped: list[tuple[float, float]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    #: Mean frame-to-frame landmark motion (px of a 112 px crop), ``raw`` and ``smoothed``.
    landmark_jitter: dict[str, float] | None = None
    frame_probs: np.ndarray | None = None
    clip_method: str = "mean of window probabilities"
    #: Why the windows in ``skipped`` were left out.
    skip_reason: str = "no face in some frame"
    #: The face-choice rule and the most faces the detector saw in one frame.
    face: str = "largest"
    max_faces: int = 1
    #: How the face was aligned, and where the frame rate came from.
    alignment: str = ""
    fps_source: str = "container"

    @property
    def n_face_frames(self) -> int:
        """Frames with a face that were classified (frame models), else 0."""
        if self.frame_probs is None:
            return 0
        return int(np.isfinite(self.frame_probs).all(axis=1).sum())

    @property
    def label_index(self) -> int:
        return self.classes.index(self.label)

    @property
    def frames_per_second(self) -> float:
        """Video frames processed per second of wall time, end to end."""
        return self.n_frames / self.stage_s["total"] if self.stage_s.get("total") else 0.0


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
    _write_figures(prediction, track, usable, out)
    if annotate:
        prediction.files["annotated"] = out / "annotated.mp4"
        write_annotated_video(prediction.files["annotated"], read_video_frames(video),
                              frames.fps, track.boxes, _frame_labels(prediction, len(track)))
    prediction.stage_s = {k: round(v, 4) for k, v in prediction.stage_s.items()}
    prediction.stage_s["total"] = round(time.perf_counter() - started, 4)
    _write_predictions(prediction, ckpt, track, window_s, stride_s, onnx_path,
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


def _frame_labels(prediction: Prediction, n_frames: int) -> list[str | None]:
    """Per frame: the label and probability of the window whose centre is nearest (without
    windows, a frame model's own label of the frame)."""
    if not prediction.windows:
        if prediction.frame_probs is None:
            return [None] * n_frames
        return [None if not np.isfinite(row).all()
                else f"{prediction.classes[int(row.argmax())]} {row.max():.2f}"
                for row in prediction.frame_probs]
    centres = np.array([(w.start_frame + w.end_frame - 1) / 2 for w in prediction.windows])
    nearest = np.abs(np.arange(n_frames)[:, None] - centres[None]).argmin(axis=1)
    texts = []
    for w in prediction.windows:
        k = int(np.argmax(w.probs))
        texts.append(f"{prediction.classes[k]} {w.probs[k]:.2f}")
    return [texts[i] for i in nearest]


def _write_figures(prediction: Prediction, track: FaceTrack, windows: list[Window],
                   out: Path) -> None:
    """``timeline.png``, ``face_track.csv`` and (frame models) ``frame_probs.csv``;
    ``predictions.json`` is named first but written last (:func:`_write_predictions`), once
    the total time is known."""
    files = {"predictions": out / "predictions.json", "timeline": out / "timeline.png",
             "face_track": out / "face_track.csv"}
    probs = np.array([w.probs for w in prediction.windows]).reshape(-1, len(prediction.classes))
    times = np.arange(prediction.n_frames) / prediction.fps
    write_timeline(files["timeline"], np.array([w.start_s for w in windows]),
                   np.array([w.end_s for w in windows]), probs, list(prediction.classes),
                   f"{Path(prediction.video).name}: {prediction.label} (clip mean)",
                   frame_times=None if prediction.frame_probs is None else times,
                   frame_probs=prediction.frame_probs)
    track.write_csv(files["face_track"])
    if prediction.frame_probs is not None:
        files["frame_probs"] = out / "frame_probs.csv"
        write_frame_probs_csv(files["frame_probs"], times, prediction.frame_probs,
                              list(prediction.classes))
    prediction.files.update(files)


def _write_predictions(prediction: Prediction, ckpt: Checkpoint, track: FaceTrack,
                       window_s: float, stride_s: float, onnx_path: Path | str | None,
                       min_face_fraction: float | None) -> None:
    """``predictions.json``. Frame models add ``frames`` (one entry per frame with a face),
    ``min_face_fraction`` and ``n_face_frames``; every other key is the same for both kinds."""
    classes = list(prediction.classes)

    def named(row) -> dict[str, float]:
        return dict(zip(classes, (round(float(p), 6) for p in row), strict=True))

    payload = {
        "video": prediction.video,
        "checkpoint": prediction.checkpoint,
        "onnx": None if onnx_path is None else str(onnx_path),
        "model": ckpt.model_name,
        "input": {"representation": ckpt.input_spec.representation,
                  "size": ckpt.input_spec.size, "mode": ckpt.input_spec.mode,
                  "resize": ckpt.input_spec.resize, "alignment": prediction.alignment},
        "classes": classes,
        "label_order": ckpt.label_order,
        "fps": prediction.fps,
        "fps_source": prediction.fps_source,
        "n_frames": prediction.n_frames,
        "face_present_fraction": round(track.present_fraction, 4),
        "face": {"choice": prediction.face, "max_detected": prediction.max_faces},
        "landmark_jitter_px": prediction.landmark_jitter,
        "window_s": window_s,
        "stride_s": stride_s,
        "windows": [{"start_frame": w.start_frame, "end_frame": w.end_frame,
                     "start_s": w.start_s, "end_s": w.end_s,
                     "probs": named(w.probs),
                     "label": classes[int(np.argmax(w.probs))]} for w in prediction.windows],
        "skipped_windows": [{"start_s": round(a, 4), "end_s": round(b, 4),
                             "reason": prediction.skip_reason} for a, b in prediction.skipped],
        "clip": {"probs": named(prediction.probs),
                 "label": prediction.label, "index": prediction.label_index,
                 "method": prediction.clip_method},
        "stage_s": prediction.stage_s,
    }
    if prediction.frame_probs is not None:
        payload["min_face_fraction"] = min_face_fraction
        payload["n_face_frames"] = prediction.n_face_frames
        payload["frames"] = [
            {"frame": i, "time_s": round(i / prediction.fps, 4), "probs": named(row),
             "label": classes[int(row.argmax())]}
            for i, row in enumerate(prediction.frame_probs) if np.isfinite(row).all()]
    write_predictions_json(prediction.files["predictions"], payload)
