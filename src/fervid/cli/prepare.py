"""``fervid prepare``: turn a dataset release into model inputs on disk."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from fervid.samples import DatasetFormatError

prepare_app = typer.Typer(
    help="Prepare model inputs from a dataset release (optical flow images for STSTNet).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

#: Exit codes: 1 = some clips failed (the others are written), 2 = unusable input.
EXIT_CLIPS_FAILED = 1
EXIT_BAD_INPUT = 2
MAX_FAILURES_SHOWN = 20


class DatasetName(str, Enum):
    casme2 = "casme2"
    samm = "samm"
    smic = "smic"


class ProtocolName(str, Enum):
    three = "3class"
    five = "5class"
    all = "all"


@prepare_app.callback()
def prepare() -> None:
    """Prepare model inputs from a dataset release (optical flow images for STSTNet)."""


FLOW_HELP = (
    "Onset-to-apex TV-L1 optical flow (u, v) and optical strain of every clip, as 28x28 PNGs "
    "plus an index.csv (the STSTNet input).\n\n"
    "The images match the published MEGC2019 STSTNet set (cv2.imread order: strain, v, u), so "
    "models trained on one accept the other. Runs in parallel and resumes: finished images are "
    "kept.\n\n"
    "Exit status: 0 all written; 1 some clips failed (listed; the others are written, re-run to "
    "retry); 2 the release or the options are unusable.\n\n"
    "Example: fervid prepare flow --dataset casme2 --data-root CASME2/CASME2_RAW_selected "
    "--sheet CASME2/CASME2-coding-20140508.xlsx --protocol 3class --out flow/casme2")


@prepare_app.command("flow", help=FLOW_HELP)
def flow(
    dataset: Annotated[DatasetName, typer.Option(
        help="Which release --data-root holds.", case_sensitive=False)],
    data_root: Annotated[Path, typer.Option(
        help="The frame folder as shipped: CASME2_RAW_selected/ (or Cropped/), SAMM/, or the "
             "SMIC folder holding HS/.")],
    out: Annotated[Path, typer.Option(
        help="Output folder: one PNG per clip plus index.csv. Re-running resumes: finished "
             "images are kept.")],
    sheet: Annotated[Path | None, typer.Option(
        help="Coding sheet, needed for casme2 (CASME2-coding-20140508.xlsx) and samm "
             "(SAMM_Micro_FACS_Codes_v2.xlsx); smic has none.")] = None,
    protocol: Annotated[ProtocolName, typer.Option(
        help="Class protocol: 3class (MEGC2019 negative/positive/surprise), the dataset's "
             "5class, or all emotions. Clips outside it are left out.")] = ProtocolName.three,
    size: Annotated[int, typer.Option(min=4, help="Side of the square images (STSTNet: 28).")]
    = 28,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Processes (default: all cores; 1 = in this process).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Read a release, then :func:`fervid.prepare_flow.prepare_flow` (see ``FLOW_HELP``)."""
    from fervid.prepare_flow import prepare_flow

    err = Console(stderr=True)
    console = Console()
    try:
        from fervid.datasets import load_dataset

        table = load_dataset(dataset.value, data_root, protocol.value, sheet=sheet)
    except (DatasetFormatError, ValueError, FileNotFoundError) as error:
        _fail(err, f"cannot read {dataset.value} from {data_root}:", str(error))
    try:
        result = prepare_flow(table, out, size=size, workers=workers, progress=progress)
    except (ValueError, OSError) as error:
        _fail(err, f"cannot prepare {out}:", str(error))

    console.print(f"{dataset.value} ({protocol.value}): {result.written} written, "
                  f"{result.skipped} already done, {result.unlabelled} outside the protocol, "
                  f"{len(result.failed)} failed -> {result.index}", highlight=False)
    if result.failed:
        err.print(f"[bold red]{len(result.failed)} clip(s) failed[/] (re-run the same command "
                  "to retry them; finished images are kept):")
        for key, message in result.failed[:MAX_FAILURES_SHOWN]:
            err.print(f"  {key}: {message}", markup=False, highlight=False)
        if len(result.failed) > MAX_FAILURES_SHOWN:
            err.print(f"  ... and {len(result.failed) - MAX_FAILURES_SHOWN} more")
        raise typer.Exit(EXIT_CLIPS_FAILED)


def _fail(err: Console, headline: str, detail: str) -> NoReturn:
    """Print an input error without a traceback (messages hold paths: no markup) and exit 2."""
    err.print("[bold red]error:[/] " + escape(headline), highlight=False)
    err.print(detail, markup=False, highlight=False)
    raise typer.Exit(EXIT_BAD_INPUT)
