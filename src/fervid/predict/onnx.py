"""ONNX export of a checkpoint's model (logits only), checked against torch with onnxruntime.

Needs the packages ``onnx`` (the exporter writes through it) and ``onnxruntime``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fervid.errors import FervidError, PathNotFoundError, path_error
from fervid.files import atomic_write
from fervid.runs.checkpoint import Checkpoint, build_model_from_checkpoint, load_checkpoint

#: Largest accepted absolute difference between torch and onnxruntime logits.
MAX_ABS_DIFF = 1e-4
INPUT_NAME, OUTPUT_NAME = "input", "logits"


class ExportMismatchError(FervidError, RuntimeError):
    """The exported model's logits differ from torch's by more than the tolerance."""


class OnnxModelError(FervidError, ValueError):
    """A file given as an exported model is not one onnxruntime can load."""


class LogitsOnly(nn.Module):
    """A classifier whose ``forward`` returns the logits of its :class:`ModelOutput` only."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits


class OnnxClassifier:
    """An exported model run with onnxruntime on the CPU: ``(B, *input)`` float32 → logits."""

    def __init__(self, path: Path | str):
        import onnxruntime

        path = Path(path)
        if not path.is_file():
            raise PathNotFoundError(f"ONNX model {path} does not exist")
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise OnnxModelError(f"{path} is not a readable ONNX model: {err}") from err
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)})[0]


def export_onnx(checkpoint: Path | str | Checkpoint, onnx_path: Path | str, *,
                opset: int = 17, seed: int = 0) -> float:
    """Export the checkpoint's model to ``onnx_path`` (batch dimension dynamic).

    The export is checked on a random input of the checkpoint's input shape (batch of 2):
    torch and onnxruntime logits must agree within :data:`MAX_ABS_DIFF`.

    Returns
    -------
    float
        The largest absolute difference between the two.

    Raises
    ------
    ExportMismatchError
        The difference exceeds :data:`MAX_ABS_DIFF` (the file is not kept).
    UserPathError
        ``onnx_path`` cannot be written (a folder, under a file, no permission).
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    model = LogitsOnly(build_model_from_checkpoint(ckpt)).eval()
    shape = (2, *ckpt.input_spec.example_shape())
    example = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    onnx_path = Path(onnx_path)

    def write(tmp: Path) -> None:
        # The TorchScript-based exporter: it needs no onnxscript and handles every model here.
        with warnings.catch_warnings():  # its deprecation notice and the shape-check trace
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"},
                                            OUTPUT_NAME: {0: "batch"}})
        diff = _max_abs_diff(model, tmp, example)
        if diff > MAX_ABS_DIFF:
            raise ExportMismatchError(
                f"{onnx_path}: onnxruntime logits differ from torch by {diff:.3g} "
                f"(> {MAX_ABS_DIFF:g}) on a random input of shape {shape}")
        write.diff = diff

    try:
        atomic_write(onnx_path, write)
    except FervidError:
        raise
    except OSError as err:  # the folder cannot be made or written: the user's path, named
        raise path_error(onnx_path, err, "ONNX output file") from err
    return write.diff


def _max_abs_diff(model: nn.Module, onnx_file: Path, example: torch.Tensor) -> float:
    with torch.inference_mode():
        expected = model(example).numpy()
    got = OnnxClassifier(onnx_file)(example.numpy())
    return float(np.abs(expected.astype(np.float64) - got).max())
