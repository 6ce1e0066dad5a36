"""Raw video → expression probabilities: decode, track the face, align, cut windows, classify.

:func:`predict_video` makes two passes over the video's frames (three with ``annotate``), so
memory holds the small aligned crops only, never the decoded frames. The first pass decodes
the luma plane only; the second decodes colour only for colour models:

1. decode + detect/track (:func:`fervid.faces.track_faces`);
2. decode + align every frame with a face to the checkpoint's input size and pixel mode;

then cuts sliding windows (seconds → frames with the video's frame rate), builds each
window's input as the model was trained (:func:`fervid.predict.windows.window_input`) and runs
the model (torch, or onnxruntime on an exported file). Windows with a frame without a face are
skipped and listed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fervid.errors import FervidError
from fervid.faces import FaceTrack, align_face, read_video_frames, track_faces
from fervid.faces.detection import DlibFaceDetector, FaceDetector
from fervid.faces.tracking import landmark_jitter
from fervid.predict.outputs import (
    write_annotated_video,
    write_predictions_json,
    write_timeline,
)
from fervid.predict.windows import Window, sliding_windows, window_input
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

    ``probs`` is the clip-level result: the mean of the windows' probabilities; ``label`` its
    argmax. ``stage_s`` holds seconds per stage (:data:`STAGES`) and ``total``.
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
                  refine_landmarks: bool = False, progress: bool = False) -> Prediction:
    """Classify the expression of the face in ``video`` over sliding windows.

    Parameters
    ----------
    video
        Any video PyAV reads.
    checkpoint
        A self-describing checkpoint or a run's fold model
        (:func:`fervid.runs.checkpoint.load_checkpoint`).
    window_s, stride_s
        Window length and step in seconds (converted with the video's frame rate).
    out_dir
        Receives ``predictions.json``, ``timeline.png``, ``face_track.csv`` and, with
        ``annotate``, ``annotated.mp4``.
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
        Border around the aligned face (see :func:`fervid.faces.align_face`).
    batch_size
        Windows per model call.

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
        No window has a face in every frame, or the frame rate is unknown.
    """
    started = time.perf_counter()
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    spec = ckpt.input_spec
    if spec.representation == "flow":
        raise PredictError(
            f"{ckpt.path}: model {ckpt.model_name!r} takes precomputed optical-flow images "
            "(data.format: precomputed); predict builds dssi, global_di, apex or clip inputs "
            "from video")
    out = Path(out_dir)
    timer = _Timer()
    frames = read_video_frames(video)
    if frames.fps <= 0:
        raise PredictError(f"{video}: the frame rate is unknown, cannot cut windows in seconds")
    detect_started = time.perf_counter()
    with progress_bar(progress) as bar:
        total = frames.frame_count or None
        task = bar.add_task("detect + track", total=total, status="frames")
        # Detection and landmarks work on intensity: decode the luma plane only.
        gray = timer.timed_frames(frames.as_format("gray"), lambda: bar.advance(task))
        track = track_faces(gray,
                            detector=detector or DlibFaceDetector(upsample=0, max_side=480),
                            detect_every=detect_every, fps=frames.fps, source=str(video),
                            refine=refine_landmarks)
        timer.seconds["detect_track"] = (time.perf_counter() - detect_started
                                         - timer.seconds["decode"])
        task = bar.add_task("align", total=len(track), status="frames")
        source = timer.timed_frames(frames.as_format(_PIXEL_FORMATS[spec.mode]),
                                    lambda: bar.advance(task))
        crops, present = _aligned_crops(timer, source, track, spec.size, spec.channels, margin)

    if len(track) < 2:
        raise PredictError(f"{video}: {len(track)} frame decoded; a window needs at least 2")
    windows = sliding_windows(len(track), frames.fps, window_s, stride_s)
    usable = [w for w in windows if present[w.start:w.end].all()]
    skipped = [(w.start_s, w.end_s) for w in windows if not present[w.start:w.end].all()]
    if not usable:
        raise PredictError(f"{video}: no {window_s:g} s window has a face in every frame "
                           f"(face in {track.present_fraction:.0%} of {len(track)} frames)")
    t0 = time.perf_counter()
    inputs = np.stack([window_input(crops[w.start:w.end], spec) for w in usable])
    timer.seconds["representation"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    logits = _classify(ckpt, inputs, onnx_path, batch_size)
    probs = torch.from_numpy(logits).double().softmax(-1).numpy()
    timer.seconds["model"] = time.perf_counter() - t0

    clip_probs = probs.mean(axis=0)
    prediction = Prediction(
        video=str(video), checkpoint=str(ckpt.path), classes=ckpt.classes,
        windows=[WindowPrediction(w.start, w.end, round(w.start_s, 4), round(w.end_s, 4),
                                  tuple(float(p) for p in row))
                 for w, row in zip(usable, probs, strict=True)],
        probs=clip_probs, label=ckpt.classes[int(clip_probs.argmax())], fps=frames.fps,
        n_frames=len(track), stage_s=dict(timer.seconds), skipped=skipped,
        landmark_jitter=_jitter(track))
    _write_figures(prediction, track, usable, out)
    if annotate:
        prediction.files["annotated"] = out / "annotated.mp4"
        write_annotated_video(prediction.files["annotated"], read_video_frames(video),
                              frames.fps, track.boxes, _frame_labels(prediction, len(track)))
    prediction.stage_s = {k: round(v, 4) for k, v in prediction.stage_s.items()}
    prediction.stage_s["total"] = round(time.perf_counter() - started, 4)
    _write_predictions(prediction, ckpt, track, window_s, stride_s, onnx_path)
    return prediction


def _aligned_crops(timer: _Timer, frames: Iterable[np.ndarray], track: FaceTrack, size: int,
                   channels: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """``(T, size, size, C) uint8`` crops of ``frames`` (decoded in the model's pixel mode;
    zeros where no face) and the face mask; ``frames`` come through ``timer.timed_frames``."""
    present = track.present
    crops = np.zeros((len(track), size, size, channels), np.uint8)
    decode_before = timer.seconds["decode"]
    started = time.perf_counter()
    for index, frame in enumerate(frames):
        if index >= len(track) or not present[index]:
            continue
        crops[index] = align_face(frame, track.landmarks[index], size=size,
                                  margin=margin).image.reshape(size, size, -1)
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
    """Per frame: the label and probability of the window whose centre is nearest."""
    if not prediction.windows:
        return [None] * n_frames
    centres = np.array([(w.start_frame + w.end_frame - 1) / 2 for w in prediction.windows])
    nearest = np.abs(np.arange(n_frames)[:, None] - centres[None]).argmin(axis=1)
    texts = []
    for w in prediction.windows:
        k = int(np.argmax(w.probs))
        texts.append(f"{prediction.classes[k]} {w.probs[k]:.2f}")
    return [texts[i] for i in nearest]


def _write_figures(prediction: Prediction, track: FaceTrack, windows: list[Window],
                   out: Path) -> None:
    """``timeline.png`` and ``face_track.csv``; ``predictions.json`` is named first but
    written last (:func:`_write_predictions`), once the total time is known."""
    files = {"predictions": out / "predictions.json", "timeline": out / "timeline.png",
             "face_track": out / "face_track.csv"}
    probs = np.array([w.probs for w in prediction.windows])
    write_timeline(files["timeline"], np.array([w.start_s for w in windows]),
                   np.array([w.end_s for w in windows]), probs, list(prediction.classes),
                   f"{Path(prediction.video).name}: {prediction.label} (clip mean)")
    track.write_csv(files["face_track"])
    prediction.files.update(files)


def _write_predictions(prediction: Prediction, ckpt: Checkpoint, track: FaceTrack,
                       window_s: float, stride_s: float, onnx_path: Path | str | None) -> None:
    classes = list(prediction.classes)
    payload = {
        "video": prediction.video,
        "checkpoint": prediction.checkpoint,
        "onnx": None if onnx_path is None else str(onnx_path),
        "model": ckpt.model_name,
        "input": {"representation": ckpt.input_spec.representation,
                  "size": ckpt.input_spec.size, "mode": ckpt.input_spec.mode},
        "classes": classes,
        "label_order": ckpt.label_order,
        "fps": prediction.fps,
        "n_frames": prediction.n_frames,
        "face_present_fraction": round(track.present_fraction, 4),
        "landmark_jitter_px": prediction.landmark_jitter,
        "window_s": window_s,
        "stride_s": stride_s,
        "windows": [{"start_frame": w.start_frame, "end_frame": w.end_frame,
                     "start_s": w.start_s, "end_s": w.end_s,
                     "probs": dict(zip(classes, (round(p, 6) for p in w.probs), strict=True)),
                     "label": classes[int(np.argmax(w.probs))]} for w in prediction.windows],
        "skipped_windows": [{"start_s": round(a, 4), "end_s": round(b, 4),
                             "reason": "no face in some frame"} for a, b in prediction.skipped],
        "clip": {"probs": dict(zip(classes, (round(float(p), 6) for p in prediction.probs),
                                   strict=True)),
                 "label": prediction.label, "index": prediction.label_index,
                 "method": "mean of window probabilities"},
        "stage_s": prediction.stage_s,
    }
    write_predictions_json(prediction.files["predictions"], payload)
