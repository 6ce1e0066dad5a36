"""Per-epoch training logs: a CSV always, and TensorBoard event files when TensorBoard is
installed, written through Fabric's ``TensorBoardLogger``.

The CSV is fervid's own rather than Fabric's ``CSVLogger``: a resumed run must drop the rows
written after the checkpoint it resumes from (:meth:`EpochLog.truncate_after`), while Fabric's
logger starts a new version folder per invocation. TensorBoard simply shows the latest value of
an epoch that was logged twice.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lightning_fabric.loggers.tensorboard import (
    _TENSORBOARD_AVAILABLE,
    _TENSORBOARDX_AVAILABLE,
    TensorBoardLogger,
)

#: Whether TensorBoard (or tensorboardX) can be written here.
TENSORBOARD_AVAILABLE = bool(_TENSORBOARD_AVAILABLE or _TENSORBOARDX_AVAILABLE)


class EpochLog:
    """Appends ``epoch, loss, train_acc`` rows (or ``fields``) to a CSV kept across resumes.

    ``RUN_DIR/train_logs/NAME.csv`` is mirrored to ``RUN_DIR/tensorboard/NAME/`` when
    TensorBoard is installed and ``tensorboard`` is true: ``tensorboard --logdir RUN_DIR``.
    """

    def __init__(self, path: Path, fields: tuple[str, ...] = ("epoch", "loss", "train_acc"),
                 *, tensorboard: bool = True):
        self.path, self.fields = Path(path), fields
        self._tb: TensorBoardLogger | None = None
        if tensorboard and TENSORBOARD_AVAILABLE:
            self._tb = TensorBoardLogger(root_dir=self.path.parent.parent / "tensorboard",
                                         name=self.path.stem, version="")

    @property
    def tensorboard_dir(self) -> Path | None:
        return None if self._tb is None else Path(self._tb.log_dir)

    def truncate_after(self, epoch: int) -> None:
        """Drop rows past ``epoch`` (written after the checkpoint a resume starts from)."""
        if not self.path.exists():
            return
        with self.path.open() as f:
            rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= epoch]
        self._write(rows, "w")

    def append(self, **row) -> None:
        self._write([row], "a")
        if self._tb is not None:
            scalars = {f"train/{k}": float(v) for k, v in row.items()
                       if k != "epoch" and isinstance(v, int | float)}
            self._tb.log_metrics(scalars, step=int(row["epoch"]))
            self._tb.experiment.flush()  # readable while the run goes on, and after a kill

    def _write(self, rows, mode):
        new = mode == "w" or not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open(mode, newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields)
            if new:
                w.writeheader()
            w.writerows(rows)
