"""The terminal line of what made a run (:mod:`fervid.runs.provenance`), under its table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from fervid.runs.provenance import segments, summary
from fervid.runs.store import RunDirError, read_run_meta


def print_provenance(console: Console, run_dir: Path | None = None,
                     meta: Mapping | None = None) -> None:
    """Print the one-line summary of ``meta``'s provenance, or of ``run_dir/run.json``'s;
    nothing when neither is given or the file became unreadable since the results were read
    from it."""
    if meta is None and run_dir is not None:
        try:
            meta = read_run_meta(run_dir)
        except RunDirError:
            return
    if meta is not None:
        console.print(summary(segments(meta)), highlight=False, soft_wrap=True, markup=False)
