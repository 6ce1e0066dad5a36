from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from pydantic import BaseModel

import fervid.config
from fervid.config import (
    ConfigError,
    FitConfig,
    KfoldConfig,
    LosoConfig,
    TrainConfig,
    load_config,
    parse_overrides,
)
from fervid.config.spotting import SpotConfig
from fervid.models import model_names
from fervid.protocol.folds import parse_folds

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    # fervid fit's configs say which dataset they read: data.dataset fer2013 / image_folder.
    # fervid spot's configs (spot_*) are spotting runs.
    schema = (KfoldConfig if path.name.startswith(("dfew_", "ferv39k_", "mafw_"))
              else FitConfig if "fer2013" in path.name
              else SpotConfig if path.name.startswith("spot_") else None)
    load_config(path, schema=schema)


def test_dfew_configs_are_the_papers_setting():
    paths = sorted(p for p in CONFIGS.glob("dfew_*.yaml") if "former_dfer" not in p.name)
    assert len(paths) == 15  # seven networks with and without EC-STFL, and SMA-STN
    for path in paths:
        cfg = load_config(path, schema=KfoldConfig)
        assert (cfg.data.num_frames, cfg.data.size, cfg.train.batch_size) == (16, 112, 24)
        assert cfg.data.train_sampling == cfg.data.eval_sampling == "tim"
        if path.stem.endswith("_ecstfl"):
            assert cfg.train.feature_loss == "ec_stfl" and cfg.train.feature_loss_weight == 10


def test_ststnet_config_is_the_papers_recipe():
    cfg = load_config(CONFIGS / "ststnet_megc2019.yaml")
    t = cfg.train
    assert (t.optimizer, t.lr, t.batch_size, t.epochs) == ("adam", 5e-5, 256, 800)
    assert cfg.data.classes == ["negative", "positive", "surprise"]


def test_overrides_and_errors(tmp_path):
    assert parse_overrides(["train.epochs=3", "run.engine=sequential"]) == {
        "train": {"epochs": 3}, "run": {"engine": "sequential"}}
    cfg = load_config(CONFIGS / "ststnet_megc2019.yaml", ["train.lr=0.001", "seed=4"])
    assert cfg.train.lr == 0.001 and cfg.seed == 4
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(None, ["train.epochs=-1"])
    with pytest.raises(ConfigError, match="trian"):
        load_config(None, ["trian.epochs=1"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["train.epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_fingerprint_ignores_devices_only():
    a = load_config(None, [])
    assert a.fingerprint() == load_config(None, ["run.threads=3"]).fingerprint()
    assert a.fingerprint() != load_config(None, ["train.lr=0.1"]).fingerprint()


@pytest.mark.parametrize("schema, where, numbers", [
    (LosoConfig, ["run.devices=4", "run.num_nodes=2", "run.accelerator=cpu", "run.threads=3",
                  "run.checkpoint_every_s=5", "run.workers=3"],
     ["seed=1", "train.lr=0.1", "model.drop_rate=0.1", "data.size=64", "run.engine=sequential",
      "run.chunk=8"]),
    (KfoldConfig, ["run.devices=4", "run.num_nodes=2", "run.num_workers=7",
                   "run.prefetch_factor=4"],
     ["seed=1", "train.class_weights=balanced", "model.name=c3d", "data.num_frames=8"]),
])
def test_one_fingerprint_rule_for_both_protocols(schema, where, numbers):
    # Where and how fast a run goes is out; whatever changes its numbers is in.
    base = load_config(None, [], schema=schema).fingerprint()
    for item in where:
        assert load_config(None, [item], schema=schema).fingerprint() == base, item
    for item in numbers:
        assert load_config(None, [item], schema=schema).fingerprint() != base, item
    cfg = load_config(None, [], schema=schema)
    assert cfg.fingerprint(precision="bf16-mixed") != cfg.fingerprint(precision="32-true")
    assert cfg.fingerprint(precision=cfg.run.precision) == base


def test_fold_grouping_is_in_the_fingerprint():
    cfg = load_config(None, [])  # fold_batched: a group of folds trains as one model
    assert cfg.fingerprint(fold_groups=1) != cfg.fingerprint(fold_groups=2)


def test_one_config_schema():
    # One section class per section where the protocols differ only by a few fields (was
    # 17). Private bases (_Strict, _ProtocolConfig) hold shared behaviour, no section.
    import fervid.config.protocols
    import fervid.config.sections

    models = {name for module in (fervid.config.sections, fervid.config.protocols)
              for name, obj in vars(module).items() if inspect.isclass(obj)
              and issubclass(obj, BaseModel) and obj.__module__.startswith("fervid.config")
              and not name.startswith("_")}
    assert len(models) <= 11, sorted(models)
    for schema in (LosoConfig, KfoldConfig, FitConfig):
        assert schema.model_fields["train"].annotation is TrainConfig
        assert schema.model_fields["model"].annotation is fervid.config.ModelConfig
        assert schema.model_fields["run"].annotation is fervid.config.RunConfig


# Values as they were when each protocol had its own section classes (commit 9630334): an
# absent section took the protocol's top-level default, a section given in part its class's.
PROTOCOL_DEFAULTS = [
    (KfoldConfig, [], {"train.lr": 1e-4, "train.batch_size": 24, "train.epochs": 30,
                       "model.name": "r3d_18", "run.num_workers": 2}),
    (KfoldConfig, ["train.feature_loss=ec_stfl", "run.devices=2"],
     {"train.lr": 5e-5, "train.batch_size": 256, "train.epochs": 800, "run.num_workers": 2}),
    (FitConfig, [], {"train.optimizer": "sgd", "train.lr": 0.1, "train.batch_size": 128,
                     "train.epochs": 15, "train.weight_decay": 5e-4,
                     "train.schedule": "onecycle", "train.selection": "best_validation",
                     "model.name": "frame_resnet", "model.stem": "small",
                     "model.drop_rate": 0.0}),
    (FitConfig, ["train.epochs=3", "model.backbone=resnet34"],
     {"train.optimizer": "adam", "train.lr": 5e-5, "train.schedule": "onecycle",
      "train.selection": "best_validation", "model.name": "frame_resnet",
      "model.stem": "imagenet", "model.drop_rate": 0.5}),
    (LosoConfig, [], {"run.engine": "fold_batched", "model.name": "ststnet", "train.lr": 5e-5}),
    (LosoConfig, ["run.workers=2"], {"run.engine": "fold_batched", "train.select": "last"}),
]


@pytest.mark.parametrize("schema, overrides, values", PROTOCOL_DEFAULTS)
def test_protocol_defaults_are_as_before(schema, overrides, values):
    cfg = load_config(None, overrides, schema=schema).model_dump()
    for path, value in values.items():
        section, key = path.split(".")
        assert cfg[section][key] == value, path


@pytest.mark.parametrize("name, fingerprint", [
    ("ststnet_megc2019.yaml", "f029b9da07fd"), ("smastn_casme2.yaml", "07d86527c3f4"),
    ("lbptop_svm_megc2019.yaml", "07643d3ab33a"), ("dfew_r3d_18.yaml", "b2cff57107a5"),
    ("dfew_smastn.yaml", "a1c5a561f066"), ("resnet18_fer2013.yaml", "2203b6e683c5"),
])
def test_shipped_fingerprints_are_unchanged(name, fingerprint):
    # Run directories record this; a resume must match it (values of commit 9630334).
    schema = (KfoldConfig if name.startswith("dfew_")
              else FitConfig if "fer2013" in name else LosoConfig)
    assert load_config(CONFIGS / name, schema=schema).fingerprint() == fingerprint


def test_model_names_come_from_the_registry_by_protocol():
    assert "c3d" in model_names("kfold") and "c3d" not in model_names("loso")
    load_config(None, ["model.name=smastn"], schema=KfoldConfig)
    load_config(None, ["model.name=linear_svm", "run.engine=linear"])
    for schema, name in [(LosoConfig, "c3d"), (KfoldConfig, "ststnet"),
                         (FitConfig, "smastn"), (FitConfig, "resnet9000")]:
        with pytest.raises(ConfigError, match=f"model.name: unknown model '{name}'"):
            load_config(None, [f"model.name={name}"], schema=schema)


@pytest.mark.parametrize("schema, item", [
    (LosoConfig, "run.num_workers=3"), (KfoldConfig, "run.chunk=8"),
    (KfoldConfig, "run.engine=fold_batched"), (FitConfig, "run.trace_every=5"),
])
def test_an_option_a_protocol_does_not_use_is_refused(schema, item):
    key = item.split("=")[0]
    with pytest.raises(ConfigError, match=f"{key}=.*does not use this option yet"):
        load_config(None, [item], schema=schema)
    section, field = key.split(".")
    default = fervid.config.protocol_defaults(schema)[section][field]
    load_config(None, [f"{key}={default}"], schema=schema)  # its default is accepted



def test_parse_folds():
    assert parse_folds(None, 5) == [0, 1, 2, 3, 4]
    assert parse_folds("0-1,3", 5) == [0, 1, 3]
    for bad in ("3-1", "x", "0-9"):
        with pytest.raises(ValueError):
            parse_folds(bad, 5)


def test_dfew_folds_count_from_one_and_errors_name_what_was_typed():
    assert parse_folds("1-2,5", 5, first=1) == [1, 2, 5]
    assert parse_folds(None, 5, first=1) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match=r"fold\(s\) \[7\] out of range 1-5"):
        parse_folds("7", 5, first=1)
    with pytest.raises(ValueError, match="'1,,2'"):
        parse_folds("1,,2", 5, first=1)


#: Options that do not go together, and the protocols that read both (fit reads neither
#: train.select nor run.trace_every, and refuses them as such).
CLASHES = [
    (["train.average_last=9", "train.epochs=3"], "is more than train.epochs=3", "all"),
    (["train.average_last=2", "train.selection=best_validation"], "set train.selection=last",
     "all"),
    (["train.select=inner_val", "train.selection=best_validation"], "train.select=inner_val",
     "loso kfold"),
    (["run.trace_every=2", "train.selection=best_validation"], "run.trace_every", "loso kfold"),
]


@pytest.mark.parametrize("schema, items, message", [
    (schema, items, message) for items, message, where in CLASHES
    for schema in (LosoConfig, KfoldConfig, FitConfig)
    if where == "all" or schema.PROTOCOL in where.split()])
def test_options_that_clash_are_refused_under_every_protocol(schema, items, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, items, schema=schema)
