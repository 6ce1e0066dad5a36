"""Warnings raised during a command are one ``warning:`` line each, like errors: no source
path, no code line; past ten only counted; ``--quiet`` hides them but keeps the count."""

from __future__ import annotations

import logging
import re
import warnings

import cv2
import numpy as np
import pytest
import typer
import yaml
from typer.testing import CliRunner

import fervid.protocol.loso as loso_module
from fervid.cli import app
from fervid.cli.common import MAX_WARNINGS, global_options
from generated import make_precomputed

runner = CliRunner()
#: How Python's own format starts a warning: ``/path/file.py:170: SomeWarning: ...``.
SOURCE_PATH = re.compile(r"\.py:\d+")


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def _clean(output: str) -> None:
    """No line names a source file, and each warning is one line."""
    assert not [line for line in _lines(output) if SOURCE_PATH.search(line)], output
    assert "Traceback" not in output


@pytest.fixture(scope="module")
def faces_with_a_stray_file(tmp_path_factory):
    """A tiny three-class image folder release with a text file among the images."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    for split in ("train", "validation", "test"):
        for k, name in enumerate(("angry", "happy", "sad")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(4):
                img = rng.integers(0, 60, (24, 24), dtype=np.uint8)
                img[2 + 7 * k:8 + 7 * k] += 150
                cv2.imwrite(str(folder / f"{split}_{i}.png"), img)
    (root / "train" / "happy" / "notes.txt").write_text("not an image")
    config = root.parent / "fit.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"dataset": "image_folder", "resize": 24, "size": 20},
        "model": {"name": "frame_resnet", "stem": "small"},
        "train": {"epochs": 1, "batch_size": 8, "lr": 0.01, "optimizer": "sgd"}}))
    return root, config


def test_a_reader_warning_is_one_line(faces_with_a_stray_file, tmp_path):
    root, config = faces_with_a_stray_file
    args = ["fit", "--config", str(config), "--data-root", str(root), "--out",
            str(tmp_path / "run"), "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    _clean(result.output)
    skipped = [line for line in _lines(result.output) if "not images" in line]
    assert len(skipped) == 1 and skipped[0].startswith("warning: ")
    assert "notes.txt" in skipped[0] and "SkippedFilesWarning" not in skipped[0]
    assert "warnings.warn" not in result.output  # Python's code line

    quiet = runner.invoke(app, ["--quiet", *args])  # the finished run reads its data again
    assert quiet.exit_code == 0, quiet.output
    _clean(quiet.output)
    assert "not images" not in quiet.output
    hidden = [line for line in _lines(quiet.output) if line.startswith("warning:")]
    assert len(hidden) == 1 and re.fullmatch(r"warning: \d+ warnings? hidden \(--quiet\)",
                                             hidden[0])


def test_a_logged_warning_of_a_loso_run_is_one_line(tmp_path, monkeypatch):
    data = make_precomputed(tmp_path / "flow", n_subjects=3, per_subject=4)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "name": "t", "seed": 0, "model": {"name": "ststnet"},
        "train": {"lr": 1e-3, "batch_size": 16, "epochs": 1},
        "run": {"engine": "sequential", "precision": "bf16-mixed"}}))
    monkeypatch.setattr(loso_module, "cpu_has_bf16", lambda: False)  # as on such a CPU
    result = runner.invoke(app, ["loso", "--config", str(config), "--data-root", str(data),
                                 "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    _clean(result.output)
    emulated = [line for line in _lines(result.output) if "no native bfloat16" in line]
    assert len(emulated) == 1 and emulated[0].startswith("warning: this CPU has no native")


def test_data_check_lists_the_worked_around_quirk_without_source_lines(casme2_release):
    root, sheet = casme2_release
    result = runner.invoke(app, ["data", "check", "--dataset", "casme2", "--data-root",
                                 str(root), "--sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    _clean(result.output)
    assert "sub04/EP12_01f" in result.output
    assert "rows = read_sheet" not in result.output


def _noisy_app() -> typer.Typer:
    """An app with fervid's global options and one command that warns 13 times."""
    noisy = typer.Typer()
    noisy.callback()(global_options)

    @noisy.command()
    def warn(count: int = 13) -> None:
        for i in range(count - 1):
            warnings.warn(f"problem {i}\nsecond line of {i}", UserWarning, stacklevel=1)
        logging.getLogger("fervid.test").warning("logged problem %d", count - 1)
        print("done")

    @noisy.command()
    def other() -> None:
        pass

    return noisy


def test_past_ten_warnings_only_their_count_is_printed():
    result = runner.invoke(_noisy_app(), ["warn"])
    assert result.exit_code == 0, result.output
    _clean(result.output)
    lines = [line for line in _lines(result.output) if line.startswith("warning:")]
    assert lines[:MAX_WARNINGS] == [f"warning: problem {i} second line of {i}"
                                    for i in range(MAX_WARNINGS)]
    assert lines[MAX_WARNINGS:] == [f"warning: 3 more warnings (only the first {MAX_WARNINGS} "
                                    "are shown)"]
    assert "done" in result.output


def test_quiet_keeps_only_the_count_and_no_count_without_warnings():
    quiet = runner.invoke(_noisy_app(), ["--quiet", "warn", "--count", "4"])
    assert sorted(_lines(quiet.output)) == ["done", "warning: 4 warnings hidden (--quiet)"]
    few = runner.invoke(_noisy_app(), ["warn", "--count", "2"])
    assert [line for line in _lines(few.output) if line != "done"] == [
        "warning: problem 0 second line of 0", "warning: logged problem 1"]
    assert _lines(runner.invoke(_noisy_app(), ["--quiet", "other"]).output) == []
    # The command's handlers are gone after it: Python's own again.
    with pytest.warns(UserWarning, match="after"):
        warnings.warn("after", UserWarning, stacklevel=1)
    assert warnings.showwarning.__module__ == "warnings"


def _warn_in_worker(shard, progress):
    import warnings

    warnings.warn(f"shard {shard} says\nhello", UserWarning, stacklevel=1)


def test_a_worker_process_warning_reaches_the_parent_as_one_warning():
    import warnings

    from fervid.progress import progress_bar
    from fervid.protocol.workers import WorkerWarning, run_in_workers

    with warnings.catch_warnings(record=True) as caught, progress_bar(False) as bar:
        warnings.simplefilter("always")
        run_in_workers(_warn_in_worker, [[0], [1]], 1, bar)
    texts = sorted(str(w.message) for w in caught if w.category is WorkerWarning)
    assert texts == ["[w0] shard [0] says\nhello", "[w1] shard [1] says\nhello"]


def test_the_suite_refuses_a_warning_printed_with_its_source_path():
    # conftest wraps CliRunner.invoke for every test; a command printing Python's own format
    # fails the test that ran it.
    echo = typer.Typer()

    @echo.command()
    def main() -> None:
        typer.echo("/x/fervid/datasets/frames.py:170: AnnotationWarning: apex not annotated")

    with pytest.raises(AssertionError, match="source path"):
        runner.invoke(echo, [])
