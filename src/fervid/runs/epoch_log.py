"""Per-epoch training logs: a CSV always, and TensorBoard event files when TensorBoard is
installed, written through Fabric's ``TensorBoardLogger``.

The CSV is fervid's own rather than Fabric's ``CSVLogger``: a resumed run must drop the rows
written after the checkpoint it resumes from (:meth:`EpochLog.truncate_after`), while Fabric's
logger starts a new version folder per invocation. TensorBoard simply shows the latest value of
an epoch that was logged twice.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lightning_fabric.loggers.tensorboard import (
    _TENSORBOARD_AVAILABLE,
    _TENSORBOARDX_AVAILABLE,
    TensorBoardLogger,
)

from fervid.files import atomic_write_bytes, remove_stale_tmp

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
        """Drop rows past ``epoch`` (written after the checkpoint a resume starts from), and a
        last row a kill cut short; rewritten atomically, so a kill here loses no row."""
        remove_stale_tmp(self.path)  # one writer per log: its killed rewrites' leftovers
        if not self.path.exists():
            return
        text = self.path.read_text()
        if not text.endswith("\n"):
            text = text[:text.rfind("\n") + 1]
        rows = [r for r in csv.DictReader(io.StringIO(text)) if int(r["epoch"]) <= epoch]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.fields, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.path, buffer.getvalue().encode())

    def append(self, **row) -> None:
        self._append([row])
        if self._tb is not None:
            scalars = {f"train/{k}": float(v) for k, v in row.items()
                       if k != "epoch" and isinstance(v, int | float)}
            self._tb.log_metrics(scalars, step=int(row["epoch"]))
            self._tb.experiment.flush()  # readable while the run goes on, and after a kill

    def _append(self, rows):
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields)
            if new:
                w.writeheader()
            w.writerows(rows)
