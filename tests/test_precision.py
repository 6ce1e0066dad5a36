"""``run.precision: auto``: bf16-mixed only where bfloat16 is native, recorded in run.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from fervid.config import KfoldConfig, LosoConfig
from fervid.training import setup
from fervid.training.setup import resolve_precision, with_resolved_precision

# Spotting configs (spot_*) train no network through Fabric: they have no run.precision.
CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")
                 if not p.name.startswith("spot_"))


def _cpu(monkeypatch, tmp_path: Path, flags: str | None) -> None:
    """Pretend to be a CPU-only machine whose /proc/cpuinfo holds ``flags`` (None: unreadable)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    cpuinfo = tmp_path / "cpuinfo"
    if flags is not None:
        cpuinfo.write_text(f"flags\t: fpu sse2 avx2 {flags}\n")
    monkeypatch.setattr(setup, "CPUINFO", cpuinfo)


@pytest.mark.parametrize(("flags", "expected"), [
    ("avx512f", "32-true"), ("avx512_bf16", "bf16-mixed"), ("amx_bf16 amx_tile", "bf16-mixed"),
    (None, "32-true")])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, tmp_path, flags, expected):
    _cpu(monkeypatch, tmp_path, flags)
    assert resolve_precision("auto", "auto") == expected
    assert resolve_precision("cpu", "auto") == expected


def test_auto_on_a_bf16_cpu_is_bf16_for_the_fold_batched_engine_only(monkeypatch, tmp_path):
    _cpu(monkeypatch, tmp_path, "avx512_bf16")
    assert resolve_precision("cpu", "auto", cpu_bf16=False) == "32-true"
    batched = LosoConfig()
    assert batched.run.engine == "fold_batched"
    assert with_resolved_precision(batched).run.precision == "bf16-mixed"
    sequential = LosoConfig.model_validate({"run": {"engine": "sequential"}})
    assert with_resolved_precision(sequential).run.precision == "32-true"
    assert with_resolved_precision(KfoldConfig()).run.precision == "32-true"


def test_auto_on_gpu_follows_bf16_support(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for supported, expected in ((True, "bf16-mixed"), (False, "32-true")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert resolve_precision("auto", "auto") == expected
        assert resolve_precision("cuda", "auto") == expected


def test_explicit_precision_is_kept(monkeypatch, tmp_path):
    _cpu(monkeypatch, tmp_path, "avx2")
    for p in ("32-true", "bf16-mixed", "16-mixed"):
        assert resolve_precision("auto", p) == p
    cfg = LosoConfig()
    assert cfg.run.precision == "auto"  # the default
    resolved = with_resolved_precision(cfg)
    assert resolved.run.precision == "32-true" and cfg.run.precision == "auto"
    # auto resolved to 32-true is the same run as an explicit 32-true one (resumable across)
    explicit = LosoConfig.model_validate({"run": {"precision": "32-true"}})
    assert resolved.fingerprint() == explicit.fingerprint()
    assert with_resolved_precision(KfoldConfig()).run.precision == "32-true"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_default_to_auto(path):
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert raw["run"]["precision"] == "auto", path.name


@pytest.mark.parametrize("engine", ["fold_batched", "sequential"])
def test_loso_run_records_the_chosen_precision(tmp_path, monkeypatch, engine):
    from typer.testing import CliRunner

    from fervid.cli import app
    from generated import make_precomputed

    # a CPU without native bfloat16, like this project's CI (torch.cuda stays as it is:
    # Fabric inspects it)
    (tmp_path / "cpuinfo").write_text("flags\t: fpu sse2 avx2\n")
    monkeypatch.setattr(setup, "CPUINFO", tmp_path / "cpuinfo")
    data = make_precomputed(tmp_path / "flow", n_subjects=3, per_subject=4)
    cfg = {"name": "t", "model": {"name": "ststnet"},
           "train": {"lr": 1e-3, "batch_size": 8, "epochs": 1},
           "run": {"engine": engine, "precision": "auto", "accelerator": "cpu"}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["loso", "--config", str(path), "--data-root", str(data),
                                      "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["precision"] == "32-true"
    explicit = LosoConfig.model_validate({**cfg, "run": {**cfg["run"], "precision": "32-true"}})
    assert run["fingerprint"] == explicit.fingerprint(
        precision="32-true", fold_groups=1 if engine == "fold_batched" else None)
