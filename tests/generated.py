"""Small generated data sets for tests (real data lives in ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd


def make_precomputed(folder: Path, *, n_subjects: int = 6, per_subject: int = 8, size: int = 28,
                     seed: int = 0, signal: float = 60.0, n_datasets: int = 1) -> Path:
    """A precomputed-input folder (index.csv + PNGs) whose 3 classes differ by a blob's place.

    Each image is noise plus a bright blob in the top-left (class 0), centre (1) or
    bottom-right (2); ``signal`` is the blob's strength, so tests can make it easy or hard.
    Subjects belong to dataset ``gen`` (or, with ``n_datasets`` > 1, ``gen0``, ``gen1``, ...
    in turn).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    yy, xx = np.mgrid[:size, :size]
    centres = [(size * 0.25, size * 0.25), (size * 0.5, size * 0.5), (size * 0.75, size * 0.75)]
    for s in range(n_subjects):
        for i in range(per_subject):
            label = int(rng.integers(0, 3))
            cy, cx = centres[label]
            blob = signal * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 10) ** 2))
            img = rng.normal(100, 25, (size, size, 3)) + blob[..., None]
            name = f"s{s:02d}_c{i:02d}.png"
            cv2.imwrite(str(folder / name), np.clip(img, 0, 255).astype(np.uint8))
            dataset = "gen" if n_datasets == 1 else f"gen{s % n_datasets}"
            rows.append({"dataset": dataset, "subject": f"s{s:02d}", "clip": f"c{i:02d}",
                         "label": label, "file": name})
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    return folder


def apex_loso_metrics(tmp_path: Path, data_root: Path, data: dict) -> dict:
    """``fervid loso`` of a one-epoch apex-frame ResNet on ``data_root`` (the config's ``data``
    section: ``data``, plus ``format: apex`` and 32 px); exits 0 and returns ``metrics.json``."""
    import json

    from typer.testing import CliRunner

    from fervid.cli import app

    config = {
        "name": f"{data['dataset']}_apex", "seed": 0,
        "model": {"name": "apex_resnet", "drop_rate": 0.0},
        "data": {"format": "apex", "size": 32, **data},
        "train": {"lr": 1e-3, "batch_size": 4, "epochs": 1},
        "run": {"engine": "sequential", "workers": 1},
    }
    path = tmp_path / "apex.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    result = CliRunner().invoke(app, ["loso", "--config", str(path), "--data-root",
                                      str(data_root), "--out", str(tmp_path / "run"),
                                      "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / "run" / "metrics.json").read_text())
