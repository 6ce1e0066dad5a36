"""TV-L1 flow, optical strain and the STSTNet image, checked on real CASME II frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import shared_path
from fervid.representation import (
    MEGC2019_CHANNELS,
    TVL1Params,
    optical_strain,
    read_gray,
    ststnet_input,
    ststnet_input_from_files,
    tvl1_flow,
)


@pytest.fixture(scope="module")
def sequence() -> tuple[np.ndarray, np.ndarray]:
    """First and last of 10 real consecutive CASME II frames (340x280 grayscale)."""
    folder = shared_path("casme2_sequence")
    return read_gray(folder / "001.jpg"), read_gray(folder / "010.jpg")


@pytest.fixture(scope="module")
def face(sequence) -> np.ndarray:
    """A central 160x160 crop: enough texture for TV-L1, small enough to keep tests fast."""
    onset = sequence[0]
    h, w = onset.shape
    return onset[h // 2 - 80:h // 2 + 80, w // 2 - 80:w // 2 + 80].copy()


def test_real_sequence_shapes_dtypes_and_ranges(sequence, tmp_path):
    onset, apex = sequence
    flow = tvl1_flow(onset, apex)
    assert flow.shape == (*onset.shape, 2) and flow.dtype == np.float32
    assert np.isfinite(flow).all()
    assert 0.05 < np.abs(flow).max() < 10  # real but small facial motion
    strain = optical_strain(flow)
    assert strain.shape == onset.shape and strain.dtype == np.float32
    assert (strain >= 0).all()

    image = ststnet_input(onset, apex)
    assert image.shape == (28, 28, 3) and image.dtype == np.uint8
    for c in range(3):  # per-image min-max: every channel spans 0..255
        assert image[:, :, c].min() == 0 and image[:, :, c].max() == 255

    path = tmp_path / "flow.png"
    assert cv2.imwrite(str(path), image)
    back = cv2.imread(str(path))
    assert back is not None and np.array_equal(back, image)  # imwrite/imread keep the order


def test_colour_and_float_inputs_give_the_same_flow(face):
    apex = np.roll(face, 1, axis=1)
    gray = tvl1_flow(face, apex)
    colour = tvl1_flow(cv2.cvtColor(face, cv2.COLOR_GRAY2BGR), cv2.cvtColor(apex,
                                                                            cv2.COLOR_GRAY2BGR))
    floats = tvl1_flow(face.astype(np.float32) / 255, apex.astype(np.float32) / 255)
    np.testing.assert_allclose(colour, gray, atol=1e-5)
    np.testing.assert_allclose(floats, gray, atol=1e-3)


def test_identical_frames_have_no_flow(face):
    flow = tvl1_flow(face, face)
    assert np.abs(flow).max() < 1e-3


@pytest.mark.parametrize(("dx", "dy"), [(1.0, 0.0), (0.0, -2.0), (0.5, 0.5)])
def test_shift_is_recovered(face, dx, dy):
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    apex = cv2.warpAffine(face, shift, face.shape[::-1], flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)
    flow = tvl1_flow(face, apex)
    inner = flow[10:-10, 10:-10]  # borders see reflected content
    assert np.median(inner[..., 0]) == pytest.approx(dx, abs=0.05)
    assert np.median(inner[..., 1]) == pytest.approx(dy, abs=0.05)
    # A translation does not deform the face: strain close to 0 (vs 0.03 for a 3 % stretch).
    assert np.median(optical_strain(flow)[10:-10, 10:-10]) < 0.01


def test_real_stretch_gives_its_strain(face):
    scale = 1.03  # horizontal stretch about the centre: u = 0.03 (x - cx), strain 0.03
    h, w = face.shape
    stretch = np.float32([[scale, 0, w / 2 * (1 - scale)], [0, 1, 0]])
    apex = cv2.warpAffine(face, stretch, (w, h), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)
    strain = optical_strain(tvl1_flow(face, apex))[20:-20, 20:-20]
    assert np.median(strain) == pytest.approx(scale - 1, abs=0.005)


def test_strain_of_analytic_fields():
    yy, xx = np.mgrid[0:30, 0:40].astype(np.float32)
    translation = np.dstack([np.full_like(xx, 1.7), np.full_like(xx, -0.4)])
    assert np.abs(optical_strain(translation)).max() == 0
    stretch = np.dstack([0.05 * xx, -0.02 * yy])  # e_xx = .05, e_yy = -.02, e_xy = 0
    np.testing.assert_allclose(optical_strain(stretch), np.hypot(0.05, 0.02), rtol=1e-5)
    shear = np.dstack([0.04 * yy, np.zeros_like(xx)])  # e_xy = 0.02 -> sqrt(2 * 0.02^2)
    np.testing.assert_allclose(optical_strain(shear), 0.04 / np.sqrt(2), rtol=1e-5)
    rotation = np.dstack([-0.03 * yy, 0.03 * xx])  # rigid (small) rotation: no strain
    np.testing.assert_allclose(optical_strain(rotation), 0, atol=1e-7)


def test_channel_order_and_constant_channel(face):
    apex = np.roll(face, 1, axis=1)  # pure shift: u, v nearly constant but not exactly
    default = ststnet_input(face, apex, size=16)
    uvs = ststnet_input(face, apex, size=16, channels=("u", "v", "strain"))
    assert MEGC2019_CHANNELS == ("strain", "v", "u")
    np.testing.assert_array_equal(default, uvs[:, :, ::-1])
    still = ststnet_input(face, face, size=16)  # zero flow everywhere: no division by zero
    assert still.shape == (16, 16, 3) and not still.any()


def test_same_channels_as_shipped_megc2019_set():
    """Our maps correlate channel by channel with the published images of the same clips.

    The two-frame GIFs are re-encoded copies of the onset and apex of clips in the set, so the
    values cannot match exactly, but a swapped u/v or strain channel shows at once.
    """
    gifs, shipped = shared_path("onset_apex"), shared_path("megc2019_flow")
    for name in ("006_006_1_2", "s03_s03_po_11"):  # SAMM and SMIC
        capture = cv2.VideoCapture(str(gifs / f"{name}.gif"))
        frames = [cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2GRAY) for _ in range(2)]
        ys, xs = np.nonzero(np.abs(frames[0].astype(int) - int(frames[0][0, 0])) > 8)
        onset, apex = (f[ys.min():ys.max() + 1, xs.min():xs.max() + 1] for f in frames)
        ours = ststnet_input(onset, apex).astype(float)
        theirs = cv2.imread(str(shipped / f"{name}.png")).astype(float)
        assert theirs.shape == ours.shape
        corr = [np.corrcoef(ours[..., c].ravel(), theirs[..., c].ravel())[0, 1] for c in range(3)]
        assert min(corr[1], corr[2]) > 0.7, corr  # v and u
        assert corr[0] > 0.2, corr  # strain: noisier, derivatives of re-encoded frames
        crossed = np.corrcoef(ours[..., 2].ravel(), theirs[..., 1].ravel())[0, 1]
        assert crossed < 0.3, crossed


def test_errors_are_clear(face, tmp_path):
    with pytest.raises(ValueError, match="differ in size"):
        tvl1_flow(face, face[:-1])
    with pytest.raises(ValueError, match="empty"):
        tvl1_flow(np.zeros((0, 5), np.uint8), np.zeros((0, 5), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tvl1_flow(face.astype(np.float32), face.astype(np.float32))
    with pytest.raises(ValueError, match="flow must have shape"):
        optical_strain(np.zeros((4, 4)))
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), face)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        ststnet_input_from_files(good, bad)
    with pytest.raises(FileNotFoundError, match="absent.jpg"):
        ststnet_input_from_files(tmp_path / "absent.jpg", good)
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), face[:50, :60])
    with pytest.raises(ValueError, match="small.png"):
        ststnet_input_from_files(good, small)


def test_parameters_change_the_flow(face):
    apex = np.roll(face, 2, axis=0)
    default = tvl1_flow(face, apex)
    coarse = tvl1_flow(face, apex, TVL1Params(nscales=1, warps=1, outer_iterations=1))
    assert not np.allclose(default, coarse)
