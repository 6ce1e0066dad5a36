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
