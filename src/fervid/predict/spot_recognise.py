"""Spot, then recognise: where the micro-expressions of a long video are, and which.

Two passes over the video, each in bounded memory:

1. the training-free spotter (:func:`fervid.predict.spotting.spot_frames`) streams the video
   once, with a face tracker of ours so that its 68 landmarks per frame are kept (about
   1.2 kB a frame; the frames are not);
2. a second pass decodes the video again up to the last interval to classify, and keeps only
   the aligned face crops of the intervals under way: each interval, onset to offset with its
   apex, is one window of the recognition model, its input built by the one input builder
   (:func:`fervid.representation.input_spec.build_input`) as training built it. A folder of
   frames reads only the intervals' frames.

Which intervals are classified: micro-expression intervals. Macro ones are listed but not
classified unless asked (``classify_macro``): the recognisers fervid trains on CASME II, SAMM
or SMIC learned micro-expressions of at most half a second, and a macro-expression of several
seconds is not what they were shown. An interval with a frame without a face is listed, not
classified (as ``fervid predict`` skips such windows).

The apex: a LOSO model (DSSI phase segments, apex frame) was trained with the coded apex, so it
gets the spotted one; a k-fold model (``InputSpec.num_frames``) was trained on clips without a
coded apex (the middle), so it gets the middle here too. A frame model classifies each face of
the interval alone; the interval's probabilities are their mean.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fervid.faces import FaceTracker, align_face
from fervid.faces.detection import FaceDetector
from fervid.faces.tracking import PRESENT
from fervid.metrics.spotting import SpottedInterval
from fervid.predict.device import DeviceClassifier
from fervid.predict.frames import frame_crop, frame_target
from fervid.predict.prediction import PredictError
from fervid.predict.sources import LoadedFrames, Source, open_frames
from fervid.predict.spotting import SpotResult, SpotSettings, spot_frames
from fervid.representation.input_spec import build_input
from fervid.runs.checkpoint import Checkpoint, load_checkpoint

#: How frames are decoded for each checkpoint pixel mode.
_PIXEL_FORMATS = {"gray": "gray", "rgb": "rgb24", "bgr": "bgr24"}
CLASSIFIED = "classified"
MACRO_NOT_CLASSIFIED = "not classified: macro-expression"
NO_FACE = "not classified: no face in some frame"


@dataclass(frozen=True)
class RecognisedInterval:
    """One spotted interval and what the recogniser made of it: ``probs`` ``(K,)`` when
    ``status`` is :data:`CLASSIFIED`, else None."""

    interval: SpottedInterval
    status: str
    probs: tuple[float, ...] | None = None

    def label(self, classes: tuple[str, ...]) -> str | None:
        return None if self.probs is None else classes[int(np.argmax(self.probs))]


@dataclass
class SpotRecognition:
    """What :func:`spot_then_recognise` returns: the spotter's result, each interval's
    class probabilities, the recogniser that gave them and the time taken per pass."""

    spot: SpotResult
    intervals: list[RecognisedInterval]
    classes: tuple[str, ...]
    checkpoint: str
    model: str
    source: str
    input: dict
    classify_macro: bool
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def n_classified(self) -> int:
        return sum(r.status == CLASSIFIED for r in self.intervals)


def check_recogniser(ckpt: Checkpoint) -> None:
    """Refuse a checkpoint that does not classify expressions from face frames.

    Raises
    ------
    PredictError
        An AU detection model (per-AU sigmoids, no classes to pick), or a model of
        precomputed optical-flow images (raw video cannot feed it).
    """
    if ckpt.config.get("data", {}).get("task") == "au":
        raise PredictError(f"{ckpt.path}: an AU detection model (data.task: au), not an "
                           "expression recogniser; predict --spot needs a model that "
                           "classifies expressions (e.g. a fervid loso fold model)")
    if ckpt.input_spec.representation == "flow":
        raise PredictError(f"{ckpt.path}: model {ckpt.model_name!r} takes precomputed "
                           "optical-flow images (data.format: precomputed); predict --spot "
                           "builds dssi, global_di, apex, clip or frame inputs from video")


def spot_then_recognise(source: Source, checkpoint: Path | str | Checkpoint | None, *,
                        fps: float | None = None, settings: SpotSettings = SpotSettings(),
                        classify_macro: bool = False, face: str = "largest",
                        margin: float = 0.1, device: str = "cpu", batch_size: int = 32,
                        onnx_path: Path | str | None = None,
                        detector: FaceDetector | None = None) -> SpotRecognition:
    """Spot the expressions of ``source`` and classify each micro-expression interval.

    Parameters
    ----------
    source
        A video file, a folder of numbered frames or an array of frames
        (:func:`fervid.predict.sources.open_frames`).
    checkpoint
        A recognition model (:func:`fervid.runs.checkpoint.load_checkpoint`; None: the
        bundled one).
    fps
        The frame rate of a folder or an array.
    settings
        The spotter's settings (its defaults: nothing is tuned here).
    classify_macro
        Classify macro-expression intervals too.
    face, margin
        Which face the tracker follows, and the border of the aligned crops (as
        :func:`fervid.predict.pipeline.predict_video`).
    device, batch_size, onnx_path
        Where and how the model runs (:class:`fervid.predict.device.DeviceClassifier`).
    detector
        The face detector of the spotting pass's tracker (default: dlib's, as the
        spotter's own).

    Raises
    ------
    PredictError
        The checkpoint is no expression recogniser (:func:`check_recogniser`).
    fervid.faces.NoFaceFoundError
        No frame has a face.
    fervid.errors.FervidError
        An unreadable source or checkpoint, a folder without ``fps``, a bad option.
    """
    started = time.perf_counter()
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    check_recogniser(ckpt)
    tracker = FaceTracker(detector=detector, detect_every=settings.detect_every,
                           refine=False, choose=face)
    spot = spot_frames(source, fps=fps, settings=settings, tracker=tracker)
    spotted = time.perf_counter()
    name = (f"<array of {len(source)} frames>" if isinstance(source, np.ndarray)
            else str(source))
    track = tracker.track(fps=spot.fps, source=name)
    present = np.isin(track.status, PRESENT)
    results: list[RecognisedInterval | None] = []
    wanted: list[int] = []
    for s in spot.intervals:
        if s.kind == "macro" and not classify_macro:
            results.append(RecognisedInterval(s, MACRO_NOT_CLASSIFIED))
        elif not present[s.onset - 1:s.offset].all():
            results.append(RecognisedInterval(s, NO_FACE))
        else:
            results.append(None)
            wanted.append(len(results) - 1)
    if wanted:
        intervals = [spot.intervals[i] for i in wanted]
        probs = _classify(source, fps, ckpt, intervals, track.landmarks, margin, device,
                          batch_size, onnx_path)
        for i, p in zip(wanted, probs, strict=True):
            results[i] = RecognisedInterval(spot.intervals[i], CLASSIFIED,
                                            tuple(float(x) for x in p))
    spec = ckpt.input_spec
    ended = time.perf_counter()
    return SpotRecognition(
        spot, results, tuple(ckpt.classes), str(ckpt.path), ckpt.model_name, name,
        {"representation": spec.representation, "size": spec.size, "mode": spec.mode},
        classify_macro, {"spot": round(spotted - started, 3),
                         "recognise": round(ended - spotted, 3),
                         "total": round(ended - started, 3)})


def _classify(source: Source, fps: float | None, ckpt: Checkpoint,
              intervals: list[SpottedInterval], landmarks: np.ndarray, margin: float,
              device: str, batch_size: int, onnx_path: Path | str | None) -> np.ndarray:
    """``(N, K)`` class probabilities of ``intervals`` (each with a face in every frame), from
    a second pass that keeps only the crops of the intervals under way."""
    spec = ckpt.input_spec
    if spec.representation == "frame":
        _, target = frame_target(ckpt, margin)
        side = spec.resize or spec.size

        def crop(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
            return frame_crop(frame, points, target, side)
    else:
        side = spec.size

        def crop(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
            return align_face(frame, points, size=side, margin=margin).image

    needed = sorted({i for s in intervals for i in range(s.onset - 1, s.offset)})
    held: dict[int, list[np.ndarray]] = {}  # interval → its crops so far
    out = np.empty((len(intervals), len(ckpt.classes)))
    pending: list[tuple[int, np.ndarray]] = []  # window inputs waiting for a full batch

    def flush() -> None:
        if pending:
            rows = classifier.probabilities(np.stack([x for _, x in pending]))
            out[[n for n, _ in pending]] = rows
            pending.clear()

    with DeviceClassifier(ckpt, onnx_path, batch_size, device) as classifier:
        for index, frame in _frames(open_frames(source, fps), needed,
                                    _PIXEL_FORMATS[spec.mode]):
            face = crop(frame, landmarks[index]).reshape(side, side, spec.channels)
            for n, s in enumerate(intervals):
                if not s.onset - 1 <= index <= s.offset - 1:
                    continue
                held.setdefault(n, []).append(face)
                if index < s.offset - 1:
                    continue
                x = _interval_input(np.stack(held.pop(n)), s, spec)
                if spec.representation == "frame":  # each face alone, then their mean
                    out[n] = np.concatenate([classifier.probabilities(x[b:b + batch_size])
                                             for b in range(0, len(x), batch_size)]).mean(0)
                    continue
                pending.append((n, x))
                if len(pending) == batch_size:
                    flush()
        flush()
    return out


def _interval_input(crops: np.ndarray, interval: SpottedInterval, spec) -> np.ndarray:
    """The model input of one interval's crops ``(T, S, S, C)``: the spotted apex for models
    trained with a coded one, the middle for models of sampled frames (``num_frames``)."""
    apex = None
    if spec.num_frames is None and interval.apex is not None:
        apex = int(np.clip(interval.apex - interval.onset, 0, len(crops) - 1))
    return build_input(spec, crops, apex=apex).numpy()


def _frames(frames, needed: list[int], pixel_format: str) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, frame)`` of the frames in ``needed`` (sorted): a folder or an array reads
    only those; a video file is decoded up to the last of them."""
    if isinstance(frames, LoadedFrames):
        chosen = (replace(frames, files=tuple(frames.files[i] for i in needed),
                          frame_count=len(needed)) if frames.files
                  else replace(frames, array=frames.array[needed], frame_count=len(needed)))
        for index, frame in zip(needed, chosen.decoded(), strict=True):
            yield index, frame.to_array(pixel_format)
        return
    wanted = set(needed)
    for index, frame in enumerate(frames.decoded()):
        if index in wanted:
            yield index, frame.to_array(pixel_format)
        if index >= needed[-1]:
            return


__all__ = ["CLASSIFIED", "MACRO_NOT_CLASSIFIED", "NO_FACE", "RecognisedInterval",
           "SpotRecognition", "check_recogniser", "spot_then_recognise"]
