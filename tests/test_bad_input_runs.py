"""Damaged run directories given to a resume (``loso``, ``fit``, ``evaluate``) or to ``report``:
one line naming the damaged file, exit status 2, and nothing already written is lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bad_input import GARBAGE, PNG_BYTES, World, assert_one_line_error, fervid, truncate


@pytest.fixture
def world(bad_input_world) -> World:
    return bad_input_world


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _edit_fold(path: Path, change) -> None:
    import pandas as pd

    frame = pd.read_csv(path, dtype=str)
    change(frame)
    frame.to_csv(path, index=False)


def _cut_last_line(path: Path) -> None:
    data = path.read_bytes().rstrip(b"\n")
    path.write_bytes(data[:data.rindex(b",")])  # the last row loses its last field


#: Damage to a finished LOSO run: what is done to which file, and what the error says.
RUN_DAMAGE = {
    "run_json_garbage": ("run.json", lambda p: p.write_bytes(GARBAGE), "JSON"),
    "run_json_truncated": ("run.json", lambda p: truncate(p), "JSON"),
    "run_json_zero_byte": ("run.json", lambda p: p.write_bytes(b""), "JSON"),
    "run_json_a_list": ("run.json", lambda p: p.write_text("[1, 2]"), "object"),
    "run_json_no_classes": ("run.json", lambda p: _edit_json(p, lambda d: d.pop("classes")),
                            "classes"),
    "run_json_classes_a_string": (
        "run.json", lambda p: _edit_json(p, lambda d: d.update(classes="negative")), "classes"),
    "fold_csv_zero_byte": ("folds/fold_001.csv", lambda p: p.write_bytes(b""), "unreadable"),
    "fold_csv_truncated": ("folds/fold_001.csv", _cut_last_line, "cut short"),
    "fold_csv_half": ("folds/fold_001.csv", lambda p: truncate(p, 0.4), "fold_001.csv"),
    "fold_csv_garbage": ("folds/fold_001.csv", lambda p: p.write_bytes(GARBAGE), "fold_001"),
    "fold_csv_is_a_png": ("folds/fold_001.csv", lambda p: p.write_bytes(PNG_BYTES),
                          "fold_001"),
    "fold_csv_label_out_of_range": (
        "folds/fold_001.csv", lambda p: _edit_fold(p, lambda f: f.__setitem__("label", "7")),
        "label '7'"),
    "fold_csv_pred_is_text": (
        "folds/fold_001.csv", lambda p: _edit_fold(p, lambda f: f.__setitem__("pred", "happy")),
        "pred 'happy'"),
    "fold_csv_no_pred_column": (
        "folds/fold_001.csv", lambda p: _edit_fold(p, lambda f: f.pop("pred")), "pred"),
    "wall_json_garbage": ("wall", lambda p: next(p.glob("*.json")).write_bytes(GARBAGE),
                          "wall"),
}


def _snapshot(run: Path) -> dict[str, bytes]:
    """Every file a finished run holds (tensorboard and wall records aside)."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.relative_to(run).parts[0] not in ("tensorboard",)}


def _damaged_run(world: World, case: str, tmp_path: Path) -> tuple[Path, Path, str]:
    target, damage, says = RUN_DAMAGE[case]
    run = world.copy_loso_run(tmp_path / "run é")
    damage(run / target)
    return run, run / target, says


@pytest.mark.parametrize("case", sorted(RUN_DAMAGE))
def test_report_of_a_damaged_run(world, case, tmp_path):
    run, damaged, says = _damaged_run(world, case, tmp_path)
    before = _snapshot(run)
    result = fervid("report", run)
    assert_one_line_error(result, must_name=damaged, says=says)
    assert _snapshot(run) == before


@pytest.mark.parametrize("case", sorted(RUN_DAMAGE))
def test_loso_resume_of_a_damaged_run(world, case, tmp_path):
    run, damaged, says = _damaged_run(world, case, tmp_path)
    before = _snapshot(run)
    result = fervid("loso", "--config", world.loso_cfg, "--data-root", world.flow, "--out", run,
                    "--no-progress")
    assert_one_line_error(result, must_name=damaged, says=says)
    after = _snapshot(run)
    assert {k: v for k, v in after.items() if not k.startswith("wall")} == \
        {k: v for k, v in before.items() if not k.startswith("wall")}


#: Damage the HTML report alone reads.
HTML_DAMAGE = {
    "folds_csv_garbage": ("folds.csv", lambda p: p.write_bytes(GARBAGE)),
    "folds_csv_zero_byte": ("folds.csv", lambda p: p.write_bytes(b"")),
    "folds_csv_no_subject": ("folds.csv", lambda p: p.write_text("fold,dataset\n0,gen\n")),
    "train_log_garbage": ("train_logs/fold_000.csv", lambda p: p.write_bytes(GARBAGE)),
    "train_log_zero_byte": ("train_logs/fold_000.csv", lambda p: p.write_bytes(b"")),
    "config_yaml_broken": ("config.yaml", lambda p: p.write_text("model: {name: [\n")),
}


@pytest.mark.parametrize("case", sorted(HTML_DAMAGE))
def test_html_report_of_a_damaged_run(world, case, tmp_path):
    target, damage = HTML_DAMAGE[case]
    run = world.copy_loso_run(tmp_path / "run")
    damage(run / target)
    result = fervid("report", run, "--html", tmp_path / "report.html")
    assert_one_line_error(result, must_name=run / target)
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize("where", ["a_folder", "under_a_file"])
def test_html_report_path_that_cannot_be_a_file(world, where, tmp_path):
    if where == "a_folder":
        html = tmp_path / "report.html"
        html.mkdir()
        named = html
    else:
        named = tmp_path / "taken"
        named.write_text("keep me")
        html = named / "report.html"
    result = fervid("report", world.loso_run, "--html", html)
    assert_one_line_error(result, must_name=named)


def test_report_of_a_run_with_no_finished_fold(world, tmp_path):
    run = world.copy_loso_run(tmp_path / "run")
    shutil.rmtree(run / "folds")
    result = fervid("report", run)
    assert_one_line_error(result, must_name=run, says="no finished folds")


@pytest.mark.parametrize("damage", ["zero_byte", "truncated", "garbage"])
def test_fit_resume_from_a_damaged_training_state(world, damage, tmp_path):
    run = Path(shutil.copytree(world.fit_run, tmp_path / "fit run"))
    (run / "metrics.json").unlink()  # unfinished: the run resumes from its training state
    state = run / "checkpoints" / "fit.pt"
    if not state.exists():
        shutil.copy(run / "model.pt", state)
    {"zero_byte": lambda p: p.write_bytes(b""), "truncated": truncate,
     "garbage": lambda p: p.write_bytes(GARBAGE)}[damage](state)
    result = fervid("fit", "--config", world.fit_cfg, "--data-root", world.faces, "--out", run,
                    "--no-progress")
    assert_one_line_error(result, must_name=state, says="delete it")
    assert state.exists()


def test_batched_loso_resume_from_a_damaged_training_state(world, tmp_path):
    from fervid.training.fold_batched import fold_group_tag

    run = world.copy_loso_run(tmp_path / "run")
    shutil.rmtree(run / "folds")
    state = run / "checkpoints" / f"batched_{fold_group_tag([0, 1, 2])}.pt"
    state.parent.mkdir(exist_ok=True)
    state.write_bytes(GARBAGE)
    meta = json.loads((run / "run.json").read_text())
    result = fervid("loso", "--config", world.loso_cfg, "--data-root", world.flow, "--out", run,
                    "--set", "run.engine=fold_batched", "--no-progress")
    if "another config" in result.stderr:  # the engine is in the fingerprint: a fresh run
        (run / "run.json").unlink()
        result = fervid("loso", "--config", world.loso_cfg, "--data-root", world.flow, "--out",
                        run, "--set", "run.engine=fold_batched", "--no-progress")
    assert_one_line_error(result, must_name=state, says="delete it")
    assert meta["classes"]


@pytest.mark.parametrize("damage", ["garbage", "a_list"])
def test_evaluate_into_a_damaged_run(world, damage, tmp_path):
    out = tmp_path / "scored"
    args = ["evaluate", "--checkpoint", world.fit_run / "model.pt", "--data-root",
            world.faces / "test", "--dataset", "image_folder", "--out", out, "--no-progress"]
    assert fervid(*args).code == 0
    (out / "run.json").write_bytes(GARBAGE if damage == "garbage" else b"[]")
    result = fervid(*args)
    assert_one_line_error(result, must_name=out / "run.json")
