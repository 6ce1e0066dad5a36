"""Validated run configurations: small YAML files under ``configs/``, overridable as key=value.

One schema for every protocol: the sections (:mod:`fervid.config.sections`: model, data, train,
run), the protocols' configs built from them (:mod:`fervid.config.protocols`: LOSO, k-fold,
hold-out, with their defaults and fingerprints) and reading them from files and overrides
(:mod:`fervid.config.loading`).
"""

from fervid.config.loading import (
    ConfigError,
    deep_merge,
    load_config,
    parse_overrides,
    validation_problems,
)
from fervid.config.protocols import (
    LATER_FIELDS,
    NOT_READ,
    PLACEMENT_FIELDS,
    FitConfig,
    KfoldConfig,
    LosoConfig,
    fingerprint,
    protocol_defaults,
)
from fervid.config.sections import (
    DataConfig,
    DssiConfig,
    FitDataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    VideoDataConfig,
    default_name,
    register_name_source,
    registered_name,
)

__all__ = [
    "LATER_FIELDS", "NOT_READ", "PLACEMENT_FIELDS", "ConfigError", "DataConfig", "DssiConfig",
    "FitConfig", "FitDataConfig", "KfoldConfig", "LosoConfig", "ModelConfig", "RunConfig",
    "TrainConfig", "VideoDataConfig", "deep_merge", "default_name", "fingerprint",
    "load_config", "parse_overrides", "protocol_defaults", "register_name_source",
    "registered_name", "validation_problems",
]
