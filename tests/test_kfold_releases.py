"""``fervid kfold`` over any registered release with folds of its own: FERV39k's train/test
split (fold 1) and MAFW's 5 folds, end to end through the CLI on trees built from the real
lists; the config's ``data.dataset``, and DFEW's fingerprints unchanged by it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fervid.cli import app
from fervid.config import ConfigError, KfoldConfig, load_config
from fervid.datasets.ferv39k import FERV39K_CLASSES
from fervid.datasets.mafw import MAFW_CLASSES
from fervid.protocol.kfold import resolved_config, run_kfold
from release_trees import ferv39k, mafw

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def tiny_config(path: Path, dataset: str, **data) -> Path:
    """A one-epoch r3d_18 config on 4 frames of 32 px reading ``dataset``, written to
    ``path``."""
    path.write_text(yaml.safe_dump({
        "name": f"tiny_{dataset}", "seed": 0, "model": {"name": "r3d_18"},
        "data": {"dataset": dataset, "num_frames": 4, "size": 32, **data},
        "train": {"lr": 1e-3, "batch_size": 7, "epochs": 1}, "run": {"num_workers": 0}}))
    return path


def kfold(*args: str) -> str:
    result = CliRunner().invoke(app, ["kfold", *args, "--no-progress"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("module, dataset, limit, protocol, classes, fold_size", [
    (ferv39k, "ferv39k", 14, "ferv39k_1fold", FERV39K_CLASSES, 14),
    (mafw, "mafw", 33, "mafw_5fold", MAFW_CLASSES, 6),
])
def test_one_fold_through_the_cli(tmp_path, module, dataset, limit, protocol, classes,
                                  fold_size):
    root = module.build(tmp_path, limit=limit, frames=3)["root"]
    cfg = tiny_config(tmp_path / "cfg.yaml", dataset)
    out = tmp_path / "run"
    output = kfold("--config", str(cfg), "--data-root", str(root), "--out", str(out),
                   "--folds", "1")
    assert "WAR" in output and f"1={classes[0]}" in " ".join(output.split())
    meta = json.loads((out / "run.json").read_text())
    assert meta["protocol"] == protocol and meta["dataset"] == dataset
    assert meta["classes"] == list(classes)
    saved = yaml.safe_load((out / "config.yaml").read_text())["data"]
    assert saved["classes"] == list(classes) and saved["source"] == meta["source"]
    frame = pd.read_csv(out / "folds" / "fold_001.csv", dtype={"clip": str})
    assert len(frame) == fold_size and [c for c in frame if c.startswith("p_")] == [
        f"p_{c}" for c in classes]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == dataset and metrics["folds"] == [1]
    # fervid report lists it as a k-fold run, and a rerun resumes it.
    report = CliRunner().invoke(app, ["report", str(out)])
    assert report.exit_code == 0 and "label order" in report.output, report.output
    kfold("--config", str(cfg), "--data-root", str(root), "--out", str(out), "--folds", "1")


@pytest.fixture(scope="module")
def ferv39k_tree(tmp_path_factory) -> Path:
    return ferv39k.build(tmp_path_factory.mktemp("ferv39k"), limit=7, frames=2)["root"]


@pytest.mark.parametrize("items, message", [
    (["data.source=clip_224x224"], "data.source 'clip_224x224': FERV39k has the sources "
                                   "2_ClipsforFaceCrop, 0_7_LabelClips"),
    (["data.classes=[happy,sad,neutral,angry,surprise,disgust,fear]"],
     r"differ from FERV39k's label order \['happiness', 'sadness', 'neutral', 'anger'"),
])
def test_a_config_the_release_refuses_names_its_values(ferv39k_tree, tmp_path, items, message):
    cfg = load_config(tiny_config(tmp_path / "c.yaml", "ferv39k"), items, schema=KfoldConfig)
    with pytest.raises(ConfigError, match=message):
        run_kfold(cfg, ferv39k_tree, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_folds_and_datasets_outside_the_release(ferv39k_tree, tmp_path):
    cfg = load_config(tiny_config(tmp_path / "c.yaml", "ferv39k"), schema=KfoldConfig)
    with pytest.raises(ConfigError, match=r"--folds: FERV39k folds are 1, got \[2\]"):
        run_kfold(cfg, ferv39k_tree, tmp_path / "run", folds=[2], progress=False)
    with pytest.raises(ConfigError, match="data.dataset: .*unknown dataset 'afew' for kfold; "
                                          "registered: dfew, ferv39k, mafw"):
        load_config(None, ["data.dataset=afew"], schema=KfoldConfig)
    with pytest.raises(ConfigError, match="unknown dataset 'casme2' for kfold"):
        load_config(None, ["data.dataset=casme2"], schema=KfoldConfig)
    # Checked again where the release is read (a config validated before the table loaded).
    unchecked = cfg.model_copy(update={"data": cfg.data.model_copy(update={"dataset": "samm"})})
    with pytest.raises(ConfigError, match="data.dataset: dataset 'samm' cannot be used by "
                                          "fervid kfold .*; valid names: dfew, ferv39k, mafw"):
        resolved_config(unchecked)
    result = CliRunner().invoke(app, ["kfold", "--config", str(tmp_path / "c.yaml"),
                                      "--data-root", str(ferv39k_tree), "--out",
                                      str(tmp_path / "r"), "--folds", "3"])
    assert result.exit_code == 2 and "FERV39k folds are 1" in result.output


def test_dfew_named_or_not_hashes_as_before():
    # The fingerprints run directories recorded before data.dataset existed.
    for name, fingerprint in (("dfew_r3d_18.yaml", "b2cff57107a5"),
                              ("dfew_smastn.yaml", "a1c5a561f066")):
        cfg = load_config(CONFIGS / name, schema=KfoldConfig)
        assert cfg.data.dataset is None and cfg.data.classes[0] == "happy"
        named = load_config(CONFIGS / name, ["data.dataset=dfew"], schema=KfoldConfig)
        assert named.data.classes is None  # filled from the release when it is read
        for made in (cfg, resolved_config(cfg)[0], resolved_config(named)[0]):
            assert made.fingerprint() == fingerprint, name
    resolved = resolved_config(load_config(None, [], schema=KfoldConfig))[0].data
    assert (resolved.dataset, resolved.source) == ("dfew", "clip_224x224_16f")


def test_release_configs_read_their_release():
    for name in ("ferv39k_r3d_18.yaml", "mafw_r3d_18.yaml"):
        cfg, spec, release = resolved_config(load_config(CONFIGS / name, schema=KfoldConfig))
        assert cfg.data.dataset == spec.name == name.split("_")[0]
        assert cfg.data.source == release.default_source
        assert tuple(cfg.data.classes) == release.classes
        assert (cfg.data.num_frames, cfg.data.size, cfg.train.batch_size) == (16, 112, 24)
