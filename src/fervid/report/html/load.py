"""One entry point that reads a run directory of any protocol for the HTML report.

:func:`load_run` reads ``run.json`` and ``config.yaml`` (:func:`.run_data.read_header`) and
hands them to the reader that ``run.json``'s ``protocol`` names (:data:`READERS`): LOSO
(:mod:`.loso_data`; runs without a ``protocol`` are LOSO runs) or k-fold (DFEW, MAFW,
FERV39k: :mod:`.kfold_data`). Every reader returns the same :class:`.run_data.RunData`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fervid.datasets.video_release import is_kfold_protocol
from fervid.report.html.holdout import CROSS_DATASET, HOLDOUT, load_split_run
from fervid.report.html.kfold_data import load_kfold_run
from fervid.report.html.loso_data import load_loso_run
from fervid.report.html.run_data import (
    DFEW_5FOLD,
    LOSO,
    RunData,
    RunHeader,
    RunReportError,
    read_header,
)

#: The reader of each protocol, by ``run.json``'s ``protocol``.
READERS: dict[str, Callable[[RunHeader], RunData]] = {
    LOSO: load_loso_run, DFEW_5FOLD: load_kfold_run, HOLDOUT: load_split_run,
    CROSS_DATASET: load_split_run}


def load_run(run_dir: Path) -> RunData:
    """Read a LOSO or DFEW k-fold run directory (finished or partly finished) for the report.

    Raises
    ------
    RunReportError
        The directory is missing, is not a fervid run directory, names a protocol the
        report cannot read, or holds an unreadable file (the message names it).
    """
    header = read_header(Path(run_dir))
    reader = READERS.get(header.protocol)
    if reader is None and is_kfold_protocol(header.protocol):  # MAFW's, FERV39k's ...
        reader = load_kfold_run
    if reader is None:
        raise RunReportError(f"{header.run_dir / 'run.json'}: protocol {header.protocol!r} "
                             f"has no report reader; known: {sorted(READERS)}")
    return reader(header)
