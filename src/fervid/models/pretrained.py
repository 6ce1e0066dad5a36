"""Initialising a ResNet backbone from a local file: a torchvision state dict or a fervid
checkpoint (e.g. ``RUN/model.pt`` of ``fervid fit`` on FER2013). Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fervid.config import ConfigError
from fervid.errors import library_reason

log = logging.getLogger("fervid")

#: Prefixes under which fervid models keep a torchvision ResNet trunk.
_TRUNK_PREFIXES = ("backbone.resnet.", "encoder.trunk.")


@dataclass(frozen=True)
class PretrainedLoad:
    """What :func:`load_backbone_weights` loaded: the file, its kind (``torchvision`` or
    ``fervid``), the ResNet layers filled (``conv1``, ``bn1``, ``layer1`` …) and how many
    tensors."""

    path: Path
    kind: str
    layers: tuple[str, ...]
    n_tensors: int

    def to_dict(self) -> dict:
        """For ``run.json`` / ``metrics.json``; ``sha1`` tells a retrained file apart."""
        digest = hashlib.sha1(self.path.read_bytes()).hexdigest()[:12]
        return {"path": str(self.path), "sha1": digest, "kind": self.kind,
                "layers": list(self.layers), "n_tensors": self.n_tensors}

    def describe(self) -> str:
        return (f"{self.path} ({self.kind}): loaded {self.n_tensors} tensors into "
                f"{', '.join(self.layers)}")


@dataclass(frozen=True)
class StateMismatch:
    """How a state dict differs from a model's: its missing and unexpected keys, and the keys
    of both whose shapes differ, as ``(key, shape in the file, shape in the model)``."""

    missing: list[str]
    unexpected: list[str]
    wrong_shape: list[tuple[str, tuple[int, ...], tuple[int, ...]]]

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.wrong_shape)


def state_mismatch(target: dict, state: dict, *, counters_optional: bool = False
                   ) -> StateMismatch:
    """Compare ``state`` with a module's ``target`` state dict. ``counters_optional``: BatchNorm's
    ``num_batches_tracked`` counters may be absent (old torchvision files predate them)."""
    optional = "num_batches_tracked" if counters_optional else None
    return StateMismatch(
        [k for k in target if k not in state and not (optional and k.endswith(optional))],
        [k for k in state if k not in target],
        [(k, tuple(v.shape), tuple(target[k].shape))
         for k, v in state.items() if k in target and v.shape != target[k].shape])


def _trunk(model: nn.Module) -> tuple[nn.Module, str, int]:
    """The torchvision ResNet inside ``model``, a name for messages and its input channels."""
    if hasattr(model, "resnet"):  # a ResNetBackbone
        return model.resnet, model.name, model.in_chans
    for attr in ("backbone", "encoder"):
        inner = getattr(model, attr, None)
        if isinstance(inner, nn.Module):
            return _trunk(inner)
    if hasattr(model, "trunk") and hasattr(model.trunk, "layer4"):  # the CNN+LSTM encoder
        return model.trunk, "resnet18", model.trunk.conv1.in_channels
    raise ConfigError(f"{type(model).__name__} has no ResNet backbone to initialise")


def _read_state(path: Path) -> tuple[dict, str]:
    if not path.is_file():
        raise ConfigError(f"model.pretrained_path {path}: not found (fervid never downloads; "
                          f"give a torchvision .pth or a fervid checkpoint)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        raise ConfigError(f"{path}: not a torch file: {library_reason(err)}") from err
    if isinstance(payload, dict) and payload.get("format", "").startswith("fervid-checkpoint"):
        state = payload.get("state_dict", {})
        for prefix in _TRUNK_PREFIXES:
            trunk = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if trunk:
                return trunk, "fervid"
        raise ConfigError(f"{path}: a fervid checkpoint of model "
                          f"{payload.get('config', {}).get('model', {}).get('name')!r}, which "
                          f"has no ResNet backbone")
    if not isinstance(payload, dict) or not all(isinstance(v, torch.Tensor)
                                                for v in payload.values()):
        raise ConfigError(f"{path} is neither a torchvision state dict nor a fervid checkpoint")
    return payload, "torchvision"


def load_backbone_weights(model: nn.Module, path: str | Path) -> PretrainedLoad:
    """Load a backbone's weights in place from ``path`` and say what was loaded.

    A torchvision file (``resnet18-f37072fd.pth``): ``fc.*`` is ignored, and with
    ``in_chans != 3`` the RGB ``conv1`` filters are averaged over colour and repeated. A fervid
    checkpoint: its backbone's trunk (``backbone.resnet.*``), without any head. Every trunk
    key must be present with the right shape and no other key may appear, so a resnet34 file,
    or a model of another stem or channel count, is refused with the keys that differ.

    Parameters
    ----------
    model
        SMA-STN, a single-image ResNet, a CNN+LSTM or a ResNetBackbone.
    path
        The file.

    Raises
    ------
    ConfigError
        Missing file, not a state dict, or weights that do not fit (names the file).
    """
    path = Path(path)
    resnet, name, in_chans = _trunk(model)
    state, kind = _read_state(path)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    target = resnet.state_dict()
    conv1 = state.get("conv1.weight")
    want = target["conv1.weight"].shape
    if (kind == "torchvision" and conv1 is not None and conv1.ndim == 4
            and conv1.shape[1] == 3 and want[1] != 3 and conv1.shape[2:] == want[2:]):
        state["conv1.weight"] = conv1.mean(1, keepdim=True).repeat(1, want[1], 1, 1)
    diff = state_mismatch(target, state, counters_optional=True)
    if diff:
        wrong = [f"{k}: file {a} vs model {b}" for k, a, b in diff.wrong_shape]
        parts = [f"{label} ({len(items)}): {', '.join(items[:3])}{' ...' * (len(items) > 3)}"
                 for label, items in (("missing", diff.missing), ("unexpected", diff.unexpected),
                                      ("shape mismatch", wrong)) if items]
        raise ConfigError(f"{path} does not fit a {name} backbone (in_chans={in_chans}): "
                          + "; ".join(parts))
    resnet.load_state_dict(state, strict=False)
    layers = tuple(dict.fromkeys(k.split(".")[0] for k in state))
    loaded = PretrainedLoad(path, kind, layers, len(state))
    model.pretrained = loaded  # read by the protocols, which record it in run.json
    log.info("pretrained backbone: %s", loaded.describe())
    return loaded
