"""Video decoding with PyAV: RGB frames and the frame rate, or a clear error naming the file.

Frame rate: the container's average rate (its guessed rate when it has none, else frames over
duration). GIFs are timed from their own frame delays instead: FFmpeg's average rate of a GIF
can be off (a GIF whose delays are all 0 reads as 12.5 fps while it plays at 10), and browsers
show a delay under 20 ms as 100 ms, so such delays count as 100 ms here too
(:data:`GIF_MIN_DELAY_S`, :data:`GIF_DEFAULT_DELAY_S`). ``VideoFrames.fps_source`` says which
rule gave the rate. A variable-frame-rate video is read at its mean rate (each frame's own
time is :attr:`DecodedFrame.time`).

Rotation: phones store portrait video as landscape frames with a display matrix (the ``rotate``
tag) saying how to turn them. Frames are turned as players show them (a multiple of 90°, as
FFmpeg's ``autorotate``; ``VideoFrames.rotation``), so faces are upright for the detector and
boxes are in the frames a viewer sees; flips in the matrix are ignored.

Damaged files fail with a :class:`VideoReadError` naming the file: not a video, a still
image, no video stream, an empty file, a decoding error part way, or a file that ends before
the frames its header lists (truncated: more than :data:`FRAME_COUNT_SLACK` frames short).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from fervid.errors import FervidError, PathNotFoundError


class VideoReadError(FervidError, ValueError):
    """A file that is not a readable video."""


#: Pixel formats whose first plane is the 8-bit luma: gray frames are read from it directly
#: (a copy), several times faster than a colour-space conversion.
LUMA_FIRST = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
                        "nv12", "nv21", "gray"})
#: A GIF frame delay shorter than this (seconds) is shown for :data:`GIF_DEFAULT_DELAY_S`, as
#: browsers do (and FFmpeg's gif demuxer for a delay of 0).
GIF_MIN_DELAY_S = Fraction(1, 50)
GIF_DEFAULT_DELAY_S = Fraction(1, 10)
#: Frames a video may decode short of its header's count before it counts as truncated (when
#: its last frame is also shown well before the stream's end: phone videos drop a few frames).
FRAME_COUNT_SLACK = 2
#: FFmpeg demuxers of still images: refused, a video reader is not the place for them.
_IMAGE_DEMUXERS = ("_pipe", "image2")

PixelFormat = Literal["rgb24", "bgr24", "gray"]


def _luma(frame: av.VideoFrame) -> np.ndarray:
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, :plane.width].copy()


class DecodedFrame:
    """One decoded frame, converted on demand: :meth:`to_array` in any pixel format, turned
    upright by the video's rotation. Holds FFmpeg's frame (about 1.5 bytes a pixel), not an
    RGB copy."""

    __slots__ = ("_frame", "_turns", "index")

    def __init__(self, frame: av.VideoFrame, index: int, rotation: int) -> None:
        self._frame = frame
        self._turns = rotation // 90
        self.index = index

    @property
    def time(self) -> float | None:
        """Presentation time in seconds (None when the container gives none)."""
        return self._frame.time

    def to_array(self, pixel_format: PixelFormat) -> np.ndarray:
        """``(H, W, 3) uint8`` RGB or BGR, or ``(H, W) uint8`` luma (``"gray"``)."""
        if pixel_format == "gray" and self._frame.format.name in LUMA_FIRST:
            image = _luma(self._frame)
        else:
            image = self._frame.to_ndarray(format=pixel_format)
        return np.ascontiguousarray(np.rot90(image, self._turns)) if self._turns else image


@dataclass(frozen=True)
class VideoFrames:
    """The frames of one video, decoded lazily: iterate for ``(H, W, 3) uint8`` RGB arrays
    (``pixel_format="rgb24"``), BGR ones (``"bgr24"``, OpenCV's order) or ``(H, W) uint8``
    intensity (``"gray"``, the luma plane: no colour conversion, the cheapest to decode);
    :meth:`decoded` gives the frames unconverted.

    ``frame_count`` is the container's estimate (0 when it does not say; exact for GIFs); the
    number of frames decoded can differ by a few. ``fps`` is the mean frame rate and
    ``fps_source`` the rule that gave it (``container``, ``duration``, ``gif delays`` or
    ``unknown``; module docstring). ``width`` and ``height`` are those of the frames as shown,
    after ``rotation`` (degrees counter-clockwise, a multiple of 90). Each iteration decodes
    the file again, with FFmpeg's own threads working ahead of the caller.
    """

    path: Path
    fps: float
    frame_count: int
    width: int
    height: int
    pixel_format: PixelFormat = "rgb24"
    fps_source: str = "container"
    rotation: int = 0
    #: The stream's duration in seconds (0 when unknown).
    duration_s: float = 0.0

    def as_format(self, pixel_format: PixelFormat) -> VideoFrames:
        """The same video, decoded to ``pixel_format``."""
        return replace(self, pixel_format=pixel_format)

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self.decoded():
            yield frame.to_array(self.pixel_format)

    def decoded(self) -> Iterator[DecodedFrame]:
        """The frames in order, unconverted.

        Raises
        ------
        VideoReadError
            FFmpeg fails part way, or the file ends more than :data:`FRAME_COUNT_SLACK`
            frames before ``frame_count`` and well before ``duration_s`` (truncated).
        """
        index, last_time = 0, None
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    last_time = frame.time
                    yield DecodedFrame(frame, index, self.rotation)
                    index += 1
        except av.FFmpegError as err:
            of = f" of {self.frame_count}" if self.frame_count else ""
            raise VideoReadError(
                f"{self.path}: cannot decode frame {index + 1}{of}, the file is truncated or "
                f"damaged ({_reason(err)})") from err
        early = (not self.duration_s or last_time is None or not self.fps
                 or last_time + 3 / self.fps < self.duration_s)
        if self.frame_count and index < self.frame_count - FRAME_COUNT_SLACK and early:
            raise VideoReadError(
                f"{self.path} is truncated or damaged: it ends after {index} of the "
                f"{self.frame_count} frames its header lists")


def read_video_frames(path: Path | str) -> VideoFrames:
    """Open a video and check it has a video stream whose first frame decodes; the other
    frames are decoded on iteration.

    Raises
    ------
    PathNotFoundError
        When ``path`` is not a file (a :class:`FileNotFoundError`).
    VideoReadError
        When the file is empty, not a video PyAV can read (a still image included), has no
        video stream, or its first frame does not decode.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a video file" if path.is_dir() else "does not exist"
        raise PathNotFoundError(f"video {path} {what}")
    if path.stat().st_size == 0:
        raise VideoReadError(f"video {path} is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            name = container.format.name
            if name.endswith(_IMAGE_DEMUXERS):
                raise VideoReadError(f"{path} is a still image ({name.removesuffix('_pipe')}), "
                                     "not a video")
            if not container.streams.video:
                raise VideoReadError(f"{path} has no video stream (format {name})")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            duration = float(stream.duration * stream.time_base) if (
                stream.duration and stream.time_base) else 0.0
            if name == "gif":
                fps, count, source = *_gif_rate(container, stream), "gif delays"
            else:
                fps, count, source = *_container_rate(stream), "container"
                if not fps and count and stream.duration and stream.time_base:
                    fps, source = count / float(stream.duration * stream.time_base), "duration"
        rotation, width, height = _first_frame(path, width, height)
    except av.FFmpegError as err:
        raise VideoReadError(f"{path} is not a readable video (not a video file, or damaged "
                             f"or truncated): {_reason(err)}") from err
    if not width or not height:
        raise VideoReadError(f"{path} has a video stream without a frame size")
    return VideoFrames(path, fps, count, width, height, fps_source=source if fps else "unknown",
                       rotation=rotation, duration_s=duration)


def _reason(err: av.FFmpegError) -> str:
    """FFmpeg's message without the file name PyAV appends."""
    return err.strerror or str(err)


def _first_frame(path: Path, width: int, height: int) -> tuple[int, int, int]:
    """Decode the first frame: the rotation it is shown with (degrees counter-clockwise,
    rounded to a multiple of 90) and the frame size as shown."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream), None)
    if frame is None:
        raise VideoReadError(f"{path} has a video stream without any frame")
    rotation = int(round((frame.rotation or 0) / 90)) % 4 * 90
    width, height = width or frame.width, height or frame.height
    return (rotation, height, width) if rotation in (90, 270) else (rotation, width, height)


def _container_rate(stream: av.video.stream.VideoStream) -> tuple[float, int]:
    rate = stream.average_rate or stream.guessed_rate
    return (float(rate) if rate else 0.0), int(stream.frames or 0)


def _gif_rate(container: av.container.InputContainer,
              stream: av.video.stream.VideoStream) -> tuple[float, int]:
    """Mean frame rate of a GIF from its frame delays (packets only, nothing decoded), and
    its number of frames."""
    base = stream.time_base or Fraction(1, 100)  # GIF delays are in 1/100 s
    # Exact fractions: 15 delays of 1/10 s give 10 fps, not 9.999...
    delays = [(packet.duration or 0) * base for packet in container.demux(stream)
              if packet.size]  # the last packet is an empty flush
    delays = [d if d >= GIF_MIN_DELAY_S else GIF_DEFAULT_DELAY_S for d in delays]
    return (float(len(delays) / sum(delays)) if delays else 0.0), len(delays)
