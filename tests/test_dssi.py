"""DSSI sampling protocols, reading a Sample's frames, the on-disk cache, and one real clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import fervid
from conftest import shared_path
from fervid.representation import dssi as dssi_module
from fervid.representation.dssi import (
    DssiCache,
    DssiParams,
    dssi,
    dssi_from_sample,
    dssi_indices,
)
from fervid.representation.dynamic_image import dynamic_image, to_display
from fervid.samples import Sample


def frames(T=17, H=4, W=5, C=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (T, H, W, C), dtype=np.uint8)


def as_lists(indices) -> list[list[int]]:
    return [i.tolist() for i in indices]


def test_phase_segments_meet_at_the_apex():
    x = frames()
    result = dssi(x, 0, 6, 16)
    # onset..apex = [0, 6] cut at 3; apex..offset = [6, 16] cut at 11; 4 evenly spaced samples.
    assert as_lists(result.indices) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 8, 9, 11],
                                        [11, 13, 14, 16]]
    assert result.global_indices.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14,
                                              15, 16]
    assert result.local.shape == (4, 4, 5, 3) and result.local.dtype == np.float32
    assert result.global_.shape == (4, 5, 3) and result.global_.dtype == np.float32
    for k, idx in enumerate(result.indices):
        np.testing.assert_allclose(result.local[k], dynamic_image(x[idx]), rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(result.global_, dynamic_image(x[result.global_indices]),
                               rtol=1e-6, atol=1e-3)


def test_phase_with_three_segments_per_phase():
    result = dssi(frames(), 0, 12, 15, segments_per_phase=3, frames_per_segment=2)
    assert as_lists(result.indices) == [[0, 4], [4, 8], [8, 12], [12, 13], [13, 14], [14, 15]]
    assert len(result.global_indices) == 12


def test_uniform_ignores_the_apex():
    x = frames(T=13)
    a = dssi(x, 0, 2, 12, protocol="uniform", n_segments=3)
    b = dssi(x, 0, 10, 12, protocol="uniform", n_segments=3)
    assert as_lists(a.indices) == [[0, 1, 3, 4], [4, 5, 7, 8], [8, 9, 11, 12]]
    assert as_lists(b.indices) == as_lists(a.indices)
    np.testing.assert_array_equal(a.local, b.local)
    assert a.k == 3 and len(a.global_indices) == 12


@pytest.mark.parametrize("protocol", ["phase", "uniform"])
@pytest.mark.parametrize("train", [False, True])
def test_indices_sorted_and_inside_a_subrange(protocol, train):
    for seed in range(20):
        rng = np.random.default_rng(seed)
        onset, offset = 2 + seed % 3, 9 + seed % 7
        apex = int(rng.integers(onset, offset + 1))
        indices, glob = dssi_indices(20, onset, apex, offset, protocol=protocol, train=train,
                                     rng=rng)
        for idx in [*indices, glob]:
            assert np.all(np.diff(idx) >= 0)
            assert idx.min() >= onset and idx.max() <= offset
        if protocol == "phase":
            assert all(i.max() <= apex for i in indices[:2])
            assert all(i.min() >= apex for i in indices[2:])


def test_train_jitter_is_seeded_and_differs_from_eval():
    x = frames(T=40)

    def jittered(seed):
        return dssi(x, 0, 15, 39, train=True, rng=np.random.default_rng(seed))

    evaluation = as_lists(dssi(x, 0, 15, 39).indices)
    assert as_lists(jittered(3).indices) == as_lists(jittered(3).indices)
    np.testing.assert_array_equal(jittered(3).local, jittered(3).local)
    runs = [as_lists(jittered(seed).indices) for seed in range(5)]
    assert all(r != evaluation for r in runs)
    assert len({str(r) for r in runs}) > 1
    # The global DI is never jittered.
    assert jittered(3).global_indices.tolist() == dssi(x, 0, 15, 39).global_indices.tolist()
    with pytest.raises(ValueError, match="rng"):
        dssi(x, 0, 15, 39, train=True)


def test_short_clip_repeats_frames():
    x = frames(T=3)
    result = dssi(x, 0, 1, 2)
    assert result.local.shape[0] == 4
    assert all(len(i) == 4 for i in result.indices)
    # apex == onset: onset..apex is a single frame, so its segments repeat it and pool to zero.
    flat = dssi(x, 0, 0, 2)
    assert as_lists(flat.indices[:2]) == [[0, 0, 0, 0], [0, 0, 0, 0]]
    assert np.abs(flat.local[:2]).max() < 1e-3 and np.abs(flat.local[2:]).max() > 1
    two = dssi(frames(T=2), 0, 1, 1, train=True, rng=np.random.default_rng(0))
    assert two.local.shape == (4, 4, 5, 3)


def test_grayscale_frames_get_one_channel():
    result = dssi(frames()[..., 0], 0, 8, 16)
    assert result.local.shape == (4, 4, 5, 1) and result.global_.shape == (4, 5, 1)


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((0, 20, 16), {}, r"apex \(20\) lies outside onset\.\.offset"),
    ((5, 3, 9), {}, r"apex \(3\) lies outside"),
    ((9, 9, 4), {}, r"onset \(9\) is after offset \(4\)"),
    ((0, 3, 30), {}, "outside the clip's frames"),
    ((4, 4, 4), {}, "at least 2 frames between onset and offset"),
    ((0, 3, 16), {"protocol": "random"}, "unknown DSSI protocol 'random'"),
    ((0, 3, 16), {"frames_per_segment": 1}, "frames_per_segment must be at least 2"),
])
def test_bad_arguments_raise(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        dssi(frames(), *args, **kwargs)


def test_one_frame_clip_raises():
    with pytest.raises(ValueError, match="at least 2 frames"):
        dssi(frames(T=1), 0, 0, 0)


# --- Samples and the cache --------------------------------------------------------------------

def write_sample(folder: Path, T=7, apex=3, clip="EP01") -> tuple[Sample, np.ndarray]:
    """A Sample whose frames are PNGs (lossless, so reads are exact); also the BGR frames."""
    x = frames(T=T, H=6, W=8)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, image in enumerate(x):
        paths.append(folder / f"img{100 + t}.png")
        cv2.imwrite(str(paths[-1]), image)
    sample = Sample("casme2", "sub01", clip, 100, 100 + apex, 100 + T - 1, "happiness", 0,
                    tuple(paths))
    return sample, x


@pytest.mark.parametrize(("mode", "convert"), [("rgb", lambda x: x[..., ::-1]),
                                               ("bgr", lambda x: x),
                                               ("gray", lambda x: None)])
def test_dssi_from_sample_matches_dssi_of_the_frames(tmp_path, mode, convert):
    sample, x = write_sample(tmp_path)
    got = dssi_from_sample(sample, DssiParams(mode=mode))
    expected_frames = convert(x)
    if expected_frames is None:  # gray: compare with OpenCV's own conversion
        expected_frames = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in
                                    sample.frames])
    expected = dssi(expected_frames, 0, 3, 6)
    np.testing.assert_allclose(got.local, expected.local, atol=1e-3)
    np.testing.assert_allclose(got.global_, expected.global_, atol=1e-3)
    assert as_lists(got.indices) == as_lists(expected.indices)


def test_unreadable_or_bad_sample_names_the_clip_and_file(tmp_path):
    sample, _ = write_sample(tmp_path)
    broken = sample.frames[3]
    broken.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=rf"casme2_sub01_EP01.*{broken.name}"):
        dssi_from_sample(sample)
    sample.frames[0].unlink()
    with pytest.raises(FileNotFoundError, match=rf"casme2_sub01_EP01.*{sample.frames[0].name}"):
        dssi_from_sample(sample)
    bad_apex = Sample("casme2", "sub01", "EP02", 100, 140, 106, "happiness", 0, sample.frames)
    with pytest.raises(ValueError, match=r"casme2_sub01_EP02: apex \(40\)"):
        dssi_from_sample(bad_apex)


def test_cache_hit_is_identical_and_not_recomputed(tmp_path, monkeypatch):
    sample, _ = write_sample(tmp_path / "frames")
    calls = []
    real = dssi_module.dssi_from_sample
    monkeypatch.setattr(dssi_module, "dssi_from_sample",
                        lambda *a, **k: calls.append(k.get("train", False)) or real(*a, **k))
    cache = DssiCache(tmp_path / "cache")
    first = cache.get_or_compute(sample)
    assert calls == [False] and cache.path(sample, DssiParams()).is_file()
    second = cache.get_or_compute(sample)
    assert calls == [False]  # served from disk
    np.testing.assert_array_equal(second.local, first.local)
    np.testing.assert_array_equal(second.global_, first.global_)
    assert as_lists(second.indices) == as_lists(first.indices)
    np.testing.assert_array_equal(second.global_indices, first.global_indices)
    # Other parameters: another file. Training samples: computed every time, never stored.
    cache.get_or_compute(sample, DssiParams(protocol="uniform"))
    cache.get_or_compute(sample, train=True, rng=np.random.default_rng(0))
    assert calls == [False, False, True]
    cache.get_or_compute(sample, {"protocol": "uniform"})  # the same parameters as a dict: a hit
    assert calls == [False, False, True]
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 2
    assert not list((tmp_path / "cache").rglob("*.tmp-*"))
    # An edited apex must not be served the stale result.
    moved = Sample("casme2", "sub01", "EP01", 100, 101, 106, "happiness", 0, sample.frames)
    cache.get_or_compute(moved)
    assert calls[-1] is False and len(calls) == 4


def test_lazy_top_level_dssi():
    assert fervid.dssi is dssi


# --- A real CASME II clip ---------------------------------------------------------------------

def block_means(image: np.ndarray, size: int = 20) -> np.ndarray:
    h, w = (image.shape[0] // size) * size, (image.shape[1] // size) * size
    return image[:h, :w].reshape(h // size, size, w // size, size).mean(axis=(1, 3))


def test_real_clip_motion_where_frames_change(tmp_path):
    folder = shared_path("casme2_sequence")
    paths = tuple(sorted(folder.glob("*.jpg")))
    assert len(paths) == 10
    sample = Sample("casme2", "sub00", "sequence", 1, 1 + (len(paths) - 1) // 2, len(paths),
                    "others", None, paths)
    result = dssi_from_sample(sample)
    grid = np.hstack(list(to_display(np.concatenate([result.local, result.global_[None]]))))
    out = tmp_path / "dssi_grid.png"
    assert cv2.imwrite(str(out), grid[..., ::-1])
    assert cv2.imread(str(out)).shape == grid.shape

    energy = np.abs(result.local).mean(axis=(0, 3))                         # (H, W)
    assert energy.mean() > 0.1
    gray = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]).astype(np.float32)
    change = np.abs(np.diff(gray, axis=0)).mean(axis=0)                     # (H, W)
    e, c = block_means(energy).ravel(), block_means(change).ravel()
    assert np.corrcoef(e, c)[0, 1] > 0.3
    # The blocks that change most carry clearly more DI energy than those that change least.
    order = np.argsort(c)
    tenth = len(order) // 10
    assert e[order[-tenth:]].mean() > 1.2 * e[order[:tenth]].mean()
