"""The AU task beyond leave-one-subject-out: leave-one-dataset-out (``fervid loso --group
dataset``) with its resume, kill safety and ensembles, and ``fervid kfold`` refusing it, on
generated data."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fervid.cli import app
from fervid.metrics.au import au_scores
from generated import make_precomputed
from test_kill_anywhere import fold_csvs, fold_files, kill_twice_then_finish, launcher  # noqa: F401

runner = CliRunner()
#: AU strings by the generated images' class (blob top-left, centre, bottom-right), as in
#: test_au_task; SAMM's class-2 clips also show AU15, which CASME II never codes.
CASME2_AUS = {0: "4+L7B", 1: "R12", 2: "7"}
SAMM_AUS = {0: "4+7", 1: "12", 2: "7+15"}


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory) -> tuple[Path, Path]:
    """A flow folder of 3 CASME II subjects and 3 SAMM subjects (8 clips each), and a sheets
    folder laid out as the annotations one (``casme2/`` and ``samm/`` coding sheets)."""
    root = tmp_path_factory.mktemp("au_lodo")
    flow = make_precomputed(root / "flow", n_subjects=6, per_subject=8, signal=90.0)
    index = pd.read_csv(flow / "index.csv")
    number = index["subject"].str[1:].astype(int)
    samm = number >= 3
    index["dataset"] = ["samm" if s else "casme2" for s in samm]
    index["subject"] = [f"{n + 3:03d}" if s else f"sub{n + 1:02d}"
                        for n, s in zip(number, samm, strict=True)]
    index["clip"] = [f"{subject}_{clip}" if s else clip
                     for subject, clip, s in zip(index["subject"], index["clip"], samm,
                                                 strict=True)]
    index.to_csv(flow / "index.csv", index=False)
    sheets = root / "sheets"
    casme2 = index[~samm]
    (sheets / "casme2").mkdir(parents=True)
    pd.DataFrame({"Subject": casme2["subject"].str[3:], "Filename": casme2["clip"],
                  "OnsetFrame": 1, "ApexFrame": 2, "OffsetFrame": 3,
                  "Action Units": [CASME2_AUS[y] for y in casme2["label"]],
                  "Estimated Emotion": "others"}).to_excel(
        sheets / "casme2" / "CASME2-coding-20140508.xlsx", index=False)
    (sheets / "samm").mkdir()
    book = openpyxl.Workbook()
    book.active.append(["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame",
                        "Action Units", "Estimated Emotion"])
    for row in index[samm].itertuples():
        book.active.append([int(row.subject), row.clip, 1, 2, 3, SAMM_AUS[row.label], "Other"])
    book.save(sheets / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx")
    return flow, sheets


def au_config(folder: Path, name: str, model: dict, train: dict, engine: str) -> Path:
    cfg = {"name": name, "seed": 0, "model": model,
           "data": {"scale": 1 / 255, "task": "au", "aus": [4, 7, 12, 15]},
           "train": train, "run": {"engine": engine, "workers": 1}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def loso_argv(cfg: Path, flow: Path, sheets: Path, out: Path, *extra: str) -> list[str]:
    return ["loso", "--config", str(cfg), "--data-root", str(flow), "--set",
            f"data.au_sheets={sheets}", "--out", str(out), "--no-progress", *extra]


LOGREG = ({"name": "logistic_regression", "c": 0.1}, {"class_weights": "balanced"}, "linear")
STSTNET = ({"name": "ststnet"}, {"lr": 1e-3, "batch_size": 16, "epochs": 3,
                                 "class_weights": "balanced"}, "sequential")


def test_leave_one_dataset_out_scores_each_unseen_dataset(tmp_path, two_sets):
    flow, sheets = two_sets
    cfg = au_config(tmp_path, "logreg_lodo", *LOGREG)
    out = tmp_path / "lodo"
    result = runner.invoke(app, loso_argv(cfg, flow, sheets, out, "--group", "dataset"))
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["group"] == "dataset" and metrics["n_folds"] == 2 and metrics["complete"]
    assert metrics["classes"] == ["AU4", "AU7", "AU12", "AU15"]
    assert "one dataset held out each" in " ".join(result.output.split())
    folds = pd.read_csv(out / "folds.csv")
    assert folds["dataset"].tolist() == ["casme2", "samm"] and set(folds["subject"]) == {"*"}
    pred = pd.read_csv(out / "predictions.csv")
    # Each fold holds out one whole dataset, so per-dataset rows are per-fold rows.
    assert pred.groupby("fold")["dataset"].nunique().eq(1).all() and len(pred) == 48
    aus = metrics["classes"]
    for name, rows in pred.groupby("dataset"):
        again = au_scores(rows[[f"y_{a}" for a in aus]].to_numpy(),
                          rows[[f"p_{a}" for a in aus]].to_numpy() >= 0.5, aus)
        assert again["au_f1"] == metrics["per_dataset"][name]["au_f1"]
    # Learnt on the other dataset alone, AU4 and AU12 (coded by both) still transfer.
    assert metrics["au_f1"]["AU4"] > 0.8 and metrics["au_f1"]["AU12"] > 0.8
    # AU15 is coded in SAMM only: with SAMM held out, no training sample shows it, and its
    # probability is the training rate, 0. No label of the test dataset reached training.
    samm = pred[pred["dataset"] == "samm"]
    assert samm["y_AU15"].sum() > 0 and (samm["p_AU15"] == 0).all()
    assert metrics["per_dataset"]["samm"]["au_f1"]["AU15"] == 0
    # Leave-one-subject-out on the same data sees SAMM's AU15 in training, and ranks SAMM's
    # AU15 clips above its others.
    by_subject = runner.invoke(app, loso_argv(cfg, flow, sheets, tmp_path / "loso"))
    assert by_subject.exit_code == 0, by_subject.output
    assert json.loads((tmp_path / "loso" / "metrics.json").read_text())["group"] == "subject"
    loso = pd.read_csv(tmp_path / "loso" / "predictions.csv")
    mean = loso[loso["dataset"] == "samm"].groupby("y_AU15")["p_AU15"].mean()
    assert mean[1] > mean[0] + 0.1
    # Runs of the two protocols hold out different groups: no ensemble of them.
    mixed = runner.invoke(app, ["ensemble", str(out), str(tmp_path / "loso"), "--out",
                                str(tmp_path / "mixed")])
    assert mixed.exit_code == 2 and "differs from" in mixed.output
    # Side by side, the report says which run held out what.
    both = runner.invoke(app, ["report", str(out), str(tmp_path / "loso")])
    assert both.exit_code == 0, both.output
    text = " ".join(both.output.split())
    assert "mixed protocols" in text and "datasets held out" in text


@pytest.mark.parametrize("engine", ["sequential", "fold_batched"])
def test_lodo_positive_weights_come_from_the_training_dataset(tmp_path, two_sets, monkeypatch,
                                                              engine):
    """Each fold's binary cross-entropy weighs AUs by its training samples alone: with SAMM
    held out, AU15 (coded in SAMM only) has no training positive and weight 1."""
    import fervid.losses.per_fold_au as per_fold
    import fervid.losses.training_loss as training_loss

    seen = []

    def recorded(targets):
        seen.append(targets.clone())
        return positive_weights(targets)

    positive_weights = training_loss.positive_weights
    monkeypatch.setattr(training_loss, "positive_weights", recorded)
    monkeypatch.setattr(per_fold, "positive_weights", recorded)
    flow, sheets = two_sets
    model, train, _ = STSTNET
    # The fold-batched engine wants batches larger than the largest group (24 samples).
    cfg = au_config(tmp_path, f"w_{engine}", model, {**train, "epochs": 1, "batch_size": 32},
                    engine)
    result = runner.invoke(app, loso_argv(cfg, flow, sheets, tmp_path / "run", "--group",
                                          "dataset"))
    assert result.exit_code == 0, result.output
    # Fold 0 holds out CASME II and trains on SAMM's 24 samples; fold 1 the reverse.
    assert [len(t) for t in seen] == [24, 24]
    index = pd.read_csv(flow / "index.csv")
    samm_au15 = sum(SAMM_AUS[y].endswith("15") for y in index["label"][index["dataset"] == "samm"])
    au15 = 3  # of AU4, AU7, AU12, AU15
    assert seen[0][:, au15].sum() == samm_au15 > 0 and seen[1][:, au15].sum() == 0
    assert positive_weights(seen[1])[au15] == 1


def test_lodo_sequential_resumes_and_ensembles(tmp_path, two_sets):
    """STSTNet trained fold by fold through the one trainer: a rerun trains nothing again;
    ``fervid ensemble`` averages two LODO AU runs fold by fold, and ``fervid report`` shows
    both sets."""
    flow, sheets = two_sets
    cfg = au_config(tmp_path, "ststnet_lodo", *STSTNET)
    out = tmp_path / "ststnet"
    first = runner.invoke(app, loso_argv(cfg, flow, sheets, out, "--group", "dataset"))
    assert first.exit_code == 0, first.output
    stamps = {p: p.stat().st_mtime_ns for p in sorted(out.glob("folds/*.csv"))}
    assert len(stamps) == 2
    again = runner.invoke(app, loso_argv(cfg, flow, sheets, out, "--group", "dataset"))
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    logreg = tmp_path / "logreg"
    made = runner.invoke(app, loso_argv(au_config(tmp_path, "logreg", *LOGREG), flow, sheets,
                                        logreg, "--group", "dataset"))
    assert made.exit_code == 0, made.output
    ens = runner.invoke(app, ["ensemble", str(out), str(logreg), "--out", str(tmp_path / "e")])
    assert ens.exit_code == 0, ens.output
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["task"] == "au" and metrics["group"] == "dataset"
    assert set(metrics["per_dataset"]) == {"casme2", "samm"}
    key = ["dataset", "subject", "clip"]
    members = [pd.read_csv(d / "predictions.csv").set_index(key) for d in (out, logreg)]
    mean = pd.read_csv(tmp_path / "e" / "predictions.csv").set_index(key)
    for au in metrics["classes"]:
        expected = (members[0][f"p_{au}"] + members[1].loc[members[0].index, f"p_{au}"]) / 2
        assert (mean.loc[expected.index, f"p_{au}"] - expected).abs().max() < 2e-6
    report = runner.invoke(app, ["report", str(out)])
    assert report.exit_code == 0 and "F1 samm" in report.output
    seeds = runner.invoke(app, ["report", str(out), str(logreg)])
    assert seeds.exit_code == 0, seeds.output
    assert "one dataset held out each" in " ".join(seeds.output.split())


def test_lodo_au_run_survives_kills(launcher, tmp_path, two_sets):  # noqa: F811
    """Killed twice at seeded moments, then finished: the same files as an uninterrupted
    run, finished folds untouched (see test_kill_anywhere)."""
    flow, sheets = two_sets
    cfg = au_config(tmp_path, "kill_au", *STSTNET)
    story = kill_twice_then_finish(
        launcher, lambda out: loso_argv(cfg, flow, sheets, out, "--group", "dataset"),
        tmp_path, 7, fold_files, moved=fold_csvs)
    metrics = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert metrics["complete"] and metrics["group"] == "dataset"
    assert len(story.attempts) == 3


def test_kfold_refuses_the_au_task(tmp_path):
    """k-fold runs a video release's own emotion folds (DFEW, MAFW, FERV39k), none coded
    with AUs: asking it for AUs is one line, exit 2."""
    path = tmp_path / "kfold_au.yaml"
    path.write_text(yaml.safe_dump({"name": "k", "data": {"task": "au"}}))
    result = runner.invoke(app, ["kfold", "--config", str(path), "--data-root", str(tmp_path),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "task: k-fold runs the emotion folds" in text and "fervid loso" in text
    assert "Traceback" not in result.output and "Extra inputs" not in text
