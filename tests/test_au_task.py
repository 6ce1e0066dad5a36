"""The AU task through LOSO: AU labels from sheets given to flow images, the multi-label loss
and head, per-AU models of the linear engine, the AU metrics, the report, on generated data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from fervid.cli import app
from fervid.config import TrainConfig
from fervid.losses import MultiLabelLoss, build_training_loss, positive_weights
from fervid.metrics.au import au_scores
from fervid.models.output import ModelOutput
from generated import make_precomputed

runner = CliRunner()
#: AU strings by the generated images' class (blob top-left, centre, bottom-right): AU4 goes
#: with class 0 and AU12 with class 1, so both can be learnt; AU7 rides along with class 2.
AU_BY_CLASS = {0: "4+L7B", 1: "R12", 2: "7"}


@pytest.fixture(scope="module")
def au_data(tmp_path_factory) -> tuple[Path, Path]:
    """A flow folder of dataset ``casme2`` (4 subjects × 8) and a CASME II-style sheet in
    ``sheets/casme2/`` coding every clip but subject 4's last two (``?`` and blank)."""
    root = tmp_path_factory.mktemp("au")
    flow = make_precomputed(root / "flow", n_subjects=4, per_subject=8, signal=90.0)
    index = pd.read_csv(flow / "index.csv")
    index["dataset"] = "casme2"
    index["subject"] = [f"sub{int(s[1:]) + 1:02d}" for s in index["subject"]]
    index.to_csv(flow / "index.csv", index=False)
    aus = [AU_BY_CLASS[y] for y in index["label"]]
    aus[-2:] = ["?", None]
    sheet = pd.DataFrame({"Subject": [s[3:] for s in index["subject"]],
                          "Filename": index["clip"], "OnsetFrame": 1, "ApexFrame": 2,
                          "OffsetFrame": 3, "Action Units": aus,
                          "Estimated Emotion": "others"})
    (root / "sheets" / "casme2").mkdir(parents=True)
    sheet.to_excel(root / "sheets" / "casme2" / "CASME2-coding-20140508.xlsx", index=False)
    return flow, root / "sheets"


def _loso(tmp_path: Path, flow: Path, sheets: Path, name: str, model: dict, train: dict,
          engine: str, **data) -> tuple[dict, object]:
    cfg = {"name": name, "seed": 0, "model": model,
           "data": {"scale": 1 / 255, "task": "au", "aus": [4, 7, 12, 15], **data},
           "train": train, "run": {"engine": engine, "workers": 1}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / name
    result = runner.invoke(app, ["loso", "--config", str(path), "--data-root", str(flow),
                                 "--set", f"data.au_sheets={sheets}", "--out", str(out),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text()), result


def test_linear_engine_learns_one_model_per_au(tmp_path, au_data):
    flow, sheets = au_data
    metrics, result = _loso(tmp_path, flow, sheets, "logreg_au",
                            {"name": "logistic_regression", "c": 0.1},
                            {"class_weights": "balanced"}, "linear", au_min_count=1)
    # AU15 never occurs: dropped by the minimum count, still counted (0).
    assert metrics["classes"] == ["AU4", "AU7", "AU12"]
    assert metrics["au_counts"]["AU15"] == 0
    assert metrics["n_with_aus"] == 30 and metrics["n_samples"] == 30
    assert metrics["au_sheet_matches"] == 32
    # The blob's place gives AU4 and AU12 away; a constant guess would not reach this.
    assert metrics["au_f1"]["AU4"] > 0.8 and metrics["au_f1"]["AU12"] > 0.8
    assert metrics["au_f1_mean"] > metrics["au_f1_constant_mean"]
    assert metrics["au_f1_macro_mean"] >= metrics["au_f1_mean"] - 1e-9
    assert set(metrics["per_dataset"]) == {"casme2"}
    # The figures are the scores of predictions.csv, pooled over folds.
    pred = pd.read_csv(tmp_path / "logreg_au" / "predictions.csv")
    aus = metrics["classes"]
    again = au_scores(pred[[f"y_{a}" for a in aus]].to_numpy(),
                      pred[[f"p_{a}" for a in aus]].to_numpy() >= 0.5, aus)
    assert again["au_f1"] == metrics["au_f1"]
    assert "AU4" in result.output and "always present" in result.output
    run = json.loads((tmp_path / "logreg_au" / "run.json").read_text())
    assert run["task"] == "au" and run["left_out_without_aus"] == {"casme2": 2}


def test_any_model_gets_a_sigmoid_head_and_resumes(tmp_path, au_data):
    """STSTNet on the sequential engine: 3 outputs (the AUs kept), a resumed run trains
    nothing again and scores the same; ``fervid report`` prints the per-AU table."""
    flow, sheets = au_data
    train = {"lr": 1e-3, "batch_size": 16, "epochs": 3, "class_weights": "balanced"}
    first, _ = _loso(tmp_path, flow, sheets, "ststnet_au", {"name": "ststnet"}, train,
                     "sequential", au_min_count=1)
    state = torch.load(tmp_path / "ststnet_au" / "models" / "fold_000.pt", weights_only=False)
    head = [v for k, v in state["state_dict"].items() if k.endswith("weight")][-1]
    assert head.shape[0] == 3
    folds = sorted((tmp_path / "ststnet_au" / "folds").glob("*.csv"))
    stamps = [p.stat().st_mtime_ns for p in folds]
    again, _ = _loso(tmp_path, flow, sheets, "ststnet_au", {"name": "ststnet"}, train,
                     "sequential", au_min_count=1)
    assert [p.stat().st_mtime_ns for p in folds] == stamps
    assert again["au_f1"] == first["au_f1"]
    probs = pd.read_csv(folds[0])[[f"p_{a}" for a in first["classes"]]].to_numpy()
    assert ((probs > 0) & (probs < 1)).all()  # sigmoids, not a softmax over AUs
    assert not np.allclose(probs.sum(1), 1)
    report = runner.invoke(app, ["report", str(tmp_path / "ststnet_au")])
    assert report.exit_code == 0, report.output
    assert "binary F1" in report.output and "macro F1" in report.output
    run = str(tmp_path / "ststnet_au")
    seeds = runner.invoke(app, ["report", run, run])
    assert seeds.exit_code == 0 and "2 AU runs of" in seeds.output and "± 0.0000" in seeds.output
    html = runner.invoke(app, ["report", run, "--html", str(tmp_path / "r.html")])
    assert html.exit_code == 0, html.output
    page = (tmp_path / "r.html").read_text()
    assert 'data-section="au"' in page and "macro F1 (MEB" in page
    assert f"<td>{first['au_f1']['AU4']:.4f}</td>" in page


def test_au_runs_refuse_what_they_do_not_read(tmp_path, au_data):
    flow, sheets = au_data
    cfg = {"name": "bad", "model": {"name": "ststnet"},
           "data": {"task": "au"}, "train": {"epochs": 1}, "run": {"trace_every": 1}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = runner.invoke(app, ["loso", "--config", str(path), "--data-root", str(flow),
                                 "--set", f"data.au_sheets={sheets}",
                                 "--out", str(tmp_path / "bad"), "--no-progress"])
    assert result.exit_code == 2
    assert "data.task=au does not go with run.trace_every" in result.output
    result = runner.invoke(app, ["loso", "--config", str(path), "--data-root", str(flow),
                                 "--set", "run.engine=sequential", "--set",
                                 f"data.au_sheets={tmp_path}", "--out", str(tmp_path / "bad2"),
                                 "--no-progress"])
    assert result.exit_code == 2 and "holds none of" in result.output


def test_positive_weights_come_from_the_training_targets():
    y = torch.tensor([[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]], dtype=torch.float32)
    assert positive_weights(y).tolist() == pytest.approx([3.0, 1.0, 1 / 3])
    loss = build_training_loss(TrainConfig(class_weights="balanced"), num_classes=3,
                               feature_dim=None, train_labels=y, multi_label=True)
    assert isinstance(loss, MultiLabelLoss)
    assert loss.pos_weight.tolist() == pytest.approx([3.0, 1.0, 1 / 3])
    logits = torch.zeros(4, 3, requires_grad=True)
    total, parts = loss(ModelOutput(logits, None, {}), y)
    # At logit 0 each term is log 2, a present AU's times its weight.
    expected = np.log(2) * (4 * 3 + (3 - 1) + (1 / 3 - 1) * 3) / 12
    assert float(total.detach()) == pytest.approx(expected, rel=1e-6)
    plain = build_training_loss(TrainConfig(), num_classes=3, feature_dim=None,
                                train_labels=y, multi_label=True)
    assert plain.pos_weight is None


def test_binary_and_macro_f1_are_told_apart():
    t = np.array([[1, 0], [0, 0], [0, 0], [1, 1]])
    p = np.array([[1, 0], [1, 0], [0, 0], [0, 1]])
    s = au_scores(t, p, ["AU1", "AU2"])
    assert s["au_f1"] == {"AU1": 0.5, "AU2": 1.0}
    assert s["au_f1_macro"]["AU1"] == pytest.approx((0.5 + 0.5) / 2)
    assert s["au_f1_macro"]["AU2"] == 1.0
    assert s["au_f1_constant"]["AU1"] == pytest.approx(2 * 0.5 / 1.5)
    assert s["positives"] == {"AU1": 2, "AU2": 1}


def test_ensemble_averages_au_probabilities(tmp_path, au_data):
    flow, sheets = au_data
    runs = []
    for c in (0.01, 1.0):
        name = f"logreg_c{c}"
        _loso(tmp_path, flow, sheets, name, {"name": "logistic_regression", "c": c},
              {"class_weights": "balanced"}, "linear", au_min_count=1)
        runs.append(tmp_path / name)
    result = runner.invoke(app, ["ensemble", *map(str, runs), "--out", str(tmp_path / "ens")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ens" / "metrics.json").read_text())
    assert metrics["task"] == "au" and metrics["classes"] == ["AU4", "AU7", "AU12"]
    key = ["subject", "clip"]
    members = [pd.read_csv(r / "predictions.csv").set_index(key) for r in runs]
    mean = pd.read_csv(tmp_path / "ens" / "predictions.csv").set_index(key)
    for au in metrics["classes"]:
        expected = (members[0][f"p_{au}"] + members[1].loc[members[0].index, f"p_{au}"]) / 2
        np.testing.assert_allclose(mean.loc[expected.index, f"p_{au}"], expected, atol=2e-6)
    emotion = runner.invoke(app, ["ensemble", str(runs[0]), str(tmp_path / "nothing"),
                                  "--out", str(tmp_path / "ens2")])
    assert emotion.exit_code == 2
