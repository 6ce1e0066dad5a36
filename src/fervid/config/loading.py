"""Reading a config: a YAML file and ``--set key=value`` overrides, validated, with one-line
errors naming the file and the fields."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from fervid.config.protocols import LosoConfig
from fervid.errors import FervidError, path_error


class ConfigError(FervidError, ValueError):
    """A config file or override is invalid; the message names the file and the fields."""


def parse_overrides(items: list[str]) -> dict:
    """``["train.epochs=10", "run.engine=sequential"]`` → nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. train.epochs=10)")
        key, raw = item.split("=", 1)
        parts = [p.strip() for p in key.strip().split(".")]
        if not all(parts):
            raise ConfigError(f"override {item!r}: the key {key!r} has an empty part; write "
                              f"key=value with a dotted key, e.g. train.epochs=10")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: the value of {key.strip()} is not valid "
                              f"YAML ({_yaml_problem(e)})") from None
        node = out
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[:i + 1])} is also set "
                                  f"to a single value by another override")
        node[parts[-1]] = value
    return out


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (line and column, 1-based)."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    what = getattr(e, "problem", None) or str(e).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{what}{where}"


def deep_merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for k, v in extra.items():
        merged[k] = deep_merge(merged[k], v) if isinstance(v, dict) and isinstance(
            merged.get(k), dict) else v
    return merged


def load_config(path: Path | None, overrides: list[str] | None = None,
                schema: type[BaseModel] | None = None):
    """Read a YAML config, apply ``key=value`` overrides, validate against ``schema``
    (:class:`LosoConfig` or :class:`KfoldConfig`)."""
    raw: dict = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        where = str(path)
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder; pass the config file (a .yaml) in it")
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            text = path.read_text(encoding="utf-8")
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not a UTF-8 text file: {e}") from None
        except OSError as e:
            raise path_error(path, e, "config file") from e
        if raw is None:
            # An empty file is a truncated copy more often than a wish for every default.
            raise ConfigError(f"{path}: the config file is empty (no settings); write at "
                              f"least one, e.g. 'name: my_run'")
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping (key: value lines) at the top "
                              f"level, found a {type(raw).__name__}")
    raw = deep_merge(raw, parse_overrides(overrides or []))
    try:
        return (schema or LosoConfig).model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{where}: invalid config: {validation_problems(e)}") from None


def validation_problems(error: ValidationError) -> str:
    """A pydantic error in one line: ``field.path: message; ...`` (a whole-config check's
    message names its fields itself)."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"]
                     else err["msg"] for err in error.errors())
