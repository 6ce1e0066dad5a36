"""Helpers of the bad-input tests: run ``fervid`` as its entry point does, check the one-line
error, and make broken files."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from fervid.cli import app
from fervid.cli.common import EXIT_USER_ERROR, run_app
from fervid.errors import FervidError
from generated import make_precomputed

#: A real (tiny) PNG, for "a PNG named .pt" and friends.
PNG_BYTES = cv2.imencode(".png", np.full((8, 8, 3), 120, np.uint8))[1].tobytes()
#: Bytes that are no text, image, CSV, sheet or checkpoint.
GARBAGE = bytes(range(256)) * 4


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def fervid(*args: object) -> Outcome:
    """Run ``fervid ARGS`` through :func:`fervid.cli.common.run_app`, as the ``fervid`` script
    does (so errors raised outside a command's own handler are judged as users see them)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            run_app(app, [str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return Outcome(code, out.getvalue(), err.getvalue())


def assert_one_line_error(result: Outcome, *, must_name: object, says: str = "") -> str:
    """Exit status 2, no traceback, and exactly one non-empty line on stderr that names
    ``must_name`` (a path or field) and, when given, contains ``says`` (case-insensitive).
    Returns that line."""
    shown = f"exit {result.code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.output, shown
    assert result.code == EXIT_USER_ERROR, shown
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, shown
    line = lines[0]
    assert line.startswith("error:"), shown
    assert str(must_name) in line, f"{must_name!r} not named in:\n{shown}"
    assert says.lower() in line.lower(), f"{says!r} not said in:\n{shown}"
    return line


def assert_refused(call: Callable[[], object], *, must_name: object, says: str = "") -> str:
    """``call()`` raises a :class:`~fervid.errors.FervidError` whose message passes
    :func:`assert_user_error_text`; returns the message."""
    with pytest.raises(FervidError) as err:
        call()
    assert_user_error_text(str(err.value), must_name=must_name, says=says)
    return str(err.value)


def assert_user_error_text(message: str, *, must_name: object, says: str = "") -> None:
    """A :class:`~fervid.errors.FervidError` message as the CLI prints it: one line naming
    ``must_name`` and saying ``says``."""
    assert "\n" not in message, message
    assert str(must_name) in message, message
    assert says.lower() in message.lower(), message


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut ``path`` to the first ``keep`` of its bytes (a copy interrupted mid-way)."""
    data = path.read_bytes()
    path.write_bytes(data[:max(1, int(len(data) * keep))])
    return path


TINY_LOSO = {"name": "tiny", "model": {"name": "ststnet"},
             "train": {"epochs": 1, "batch_size": 8},
             "run": {"engine": "sequential", "precision": "32-true"}}
TINY_KFOLD = {"model": {"name": "r3d_18"}, "data": {"num_frames": 4, "size": 16},
              "train": {"epochs": 1, "batch_size": 2}, "run": {"num_workers": 0}}
TINY_FIT = {"model": {"name": "frame_resnet", "stem": "small"},
            "data": {"dataset": "image_folder", "resize": 24, "size": 20},
            "train": {"epochs": 1, "batch_size": 8, "lr": 0.01},
            "run": {"precision": "32-true"}}


def face_folder(root: Path, n: int = 3) -> Path:
    """``root/{train,validation,test}/<class>/*.png``: tiny grey faces of three classes."""
    rng = np.random.default_rng(0)
    for split in ("train", "validation", "test"):
        for k, name in enumerate(("angry", "happy", "sad")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 60, (24, 24), dtype=np.uint8)
                img[2 + 7 * k:8 + 7 * k] += 150
                cv2.imwrite(str(folder / f"{i}.png"), img)
    return root


class World:
    """Valid inputs and finished runs, under paths with spaces and non-ASCII letters."""

    def __init__(self, base: Path):
        self.base = base
        self.flow = make_precomputed(base / "données flow", n_subjects=3, per_subject=4)
        self.loso_cfg = write_json(base / "cfg ü.yaml", TINY_LOSO)
        self.kfold_cfg = write_json(base / "kfold cfg.yaml", TINY_KFOLD)
        self.fit_cfg = write_json(base / "fit cfg ñ.yaml", TINY_FIT)
        self.faces = face_folder(base / "visages été")
        self.loso_run = base / "run dir ß"
        self.fit_run = base / "fit run ø"
        self.loso_first = fervid("loso", "--config", self.loso_cfg, "--data-root", self.flow,
                                 "--out", self.loso_run, "--no-progress")
        self.fit_first = fervid("fit", "--config", self.fit_cfg, "--data-root", self.faces,
                                "--out", self.fit_run, "--no-progress")

    def copy_loso_run(self, to: Path) -> Path:
        return Path(shutil.copytree(self.loso_run, to))
