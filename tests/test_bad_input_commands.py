"""Bad input to every command ends in one clear line and exit status 2; unusual but valid input
(paths with spaces and accents) works. Readers' own cases: test_bad_input_readers.py; run
directories: test_bad_input_runs.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bad_input import GARBAGE, PNG_BYTES, World, assert_one_line_error, fervid


@pytest.fixture
def world(bad_input_world) -> World:
    return bad_input_world


# --- Unusual but valid: paths with spaces and non-ASCII letters work ----------------------

def test_loso_and_fit_work_in_paths_with_spaces_and_accents(world):
    assert world.loso_first.code == 0, world.loso_first.output
    assert (world.loso_run / "metrics.json").is_file()
    assert world.fit_first.code == 0, world.fit_first.output
    assert (world.fit_run / "model.pt").is_file()
    again = fervid("loso", "--config", world.loso_cfg, "--data-root", world.flow, "--out",
                   world.loso_run, "--no-progress")  # a resume: every fold already done
    assert again.code == 0, again.output


def test_report_and_evaluate_work_in_paths_with_spaces_and_accents(world, tmp_path):
    html = tmp_path / "rapport é" / "runs ü.html"
    report = fervid("report", world.loso_run, "--html", html)
    assert report.code == 0, report.output
    assert html.is_file()
    out = tmp_path / "évaluation ø"
    scored = fervid("evaluate", "--checkpoint", world.fit_run / "model.pt", "--data-root",
                    world.faces / "test", "--dataset", "image_folder", "--out", out,
                    "--no-progress")
    assert scored.code == 0, scored.output
    assert (out / "metrics.json").is_file()


# --- Config files: syntax errors and the wrong shape ----------------------------------------

CONFIG_CASES = {
    "yaml_syntax": (b"model: {name: ststnet\ntrain: [1, 2\n", "not valid YAML"),
    "tab_indent": (b"model:\n\tname: ststnet\n", "not valid YAML"),
    "top_level_list": (b"- model\n- train\n", "mapping"),
    "top_level_scalar": (b"just some words\n", "mapping"),
    "zero_byte": (b"", "empty"),
    "binary_garbage": (GARBAGE, "UTF-8"),
    "unknown_key": (b"name: x\nmodle: {name: ststnet}\n", "modle"),
    "unknown_nested_key": (b"train: {epochs: 1, learning_rate: 0.1}\n", "learning_rate"),
    "wrong_type": (b"train: {epochs: many}\n", "train.epochs"),
    "section_is_a_list": (b"train: [1, 2]\n", "train"),
    "out_of_range": (b"train: {lr: -1}\n", "train.lr"),
}

#: Each command that reads a config, with the rest of its arguments.
CONFIG_COMMANDS = {
    "loso": lambda cfg, tmp: ["loso", "--config", cfg, "--data-root", tmp, "--out",
                              tmp / "out"],
    "kfold": lambda cfg, tmp: ["kfold", "--config", cfg, "--data-root", tmp, "--out",
                               tmp / "out"],
    "fit": lambda cfg, tmp: ["fit", "--config", cfg, "--data-root", tmp, "--out", tmp / "out"],
    "evaluate": lambda cfg, tmp: ["evaluate", "--config", cfg, "--fold-weights", tmp,
                                  "--data-root", tmp, "--out", tmp / "out"],
}


@pytest.mark.parametrize("command", sorted(CONFIG_COMMANDS))
@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_file(command, case, tmp_path):
    content, says = CONFIG_CASES[case]
    cfg = tmp_path / "my config.yaml"
    cfg.write_bytes(content)
    result = fervid(*CONFIG_COMMANDS[command](cfg, tmp_path))
    assert_one_line_error(result, must_name=cfg, says=says)
    assert not (tmp_path / "out").exists()


def test_config_that_is_a_folder(tmp_path):
    result = fervid("loso", "--config", tmp_path, "--data-root", tmp_path, "--out",
                    tmp_path / "out")
    assert_one_line_error(result, must_name=tmp_path, says="folder")


# --- --set overrides --------------------------------------------------------------------

SET_CASES = {
    "no_equals": ("train.epochs", "train.epochs", "key=value"),
    "not_a_number": ("train.lr=abc", "train.lr", ""),
    "unknown_section": ("nosuch.key=1", "nosuch", ""),
    "unknown_field": ("train.nosuch=1", "nosuch", ""),
    "scalar_for_a_section": ("train=3", "train", ""),
    "bad_yaml_value": ("train.lr=[", "train.lr", "YAML"),
    "empty_key": ("=3", "=3", "key"),
    "empty_part": ("train..lr=1", "train..lr", "key"),
    "unknown_model": ("model.name=resnet9000", "model.name", ""),
    "below_minimum": ("train.epochs=0", "train.epochs", ""),
}


@pytest.mark.parametrize("command", ["loso", "kfold", "fit"])
@pytest.mark.parametrize("case", sorted(SET_CASES))
def test_bad_set_override(world, command, case, tmp_path):
    item, field, says = SET_CASES[case]
    cfg = {"loso": world.loso_cfg, "kfold": world.kfold_cfg, "fit": world.fit_cfg}[command]
    result = fervid(command, "--config", cfg, "--data-root", tmp_path, "--out",
                    tmp_path / "out", "--set", item)
    assert_one_line_error(result, must_name=field, says=says)
    assert not (tmp_path / "out").exists()


# --- Output paths that are files, or cannot be written ------------------------------------

def _out_commands(world: World, tmp: Path) -> dict:
    faces_ckpt = world.fit_run / "model.pt"
    return {
        "loso": ["loso", "--config", world.loso_cfg, "--data-root", world.flow,
                 "--no-progress"],
        "fit": ["fit", "--config", world.fit_cfg, "--data-root", world.faces, "--no-progress"],
        "evaluate": ["evaluate", "--checkpoint", faces_ckpt, "--data-root",
                     world.faces / "test", "--dataset", "image_folder", "--no-progress"],
        "kfold": ["kfold", "--config", world.kfold_cfg, "--data-root", tmp, "--no-progress"],
        "prepare_flow": ["prepare", "flow", "--dataset", "smic", "--data-root", tmp,
                         "--no-progress"],
        "prepare_faces": ["prepare", "faces", "--dataset", "ckplus", "--data-root", tmp,
                          "--no-progress"],
        "predict": ["predict", tmp / "clip.mp4", "--checkpoint", faces_ckpt, "--no-progress"],
    }


OUT_COMMANDS = ["loso", "fit", "evaluate", "kfold", "prepare_flow", "prepare_faces", "predict"]


@pytest.mark.parametrize("command", OUT_COMMANDS)
@pytest.mark.parametrize("where", ["is_a_file", "under_a_file"])
def test_output_path_that_is_a_file(world, command, where, tmp_path):
    blocker = tmp_path / "taken.txt"
    blocker.write_text("keep me")
    out = blocker if where == "is_a_file" else blocker / "run"
    result = fervid(*_out_commands(world, tmp_path)[command], "--out", out)
    assert_one_line_error(result, must_name=blocker)
    assert blocker.read_text() == "keep me"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes through chmod, so a read-only folder blocks nothing")
@pytest.mark.parametrize("command", ["loso", "fit", "evaluate"])
def test_output_in_a_read_only_folder(world, command, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = fervid(*_out_commands(world, tmp_path)[command], "--out", locked / "run")
    finally:
        locked.chmod(0o700)
    assert_one_line_error(result, must_name=locked / "run")


def _blocked_output(tmp_path, where: str, name: str):
    """(blocker, output path): an output that is a folder, or lies under (or deeper under) a
    file holding "keep me"."""
    blocker = tmp_path / "taken"
    if where == "is_a_folder":
        blocker.mkdir()
        return blocker, blocker
    blocker.write_text("keep me")
    return blocker, blocker / name if where == "parent_is_a_file" else blocker / "sub" / name


@pytest.mark.parametrize("where", ["parent_is_a_file", "under_a_file", "is_a_folder"])
def test_export_onnx_path_that_cannot_be_a_file(world, where, tmp_path):
    blocker, onnx = _blocked_output(tmp_path, where, "m.onnx")
    result = fervid("export", world.fit_run / "model.pt", "--onnx", onnx)
    line = assert_one_line_error(result, must_name=onnx)
    assert str(blocker) in line and "--onnx" in line
    assert blocker.is_dir() if where == "is_a_folder" else blocker.read_text() == "keep me"


# --- Data roots of the wrong kind -------------------------------------------------------

def test_data_root_that_is_a_file(world, tmp_path):
    file = tmp_path / "index.csv"
    file.write_text("dataset,subject,clip,label,file\n")
    result = fervid("loso", "--config", world.loso_cfg, "--data-root", file, "--out",
                    tmp_path / "out", "--no-progress")
    assert_one_line_error(result, must_name=file)


def test_precomputed_image_with_text_inside(world, tmp_path):
    flow = Path(shutil.copytree(world.flow, tmp_path / "flow"))
    (flow / "s01_c02.png").write_text("not an image")
    result = fervid("loso", "--config", world.loso_cfg, "--data-root", flow, "--out",
                    tmp_path / "out", "--no-progress")
    assert_one_line_error(result, must_name="s01_c02.png", says="not a readable image")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["zero_byte", "truncated", "text"])
def test_fit_on_a_broken_face_image(world, damage, tmp_path):
    faces = Path(shutil.copytree(world.faces, tmp_path / "faces"))
    image = faces / "train" / "happy" / "1.png"
    data = image.read_bytes()
    image.write_bytes({"zero_byte": b"", "truncated": data[:len(data) // 2],
                       "text": b"hello"}[damage])
    result = fervid("fit", "--config", world.fit_cfg, "--data-root", faces, "--out",
                    tmp_path / "out", "--no-progress")
    assert_one_line_error(result, must_name=image)


# --- Checkpoints: zero-byte, truncated, the wrong format behind .pt ------------------------

def _broken_checkpoints(world: World, folder: Path) -> dict[str, Path]:
    good = (world.fit_run / "model.pt").read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    files = {"zero_byte": b"", "truncated": good[:len(good) // 2], "png": PNG_BYTES,
             "text": b"these are not weights\n", "garbage": GARBAGE}
    out = {}
    for name, data in files.items():
        path = folder / f"{name} model.pt"
        path.write_bytes(data)
        out[name] = path
    return out


CHECKPOINT_CASES = ["zero_byte", "truncated", "png", "text", "garbage"]


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_broken_checkpoint(world, command, case, tmp_path):
    ckpt = _broken_checkpoints(world, tmp_path / "ckpts")[case]
    args = {"predict": ["predict", tmp_path / "clip.mp4", "--checkpoint", ckpt, "--out",
                        tmp_path / "out", "--no-progress"],
            "evaluate": ["evaluate", "--checkpoint", ckpt, "--data-root", world.faces,
                         "--out", tmp_path / "out", "--no-progress"],
            "export": ["export", ckpt, "--onnx", tmp_path / "m.onnx"]}[command]
    result = fervid(*args)
    assert_one_line_error(result, must_name=ckpt)
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_that_is_a_plain_dict_of_other_things(world, tmp_path):
    import torch

    ckpt = tmp_path / "dict.pt"
    torch.save({"epoch": 3, "lr": 0.1}, ckpt)
    result = fervid("evaluate", "--checkpoint", ckpt, "--data-root", world.faces, "--out",
                    tmp_path / "out", "--no-progress")
    assert_one_line_error(result, must_name=ckpt, says="neither")


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_broken_fold_weights(world, case, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    broken = _broken_checkpoints(world, tmp_path / "ckpts")[case]
    for subject in ("s00", "s01", "s02"):
        shutil.copy(broken, weights / f"{subject}.pth")
    result = fervid("evaluate", "--config", world.loso_cfg, "--fold-weights", weights,
                    "--data-root", world.flow, "--out", tmp_path / "out", "--no-progress")
    assert_one_line_error(result, must_name=weights)


# --- dssi: --apex is a frame number, as in the file names and the sheet ---------------------

def _numbered_frames(folder: Path, numbers, name: str = "reg_img{}.jpg") -> Path:
    import cv2
    import numpy as np

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for n in numbers:
        cv2.imwrite(str(folder / name.format(n)), rng.integers(0, 256, (32, 32, 3), np.uint8))
    return folder


def test_dssi_apex_is_the_frame_number_in_the_names(tmp_path, monkeypatch):
    import fervid.representation.dssi as dssi_module

    frames = _numbered_frames(tmp_path / "sub01 EP02", range(50, 61))  # CASME II: apex 59
    seen = []
    real = dssi_module.dssi_from_sample

    def spy(sample, *args, **kwargs):
        seen.append(sample.frames[sample.apex_position].name)
        return real(sample, *args, **kwargs)

    monkeypatch.setattr(dssi_module, "dssi_from_sample", spy)
    out = tmp_path / "dssi.png"
    result = fervid("dssi", frames, "--out", out, "--apex", 59)
    assert result.code == 0, result.output
    assert seen == ["reg_img59.jpg"] and out.is_file()


@pytest.mark.parametrize("numbers, apex, says", [
    (range(50, 61), 5, "numbered 50 to 60"),
    (range(50, 61), 61, "numbered 50 to 60"),
    ([1, 2, 3, 7, 9], 5, "numbered 1 to 9 (1-3, 7, 9)"),
])
def test_dssi_apex_that_no_frame_has(tmp_path, numbers, apex, says):
    frames = _numbered_frames(tmp_path / "clip", numbers)
    result = fervid("dssi", frames, "--out", tmp_path / "dssi.png", "--apex", apex)
    line = assert_one_line_error(result, must_name=frames, says=says)
    assert f"--apex {apex} " in line
    assert not (tmp_path / "dssi.png").exists()


def test_dssi_frames_not_named_by_number(tmp_path):
    frames = _numbered_frames(tmp_path / "clip", ["a", "b", "c"], name="face_{}.jpg")
    result = fervid("dssi", frames, "--out", tmp_path / "dssi.png", "--apex", 1)
    assert_one_line_error(result, must_name=frames, says="numbered image files")


@pytest.mark.parametrize("where", ["parent_is_a_file", "is_a_folder"])
def test_dssi_out_path_that_cannot_be_a_file(tmp_path, where):
    frames = _numbered_frames(tmp_path / "clip", range(1, 11))
    _, out = _blocked_output(tmp_path, where, "dssi.png")
    result = fervid("dssi", frames, "--out", out)
    line = assert_one_line_error(result, must_name=out)
    assert "--out" in line
