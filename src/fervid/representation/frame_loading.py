"""Loading clip frames as small RGB arrays, fast.

JPEG frames are decoded at reduced size when the target is smaller than the source: libjpeg
can skip most of the inverse DCT and produce a 1/2, 1/4 or 1/8 scale image directly
(``cv2.IMREAD_REDUCED_COLOR_2/4/8``), which is where most of the decoding time goes. The small
image is then resized to exactly the target (area interpolation) straight into a preallocated
clip array. Videos are decoded with PyAV.

Non-square frames are centre-cropped to a square before resizing, so faces keep their aspect.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from fervid.errors import FervidError, PathNotFoundError


class FrameReadError(FervidError, ValueError):
    """A frame or video file exists but cannot be decoded; the message names the file (and,
    when given, the clip it belongs to)."""

    def __init__(self, path: Path | str, reason: str, clip: str | None = None):
        self.path, self.reason, self.clip = Path(path), reason, clip
        where = f"clip {clip}: " if clip else ""
        super().__init__(f"{where}{self.path}: cannot read frames ({reason})")

    def __reduce__(self):  # picklable: a worker process sends it back to the parent
        return type(self), (self.path, self.reason, self.clip)


def _centre_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


#: OpenCV read flags that decode a JPEG at 1/k scale (other formats are decoded, then shrunk).
_REDUCED_READ = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                 (2, cv2.IMREAD_REDUCED_COLOR_2))


def reduced_read_flag(path: str | PathLike[str], size: int) -> int:
    """The ``cv2.imread`` flag decoding ``path`` at the smallest 1/2^k scale whose shorter side
    is still at least ``size`` (``IMREAD_COLOR`` when no reduction fits).

    Only the file header is read (with PIL), not the pixels.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            shorter = min(image.size)
    except FileNotFoundError:
        raise PathNotFoundError(f"{path}: frame file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise FrameReadError(path, str(error) or type(error).__name__) from error
    for factor, flag in _REDUCED_READ:
        if shorter // factor >= size:
            return flag
    return cv2.IMREAD_COLOR


def load_frame(path: str | PathLike[str], size: int = 112, *, out: np.ndarray | None = None,
               read_flag: int | None = None) -> np.ndarray:
    """One image file as ``(size, size, 3)`` uint8 RGB, centre-cropped to a square.

    Parameters
    ----------
    path : path-like
        A JPEG (reduced decoding applies) or any other format OpenCV reads.
    size : int
        Output height and width.
    out : numpy.ndarray, optional
        C-contiguous ``(size, size, 3)`` uint8 array to write into (e.g. one frame of a clip
        array).
    read_flag : int, optional
        ``cv2.imread`` flag; by default :func:`reduced_read_flag` of this file. Pass
        ``cv2.IMREAD_COLOR`` to decode every pixel.

    Raises
    ------
    PathNotFoundError
        ``path`` does not exist (a :class:`FileNotFoundError`).
    FrameReadError
        It is not a readable image.
    """
    if read_flag is None:
        read_flag = reduced_read_flag(path, size)
    bgr = cv2.imread(str(path), read_flag)
    if bgr is None:
        path = Path(path)
        if not path.exists():
            raise PathNotFoundError(f"{path}: frame file not found")
        raise FrameReadError(path, "not an image OpenCV can decode")
    left, top, right, bottom = _centre_square(bgr.shape[1], bgr.shape[0])
    square = bgr[top:bottom, left:right]
    interpolation = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_LINEAR
    resized = cv2.resize(square, (size, size), interpolation=interpolation)
    if out is None:
        return cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    cv2.cvtColor(resized, cv2.COLOR_BGR2RGB, dst=out)
    return out


def load_clip(paths: Sequence[str | PathLike[str]], size: int = 112, *,
              indices: Sequence[int] | np.ndarray | None = None,
              reduced_decode: bool = True) -> np.ndarray:
    """Frames of a clip as one ``(T, size, size, 3)`` uint8 RGB array.

    The decoding scale is chosen once, from the first frame's header: the frames of a clip
    share one size.

    Parameters
    ----------
    paths : sequence of path-like
        The clip's frame files in temporal order.
    size : int
        Output height and width (each frame centre-cropped to a square, then resized).
    indices : sequence of int, optional
        Which of ``paths`` to load, in output order (repeats allowed, e.g. from
        :mod:`fervid.representation.temporal_sampling`); all of them when omitted.
    reduced_decode : bool
        Decode JPEGs at reduced scale when the target allows (False: every pixel).

    Raises
    ------
    ValueError
        No frames, or an index outside ``paths``.
    PathNotFoundError, FrameReadError
        From :func:`load_frame`, naming the file.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    chosen = list(paths) if indices is None else [_pick(paths, i) for i in indices]
    if not chosen:
        raise ValueError("load_clip needs at least one frame path")
    flag = reduced_read_flag(chosen[0], size) if reduced_decode else cv2.IMREAD_COLOR
    clip = np.empty((len(chosen), size, size, 3), dtype=np.uint8)
    for slot, path in zip(clip, chosen, strict=True):
        load_frame(path, size, out=slot, read_flag=flag)
    return clip


def _pick(paths: Sequence[str | PathLike[str]], index: int) -> str | PathLike[str]:
    if not -len(paths) <= int(index) < len(paths):
        raise ValueError(f"frame index {index} outside a clip of {len(paths)} frames")
    return paths[int(index)]


def count_video_frames(path: str | PathLike[str]) -> int:
    """Frames in the first video stream of ``path``, counted by demuxing (no decoding)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise PathNotFoundError(f"{path}: video file not found")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size)
    except (av.FFmpegError, IndexError) as error:
        raise FrameReadError(path, str(error) or "no video stream") from error


def load_video_frames(path: str | PathLike[str], indices: Sequence[int] | np.ndarray,
                      size: int = 112) -> np.ndarray:
    """Chosen frames of a video as ``(len(indices), size, size, 3)`` uint8 RGB.

    The video is decoded once from the start up to the last index needed; each kept frame is
    centre-cropped to a square and resized (area interpolation when shrinking).

    Parameters
    ----------
    path : path-like
        A video PyAV (FFmpeg) reads, e.g. DFEW's ``Clip/original/00001.mp4``.
    indices : sequence of int
        0-based frame numbers, any order, repeats allowed.
    size : int
        Output height and width.

    Raises
    ------
    PathNotFoundError
        ``path`` does not exist (a :class:`FileNotFoundError`).
    FrameReadError
        Not a readable video, or shorter than the largest index.
    """
    import av

    path = Path(path)
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    if wanted.size == 0:
        raise ValueError("load_video_frames needs at least one frame index")
    if wanted.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {int(wanted.min())}")
    if not path.is_file():
        raise PathNotFoundError(f"{path}: video file not found")
    last = int(wanted.max())
    needed = set(wanted.tolist())
    decoded: dict[int, np.ndarray] = {}
    count = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for count, frame in enumerate(container.decode(stream), start=1):
                index = count - 1
                if index in needed:
                    decoded[index] = _square_resize(frame.to_ndarray(format="rgb24"), size)
                if index >= last:
                    break
    except (av.FFmpegError, IndexError) as error:
        raise FrameReadError(path, str(error) or "no video stream") from error
    if last not in decoded:
        raise FrameReadError(path, f"frame {last} requested but the video has {count} frames")
    clip = np.empty((wanted.size, size, size, 3), dtype=np.uint8)
    for slot, index in zip(clip, wanted.tolist(), strict=True):
        slot[...] = decoded[index]
    return clip


def _square_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    left, top, right, bottom = _centre_square(rgb.shape[1], rgb.shape[0])
    square = rgb[top:bottom, left:right]
    shrinking = square.shape[0] > size
    return cv2.resize(square, (size, size),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
