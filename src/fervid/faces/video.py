"""Video decoding with PyAV: RGB frames and the frame rate, or a clear error naming the file.

Frame rate: the container's average rate (its guessed rate when it has none, else frames over
duration). GIFs are timed from their own frame delays instead: FFmpeg's average rate of a GIF
can be off (a GIF whose delays are all 0 reads as 12.5 fps while it plays at 10), and browsers
show a delay under 20 ms as 100 ms, so such delays count as 100 ms here too
(:data:`GIF_MIN_DELAY_S`, :data:`GIF_DEFAULT_DELAY_S`). ``VideoFrames.fps_source`` says which
rule gave the rate.
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


def _luma(frame: av.VideoFrame) -> np.ndarray:
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, :plane.width].copy()


@dataclass(frozen=True)
class VideoFrames:
    """The frames of one video, decoded lazily: iterate for ``(H, W, 3) uint8`` RGB arrays
    (``pixel_format="rgb24"``), BGR ones (``"bgr24"``, OpenCV's order) or ``(H, W) uint8``
    intensity (``"gray"``, the luma plane: no colour conversion, the cheapest to decode).

    ``frame_count`` is the container's estimate (0 when it does not say; exact for GIFs); the
    number of frames decoded can differ by a few. ``fps`` is the mean frame rate and
    ``fps_source`` the rule that gave it (``container``, ``duration``, ``gif delays`` or
    ``unknown``; module docstring). Each iteration decodes the file again, with FFmpeg's own
    threads working ahead of the caller.
    """

    path: Path
    fps: float
    frame_count: int
    width: int
    height: int
    pixel_format: Literal["rgb24", "bgr24", "gray"] = "rgb24"
    fps_source: str = "container"

    def as_format(self, pixel_format: Literal["rgb24", "bgr24", "gray"]) -> VideoFrames:
        """The same video, decoded to ``pixel_format``."""
        return replace(self, pixel_format=pixel_format)

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    if self.pixel_format == "gray" and frame.format.name in LUMA_FIRST:
                        yield _luma(frame)
                    else:
                        yield frame.to_ndarray(format=self.pixel_format)
        except av.FFmpegError as err:
            raise VideoReadError(f"cannot decode video {self.path}: {err}") from err


def read_video_frames(path: Path | str) -> VideoFrames:
    """Open a video and check it has a video stream; frames are decoded on iteration.

    Raises
    ------
    PathNotFoundError
        When ``path`` is not a file (a :class:`FileNotFoundError`).
    VideoReadError
        When the file is not a video PyAV can read, or has no video stream.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a video file" if path.is_dir() else "does not exist"
        raise PathNotFoundError(f"video {path} {what}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path} has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if container.format.name == "gif":
                fps, count, source = *_gif_rate(container, stream), "gif delays"
            else:
                fps, count, source = *_container_rate(stream), "container"
                if not fps and count and stream.duration and stream.time_base:
                    fps, source = count / float(stream.duration * stream.time_base), "duration"
    except av.FFmpegError as err:
        raise VideoReadError(f"cannot read video {path}: {err}") from err
    if not width or not height:
        raise VideoReadError(f"{path} has a video stream without a frame size")
    return VideoFrames(path, fps, count, width, height, fps_source=source if fps else "unknown")


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
