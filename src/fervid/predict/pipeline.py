"""Raw video → expression probabilities: decode, track the face, align, cut windows, classify.

:func:`predict_video` streams: one pass over the video decodes a frame, tracks the face on its
luma plane (:class:`fervid.faces.FaceTracker`: one face, the largest by default, or the one
``face`` names, :func:`fervid.faces.choice.face_choice`), and a few frames later, once the
tracker has smoothed that frame's landmarks (:attr:`~fervid.faces.FaceTracker.lag`), aligns
it to the checkpoint's input size and pixel mode (colour is converted only then, only for
colour models, only on frames with a face) and hands the crop on. Memory holds the last few
decoded frames and the crops of one window, never the whole video: per frame only the track
(status, box, 68 landmarks) and, for frame models, the class probabilities are kept. A
progress bar counts frames, with an ETA.

Sliding windows (seconds → frames with the video's mean frame rate; GIFs are timed by their
frame delays, see :mod:`fervid.faces.video`) are classified in one of two ways:

* window models (DSSI, dynamic image, apex, clip): as soon as a window's last frame is
  aligned, its input is built as the model was trained
  (:func:`fervid.predict.windows.window_input`) from a ring buffer of the window's crops, and
  classified with the next ones, ``batch_size`` at a time; windows with a frame without a face
  are skipped and listed. The clip's probabilities are the mean of the windows'.
* frame models (``fervid fit``, :mod:`fervid.predict.frames`): every frame with a face is
  classified alone, ``batch_size`` at a time, and its row written to ``frame_probs.csv`` as
  it goes; a window's probabilities are the mean of its face frames' (windows with a face in
  fewer than ``min_face_fraction`` of their frames are skipped and listed), and the clip's
  are the mean over all frames with a face, so each face frame counts once (windows overlap,
  and skipped windows would drop frames).

An AU detection model (``data.task: au``, a window model) gives each window one probability
per action unit (a sigmoid each, no softmax and no argmax label); the clip's are their mean.

The model runs with torch, or with onnxruntime on an exported file. Every file is moved into
place only once the whole video went through, so a failure part way leaves an earlier run's
outputs as they were. ``annotate`` decodes the video a second time, streaming too.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from fervid.errors import OptionError
from fervid.faces import FaceTrack, FaceTracker, align_face
from fervid.faces.choice import FaceChooser
from fervid.faces.detection import DlibFaceDetector, FaceDetector
from fervid.faces.tracking import PRESENT, landmark_jitter
from fervid.faces.video import DecodedFrame, VideoFrames
from fervid.predict.device import DeviceClassifier, QueuedFrameSink, QueuedWindowSink
from fervid.predict.frames import frame_crop, frame_target
from fervid.predict.outputs import FrameProbsWriter, write_annotated_video
from fervid.predict.prediction import (  # noqa: F401  (re-exported)
    STAGES,
    PredictError,
    Prediction,
    WindowPrediction,
    au_label,
    frame_labels,
    is_au_model,
    write_figures,
    write_predictions,
)
from fervid.predict.sinks import StageTimer
from fervid.predict.sources import LoadedFrames, Source, open_frames
from fervid.progress import progress_bar
from fervid.runs.checkpoint import Checkpoint, load_checkpoint

#: How frames are decoded for each checkpoint pixel mode.
_PIXEL_FORMATS = {"gray": "gray", "rgb": "rgb24", "bgr": "bgr24"}


def predict_video(video: Source, checkpoint: Path | str | Checkpoint, *,
                  window_s: float = 1.0, stride_s: float = 0.5, out_dir: Path | str,
                  annotate: bool = False, onnx_path: Path | str | None = None,
                  detector: FaceDetector | None = None, detect_every: int = 5,
                  margin: float = 0.1, batch_size: int = 32,
                  refine_landmarks: bool = False, progress: bool = False,
                  face: str | FaceChooser = "largest",
                  min_face_fraction: float = 0.5, device: str = "cpu",
                  fps: float | None = None) -> Prediction:
    """Classify the expression of the face in ``video`` over sliding windows (AU models:
    detect each action unit).

    Parameters
    ----------
    video
        Any video PyAV reads, GIFs included; or a folder of numbered frames, or an array of
        frames, both at ``fps`` (:func:`fervid.predict.sources.open_frames`).
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
        Show a progress bar (frames decoded, tracked and classified) with its ETA.
    margin
        Border around the aligned face (see :func:`fervid.faces.align_face`); frame models
        trained on FER2013 use that release's own face framing instead
        (:func:`fervid.predict.frames.frame_target`).
    batch_size
        Windows (frames, for frame models) per model call.
    face
        Which face to follow when several are in view: ``largest`` (default), ``left:N`` (the
        N-th from the left) or ``at:X,Y`` (nearest that pixel), applied when the track starts
        or is lost (:func:`fervid.faces.choice.face_choice`).
    min_face_fraction
        Frame models: the least fraction of a window's frames with a face for the window to
        be kept.
    device
        Where the model runs (``auto``, ``cpu``, ``cuda``): batches go to it through a bounded
        queue while decoding and tracking go on (:mod:`fervid.predict.device`).
    fps
        The frame rate of a folder or an array of frames.

    Raises
    ------
    FileNotFoundError
        ``video`` (:class:`~fervid.errors.PathNotFoundError`) or the checkpoint does not
        exist.
    fervid.faces.VideoReadError
        ``video`` is not a readable video: empty, not a video, a still image, no video
        stream, or truncated or damaged part way (found as it streams; the message names
        the file).
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
    au = is_au_model(ckpt)  # AU probabilities (a sigmoid each), no argmax label
    if window_s <= 0 or stride_s <= 0:
        raise OptionError(f"window and stride must be positive, got {window_s} s and "
                          f"{stride_s} s")
    if per_frame and not 0 < min_face_fraction <= 1:
        raise OptionError(f"min_face_fraction must be in (0, 1], got {min_face_fraction}")
    out = Path(out_dir)
    timer = StageTimer()
    frames = open_frames(video, fps)
    video = frames.path  # names the source in messages and outputs (an array has no path)
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
    tracker = FaceTracker(detector=detector or DlibFaceDetector(upsample=0, max_side=480),
                          detect_every=detect_every, refine=refine_landmarks, choose=face,
                          chunk=_chunk(frames, spec.mode))
    classifier = DeviceClassifier(ckpt, onnx_path, batch_size, device)  # after the video opened
    with ExitStack() as stack:
        stack.callback(classifier.close)
        if per_frame:
            csv = stack.enter_context(FrameProbsWriter(out / "frame_probs.csv", frames.fps,
                                                       ckpt.classes))
            sink: QueuedFrameSink | QueuedWindowSink = QueuedFrameSink(classifier, timer, csv)
        else:
            csv = None
            sink = QueuedWindowSink(classifier, timer, frames.fps, window_s, stride_s)
        times = _stream(frames, tracker, sink, crop, side, spec.channels, spec.mode, timer,
                        progress)
        track = tracker.track(fps=frames.fps, source=str(video))
        if per_frame:
            usable, probs, skipped, clip_probs, frame_probs = sink.finish(
                track, frames.fps, window_s, stride_s, min_face_fraction)
        else:
            usable, probs, skipped, clip_probs, frame_probs = sink.finish(track, video, window_s)
        prediction = Prediction(
            video=str(video), checkpoint=str(ckpt.path), classes=ckpt.classes,
            windows=[WindowPrediction(w.start, w.end, round(w.start_s, 4), round(w.end_s, 4),
                                      tuple(float(p) for p in row))
                     for w, row in zip(usable, probs, strict=True)],
            probs=clip_probs, label=(au_label(clip_probs, ckpt.classes) if au
                                     else ckpt.classes[int(clip_probs.argmax())]),
            fps=frames.fps,
            n_frames=len(track), stage_s=dict(timer.seconds),
            skipped=[(w.start_s, w.end_s) for w in skipped], landmark_jitter=_jitter(track),
            frame_probs=frame_probs, face=face if isinstance(face, str) else "custom",
            max_faces=int(track.n_faces.max()) if track.n_faces is not None else 1,
            alignment=alignment, fps_source=frames.fps_source, rotation=frames.rotation,
            notes=_notes(frames, times), track=track, task="au" if au else "emotion")
        if per_frame:
            prediction.clip_method = "mean of frame probabilities over frames with a face"
            prediction.skip_reason = f"face in fewer than {min_face_fraction:.0%} of its frames"
        write_figures(prediction, track, usable, out, csv)
    if annotate:
        prediction.files["annotated"] = out / "annotated.mp4"
        write_annotated_video(prediction.files["annotated"], frames,
                              frames.fps, track.boxes, frame_labels(prediction, len(track)))
    prediction.stage_s = {k: round(v, 4) for k, v in prediction.stage_s.items()}
    prediction.stage_s["total"] = round(time.perf_counter() - started, 4)
    write_predictions(prediction, ckpt, track, window_s, stride_s, onnx_path,
                       min_face_fraction if per_frame else None)
    return prediction


#: Bytes of decoded frames held while the tracker's smoothing catches up (it finalises frames
#: in chunks, a few frames behind): 32 frames of 720p, 5 of 4K.
_HELD_BYTES = 64 * 2**20


def _chunk(frames: VideoFrames | LoadedFrames, mode: str) -> int:
    """Frames the tracker finalises at once, so the decoded frames held stay near
    :data:`_HELD_BYTES` (gray models hold luma planes, colour ones FFmpeg's YUV frames)."""
    per_frame = frames.width * frames.height * (1.0 if mode == "gray" else 1.5)
    return int(np.clip(_HELD_BYTES // max(per_frame, 1), 1, 32))


def _stream(frames: VideoFrames | LoadedFrames, tracker: FaceTracker,
            sink: QueuedFrameSink | QueuedWindowSink,
            crop: Callable[[np.ndarray, np.ndarray], np.ndarray], side: int, channels: int,
            mode: str, timer: StageTimer, progress: bool) -> list[float | None]:
    """The one pass: decode, track, and hand each finalised frame's crop (None: no face) to
    ``sink``; returns the frames' presentation times (seconds)."""
    held: deque[np.ndarray | DecodedFrame] = deque()  # pushed, not yet finalised
    times: list[float | None] = []
    seconds = timer.seconds
    pixel_format = _PIXEL_FORMATS[mode]

    def hand_on(finalised: range) -> None:
        for index in finalised:
            frame = held.popleft()
            if tracker.status[index] not in PRESENT:
                sink.add(None)
                continue
            t0 = time.perf_counter()
            if not isinstance(frame, np.ndarray):
                frame = frame.to_array(pixel_format)
            t1 = time.perf_counter()
            face = crop(frame, tracker.landmarks[index]).reshape(side, side, channels)
            t2 = time.perf_counter()
            seconds["decode"] += t1 - t0
            seconds["align"] += t2 - t1
            sink.add(face)

    with progress_bar(progress) as bar:
        task = bar.add_task("predict", total=frames.frame_count or None,
                            status="frames decoded, tracked, classified")
        decoded = frames.decoded()
        while True:
            t0 = time.perf_counter()
            frame = next(decoded, None)
            if frame is None:
                seconds["decode"] += time.perf_counter() - t0
                break
            gray = frame.to_array("gray")
            t1 = time.perf_counter()
            finalised = tracker.push(gray)
            seconds["decode"] += t1 - t0
            seconds["detect_track"] += time.perf_counter() - t1
            times.append(frame.time)
            held.append(gray if mode == "gray" else frame)
            hand_on(finalised)
            bar.advance(task)
        t0 = time.perf_counter()
        finalised = tracker.finish()
        seconds["detect_track"] += time.perf_counter() - t0
        hand_on(finalised)
        bar.update(task, total=len(tracker), completed=len(tracker))
    return times


def _notes(frames: VideoFrames | LoadedFrames, times: list[float | None]) -> list[str]:
    """What the user should know about the input: a rotation applied, a variable frame rate
    (window times then use the mean rate)."""
    notes = []
    if frames.rotation:
        notes.append(f"frames turned {frames.rotation} degrees counter-clockwise, as the "
                     "video's display matrix says")
    known = np.array([t for t in times if t is not None], dtype=np.float64)
    steps = np.diff(known)
    if len(steps) >= 2 and frames.fps_source != "gif delays":
        period = 1 / frames.fps
        if np.abs(steps - period).max() > 0.25 * period:
            notes.append(f"variable frame rate (frame intervals {steps.min() * 1000:.0f} to "
                         f"{steps.max() * 1000:.0f} ms): windows and times use the mean rate, "
                         f"{frames.fps:.3g} fps")
    return notes


def _jitter(track: FaceTrack) -> dict[str, float] | None:
    """Mean frame-to-frame landmark motion in pixels of a 112 px aligned crop, before and
    after smoothing (it includes the face's real motion)."""
    try:
        return {"raw": round(landmark_jitter(track.raw_landmarks), 4),
                "smoothed": round(landmark_jitter(track.landmarks), 4), "crop_px": 112}
    except ValueError:  # no two consecutive frames with a face
        return None
