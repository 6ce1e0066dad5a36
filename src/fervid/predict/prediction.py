"""What :func:`fervid.predict.pipeline.predict_video` returns, and the files it writes of it:
``predictions.json``, ``timeline.png``, ``face_track.csv`` and ``frame_probs.csv``.

An emotion model gives each window one softmax over its classes and a label (the argmax). An
AU detection model (``data.task: au``) gives each window one sigmoid per action unit; an AU
counts as present from :data:`AU_THRESHOLD` on, the fixed threshold of AU runs' metrics, and
no argmax is taken."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fervid.errors import FervidError
from fervid.faces import FaceTrack
from fervid.predict.outputs import (
    FrameProbsWriter,
    write_frame_probs_csv,
    write_predictions_json,
    write_timeline,
)
from fervid.predict.windows import Window
from fervid.runs import provenance
from fervid.runs.au_results import THRESHOLD as AU_THRESHOLD
from fervid.runs.checkpoint import Checkpoint

#: Per-stage times, in the order the pipeline runs them.
STAGES = ("decode", "detect_track", "align", "representation", "model")


class PredictError(FervidError, ValueError):
    """A video that cannot be classified (e.g. no window with a face in every frame)."""


def is_au_model(ckpt: Checkpoint) -> bool:
    """Whether ``ckpt`` detects action units (``data.task: au``): its classes are AUs and its
    outputs one sigmoid each, not one softmax."""
    return ckpt.config.get("data", {}).get("task") == "au"


def present_aus(probs, aus) -> list[str]:
    """The AUs of ``aus`` whose probability in ``probs`` ``(A,)`` reaches :data:`AU_THRESHOLD`."""
    return [a for a, p in zip(aus, probs, strict=True) if p >= AU_THRESHOLD]


def au_label(probs, aus) -> str:
    """The AUs present, joined by ``+`` (``AU4+AU12``), or ``none``."""
    return "+".join(present_aus(probs, aus)) or "none"


@dataclass(frozen=True)
class WindowPrediction:
    """Class probabilities (AU models: each AU's) of one window, frames
    ``start_frame..end_frame - 1``."""

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
    argmax, or for an AU model (``task`` ``au``, ``classes`` its AUs) the AUs present in it
    (:func:`au_label`). ``frame_probs`` ``(T, K)``: frame models' per-frame probabilities, NaN
    rows on frames without a face (None for window models). ``stage_s`` holds seconds per
    stage (:data:`STAGES`) and ``total``.
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
    #: Degrees (counter-clockwise) the frames were turned to be shown upright (the video's
    #: display matrix), and things the user should know about the input (e.g. a variable
    #: frame rate).
    rotation: int = 0
    notes: list[str] = field(default_factory=list)
    #: The face followed, frame by frame (boxes, raw and smoothed landmarks).
    track: FaceTrack | None = field(default=None, repr=False, compare=False)
    #: ``emotion`` (one softmax over ``classes``) or ``au`` (one sigmoid per AU).
    task: str = "emotion"

    @property
    def is_au(self) -> bool:
        return self.task == "au"

    @property
    def heading(self) -> str:
        """The clip's result in words: its label, or the AUs present."""
        return f"AUs present {self.label} (p >= {AU_THRESHOLD:g})" if self.is_au else self.label

    @property
    def highlighted(self) -> list[str]:
        """The classes to show as the result: the label, or the AUs present."""
        return present_aus(self.probs, self.classes) if self.is_au else [self.label]

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


def frame_labels(prediction: Prediction, n_frames: int) -> list[str | None]:
    """Per frame: the label and probability of the window whose centre is nearest (AU models:
    the AUs present in it, None when none is; without windows, a frame model's own label of
    the frame)."""
    if not prediction.windows:
        if prediction.frame_probs is None:
            return [None] * n_frames
        return [None if not np.isfinite(row).all()
                else f"{prediction.classes[int(row.argmax())]} {row.max():.2f}"
                for row in prediction.frame_probs]
    centres = np.array([(w.start_frame + w.end_frame - 1) / 2 for w in prediction.windows])
    # Centres increase: the nearest is one of the two around each frame (the earlier on a
    # tie), found without a frames x windows matrix (18,000 x 1,200 for 10 minutes).
    frames = np.arange(n_frames)
    after = np.clip(np.searchsorted(centres, frames), 1, max(len(centres) - 1, 1))
    before = after - 1
    nearest = np.where(np.abs(frames - centres[before]) <= np.abs(centres[after] - frames),
                       before, after) if len(centres) > 1 else np.zeros(n_frames, int)
    texts: list[str | None] = []
    for w in prediction.windows:
        if prediction.is_au:
            texts.append(" ".join(present_aus(w.probs, prediction.classes)) or None)
            continue
        k = int(np.argmax(w.probs))
        texts.append(f"{prediction.classes[k]} {w.probs[k]:.2f}")
    return [texts[i] for i in nearest]


def write_figures(prediction: Prediction, track: FaceTrack, windows: list[Window],
                   out: Path, frame_csv: FrameProbsWriter | None = None) -> None:
    """``timeline.png``, ``face_track.csv`` and (frame models) ``frame_probs.csv``, or
    with ``frame_csv`` (its rows streamed while predicting) that file moved into place;
    ``predictions.json`` is named first but written last (:func:`write_predictions`), once
    the total time is known."""
    files = {"predictions": out / "predictions.json", "timeline": out / "timeline.png",
             "face_track": out / "face_track.csv"}
    probs = np.array([w.probs for w in prediction.windows]).reshape(-1, len(prediction.classes))
    times = np.arange(prediction.n_frames) / prediction.fps
    name = Path(prediction.video).name
    title = (f"{name}: AUs present in the clip mean: {prediction.label}" if prediction.is_au
             else f"{name}: {prediction.label} (clip mean)")
    write_timeline(files["timeline"], np.array([w.start_s for w in windows]),
                   np.array([w.end_s for w in windows]), probs, list(prediction.classes),
                   title, frame_times=None if prediction.frame_probs is None else times,
                   frame_probs=prediction.frame_probs,
                   threshold=AU_THRESHOLD if prediction.is_au else None)
    track.write_csv(files["face_track"])
    if prediction.frame_probs is not None:
        files["frame_probs"] = out / "frame_probs.csv"
        if frame_csv is not None:
            frame_csv.commit()
        else:
            write_frame_probs_csv(files["frame_probs"], times, prediction.frame_probs,
                                  list(prediction.classes))
    prediction.files.update(files)


def write_predictions(prediction: Prediction, ckpt: Checkpoint, track: FaceTrack,
                       window_s: float, stride_s: float, onnx_path: Path | str | None,
                       min_face_fraction: float | None) -> None:
    """``predictions.json``. Frame models add ``frames`` (one entry per frame with a face),
    ``min_face_fraction`` and ``n_face_frames``; every other key is the same for both kinds,
    ``provenance`` (what made the prediction: :func:`fervid.runs.provenance.collect`) among
    them. An AU model's windows and clip hold ``au_probs`` (AU → probability) and
    ``aus_present`` instead of ``probs`` and ``label``, with ``threshold`` beside them."""
    classes = list(prediction.classes)

    def named(row) -> dict[str, float]:
        return dict(zip(classes, (round(float(p), 6) for p in row), strict=True))

    def scored(row) -> dict:
        if prediction.is_au:
            return {"au_probs": named(row), "aus_present": present_aus(row, classes)}
        return {"probs": named(row), "label": classes[int(np.argmax(row))]}

    payload = {
        "video": prediction.video,
        "checkpoint": prediction.checkpoint,
        "onnx": None if onnx_path is None else str(onnx_path),
        "model": ckpt.model_name,
        "input": {"representation": ckpt.input_spec.representation,
                  "size": ckpt.input_spec.size, "mode": ckpt.input_spec.mode,
                  "resize": ckpt.input_spec.resize, "alignment": prediction.alignment},
        "task": prediction.task,
        "classes": classes,
        "label_order": ckpt.label_order,
        **({"threshold": AU_THRESHOLD} if prediction.is_au else {}),
        "fps": prediction.fps,
        "fps_source": prediction.fps_source,
        "rotation": prediction.rotation,
        "notes": prediction.notes,
        "n_frames": prediction.n_frames,
        "face_present_fraction": round(track.present_fraction, 4),
        "face": {"choice": prediction.face, "max_detected": prediction.max_faces},
        "landmark_jitter_px": prediction.landmark_jitter,
        "window_s": window_s,
        "stride_s": stride_s,
        "windows": [{"start_frame": w.start_frame, "end_frame": w.end_frame,
                     "start_s": w.start_s, "end_s": w.end_s, **scored(w.probs)}
                    for w in prediction.windows],
        "skipped_windows": [{"start_s": round(a, 4), "end_s": round(b, 4),
                             "reason": prediction.skip_reason} for a, b in prediction.skipped],
        "clip": ({**scored(prediction.probs), "method": prediction.clip_method}
                 if prediction.is_au else
                 {"probs": named(prediction.probs), "label": prediction.label,
                  "index": prediction.label_index, "method": prediction.clip_method}),
        "stage_s": prediction.stage_s,
        # the model runs in float32, through torch or ONNX Runtime
        "provenance": provenance.collect(precision="32-true"),
    }
    if prediction.frame_probs is not None:
        payload["min_face_fraction"] = min_face_fraction
        payload["n_face_frames"] = prediction.n_face_frames
        payload["frames"] = [
            {"frame": i, "time_s": round(i / prediction.fps, 4), **scored(row)}
            for i, row in enumerate(prediction.frame_probs) if np.isfinite(row).all()]
    write_predictions_json(prediction.files["predictions"], payload)
