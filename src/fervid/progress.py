"""Progress display for long work: rich bars with counts, elapsed time and ETA."""

from __future__ import annotations

from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def progress_bar(enabled: bool):
    """A rich :class:`~rich.progress.Progress`, or a silent stand-in when disabled."""
    if not enabled:
        yield NoProgress()
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn()) as progress:
        yield progress


class NoProgress:
    """Accepts the calls of :class:`~rich.progress.Progress` and shows nothing."""

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def update(self, *args, **kwargs) -> None:
        pass

    def advance(self, *args, **kwargs) -> None:
        pass

    def remove_task(self, *args, **kwargs) -> None:
        pass


ProgressLike = Progress | NoProgress
