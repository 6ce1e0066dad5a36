"""Video decoding with PyAV: RGB frames and the frame rate, or a clear error naming the file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


class VideoReadError(ValueError):
    """A file that is not a readable video."""


@dataclass
class VideoFrames:
    """The frames of one video, decoded lazily: iterate for ``(H, W, 3) uint8`` RGB arrays.

    ``frame_count`` is the container's estimate (0 when it does not say); the number of
    frames decoded can differ by a few. Each iteration decodes the file again.
    """

    path: Path
    fps: float
    frame_count: int
    width: int
    height: int

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            with av.open(str(self.path)) as container:
                for frame in container.decode(video=0):
                    yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as err:
            raise VideoReadError(f"cannot decode video {self.path}: {err}") from err


def read_video_frames(path: Path | str) -> VideoFrames:
    """Open a video and check it has a video stream; frames are decoded on iteration.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    VideoReadError
        When the file is not a video PyAV can read, or has no video stream.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video {path} does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            width, height = stream.codec_context.width, stream.codec_context.height
            count = int(stream.frames or 0)
    except av.FFmpegError as err:
        raise VideoReadError(f"cannot read video {path}: {err}") from err
    if not width or not height:
        raise VideoReadError(f"{path} has a video stream without a frame size")
    return VideoFrames(path, fps, count, width, height)
