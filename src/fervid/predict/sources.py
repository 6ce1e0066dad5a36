"""What ``predict_video`` reads frames from: a video file, a folder of numbered frames or a
numpy array of frames.

A folder or an array stands in for :class:`fervid.faces.video.VideoFrames`: the same fields
(``path`` names it in messages and outputs, ``fps``, ``frame_count``, ``width``, ``height``,
``fps_source``, ``rotation``) and the same two ways to iterate (:meth:`decoded` for frames
converted on demand, plain iteration for RGB arrays). Neither knows its frame rate, so the
caller gives it (``fps``): windows are cut in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fervid.datasets.frames import numbered_images
from fervid.errors import OptionError
from fervid.faces.video import PixelFormat, VideoFrames, VideoReadError, read_video_frames
from fervid.representation.frame_loading import FrameReadError

#: What ``predict_video`` takes as its source.
Source = str | Path | np.ndarray


class LoadedFrame:
    """One frame of a folder or an array, converted on demand like
    :class:`fervid.faces.video.DecodedFrame`; holds the image as it came (RGB or grey)."""

    __slots__ = ("_image", "index", "time")

    def __init__(self, image: np.ndarray, index: int, fps: float) -> None:
        self._image, self.index, self.time = image, index, index / fps

    def to_array(self, pixel_format: PixelFormat) -> np.ndarray:
        """``(H, W, 3) uint8`` RGB or BGR, or ``(H, W) uint8`` grey."""
        image = self._image
        if image.ndim == 2:
            return image if pixel_format == "gray" else np.repeat(image[..., None], 3, axis=2)
        if pixel_format == "gray":
            return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return image[..., ::-1].copy() if pixel_format == "bgr24" else image


@dataclass(frozen=True)
class LoadedFrames:
    """The frames of a folder (``files``) or an array (``array``), at a given frame rate."""

    path: str
    fps: float
    frame_count: int
    width: int
    height: int
    files: tuple[Path, ...] = ()
    array: np.ndarray | None = None
    fps_source: str = "given"
    rotation: int = 0
    duration_s: float = 0.0

    def _image(self, index: int) -> np.ndarray:
        if self.array is not None:
            return self.array[index]
        path = self.files[index]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise FrameReadError(path, "not an image OpenCV can decode")
        if image.ndim == 3:  # OpenCV reads BGR(A)
            image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
        if image.shape[:2] != (self.height, self.width):
            raise VideoReadError(f"{path}: {image.shape[1]}x{image.shape[0]} pixels, but the "
                                 f"first frame of {self.path} is {self.width}x{self.height}")
        return image

    def decoded(self) -> Iterator[LoadedFrame]:
        for index in range(self.frame_count):
            yield LoadedFrame(self._image(index), index, self.fps)

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self.decoded():
            yield frame.to_array("rgb24")


def open_frames(source: Source, fps: float | None = None) -> VideoFrames | LoadedFrames:
    """The frames of ``source``: a video file (its own frame rate), a folder of numbered
    frames (``img1.jpg``, ``001.png`` ... in numeric order) or an array ``(T, H, W)`` grey or
    ``(T, H, W, 3)`` RGB, uint8 (both at ``fps``).

    Raises
    ------
    OptionError
        A folder or an array without a positive ``fps``; ``fps`` for a video file (it has its
        own); an array of another shape or dtype.
    PathNotFoundError, VideoReadError, DatasetFormatError
        From :func:`fervid.faces.read_video_frames` or
        :func:`fervid.datasets.frames.numbered_images` (a folder with fewer than 2 frames).
    """
    if isinstance(source, np.ndarray):
        array = source
        if array.dtype != np.uint8 or array.ndim not in (3, 4) or (
                array.ndim == 4 and array.shape[-1] != 3) or not len(array):
            raise OptionError(f"an array of frames must be uint8, (T, H, W) grey or "
                              f"(T, H, W, 3) RGB, with T >= 1; got {array.dtype} "
                              f"{array.shape}")
        rate = _rate(fps, "an array of frames")
        return LoadedFrames(f"<array of {len(array)} frames>", rate, len(array),
                            array.shape[2], array.shape[1], array=array,
                            duration_s=len(array) / rate)
    path = Path(source)
    if not path.is_dir():
        if fps is not None:
            raise OptionError(f"{path}: fps is for folders of frames and arrays; a video file "
                              "has its own frame rate")
        return read_video_frames(path)
    files = tuple(numbered_images(path))
    rate = _rate(fps, f"{path} (a folder of frames)")
    first = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
    if first is None:
        raise FrameReadError(files[0], "not an image OpenCV can decode")
    return LoadedFrames(str(path), rate, len(files), first.shape[1], first.shape[0],
                        files=files, duration_s=len(files) / rate)


def _rate(fps: float | None, what: str) -> float:
    if fps is None or not fps > 0:
        raise OptionError(f"{what} has no frame rate of its own: give fps (--fps), e.g. 30 "
                          f"or CASME II's 200; got {fps}")
    return float(fps)
