"""The three protocols' configs (LOSO, k-fold, hold-out): one schema of shared sections, each
protocol's defaults laid under them, the options it does not read refused, and the fingerprint a
resumed run must match."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import ClassVar, Literal

from pydantic import (
    BaseModel,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fervid.config.sections import (
    DataConfig,
    FitDataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    VideoDataConfig,
    _Strict,
    default_name,
    registered_name,
)


def _protocol_defaults(cls, data):
    """``data`` (a top-level config as given) with ``cls``'s protocol defaults laid under it.

    ``SECTION_DEFAULTS`` go under a section whether it is given or not; ``ABSENT_DEFAULTS``
    only where the section is absent. Before the sections were shared, each protocol had its
    own section classes; these two tables reproduce their effective values exactly (a
    section given in part got that class's defaults, an absent one the top-level default), so
    old run directories resume with the same fingerprint.
    """
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for section in cls.SECTION_DEFAULTS.keys() | cls.ABSENT_DEFAULTS.keys():
        under = cls.SECTION_DEFAULTS.get(section, {})
        if section not in data:
            data[section] = {**cls.ABSENT_DEFAULTS.get(section, {}), **under}
        elif isinstance(data[section], dict):
            data[section] = {**under, **data[section]}
    return data


#: The options a protocol does not read (they mean nothing there, or are not built yet:
#: docs/design.md, "Options × protocols"): a value other than the protocol's default is
#: refused, never silently ignored. Take an option out once its protocol honours it.
NOT_READ: dict[str, dict[str, tuple[str, ...]]] = {
    "loso": {"train": (), "run": ("num_workers", "prefetch_factor")},
    "kfold": {"train": ("au_weight",),
              "run": ("engine", "chunk", "checkpoint_every_s", "workers")},
    "holdout": {"train": ("select", "select_fraction", "select_every", "au_weight"),
                "run": ("engine", "chunk", "checkpoint_every_s", "workers", "trace_every",
                        "num_workers", "prefetch_factor")},
}


def _check_protocol(cfg: BaseModel):
    """``cfg`` when its model runs under its protocol, no option its protocol does not read is
    set (``NOT_READ``) and no options clash (:func:`_clashes`); else one error naming every
    such field."""
    protocol = cfg.PROTOCOL
    problems = []
    try:
        registered_name("model", cfg.model.name, protocol)
    except ValueError as e:
        problems.append(f"model.name: {e}")
    defaults = protocol_defaults(type(cfg))
    for section, keys in NOT_READ[protocol].items():
        for key in keys:
            value = getattr(getattr(cfg, section), key)
            if value != defaults[section][key]:
                problems.append(
                    f"{section}.{key}={value!r}: the {protocol} protocol does not use this "
                    f"option yet; leave it at {defaults[section][key]!r}")
    problems += _clashes(cfg.train, cfg.run)
    if problems:
        raise PydanticCustomError("protocol", "{problems}", {"problems": "; ".join(problems)})
    return cfg


def _clashes(train: TrainConfig, run: RunConfig) -> list[str]:
    """The training options that do not go together, under any protocol."""
    problems = []
    if train.average_last > train.epochs:
        problems.append(f"train.average_last={train.average_last} is more than "
                        f"train.epochs={train.epochs}")
    if train.selection == "best_validation":
        if train.average_last:
            problems.append("train.average_last averages the weights of the last epochs, "
                            "train.selection=best_validation keeps one epoch: set "
                            "train.selection=last with it")
        if train.select == "inner_val":
            problems.append("train.selection=best_validation and train.select=inner_val: use "
                            "one (inner_val already chooses the epochs)")
        if run.trace_every:
            problems.append("train.selection=best_validation and run.trace_every: use one (a "
                            "trace records the last epoch, the selection keeps another)")
    return problems


@functools.cache
def protocol_defaults(cls: type[BaseModel]) -> dict:
    """``cls()``'s ``model_dump()``, a protocol's defaults, built without validating ``cls``
    itself (its own validators ask for it)."""
    sections = {name: cls.model_fields[name].annotation.model_validate(value)
                for name, value in _protocol_defaults(cls, {}).items()}
    return cls.model_construct(**sections).model_dump()


class _ProtocolConfig(_Strict):
    """What every protocol's config holds: a name, a seed and the model, train and run
    sections, with the protocol's defaults laid under them (:func:`_protocol_defaults`) and its
    unread options refused (:func:`_check_protocol`). Each protocol adds its data section."""

    PROTOCOL: ClassVar[str]
    #: See :func:`_protocol_defaults`.
    SECTION_DEFAULTS: ClassVar[dict] = {}
    ABSENT_DEFAULTS: ClassVar[dict] = {}

    name: str
    seed: int = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    _defaults = model_validator(mode="before")(classmethod(_protocol_defaults))
    _protocol = model_validator(mode="after")(_check_protocol)

    def fingerprint(self, *, precision: str | None = None, fold_groups: int | None = None
                    ) -> str:
        """See :func:`fingerprint`."""
        return fingerprint(self, precision=precision, fold_groups=fold_groups)


class LosoConfig(_ProtocolConfig):
    """One LOSO experiment, or (with ``members``) an ensemble of several trained in each fold.
    """

    PROTOCOL: ClassVar[str] = "loso"
    SECTION_DEFAULTS: ClassVar[dict] = {"run": {"engine": "fold_batched"}}

    name: str = "loso"
    #: What a fold holds out: one ``subject`` (LOSO) or one ``dataset`` (MEGC2019's
    #: hold-out-database protocol: train on two parts of the composite set, test the third).
    group: Literal["subject", "dataset"] = "subject"
    data: DataConfig = Field(default_factory=DataConfig)
    #: Ensemble members: each a partial config (``name`` plus the sections it changes) laid
    #: over this one; every member runs the same folds into ``RUN/members/<name>``, and the
    #: run's predictions average their class probabilities (no label is used).
    members: list[dict] = Field(default_factory=list)

    @model_validator(mode="after")
    def _au_aid_applies(self):
        """``train.au_weight`` aids an emotion run trained by the sequential engine."""
        if not self.train.au_weight:
            return self
        weight = f"train.au_weight={self.train.au_weight:g}"
        if self.data.task != "emotion":
            raise PydanticCustomError("au_aid", f"{weight} aids an emotion run (data.task: "
                                      f"emotion); data.task={self.data.task} trains on the AUs "
                                      "alone")
        if self.run.engine != "sequential":
            raise PydanticCustomError("au_aid", f"{weight} trains an AU head beside the emotion "
                                      "head on run.engine=sequential, not run.engine="
                                      f"{self.run.engine}")
        return self


class KfoldConfig(_ProtocolConfig):
    """One experiment over a release's own folds (DFEW's five, MAFW's five, FERV39k's one
    train/test split)."""

    PROTOCOL: ClassVar[str] = "kfold"
    SECTION_DEFAULTS: ClassVar[dict] = {"model": {"name": "r3d_18"},
                                        "run": {"engine": "sequential", "num_workers": 2}}
    ABSENT_DEFAULTS: ClassVar[dict] = {"train": {"lr": 1e-4, "batch_size": 24, "epochs": 30}}

    name: str = "kfold"
    data: VideoDataConfig = Field(default_factory=VideoDataConfig)


class FitConfig(_ProtocolConfig):
    """One model trained on a whole release, with a hold-out protocol (``fervid fit``)."""

    PROTOCOL: ClassVar[str] = "holdout"
    SECTION_DEFAULTS: ClassVar[dict] = {
        "model": {"name": "frame_resnet"},
        "train": {"schedule": "onecycle", "selection": "best_validation"},
        "run": {"engine": "sequential"}}
    ABSENT_DEFAULTS: ClassVar[dict] = {
        "model": {"stem": "small", "drop_rate": 0.0},
        "train": {"optimizer": "sgd", "lr": 0.1, "batch_size": 128, "epochs": 15,
                  "weight_decay": 5e-4}}

    name: str = "fit"
    data: FitDataConfig = Field(default_factory=FitDataConfig)


#: ``run`` fields that change only where and how fast a run goes, never its numbers: left out
#: of every fingerprint. Everything else (model, data, train, seed, the precision used, the
#: engine and, for the fold-batched engine, how folds are grouped) is in.
PLACEMENT_FIELDS = ("accelerator", "devices", "num_nodes", "workers", "threads",
                    "checkpoint_every_s", "num_workers", "prefetch_factor")

#: Fields added after runs were first written, one by one.
_ADDED = ("group", "members", "model.c", "model.c_grid", "data.features",
          "data.flow_u_channel", "train.label_smoothing", "train.flow_flip",
          "train.average_last", "train.select", "train.select_fraction", "train.select_every",
          "run.trace_every", "train.au_weight")

#: By protocol, the fields its config did not have when its runs were first written: left out
#: of the fingerprint while at the protocol's default (:func:`protocol_defaults`), so a run
#: made before they existed still resumes. Besides ``_ADDED``, each protocol gained the
#: fields only the others had when the three protocols' sections became one schema.
LATER_FIELDS: dict[str, tuple[str, ...]] = {
    "loso": (*_ADDED, "train.nesterov", "train.schedule", "train.selection",
             "data.skip_missing", "data.task", "data.aus", "data.au_min_count",
             "data.au_sheets", "data.register", "data.di_scaling"),
    "kfold": (*_ADDED, "model.backbone", "model.spatial_attention", "model.spatial_stage",
              "model.temporal_attention", "model.use_global", "train.nesterov",
              "train.schedule", "train.selection", "run.engine", "run.chunk", "data.dataset"),
    "holdout": (*_ADDED, "run.engine", "run.chunk"),
}


#: By protocol, ``LATER_FIELDS`` whose default is a registered name (``default_name(kind,
#: protocol)``): naming that default is hashed as leaving the field out (k-fold's
#: ``data.dataset``: DFEW, the release every k-fold config read before the field existed).
NAMED_DEFAULTS: dict[str, dict[str, str]] = {"kfold": {"data.dataset": "dataset"}}


def fingerprint(cfg: LosoConfig | KfoldConfig | FitConfig, *, precision: str | None = None,
                fold_groups: int | None = None) -> str:
    """The one rule every protocol hashes a run by (``run.json``'s ``fingerprint``): a
    resumed run must match it.

    ``precision``: the precision actually used (Fabric's resolved setting; default the
    config's). ``fold_groups``: for the fold-batched engine, how many groups the folds were
    split into (processes × local workers), since a group trains as one batched model.
    """
    d = cfg.model_dump()
    defaults = protocol_defaults(type(cfg))
    named = NAMED_DEFAULTS.get(cfg.PROTOCOL, {})
    for path in LATER_FIELDS[cfg.PROTOCOL]:  # see LATER_FIELDS
        section, _, key = path.rpartition(".")
        node = d.get(section, {}) if section else d
        default = defaults.get(section, {}).get(key) if section else defaults.get(key)
        also = default_name(named[path], cfg.PROTOCOL) if path in named else None
        if key in node and (node[key] == default or (also is not None and node[key] == also)):
            del node[key]
    run = {k: v for k, v in d.pop("run").items() if k not in PLACEMENT_FIELDS}
    if precision is not None:
        run["precision"] = precision
    if fold_groups is not None:
        run["fold_groups"] = fold_groups
    d["run"] = run
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]
