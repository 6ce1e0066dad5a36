"""One input builder: training and ``fervid predict`` build the same tensor from the same frames.

Each representation's window is written as lossless PNG frames and read back through the
training path (LOSO clip inputs, the DFEW clip dataset, still-face batches), and built from the
same uint8 crops through the predict path (``window_input`` / ``frame_inputs``); the tensors
must be identical, bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fervid.config import VideoDataConfig
from fervid.datasets.dfew import DfewClip
from fervid.errors import FervidError
from fervid.predict.frames import frame_inputs
from fervid.predict.windows import window_input
from fervid.representation.clip_inputs import apex_image, build_clip_inputs
from fervid.representation.dssi import DssiCache, DssiParams
from fervid.representation.face_images import eval_face_batches, load_face_images
from fervid.representation.input_spec import (
    REPRESENTATIONS,
    InputSpec,
    InputSpecError,
    build_input,
    dssi_input,
    to_unit_range,
)
from fervid.representation.video_clips import DfewClipDataset, clip_input_spec
from fervid.runs import checkpoint
from fervid.samples import Sample, SampleTable

SIZE = 32


def write_frames(folder: Path, crops: np.ndarray) -> tuple[Path, ...]:
    """``(T, S, S, 3)`` RGB crops as PNG files (lossless), in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, crop in enumerate(crops):
        path = folder / f"img{i:03d}.png"
        cv2.imwrite(str(path), np.ascontiguousarray(crop[..., ::-1]))
        paths.append(path)
    return tuple(paths)


@pytest.fixture(scope="module")
def window(tmp_path_factory) -> tuple[np.ndarray, tuple[Path, ...], Path]:
    """9 RGB crops (odd: the middle frame is the apex under either rounding) and their files."""
    crops = np.random.default_rng(7).integers(0, 256, (9, SIZE, SIZE, 3), dtype=np.uint8)
    root = tmp_path_factory.mktemp("window")
    return crops, write_frames(root / "frames", crops), root


@pytest.mark.parametrize("representation", ["dssi", "global_di", "apex"])
def test_loso_inputs_and_predict_windows_are_identical(window, representation):
    crops, frames, root = window
    sample = Sample("casme2", "01", "EP01", 100, 104, 108, "happiness", 0, frames)
    assert sample.apex_position == len(crops) // 2 == (len(crops) - 1) // 2
    params = DssiParams(mode="rgb")
    spec = InputSpec(representation, SIZE, "rgb")
    predicted = torch.from_numpy(window_input(crops, spec))
    assert predicted.shape == spec.example_shape() and predicted.dtype == torch.float32

    if representation == "apex":
        trained = torch.from_numpy(apex_image(sample, SIZE, "rgb"))
    else:
        trained = torch.from_numpy(dssi_input(
            DssiCache(root / "cache").get_or_compute(sample, params), spec))
    assert torch.equal(trained, predicted)
    # And as the LOSO engines receive them (stored as float16).
    table = SampleTable([sample], ("happiness", "others"))
    x = build_clip_inputs(table, representation, size=SIZE, params=params,
                          cache_dir=root / "cache").x
    assert torch.equal(x[0], predicted.half())


def test_clip_scaling_is_the_same_in_training_and_predict(window):
    crops, frames, root = window
    sample = Sample("casme2", "01", "EP01", 100, 104, 108, "happiness", 0, frames)
    spec = InputSpec("dssi", SIZE, "rgb", di_scaling="clip")
    predicted = torch.from_numpy(window_input(crops, spec))
    x = build_clip_inputs(SampleTable([sample], ("happiness", "others")), "dssi", size=SIZE,
                          params=DssiParams(mode="rgb"), cache_dir=root / "cache",
                          di_scaling="clip").x
    assert torch.equal(x[0], predicted.half())
    per_image = torch.from_numpy(window_input(crops, InputSpec("dssi", SIZE, "rgb")))
    assert torch.equal(predicted[-1], per_image[-1])  # the global DI: on its own either way
    assert not torch.allclose(predicted[:-1], per_image[:-1])


def test_clip_scaling_keeps_a_still_segment_faint():
    # Frames still for the first half, then a patch brightening: the first local DIs are
    # only sensor noise.
    rng = np.random.default_rng(0)
    base = rng.integers(60, 150, (SIZE, SIZE, 1)).astype(np.float32)
    patch = np.zeros_like(base)
    patch[8:24, 8:24] = 1.0
    frames = np.stack([base + rng.normal(0, 0.7, base.shape) + max(0, t - 8) * 6.0 * patch
                       for t in range(17)]).clip(0, 255).round().astype(np.uint8)
    dssi = {"protocol": "uniform", "n_segments": 4, "frames_per_segment": 4}
    kept = build_input(InputSpec("dssi", SIZE, "gray", dssi, di_scaling="clip"), frames)
    each = build_input(InputSpec("dssi", SIZE, "gray", dssi), frames)
    local = kept[:-1]
    assert abs(float(local.mean())) < 1e-4 and abs(float(local.std()) - 1) < 1e-3
    assert float(local[0].std()) < 0.2 * float(local[-1].std())  # noise stays faint
    assert abs(float(each[0].std()) - 1) < 1e-3  # per image: stretched to unit variance


def test_the_checkpoint_spec_records_the_dynamic_image_scaling():
    from fervid.config import LosoConfig

    cfg = LosoConfig.model_validate({"model": {"name": "smastn"}, "data": {
        "format": "dssi", "dataset": "casme2", "di_scaling": "clip"}})
    assert checkpoint.input_spec_from_config(cfg).di_scaling == "clip"
    with pytest.raises(InputSpecError, match="dynamic-image scaling"):
        InputSpec("dssi", SIZE, di_scaling="segment")


@pytest.mark.parametrize("representation", ["clip", "dssi"])
@pytest.mark.parametrize("n_crops, num_frames, size", [(8, 8, SIZE), (20, 16, 112)])
def test_dfew_clips_and_predict_windows_are_identical(tmp_path, representation, n_crops,
                                                       num_frames, size):
    # At 112 pixels, pooling uint8 frames and float32 frames differ in the last bit: the
    # builder pools the float32 frames the DFEW dataset trains on.
    crops = np.random.default_rng(n_crops).integers(0, 256, (n_crops, size, size, 3),
                                                    dtype=np.uint8)
    frames = write_frames(tmp_path, crops)
    data = VideoDataConfig(num_frames=num_frames, size=size, representation=representation,
                           eval_sampling="uniform")
    trained, label = DfewClipDataset([DfewClip("00001", 3, frames)], data, train=False)[0]
    spec = clip_input_spec(data)
    predicted = torch.from_numpy(window_input(crops, spec))
    assert label == 3 and trained.shape == spec.example_shape()
    assert torch.equal(trained, predicted)
    assert torch.equal(trained, build_input(spec, crops))


def test_frame_batches_and_predict_frames_are_identical(tmp_path):
    resize = 40
    crops = np.random.default_rng(3).integers(0, 256, (5, resize, resize, 3), dtype=np.uint8)
    frames = write_frames(tmp_path, crops)
    table = SampleTable([Sample("ckplus", "S001", f"c{i}", 0, 0, 0, "happy", 0, (f,))
                         for i, f in enumerate(frames)], ("happy", "sad"))
    faces = load_face_images(table, resize, gray=False, show_progress=False)
    trained = torch.cat(list(eval_face_batches(faces, torch.arange(len(table)), 2, SIZE)))
    spec = InputSpec("frame", SIZE, "rgb", resize=resize)
    predicted = torch.from_numpy(frame_inputs(crops, spec))
    assert predicted.shape == (len(crops), *spec.example_shape())
    assert torch.equal(trained, predicted)


def test_build_input_shapes_and_the_one_normaliser():
    crops = np.random.default_rng(0).integers(0, 256, (12, SIZE, SIZE, 1), dtype=np.uint8)
    for spec in (InputSpec("dssi", SIZE, "gray"), InputSpec("global_di", SIZE, "gray"),
                 InputSpec("apex", SIZE, "gray"), InputSpec("clip", SIZE, "gray", {}, 6),
                 InputSpec("dssi", SIZE, "gray", {"protocol": "uniform", "n_segments": 3})):
        x = build_input(spec, crops)
        assert x.shape == spec.example_shape() and x.dtype == torch.float32, spec
    clip = build_input(InputSpec("clip", SIZE, "gray", {}, 12), crops)
    assert torch.equal(clip, to_unit_range(torch.from_numpy(
        crops.astype(np.float32).transpose(3, 0, 1, 2).copy())))
    assert clip.min() >= -1 and clip.max() <= 1
    # A grayscale window without its channel axis is the same window.
    assert torch.equal(build_input(InputSpec("dssi", SIZE, "gray"), crops[..., 0]),
                       build_input(InputSpec("dssi", SIZE, "gray"), crops))


def test_input_spec_errors_are_one_line_fervid_errors():
    with pytest.raises(InputSpecError, match="unknown input representation 'optical'") as err:
        InputSpec("optical", 32)
    assert isinstance(err.value, FervidError) and isinstance(err.value, ValueError)
    assert "\n" not in str(err.value)
    with pytest.raises(InputSpecError, match="precomputed optical-flow"):
        build_input(InputSpec("flow", 28, in_chans=3), np.zeros((4, 28, 28, 3), np.uint8))
    # Read from a checkpoint, the same problem is a CheckpointError.
    with pytest.raises(checkpoint.CheckpointError, match="unknown input representation"):
        checkpoint._as_spec({"representation": "optical", "size": 32})


def test_the_checkpoint_module_re_exports_the_spec():
    assert checkpoint.InputSpec is InputSpec
    assert checkpoint.REPRESENTATIONS == REPRESENTATIONS
