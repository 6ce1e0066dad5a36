"""Self-describing checkpoints: a model's weights with everything needed to use it on new video.

A checkpoint file (``torch.save`` of a dict, loadable with ``weights_only=True``) holds

``format``
    :data:`CHECKPOINT_FORMAT`, so a plain state dict is told apart;
``state_dict``
    the model's weights;
``config``
    the run's config as a plain dict (``LosoConfig`` or ``KfoldConfig`` ``model_dump()``) and
    ``schema`` naming which of the two;
``classes``
    class names in label order (index ``i`` is the model's output ``i``);
``input_spec``
    what the model takes (:class:`~fervid.representation.input_spec.InputSpec`, re-exported
    here).

LOSO and k-fold runs write their fold models ``RUN_DIR/models/fold_*.pt`` in this form. A plain
state dict from older runs is read too, its config and classes taken from
``RUN_DIR/config.yaml`` and ``RUN_DIR/run.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
import yaml
from pydantic import BaseModel, ValidationError
from torch import nn

from fervid.config import FitConfig, KfoldConfig, LosoConfig
from fervid.errors import FervidError, library_reason, path_error
from fervid.faces.prepared import prepared_with_registration
from fervid.files import atomic_write

# InputSpec and its representations live with the builder of the inputs they describe; they
# are re-exported here for the code that imports them from the checkpoint module.
from fervid.representation.input_spec import (  # noqa: F401  (re-exported)
    REPRESENTATIONS,
    InputSpec,
    InputSpecError,
    Representation,
)
from fervid.representation.video_clips import clip_input_spec

#: Value of the ``format`` key of a self-describing checkpoint.
CHECKPOINT_FORMAT = "fervid-checkpoint-1"
#: Checkpoint ``schema`` → the config class it holds.
SCHEMAS: dict[str, type[BaseModel]] = {"loso": LosoConfig, "kfold": KfoldConfig,
                                       "holdout": FitConfig}


class CheckpointError(FervidError, ValueError):
    """A checkpoint file that is missing pieces or does not describe a usable model."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: weights plus what they mean.

    ``classes`` is in label order: the model's output ``i`` is ``classes[i]``.
    """

    path: Path
    state_dict: dict
    config: dict
    schema: Literal["loso", "kfold", "holdout"]
    classes: tuple[str, ...]
    input_spec: InputSpec

    @property
    def label_order(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    @property
    def model_name(self) -> str:
        return self.config["model"]["name"]


def input_spec_from_config(config: LosoConfig | KfoldConfig | FitConfig,
                          input_shape: tuple[int, ...] | None = None,
                          frames: Iterable[Path] = ()) -> InputSpec:
    """The model input a run's config trains on.

    ``input_shape`` is one training input's shape, ``(C, S, S)``: needed for precomputed flow
    images, whose size and channels the config does not state. ``frames``: frame files of the
    training clips (one per clip is enough); when they all lie in a ``fervid prepare faces
    --align register`` output, the spec records ``register`` as ``data.register`` does.

    Raises
    ------
    CheckpointError
        A precomputed-flow config without ``input_shape``.
    """
    if isinstance(config, FitConfig):
        d = config.data
        return InputSpec("frame", d.size, "gray" if d.grayscale else "rgb", resize=d.resize)
    if isinstance(config, KfoldConfig):
        return clip_input_spec(config.data)
    d = config.data
    if d.format == "precomputed":
        if input_shape is None or len(input_shape) != 3:
            raise CheckpointError(
                f"model {config.model.name!r} takes precomputed flow images; their input shape "
                f"(C, S, S) is needed, got {input_shape}")
        return InputSpec("flow", int(input_shape[-1]), "rgb", {}, None, int(input_shape[0]))
    params = d.dssi.model_dump()
    mode = params.pop("mode")
    register = d.registered or prepared_with_registration(frames)
    return InputSpec(d.format, d.size, mode, params, register=register,
                     di_scaling=d.di_scaling)


def checkpoint_payload(model_state: dict, config: dict | BaseModel,
                       classes: list[str] | tuple[str, ...],
                       input_spec: InputSpec | dict | None = None, *,
                       where: Path | str = "checkpoint") -> dict:
    """The dict a self-describing checkpoint file holds (see the module docstring)."""
    parsed, schema = _parse_config(config, Path(where))
    spec = input_spec_from_config(parsed) if input_spec is None else _as_spec(input_spec)
    if len(classes) < 2:
        raise CheckpointError(f"{where}: a classifier needs at least 2 classes, got {classes}")
    return {"format": CHECKPOINT_FORMAT,
            "state_dict": {k: v.detach().cpu() for k, v in model_state.items()},
            "config": parsed.model_dump(), "schema": schema, "classes": list(classes),
            "input_spec": asdict(spec)}


def save_checkpoint(path: Path | str, model_state: dict, *, config: dict | BaseModel,
                    classes: list[str] | tuple[str, ...],
                    input_spec: InputSpec | dict | None = None) -> Path:
    """Write a self-describing checkpoint atomically.

    Parameters
    ----------
    path
        Output file (``.pt``).
    model_state
        The model's ``state_dict()`` (moved to the CPU here).
    config
        The run's ``LosoConfig`` / ``KfoldConfig`` or its ``model_dump()``.
    classes
        Class names in label order.
    input_spec
        What the model takes; None derives it from ``config``.
    """
    payload = checkpoint_payload(model_state, config, classes, input_spec, where=path)
    path = Path(path)
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return path


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Read a self-describing checkpoint, or a run's plain fold model with its run directory.

    A bundled model's name (``fer_mini_xception``, :mod:`fervid.models.bundled`) reads its
    file.

    Raises
    ------
    FileNotFoundError
        The file, or a fold model's ``config.yaml`` / ``run.json``, is missing.
    CheckpointError
        The file is not a checkpoint or describes no usable model; the message names it.
    """
    from fervid.models.bundled import resolve_checkpoint

    path = resolve_checkpoint(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; pass the .pt file in it")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): an interrupted copy?")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        raise path_error(path, err, "checkpoint") from err
    except Exception as err:  # torch raises many types for a non-checkpoint file
        raise CheckpointError(f"{path} is not a torch checkpoint (damaged, truncated or "
                              f"another kind of file): {library_reason(err)}") from err
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} holds a {type(payload).__name__}, not a checkpoint")
    if payload.get("format") == CHECKPOINT_FORMAT:
        missing = [k for k in ("state_dict", "config", "classes", "input_spec")
                   if k not in payload]
        if missing:
            raise CheckpointError(f"{path}: checkpoint lacks {missing}")
        wrong = [f"{key} is a {type(payload[key]).__name__}, not a {kind.__name__}"
                 for key, kind in (("state_dict", dict), ("config", dict), ("classes", list),
                                   ("input_spec", dict))
                 if not isinstance(payload[key], kind)]
        if wrong:
            raise CheckpointError(f"{path}: damaged checkpoint: {'; '.join(wrong)}")
        parsed, schema = _parse_config(payload["config"], path, payload.get("schema"))
        state, classes = payload["state_dict"], payload["classes"]
        spec = _as_spec(payload["input_spec"])
    elif payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        parsed, schema, classes = _read_run_dir(path)
        state = payload
        try:
            spec = input_spec_from_config(parsed)
        except CheckpointError as err:
            raise CheckpointError(f"{path} is a plain state dict, which does not record its "
                                  f"input: {err}") from err
    else:
        raise CheckpointError(f"{path} is neither a fervid checkpoint nor a state dict")
    return Checkpoint(path, state, parsed.model_dump(), schema, tuple(classes), spec)


def build_model_from_checkpoint(ckpt: Checkpoint) -> nn.Module:
    """The checkpoint's model with its weights loaded, in eval mode (on the CPU).

    Raises
    ------
    CheckpointError
        The weights do not fit the model the config describes.
    """
    from fervid.models import model_from_config

    in_chans, num_classes = ckpt.input_spec.channels, len(ckpt.classes)
    model_cfg = SCHEMAS[ckpt.schema].model_validate(ckpt.config).model
    # The checkpoint holds every weight: never read the file training started from.
    model = model_from_config(model_cfg, in_chans=in_chans, num_classes=num_classes,
                              pretrained=False)
    try:
        model.load_state_dict(ckpt.state_dict)
    except RuntimeError as err:
        raise CheckpointError(f"{ckpt.path}: weights do not fit model {ckpt.model_name!r} "
                              f"({in_chans} channels, {num_classes} classes): {err}") from err
    return model.eval()


def _as_spec(spec: InputSpec | dict) -> InputSpec:
    if isinstance(spec, InputSpec):
        return spec
    try:
        return InputSpec(**spec)
    except TypeError as err:
        raise CheckpointError(f"invalid input spec {spec}: {err}") from err
    except InputSpecError as err:  # e.g. an unknown representation
        raise CheckpointError(str(err)) from err


def _parse_config(config: dict | BaseModel, where: Path, schema: str | None = None
                  ) -> tuple[BaseModel, str]:
    """The config and its schema name; a recorded ``schema`` is the only one tried."""
    for name, cls in SCHEMAS.items():
        if isinstance(config, cls):
            return config, name
    data = config.model_dump() if isinstance(config, BaseModel) else dict(config)
    errors = []
    candidates = {schema: SCHEMAS[schema]} if schema in SCHEMAS else SCHEMAS
    for schema, cls in candidates.items():
        try:
            return cls.model_validate(data), schema
        except ValidationError as err:
            errors.append(f"{cls.__name__}: {err.error_count()} problem(s), first "
                          f"{'.'.join(map(str, err.errors()[0]['loc']))}: "
                          f"{err.errors()[0]['msg']}")
    raise CheckpointError(f"{where}: config is not a LOSO, k-fold or fit config ("
                          + "; ".join(errors) + ")")


def _read_run_dir(model_path: Path) -> tuple[LosoConfig | KfoldConfig, str, list[str]]:
    """Config and classes of the run a plain fold model ``RUN_DIR/models/fold_N.pt`` belongs to."""
    run_dir = model_path.resolve().parent.parent
    config_path, meta_path = run_dir / "config.yaml", run_dir / "run.json"
    for needed in (config_path, meta_path):
        if not needed.is_file():
            raise CheckpointError(
                f"{model_path} is a plain state dict; its config is read from the run "
                f"directory, but {needed} does not exist")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{config_path}: not valid YAML ({reason})") from err
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{meta_path}: not valid JSON ({err})") from err
    if not isinstance(raw or {}, dict) or not isinstance(meta, dict):
        bad = config_path if not isinstance(raw or {}, dict) else meta_path
        raise CheckpointError(f"{bad}: expected a mapping at the top level")
    parsed, schema = _parse_config(raw or {}, config_path)
    classes = meta.get("classes") or getattr(parsed.data, "classes", None) or []
    return parsed, schema, list(classes)

