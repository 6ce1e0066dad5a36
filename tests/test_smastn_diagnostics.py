"""``scripts/smastn_diagnostics.py`` on tiny LOSO runs of generated CASME II-format clips: per-class
recall of several runs side by side, SMA-STN's segment weights per class from the fold files,
and the same weights recomputed from the fold models when the fold files lack them."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fervid.config import LosoConfig
from fervid.protocol.loso import load_loso_data, run_loso
from fervid.samples import PROTOCOL_CLASSES
from fervid.synth import make_casme2_like
from fervid.synth.casme2_like import FRAMES_DIR

REPO = Path(__file__).resolve().parents[1]
SHEET = "CASME2-coding-20140508.xlsx"


def load_script():
    spec = importlib.util.spec_from_file_location(
        "smastn_diagnostics", REPO / "scripts" / "smastn_diagnostics.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


diagnostics = load_script()


def config(model: str, fmt: str) -> LosoConfig:
    return LosoConfig.model_validate({
        "name": f"diag_{model}", "seed": 0, "model": {"name": model, "drop_rate": 0.0},
        "data": {"format": fmt, "dataset": "casme2", "protocol": "5class",
                 "sheet": f"../{SHEET}", "classes": list(PROTOCOL_CLASSES["casme2_5class"]),
                 "size": 32, "dssi": {"mode": "gray", "segments_per_phase": 1},
                 "train_views": 1},
        "train": {"lr": 1e-3, "batch_size": 8, "epochs": 1, "feature_loss": "none"},
        "run": {"engine": "sequential"},
    })


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    """(SMA-STN run, apex run, frames, DSSI cache) on 3 generated subjects, one epoch."""
    root = tmp_path_factory.mktemp("diag")
    make_casme2_like(root / "synth", n_subjects=3, clips_per_subject=5, size=32, seed=1)
    frames, cache = root / "synth" / FRAMES_DIR, root / "cache"
    out = []
    for model, fmt in (("smastn", "dssi"), ("apex_resnet", "apex")):
        cfg = config(model, fmt)
        data = load_loso_data(cfg, frames, cache_dir=cache, progress=False)
        run_loso(cfg, data, root / model, data_root=str(frames), progress=False)
        out.append(root / model)
    return out[0], out[1], frames, cache


def pooled(run: Path) -> pd.DataFrame:
    return pd.concat([pd.read_csv(f) for f in sorted((run / "folds").glob("fold_*.csv"))])


def test_recall_side_by_side_and_stored_weights(runs, capsys):
    smastn, apex, _, _ = runs
    assert diagnostics.main([str(smastn), str(apex)]) == 0
    text = capsys.readouterr().out
    classes = PROTOCOL_CLASSES["casme2_5class"]
    for run in (smastn, apex):
        frame = pooled(run)
        summary = diagnostics.summarise(run)
        for label, rows in frame.groupby("label"):
            name = classes[label]
            assert summary.recall[name] == pytest.approx((rows["pred"] == label).mean())
            assert summary.count[name] == len(rows)
            assert f"| {name} |" in text
    assert "(smastn)" in text and "(apex_resnet)" in text
    assert diagnostics.summarise(apex).attention is None
    # SMA-STN: K = 2 segment weights per class, mean and sd over that class's test samples
    attention = diagnostics.summarise(smastn).attention
    frame = pooled(smastn)
    for label, rows in frame.groupby("label"):
        row = attention.loc[classes[label]]
        assert row["n"] == len(rows)
        for k in (0, 1):
            assert row[f"alpha_{k}"] == pytest.approx(rows[f"alpha_{k}"].mean())
            assert row[f"alpha_{k}_sd"] == pytest.approx(rows[f"alpha_{k}"].std(ddof=0))
    np.testing.assert_allclose(attention[["alpha_0", "alpha_1"]].sum(axis=1), 1.0, atol=1e-5)
    assert "STMA segment weights by true class (stored" in text and "α2" in text


def test_weights_recomputed_from_fold_models_match_the_stored_ones(runs, tmp_path, capsys):
    smastn, _, frames, cache = runs
    old = tmp_path / "old_smastn"
    shutil.copytree(smastn, old)
    for path in (old / "folds").glob("fold_*.csv"):  # as a run without stored weights
        frame = pd.read_csv(path)
        frame.drop(columns=[c for c in frame.columns if c.startswith("alpha_")]).to_csv(
            path, index=False)
    assert diagnostics.summarise(old).attention is None
    assert diagnostics.main([str(old)]) == 0
    assert "--recompute computes them" in capsys.readouterr().out
    again = diagnostics.summarise(old, recompute=True, data_root=frames, cache_dir=cache)
    stored = diagnostics.summarise(smastn)
    assert again.source == "recomputed"
    pd.testing.assert_frame_equal(again.attention, stored.attention, atol=2e-5, rtol=0)


def test_not_a_run_is_one_line_and_exit_2(tmp_path, capsys):
    assert diagnostics.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "run.json" in err and err.count("\n") == 1


def test_segment_strength_is_each_dynamic_images_sd_before_standardisation(runs, capsys):
    from fervid.datasets.from_config import read_release
    from fervid.representation.dssi import DssiCache, DssiParams

    smastn, _, frames, cache = runs
    strength = diagnostics.segment_strength(smastn, frames, cache)
    cfg = config("smastn", "dssi")
    table = read_release(cfg, frames)
    params = DssiParams(**cfg.data.dssi.model_dump())
    label = table[0].label
    results = [DssiCache(cache).get_or_compute(s, params) for s in table if s.label == label]
    row = strength.loc[cfg.data.classes[label]]
    assert list(strength.columns) == ["n", "seg1", "seg2", "global", "weak"]
    assert row["n"] == len(results)
    for k in (0, 1):
        expected = np.mean([np.std(r.local[k]) for r in results])
        assert expected > 0 and row[f"seg{k + 1}"] == pytest.approx(expected, rel=1e-5)
    assert row["global"] == pytest.approx(np.mean([np.std(r.global_) for r in results]),
                                          rel=1e-5)
    assert diagnostics.main([str(smastn), "--strength", "--data-root", str(frames),
                             "--cache-dir", str(cache)]) == 0
    assert "strength before standardisation" in capsys.readouterr().out
