"""The learned spotter: its network's shapes, pseudo-labels, scores to intervals, and a LOSO
that never reads the held-out subject's truth."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fervid.cli import app
from fervid.config.spotting import SpotConfig
from fervid.datasets.long_videos import GroundTruthInterval as G
from fervid.models import create_model
from fervid.models.softnet import SpottingFlowNet
from fervid.predict.spot_features import FlowImages
from fervid.predict.spot_learned import (
    LearnedSettings,
    VideoFlow,
    learned_fold,
    pseudo_labels,
    score_intervals,
)


@pytest.mark.parametrize("size", [42, 32])
def test_the_network_maps_flow_images_to_one_score_a_frame(size):
    model = SpottingFlowNet(size=size).eval()
    out = model(torch.randn(5, 3, size, size))
    assert out.logits.shape == (5, 1) and out.features.shape == (5, model.num_features)
    # One stream per channel: the u stream alone sees channel 0.
    x = torch.zeros(1, 3, size, size)
    y = x.clone()
    y[:, 1:] = torch.randn(1, 2, size, size)
    assert not torch.equal(model.streams[0](x[:, :1]), model.streams[1](y[:, 1:2]))
    assert torch.equal(model.streams[0](x[:, :1]), model.streams[0](y[:, :1]))
    assert isinstance(create_model("softnet_spot", in_chans=3, num_classes=1), SpottingFlowNet)


def test_pseudo_labels_mark_frames_whose_flow_span_meets_an_interval():
    truth = [G(10, 12, 14, "micro"), G(20, 22, 25, "macro")]
    labels = pseudo_labels(truth, 30, k=3, kind="micro")
    # frames 10..17 (index 9..16): [f - 3, f] meets [10, 14]
    assert np.flatnonzero(labels).tolist() == list(range(9, 17))
    macro = pseudo_labels(truth, 30, k=3, kind="macro")
    assert np.flatnonzero(macro).tolist() == list(range(19, 28))
    assert pseudo_labels([G(28, None, None, "micro")], 30, 3, "micro").sum() == 3  # capped


def test_a_score_plateau_over_the_label_span_gives_back_the_interval():
    settings = LearnedSettings(micro_k_seconds=0.1, macro_k_seconds=0.5)  # k 3 and 15 at 30
    truth = [G(41, 45, 50, "micro"), G(201, 230, 260, "macro")]
    signals = {kind: np.clip(pseudo_labels(truth, 400, settings.k(kind, 30.0), kind)
                             + np.random.default_rng(0).uniform(0, 0.05, 400), 0, 1)
               for kind in ("micro", "macro")}
    found, used = score_intervals(signals, 30.0, settings)
    assert [s.kind for s in found] == ["micro", "macro"]
    # Within a frame (the smoothing over k frames rounds a plateau's edges).
    for s, g in zip(found, truth, strict=True):
        assert abs(s.onset - g.onset) <= 1 and abs(s.offset - g.offset) <= 1, (s, g)
    assert all(s.onset <= s.apex <= s.offset for s in found)
    assert 0 < used["micro"] < 1


class _Sealed(Sequence):
    """Ground truth that fails the test when anything reads it."""

    def __getitem__(self, i):
        raise AssertionError("the held-out subject's truth was read")

    def __len__(self):
        raise AssertionError("the held-out subject's truth was read")


def _videos(tmp_path, sealed: str | None = None) -> list[VideoFlow]:
    """Three subjects, one 240-frame video each, whose 'expressions' move channel 0."""
    rng = np.random.default_rng(0)
    out = []
    for n, subject in enumerate(("a", "b", "c")):
        truth = [G(40 + 60 * i + n, None, 48 + 60 * i + n, "micro") for i in range(3)]
        truth.append(G(200, None, 220, "macro"))
        x = rng.normal(0, 0.1, (240, 2, 3, 16, 16)).astype(np.float16)
        for kind, name in enumerate(("micro", "macro")):
            x[pseudo_labels(truth, 240, 4, name) > 0, kind, 0] += 1.5
        path = tmp_path / f"{subject}_video"
        x.tofile(path.with_suffix(".f16"))
        path.with_suffix(".json").write_text(json.dumps(
            {"n_frames": 240, "ks": [4, 4], "size": 16, "fps": 30.0, "valid": [1] * 480}))
        out.append(VideoFlow(f"{subject}_video", subject,
                             _Sealed() if subject == sealed else truth, FlowImages.load(path)))
    return out


def test_a_fold_never_reads_the_held_out_subjects_truth(tmp_path):
    cfg = SpotConfig.model_validate({"spotter": "softnet", "softnet": {
        "size": 16, "epochs": 6, "batch_size": 16, "micro_k_seconds": 0.13,
        "macro_k_seconds": 0.13}})
    grid = (0.3, 0.5, 0.7)
    (tmp_path / "sealed").mkdir()
    (tmp_path / "open").mkdir()
    fold, signals, info = learned_fold("a", _videos(tmp_path / "sealed", sealed="a"), cfg, grid,
                                       seed=0)
    assert fold.subject == "a" and set(signals) == {"a_video"}
    assert info["inner_groups"] == [["b"], ["c"]]
    assert fold.micro in grid and fold.macro in grid
    # The same fold with the truth there: the same choice and intervals (it was not read).
    again, _, _ = learned_fold("a", _videos(tmp_path / "open"), cfg, grid, seed=0)
    assert (again.micro, again.macro, again.spotted) == (fold.micro, fold.macro, fold.spotted)
    # The networks learned something: the held-out expressions score above the rest.
    micro = signals["a_video"]["micro"]
    labels = pseudo_labels([G(40 + 60 * i, None, 48 + 60 * i, "micro") for i in range(3)],
                           240, 4, "micro")
    assert micro[labels > 0].mean() > micro[labels == 0].mean() + 0.2


def test_a_softnet_config_runs_end_to_end(tmp_path):
    config = tmp_path / "softnet.yaml"
    config.write_text("spotter: softnet\nsoftnet: {epochs: 1}\n"
                      "data:\n  dataset: synthme_long\n  generate: {subjects: 3, videos: 1, "
                      "seconds: 6, micro: 1, macro: 1, size: 128, seed: 2}\n")
    result = CliRunner().invoke(app, ["spot", "--config", str(config), "--data-root",
                                      str(tmp_path / "data"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "softnet, leave-one-subject-out" in result.output
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["spotter"] == "softnet" and metrics["frames"] == 540
    assert metrics["overall"]["tp"] + metrics["overall"]["fn"] == 6
    assert [f["subject"] for f in metrics["folds"]] == ["s15", "s16", "s19"]
    fold = json.loads((run / "folds" / "s15.json").read_text())
    assert fold["inner_groups"] == [["s16"], ["s19"]] and len(fold["training"]["micro"]
                                                               ["losses"]) == 1
    assert not (run / "cache").exists()  # the flow images go once every fold is done
    assert len(list((run / "signals").glob("*.npz"))) == 3
