"""Writes that a killed process can never leave half done."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

#: Marks the temporary files of an unfinished write (``.NAME.tmp-PID``), so they can be swept.
TMP_MARK = ".tmp-"


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)``, then move the file into place in one step (``os.replace``).

    A process killed in between leaves at most a temporary file, never a truncated ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def remove_stale_tmp(path: Path) -> None:
    """Remove the temporary files of ``path`` that killed writers left (``.NAME.tmp-*``).

    Only for a file this process alone writes (a fold's files, its checkpoint): another live
    writer of ``path`` would lose its temporary file.
    """
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}{TMP_MARK}*"):
        stale.unlink(missing_ok=True)
