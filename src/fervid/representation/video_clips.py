"""Clips of a k-fold release (DFEW, MAFW, FERV39k) as model inputs: a torch ``Dataset`` over
:class:`~fervid.datasets.video_release.VideoClip`.

Each item samples ``num_frames`` positions (``fervid.representation.temporal_sampling``), loads
only those frames at the model's size (``fervid.representation.frame_loading``) and returns a
float tensor: ``(C, T, S, S)`` scaled to [-1, 1] for the 3D/recurrent networks, or a DSSI stack
``(K+1, C, S, S)`` (standardised per image) for SMA-STN, both built by
:func:`fervid.representation.input_spec.build_input`, as ``fervid predict`` builds a window's
input. Training randomness comes from ``(seed, epoch, item)``, so results do not depend on the
number of loader workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from fervid.config import VideoDataConfig
from fervid.datasets.video_release import VideoClip
from fervid.representation.frame_loading import (
    count_video_frames,
    load_clip,
    load_video_frames,
)
from fervid.representation.input_spec import InputSpec, build_input, rgb_to_mode
from fervid.representation.temporal_sampling import sample_indices, tim_positions

#: DSSI over a sampled clip: K uniform segments of this many frames each (16 frames → K = 4).
DSSI_FRAMES_PER_SEGMENT = 4


def clip_dssi_params(num_frames: int) -> dict:
    """The DSSI (``fervid.representation.dssi.dssi`` keywords) of a clip of ``num_frames``
    sampled frames: K = num_frames / 4 uniform segments, onset, middle and last frame."""
    return {"protocol": "uniform", "segments_per_phase": 1,
            "n_segments": max(1, num_frames // DSSI_FRAMES_PER_SEGMENT),
            "frames_per_segment": DSSI_FRAMES_PER_SEGMENT}


def clip_input_spec(data: VideoDataConfig) -> InputSpec:
    """What a model trained on ``data`` takes: ``clip`` ``(C, T, S, S)`` or a DSSI stack
    ``(K+1, C, S, S)`` over ``data.num_frames`` sampled frames."""
    mode = "gray" if data.grayscale else "rgb"
    if data.representation == "dssi":
        return InputSpec("dssi", data.size, mode, clip_dssi_params(data.num_frames),
                         data.num_frames)
    return InputSpec("clip", data.size, mode, {}, data.num_frames)


class VideoClipDataset(Dataset):
    """Items ``(input tensor, label)`` of a list of clips.

    Parameters
    ----------
    clips : sequence of VideoClip
        With frames (a frame source) or a video (a video source).
    data : VideoDataConfig
        Frames per clip, sampling, size, grayscale, representation.
    train : bool
        Use ``data.train_sampling`` (random where the mode is) instead of ``eval_sampling``.
    seed : int
        With :meth:`set_epoch`, seeds each item's sampling.
    """

    def __init__(self, clips: Sequence[VideoClip], data: VideoDataConfig, *, train: bool,
                 seed: int = 0):
        self.clips, self.data, self.train, self.seed = list(clips), data, train, seed
        self.epoch = 0
        self.spec = clip_input_spec(data)
        self._lengths: dict[int, int] = {}

    def set_epoch(self, epoch: int) -> None:
        """Call before each epoch's loader iterator is created (workers copy the dataset)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def _length(self, i: int) -> int:
        if i not in self._lengths:
            clip = self.clips[i]
            self._lengths[i] = (len(clip.frames) if clip.frames is not None
                                else count_video_frames(clip.video))
        return self._lengths[i]

    def _load(self, clip: VideoClip, indices: np.ndarray) -> np.ndarray:
        if clip.frames is not None:
            return load_clip(clip.frames, self.data.size, indices=indices)
        return load_video_frames(clip.video, indices, self.data.size)

    def frames(self, i: int) -> np.ndarray:
        """The sampled frames of item ``i``: ``(T, S, S, 3)`` uint8, or float32 under ``tim``."""
        d, clip, n = self.data, self.clips[i], self._length(i)
        mode = d.train_sampling if self.train else d.eval_sampling
        if mode == "tim":  # linear interpolation in time between the two nearest frames
            pos = tim_positions(n, d.num_frames)
            lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
            needed = np.unique(np.concatenate([lo, hi]))
            loaded = self._load(clip, needed).astype(np.float32)
            row = {int(p): r for r, p in enumerate(needed)}
            w = (pos - lo)[:, None, None, None].astype(np.float32)
            return (1 - w) * loaded[[row[int(k)] for k in lo]] + w * loaded[
                [row[int(k)] for k in hi]]
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.train else None
        return self._load(clip, sample_indices(n, d.num_frames, mode, rng))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        frames = np.asarray(self.frames(i), dtype=np.float32)  # (T, S, S, 3)
        return build_input(self.spec, rgb_to_mode(frames, self.spec.mode)), self.clips[i].label


#: The name the dataset had when only DFEW was read; the same class.
DfewClipDataset = VideoClipDataset
