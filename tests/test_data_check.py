"""``fervid data list`` and ``fervid data check``: what a release on disk holds, as read."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import shared_path
from dfew_fixture import real_frame_counts, real_rows, write_dfew_tree
from fervid.cli import app
from fervid.datasets.registry import dataset_names


def _check(*args: str):
    result = CliRunner().invoke(app, ["data", "check", *args, "--json"])
    return result, (json.loads(result.stdout) if result.stdout.strip().startswith("{") else None)


def test_data_list_names_every_registered_dataset_with_its_protocols():
    result = CliRunner().invoke(app, ["data", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(listed) == set(dataset_names())
    assert listed["casme2"]["protocols"] == ["loso"]
    assert list(listed["casme2"]["classes"]) == ["5class", "3class", "all"]
    table = CliRunner().invoke(app, ["data", "list"])
    assert table.exit_code == 0 and "casme2" in table.stdout


def test_casme2_counts_per_protocol_subject_and_frames(casme2_release):
    root, sheet = casme2_release
    result, report = _check("--dataset", "casme2", "--data-root", str(root), "--sheet",
                            str(sheet))
    assert result.exit_code == 0, result.output
    assert report["ok"] and report["samples"] == 255 and report["subjects"] == 26
    counts = {p["protocol"]: p for p in report["protocols"]}
    assert counts["5class"]["counts"] == {"happiness": 32, "disgust": 63, "repression": 27,
                                          "surprise": 25, "others": 99}
    assert counts["5class"]["outside"] == 9
    assert counts["3class"]["counts"] == {"negative": 88, "positive": 32, "surprise": 25}
    assert sum(counts["all"]["counts"].values()) == 255
    assert report["frames"]["clips"] == 255 and report["frames"]["min"] >= 1
    # The worked-around quirk of the sheet is listed, not hidden.
    assert any("sub04/EP12_01f" in note for note in report["notes"])
    shown = CliRunner().invoke(app, ["data", "check", "--dataset", "casme2", "--data-root",
                                     str(root), "--sheet", str(sheet), "--protocol", "3class"])
    assert shown.exit_code == 0 and "negative 88" in shown.stdout


def test_a_layout_error_is_reported_and_exits_2(casme2_release, tmp_path):
    _, sheet = casme2_release
    (tmp_path / "sub01" / "EP02_01f").mkdir(parents=True)  # one clip folder, no frames
    result, report = _check("--dataset", "casme2", "--data-root", str(tmp_path), "--sheet",
                            str(sheet))
    assert result.exit_code == 2
    assert not report["ok"] and report["layout_error"]
    assert any("clip folder missing" in p for p in report["problems"])
    text = CliRunner().invoke(app, ["data", "check", "--dataset", "casme2", "--data-root",
                                    str(tmp_path), "--sheet", str(sheet)])
    assert text.exit_code == 2 and "cannot be read" in text.stdout


@pytest.mark.parametrize("args, message", [
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--dataset", "casme2", "--protocol", "9class"], "unknown protocol '9class' for casme2"),
    (["--dataset", "casme2"], "casme2 needs its coding sheet"),
    (["--dataset", "smic", "--sheet", "x.xlsx"], None),
    (["--dataset", "composite"], "composite of several releases"),
])
def test_bad_requests_are_one_line_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(app, ["data", "check", "--data-root", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    if message:
        assert message in result.output and "Traceback" not in result.output


def test_dfew_folds_per_class_and_missing_clips_listed(tmp_path):
    split_dir = shared_path("annotations", "dfew", "EmoLabel_DataSplit")
    counts = real_frame_counts(split_dir.parent / "clip_224x224_frame_counts.csv")
    numbers = {n for n, _ in real_rows(split_dir, "train", 1)[:12]}
    numbers |= {n for n, _ in real_rows(split_dir, "test", 1)[:6]}
    root = write_dfew_tree(tmp_path / "DFEW", split_dir, numbers, counts)
    missing = sorted(numbers)[0]
    for frame in (root / "Clip" / "clip_224x224_16f" / f"{missing:05d}").iterdir():
        frame.unlink()
    result, report = _check("--dataset", "dfew", "--data-root", str(root))
    assert result.exit_code == 0, result.output
    assert report["samples"] == len(numbers) - 1
    assert sum(report["per_split"]["fold 1 train"].values()) + sum(
        report["per_split"]["fold 1 test"].values()) == len(numbers) - 1
    assert report["problems"] and f"{missing:05d}" in report["problems"][0]


# --- Release trees generated from the real sheets (tests/release_trees): the counts the
# readers give, through `fervid data check --json`.

def _tree_report(module: str, tmp_path_factory, *extra: str, dataset: str | None = None):
    import importlib

    tree = importlib.import_module(f"release_trees.{module}").build(
        tmp_path_factory.mktemp(module))
    args = ["--dataset", dataset or module, "--data-root", str(tree["root"]), *extra]
    if tree.get("sheet") is not None:
        args += ["--sheet", str(tree["sheet"])]
    result, report = _check(*args)
    assert result.exit_code == 0, result.output
    assert report["ok"], report["layout_error"]
    return report


def test_casme3_part_a_860_samples_94_subjects_under_each_protocol(tmp_path_factory):
    report = _tree_report("casme3", tmp_path_factory)
    assert report["samples"] == 860 and report["subjects"] == 94
    counts = {p["protocol"]: (p["counts"], p["outside"]) for p in report["protocols"]}
    assert counts["7class"] == ({"anger": 64, "disgust": 250, "fear": 86, "happiness": 55,
                                 "sadness": 57, "surprise": 187, "others": 161}, 0)
    assert counts["4class"] == ({"negative": 457, "positive": 55, "surprise": 187,
                                 "others": 161}, 0)
    assert counts["3class"] == ({"negative": 457, "positive": 55, "surprise": 187}, 161)
    # The sheet's known errors are corrected and said so, one line each.
    assert sum(n.startswith("corrected by errata") for n in report["notes"]) == 7


def test_dfme_release_splits_and_frame_rates(tmp_path_factory):
    report = _tree_report("dfme", tmp_path_factory, "--protocol", "7class")
    assert {k: sum(v.values()) for k, v in report["per_split"].items()} == {
        "train": 1856, "testA": 474, "testB": 299}
    assert report["samples"] == 2629 and report["subjects"] == 259
    assert report["fps"] == {"200": 831, "300": 805, "500": 993}
    assert report["protocols"][0]["counts"] == {
        "anger": 241, "contempt": 171, "disgust": 735, "fear": 365, "happiness": 311,
        "sadness": 359, "surprise": 447}


def test_mmme_micro_rows_and_the_macro_rows_left_out(tmp_path_factory):
    report = _tree_report("mmme", tmp_path_factory, "--protocol", "7class")
    assert report["samples"] == 434
    assert any("510" in note and "macro" in note for note in report["notes"]), report["notes"]


def test_casme_sq_cut_micro_expressions_from_its_official_code_sheet(tmp_path_factory):
    report = _tree_report("casme_sq", tmp_path_factory)
    counts = {p["protocol"]: p for p in report["protocols"]}
    assert counts["4class"]["counts"] == {"negative": 21, "positive": 8, "surprise": 9,
                                          "others": 19}
    assert sum(counts["3class"]["counts"].values()) == 38
    assert report["samples"] == 57 and report["subjects"] == 14


def test_smic_with_its_third_party_apex_sheet(tmp_path_factory):
    report = _tree_report("smic_apex", tmp_path_factory, dataset="smic")
    assert report["samples"] == 164 and report["subjects"] == 16
    assert report["protocols"][0]["counts"] == {"negative": 70, "positive": 51, "surprise": 43}


@pytest.mark.parametrize("module, dataset", [("casme", "casme"), ("fourdme", "4dme"),
                                             ("mmew", "mmew")])
def test_readers_without_a_real_sheet_read_their_generated_trees(module, dataset,
                                                                 tmp_path_factory):
    report = _tree_report(module, tmp_path_factory, dataset=dataset)
    assert report["samples"] > 0 and report["subjects"] > 0
    assert all(sum(p["counts"].values()) > 0 for p in report["protocols"])


def _whole_tree_report(module: str, tmp_path, dataset: str):
    import importlib

    root = importlib.import_module(f"release_trees.{module}").build(tmp_path, frames=1)["root"]
    result, report = _check("--dataset", dataset, "--data-root", str(root))
    assert result.exit_code == 0, result.output
    assert report["ok"] and not report["problems"], report["problems"]
    return report


def test_ferv39k_whole_tree_train_and_test_per_class(tmp_path):
    from fervid.datasets.ferv39k import FERV39K_CLASSES
    from test_datasets_ferv39k import TEST_COUNTS, TRAIN_COUNTS

    report = _whole_tree_report("ferv39k", tmp_path, "ferv39k")
    assert report["samples"] == 31088 + 7847
    assert report["per_split"] == {
        "fold 1 train": dict(zip(FERV39K_CLASSES, TRAIN_COUNTS, strict=True)),
        "fold 1 test": dict(zip(FERV39K_CLASSES, TEST_COUNTS, strict=True))}


def test_mafw_whole_tree_every_fold_per_class(tmp_path):
    from fervid.datasets.mafw import MAFW_CLASSES
    from test_datasets_mafw import FOLD_COUNTS

    report = _whole_tree_report("mafw", tmp_path, "mafw")
    assert report["samples"] == 9172
    for fold, (train, test) in FOLD_COUNTS.items():
        assert report["per_split"][f"fold {fold} train"] == dict(zip(MAFW_CLASSES, train,
                                                                     strict=True))
        assert report["per_split"][f"fold {fold} test"] == dict(zip(MAFW_CLASSES, test,
                                                                    strict=True))
