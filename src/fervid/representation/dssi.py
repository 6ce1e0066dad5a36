"""DSSI, dynamic segmented sparse imaging: the input of SMA-STN (``docs/methods.md`` §1).

A clip is cut into K temporal segments, each summarised by the dynamic image of a few frames
sampled in it (local descriptors); frames spread over the whole clip give one more (global).

Positions (``onset``, ``apex``, ``offset`` and every returned index) are **relative**: indices
into the ``frames`` given, not the dataset's frame numbers. For a :class:`~fervid.samples.Sample`
that is ``0``, ``sample.apex_position``, ``len(sample.frames) - 1`` (what
:func:`dssi_from_sample` passes); a sub-range of ``frames`` may also be given.

Segments are closed intervals of continuous time: adjacent segments share their boundary frame,
so the motion between two segments is in some local DI. Under ``phase`` both phases include the
apex: the last onset→apex segment ends at it and the first apex→offset segment starts at it.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from fervid.errors import OptionError, PathNotFoundError
from fervid.files import atomic_write, atomic_write_bytes
from fervid.representation.dynamic_image import _pool_numpy, rank_pool_coefficients
from fervid.representation.frame_loading import FrameReadError

if TYPE_CHECKING:  # annotations only: importing fervid.samples pulls in pandas
    from fervid.samples import Sample

PROTOCOLS = ("phase", "uniform")

__all__ = ["PROTOCOLS", "DssiCache", "DssiParams", "DssiResult", "dssi", "dssi_from_sample",
           "dssi_indices"]


@dataclass(frozen=True, eq=False)
class DssiResult:
    """The DSSI of one clip.

    Attributes
    ----------
    local : numpy.ndarray
        ``(K, H, W, C)`` float32, one dynamic image per segment in temporal order (``C = 1`` for
        grayscale frames).
    global_ : numpy.ndarray
        ``(H, W, C)`` float32, the dynamic image of frames spread over the whole clip.
    indices : list of numpy.ndarray
        K int64 arrays of ``frames_per_segment`` relative frame positions, non-decreasing
        (repeated where a segment holds fewer frames than it samples).
    global_indices : numpy.ndarray
        int64 ``(frames_per_segment * K,)``, the positions pooled by ``global_``.
    """

    local: np.ndarray
    global_: np.ndarray
    indices: list[np.ndarray] = field(repr=False)
    global_indices: np.ndarray = field(repr=False)

    @property
    def k(self) -> int:
        """Number of local segments."""
        return len(self.indices)


def _sample_interval(lo: float, hi: float, n: int, rng: np.random.Generator | None) -> np.ndarray:
    """``n`` integer positions in ``[lo, hi]`` in temporal order.

    Evenly spaced, endpoints included (``rng`` None), or TSN-style jitter: each evenly spaced
    point moves uniformly within its own cell of width ``(hi - lo) / (n - 1)`` (clipped to the
    interval), so the samples cover the segment and cannot swap.
    """
    points = np.linspace(lo, hi, n)
    if rng is not None and hi > lo:
        half = (hi - lo) / (n - 1) / 2
        points = np.clip(points + rng.uniform(-half, half, n), lo, hi)
    # floor(x + 0.5), not np.rint: banker's rounding would make spacing depend on parity.
    return np.sort(np.floor(points + 0.5).astype(np.int64))


def _check(frames_len: int, onset: int, apex: int, offset: int, protocol: str,
           segments_per_phase: int, n_segments: int, frames_per_segment: int) -> None:
    if protocol not in PROTOCOLS:
        raise OptionError(f"unknown DSSI protocol {protocol!r}; expected one of {PROTOCOLS}")
    if frames_len < 2:
        raise ValueError(f"DSSI needs a clip of at least 2 frames, got {frames_len}")
    if onset > offset:
        raise ValueError(f"onset ({onset}) is after offset ({offset})")
    if onset < 0 or offset > frames_len - 1:
        raise ValueError(f"onset..offset ({onset}..{offset}) lies outside the clip's frames "
                         f"0..{frames_len - 1} (positions are relative to the frames given)")
    if offset - onset + 1 < 2:
        raise ValueError(f"DSSI needs at least 2 frames between onset and offset, got "
                         f"{offset - onset + 1} ({onset}..{offset})")
    if not onset <= apex <= offset:
        raise ValueError(f"apex ({apex}) lies outside onset..offset ({onset}..{offset})")
    for name, value, least in (("segments_per_phase", segments_per_phase, 1),
                               ("n_segments", n_segments, 1),
                               ("frames_per_segment", frames_per_segment, 2)):
        if int(value) != value or value < least:
            raise OptionError(f"{name} must be at least {least}, got {value}")


def dssi_indices(n_frames: int, onset: int, apex: int, offset: int, *,
                 protocol: Literal["phase", "uniform"] = "phase", segments_per_phase: int = 2,
                 n_segments: int = 4, frames_per_segment: int = 4, train: bool = False,
                 rng: np.random.Generator | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """The frame positions DSSI pools, without touching any frame.

    Parameters are those of :func:`dssi`, with ``n_frames`` the length of the clip.

    Returns
    -------
    indices : list of numpy.ndarray
        K arrays of ``frames_per_segment`` positions, one per segment, in temporal order.
    global_indices : numpy.ndarray
        ``frames_per_segment * K`` positions spread evenly over onset..offset (never jittered).
    """
    _check(n_frames, onset, apex, offset, protocol, segments_per_phase, n_segments,
           frames_per_segment)
    if train and rng is None:
        raise ValueError("train=True needs a numpy Generator (rng) for the jitter")
    jitter = rng if train else None
    if protocol == "phase":
        phases = [(onset, apex), (apex, offset)]
        per_phase = segments_per_phase
    else:
        phases = [(onset, offset)]
        per_phase = n_segments
    indices = []
    for start, end in phases:
        edges = np.linspace(start, end, per_phase + 1)
        indices += [_sample_interval(edges[j], edges[j + 1], frames_per_segment, jitter)
                    for j in range(per_phase)]
    global_indices = _sample_interval(onset, offset, frames_per_segment * len(indices), None)
    return indices, global_indices


def dssi(frames: np.ndarray, onset: int, apex: int, offset: int, *,
         protocol: Literal["phase", "uniform"] = "phase", segments_per_phase: int = 2,
         n_segments: int = 4, frames_per_segment: int = 4, train: bool = False,
         rng: np.random.Generator | None = None) -> DssiResult:
    """Local and global dynamic images of a clip under a DSSI sampling protocol.

    Parameters
    ----------
    frames : numpy.ndarray
        ``(T, H, W)`` or ``(T, H, W, C)``, uint8 or float, in temporal order.
    onset, apex, offset : int
        Positions in ``frames`` (relative: usually ``0``, the apex position, ``T - 1``), with
        ``onset <= apex <= offset``.
    protocol : {"phase", "uniform"}
        ``phase``: onset→apex and apex→offset, each cut into ``segments_per_phase`` equal
        segments (K = 2 * segments_per_phase). ``uniform``: ``n_segments`` equal segments over
        onset..offset, apex ignored (K = n_segments).
    segments_per_phase : int
        Segments per phase under ``phase`` (ignored under ``uniform``).
    n_segments : int
        Segments under ``uniform`` (ignored under ``phase``).
    frames_per_segment : int
        Frames pooled per segment, at least 2; the global DI pools ``frames_per_segment * K``.
    train : bool
        Jitter the local samples (TSN-style) instead of spacing them evenly.
    rng : numpy.random.Generator, optional
        Source of the jitter; required when ``train`` is true.

    Returns
    -------
    DssiResult
        ``local (K, H, W, C)``, ``global_ (H, W, C)`` float32 and the positions used.

    Raises
    ------
    ValueError
        Fewer than 2 frames, onset after offset, apex outside onset..offset, positions outside
        the frames (a bug of the caller); :class:`~fervid.errors.OptionError` for an unknown
        protocol or a bad count.
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]  # grayscale: keep one (K, H, W, C) layout downstream
    if frames.ndim != 4:
        raise ValueError(f"frames must be (T, H, W) or (T, H, W, C), got shape {frames.shape}")
    indices, global_indices = dssi_indices(
        len(frames), onset, apex, offset, protocol=protocol,
        segments_per_phase=segments_per_phase, n_segments=n_segments,
        frames_per_segment=frames_per_segment, train=train, rng=rng)
    return _pool(frames, indices, global_indices)


def _pool(frames: np.ndarray, indices: list[np.ndarray], global_indices: np.ndarray,
          positions: np.ndarray | None = None) -> DssiResult:
    """Pool ``frames`` (``(U, H, W, C)``) at ``indices``; ``positions`` maps each clip position
    to its row in ``frames`` when only the needed frames were read."""
    rows = (lambda p: p) if positions is None else (lambda p: np.searchsorted(positions, p))
    shape = frames.shape[1:]
    flat = frames.reshape(len(frames), -1)
    # All K segments share one length: gather them as a (K, n, N) batch and pool it at once.
    segments = flat[rows(np.stack(indices))]
    local = _pool_numpy(segments, rank_pool_coefficients(segments.shape[1]))
    glob = _pool_numpy(flat[rows(global_indices)][None], rank_pool_coefficients(
        len(global_indices)))
    return DssiResult(local=local.reshape(len(indices), *shape), global_=glob.reshape(shape),
                      indices=[i.copy() for i in indices], global_indices=global_indices)


# --- From a Sample's files, and the on-disk cache ------------------------------------------

@dataclass(frozen=True)
class DssiParams:
    """The protocol parameters of :func:`dssi` (and how frames are read), as one hashable value.

    ``mode`` is how frames are read: ``"rgb"`` (default, the channel order of ImageNet
    backbones), ``"bgr"`` (OpenCV's own) or ``"gray"`` (``C = 1``). ``register``: each pooled
    frame is first registered onto the clip's onset frame (``data.register``; faces already
    cropped, :func:`fervid.faces.register_cropped`).
    """

    protocol: Literal["phase", "uniform"] = "phase"
    segments_per_phase: int = 2
    n_segments: int = 4
    frames_per_segment: int = 4
    mode: Literal["rgb", "bgr", "gray"] = "rgb"
    register: bool = False

    def digest(self) -> str:
        """A short stable hash of the parameters (names the cache folder)."""
        fields = asdict(self)
        if not self.register:  # caches written before the option existed keep their names
            del fields["register"]
        text = json.dumps({"version": CACHE_VERSION, **fields}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


#: Bumped when the computation changes, so caches of an older version are never read.
CACHE_VERSION = 1


def _as_params(params: DssiParams | dict | None) -> DssiParams:
    return DssiParams(**params) if isinstance(params, dict) else params or DssiParams()


def _read_frame(path: Path, mode: str, key: str) -> np.ndarray:
    if not Path(path).is_file():
        raise PathNotFoundError(f"clip {key}: frame not found: {path}")
    flag = cv2.IMREAD_GRAYSCALE if mode == "gray" else cv2.IMREAD_COLOR
    image = cv2.imread(str(path), flag)
    if image is None or image.size == 0:
        raise FrameReadError(path, "corrupt or unsupported format", clip=key)
    if mode == "gray":
        return image[..., None]
    return image[..., ::-1] if mode == "rgb" else image


def dssi_from_sample(sample: Sample, params: DssiParams | dict | None = None, *,
                     train: bool = False, rng: np.random.Generator | None = None) -> DssiResult:
    """The DSSI of a :class:`~fervid.samples.Sample`, reading only the frames it pools.

    Parameters
    ----------
    sample : Sample
        Its ``frames`` run from onset to offset; the apex is ``sample.apex_position``.
    params : DssiParams or dict, optional
        Protocol and read mode; defaults to ``DssiParams()``.
    train, rng
        As in :func:`dssi`.

    Returns
    -------
    DssiResult
        Indices are positions in ``sample.frames``.

    Raises
    ------
    OptionError
        An unknown protocol or read mode, or a bad count.
    PathNotFoundError, FrameReadError, SampleError
        A frame is missing or unreadable, frames differ in size, or the annotation is invalid;
        the message names the clip key (and the file).
    """
    # Imported here: fervid.samples pulls in pandas, and the caller built a Sample already.
    from fervid.samples import SampleError

    params = _as_params(params)
    if params.mode not in ("rgb", "bgr", "gray"):
        raise OptionError(f"unknown read mode {params.mode!r}; expected 'rgb', 'bgr' or 'gray'")
    last = len(sample.frames) - 1
    counts = (params.segments_per_phase, params.n_segments, params.frames_per_segment)
    try:
        _check(len(sample.frames), 0, sample.apex_position, last, params.protocol, *counts)
    except OptionError:
        raise
    except ValueError as error:  # the clip's own frames or annotation
        raise SampleError(f"clip {sample.key}: {error}") from error
    indices, global_indices = dssi_indices(
        len(sample.frames), 0, sample.apex_position, last, protocol=params.protocol,
        segments_per_phase=params.segments_per_phase, n_segments=params.n_segments,
        frames_per_segment=params.frames_per_segment, train=train, rng=rng)
    # Sparse sampling pools a few of the clip's frames: read those only, once each.
    positions = np.unique(np.concatenate([*indices, global_indices]))
    if params.register:  # the onset is the reference, so it is read even when not pooled
        positions = np.union1d(positions, [0])
    images = [_read_frame(sample.frames[p], params.mode, sample.key) for p in positions]
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        raise SampleError(f"clip {sample.key}: frames differ in size: {sorted(sizes)}")
    if params.register:
        from fervid.faces.registration import register_cropped

        images = list(register_cropped(images).frames)  # positions[0] is 0
    return _pool(np.stack(images), indices, global_indices, positions)


class DssiCache:
    """DSSI results stored as ``.npz`` files under ``root``.

    Files are ``root/dssi-<params digest>/<sample key>.npz`` (with a ``params.json`` beside
    them saying which parameters the digest stands for). Evenly spaced (evaluation) results are
    cached, and so are *training views*: jittered results whose randomness comes from
    ``(seed, view, clip key)`` alone (``<sample key>.view<V>-seed<S>.npz``), so a training run
    draws among a few fixed jittered views per clip and no epoch or fold decodes a frame again.
    ``train=True`` with a caller's ``rng`` is computed fresh and never stored. A stored file whose
    clip description (apex position, frame count) no longer matches the sample is recomputed, so
    an edited annotation cannot serve a stale result.

    Parameters
    ----------
    root : path-like
        Cache folder; created on first write.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def path(self, sample: Sample, params: DssiParams | dict | None = None,
             view: int | None = None, seed: int = 0) -> Path:
        """Where the result of ``(sample, params)`` (or of one training view) is stored."""
        name = sample.key if view is None else f"{sample.key}.view{view}-seed{seed}"
        return self.root / f"dssi-{_as_params(params).digest()}" / f"{name}.npz"

    def get_or_compute(self, sample: Sample, params: DssiParams | dict | None = None, *,
                       train: bool = False, rng: np.random.Generator | None = None,
                       view: int | None = None, seed: int = 0) -> DssiResult:
        """The stored result for ``(sample, params)``, computing and storing it when absent.

        ``view=V`` gives training view V (jittered, seeded by ``(seed, V, clip key)``);
        ``train=True`` with an ``rng`` bypasses the cache (see the class notes).
        """
        params = _as_params(params)
        if train and view is None:
            return dssi_from_sample(sample, params, train=True, rng=rng)
        path = self.path(sample, params, view, seed)
        # What the stored result depends on besides the parameters: checked on every read.
        meta = json.dumps({"key": sample.key, "apex_position": sample.apex_position,
                           "frames": [len(sample.frames), Path(sample.frames[0]).name,
                                      Path(sample.frames[-1]).name] if sample.frames else []})
        cached = self._load(path, meta)
        if cached is not None:
            return cached
        if view is None:
            result = dssi_from_sample(sample, params)
        else:
            view_rng = np.random.default_rng([seed, view, zlib.crc32(sample.key.encode())])
            result = dssi_from_sample(sample, params, train=True, rng=view_rng)
        self._save(path, meta, params, result)
        return result

    @staticmethod
    def _load(path: Path, meta: str) -> DssiResult | None:
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["meta"]) != meta:
                    return None
                return DssiResult(local=data["local"], global_=data["global_"],
                                  indices=list(data["indices"]),
                                  global_indices=data["global_indices"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None  # unreadable leftovers are recomputed, not fatal

    @staticmethod
    def _save(path: Path, meta: str, params: DssiParams, result: DssiResult) -> None:
        def write(tmp: Path) -> None:
            # A file object, because np.savez appends ".npz" to a path that lacks it.
            with open(tmp, "wb") as f:
                np.savez(f, local=result.local, global_=result.global_,
                         indices=np.stack(result.indices),
                         global_indices=result.global_indices, meta=np.array(meta))

        atomic_write(path, write)
        info = path.parent / "params.json"
        if not info.exists():
            atomic_write_bytes(info, json.dumps(asdict(params), indent=2).encode())
