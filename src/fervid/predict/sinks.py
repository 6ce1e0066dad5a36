"""Where ``predict_video``'s aligned crops go as they stream in: the model built once
(:class:`Classifier`), and one sink per kind of model, each holding only what its next
batch needs: :class:`WindowSink` (window models: a ring buffer of one window's crops) and
:class:`FrameSink` (frame models: rows written to ``frame_probs.csv`` as they are known)."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
import torch

from fervid.faces import FaceTrack
from fervid.predict.frames import frame_inputs
from fervid.predict.outputs import FrameProbsWriter
from fervid.predict.prediction import STAGES, PredictError, is_au_model
from fervid.predict.windows import Window, sliding_windows, window_input, window_means
from fervid.runs.checkpoint import Checkpoint, build_model_from_checkpoint


class StageTimer:
    """Seconds spent per stage, summed over calls."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)


#: What a classification returns: kept windows, their probabilities ``(W, K)``, skipped
#: windows, the clip's probabilities ``(K,)`` and the per-frame ones ``(T, K)`` (or None).
SinkResult = tuple[list[Window], np.ndarray, list[Window], np.ndarray, np.ndarray | None]


class Classifier:
    """The checkpoint's model (torch, or onnxruntime on ``onnx_path``), built once:
    probabilities of a batch of inputs (a softmax over classes, or an AU model's sigmoid per
    AU)."""

    def __init__(self, ckpt: Checkpoint, onnx_path: Path | str | None, batch_size: int) -> None:
        self.ckpt, self.batch_size = ckpt, batch_size
        self.multi_label = is_au_model(ckpt)
        if onnx_path is not None:
            from fervid.predict.onnx import OnnxClassifier

            self._onnx = OnnxClassifier(onnx_path)
        else:
            self._onnx, self._model = None, build_model_from_checkpoint(ckpt)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """``(N, n_classes) float64`` probabilities (:meth:`scores`) of ``inputs`` (one
        batch)."""
        if self._onnx is not None:
            logits = self._onnx(inputs)
        else:
            with torch.inference_mode():
                logits = self._model(torch.from_numpy(inputs)).logits.numpy()
        return self.scores(torch.from_numpy(logits))

    def scores(self, logits: torch.Tensor) -> np.ndarray:
        """``(N, n_classes) float64``: the softmax of ``logits`` ``(N, n_classes)``, or for
        an AU model each logit's sigmoid."""
        logits = logits.double()
        return (logits.sigmoid() if self.multi_label else logits.softmax(-1)).numpy()


class WindowSink:
    """Window models: crops arrive in frame order; each window is built once its last frame
    is in (a ring buffer of one window's crops) and classified ``batch_size`` at a time."""

    def __init__(self, classifier: Classifier, timer: StageTimer, fps: float, window_s: float,
                 stride_s: float) -> None:
        self.classifier, self.timer, self.fps = classifier, timer, fps
        # As sliding_windows cuts them; a video shorter than one window is handled at the end.
        self.length = max(2, round(window_s * fps))
        self.stride = max(1, round(stride_s * fps))
        self.ring: deque[np.ndarray | None] = deque(maxlen=self.length)
        self.count = 0
        self.next_start = 0
        self.usable: list[Window] = []
        self.skipped: list[Window] = []
        self.inputs: list[np.ndarray] = []
        self.probs: list[np.ndarray] = []

    def add(self, crop: np.ndarray | None) -> None:
        self.ring.append(crop)
        self.count += 1
        if self.count == self.next_start + self.length:
            self._window(Window(self.next_start, self.count, self.fps))
            self.next_start += self.stride

    def _window(self, window: Window) -> None:
        crops = list(self.ring)[-len(window):]
        if any(c is None for c in crops):
            self.skipped.append(window)
            return
        t0 = time.perf_counter()
        self.inputs.append(window_input(np.stack(crops), self.classifier.ckpt.input_spec))
        self.timer.seconds["representation"] += time.perf_counter() - t0
        self.usable.append(window)
        if len(self.inputs) == self.classifier.batch_size:
            self._flush()

    def _flush(self) -> None:
        if self.inputs:
            t0 = time.perf_counter()
            self.probs.append(self.classifier.probabilities(np.stack(self.inputs)))
            self.timer.seconds["model"] += time.perf_counter() - t0
            self.inputs = []

    def finish(self, track: FaceTrack, video: Path | str, window_s: float) -> SinkResult:
        n = len(track)
        if n < 2:
            raise PredictError(f"{video}: {n} frame decoded; a window needs at least 2")
        if n < self.length:  # shorter than one window: one window over all of it
            self._window(Window(0, n, self.fps))
        self._flush()
        if not self.usable:
            raise PredictError(f"{video}: no {window_s:g} s window has a face in every frame "
                               f"(face in {track.present_fraction:.0%} of {n} frames)")
        probs = np.concatenate(self.probs)
        return self.usable, probs, self.skipped, probs.mean(axis=0), None


class FrameSink:
    """Frame models: each face crop is classified alone, ``batch_size`` at a time, and the
    rows of the frames done so far go to ``frame_probs.csv`` at once."""

    def __init__(self, classifier: Classifier, timer: StageTimer, csv: FrameProbsWriter) -> None:
        self.classifier, self.timer, self.csv = classifier, timer, csv
        self.n_classes = len(classifier.ckpt.classes)
        self.rows: list[np.ndarray] = []  # finished frames' probabilities, NaN: no face
        self.count = 0
        self.crops: list[np.ndarray] = []
        self.waiting: list[int] = []  # frames of ``crops``
        self.done = 0  # frames whose row is known (all before the first waiting face)
        self.written = 0

    def add(self, crop: np.ndarray | None) -> None:
        if crop is not None:
            self.crops.append(crop)
            self.waiting.append(self.count)
        self.count += 1
        if len(self.crops) == self.classifier.batch_size:
            self._flush()

    def _flush(self) -> None:
        end = self.count
        block = np.full((end - self.done, self.n_classes), np.nan)
        if self.crops:
            t0 = time.perf_counter()
            inputs = frame_inputs(np.stack(self.crops), self.classifier.ckpt.input_spec)
            t1 = time.perf_counter()
            block[np.array(self.waiting) - self.done] = self.classifier.probabilities(inputs)
            self.timer.seconds["representation"] += t1 - t0
            self.timer.seconds["model"] += time.perf_counter() - t1
        self.rows.append(block)
        self.csv.write(block)
        self.done, self.crops, self.waiting = end, [], []

    def finish(self, track: FaceTrack, fps: float, window_s: float, stride_s: float,
               min_face_fraction: float) -> SinkResult:
        self._flush()
        frame_probs = np.concatenate(self.rows)
        present = track.present
        faces = np.flatnonzero(present)
        # A one-frame input (a still GIF) is one window of one frame.
        windows = (sliding_windows(len(present), fps, window_s, stride_s) if len(present) >= 2
                   else [Window(0, len(present), fps)])
        usable, probs, skipped = window_means(frame_probs, present, windows, min_face_fraction)
        return usable, probs, skipped, frame_probs[faces].mean(axis=0), frame_probs
