"""``fervid prepare``: turn a dataset release into model inputs on disk."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fervid.cli.common import check_output_dir, one_line
from fervid.errors import FervidError, OptionError

PREPARE_HELP = ("Prepare model inputs from a dataset release: aligned face crops from raw frames "
                "or videos (faces), optical flow images for STSTNet (flow).")

prepare_app = typer.Typer(
    help=PREPARE_HELP,
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

#: Exit codes: 1 = some clips failed (the others are written), 2 = unusable input.
EXIT_CLIPS_FAILED = 1
EXIT_BAD_INPUT = 2
MAX_FAILURES_SHOWN = 20

log = logging.getLogger(__name__)


class TemplateName(str, Enum):
    five = "5point"
    sixty_eight = "68point"


class AlignName(str, Enum):
    clip = "clip"
    onset = "onset"
    frame = "frame"
    register = "register"


class MotionName(str, Enum):
    translation = "translation"
    euclidean = "euclidean"
    affine = "affine"


class DetectorName(str, Enum):
    hog = "hog"
    cnn = "cnn"


class ProtocolName(str, Enum):
    three = "3class"
    five = "5class"
    all = "all"


def _dataset(name: str, usable, purpose: str) -> str:
    """The registered dataset ``name`` (matched case-insensitively) that ``usable`` accepts.

    Raises
    ------
    UnknownDatasetError
        One line naming it and the valid names.
    """
    from fervid.datasets.registry import dataset_names, dataset_spec

    name = name.strip()
    if name not in dataset_names() and name.lower() in dataset_names():
        name = name.lower()
    return dataset_spec(name, usable, purpose).name


#: The ``--dataset`` option; the names are those of the dataset table
#: (:mod:`fervid.datasets.registry`), checked when the command runs.
DATASET_HELP = ("Which release --data-root holds: a registered dataset name ({which}; an "
                "unknown name is refused with the list).")


@prepare_app.callback()
def prepare() -> None:
    """Prepare model inputs from a dataset release: aligned faces (faces), optical flow (flow)."""


#: The release folder every prepare command reads.
DataRootOption = Annotated[Path, typer.Option(
    help="The release as shipped: CASME2_RAW_selected/ (flow also takes Cropped/), SAMM/, the "
         "SMIC folder holding HS/, or (faces only) the DFEW folder holding Clip/original/ or the "
         "CK+ folder holding cohn-kanade-images/.")]
#: The output folder of every prepare command.
OutOption = Annotated[Path, typer.Option(
    help="Output folder (not the data folder). Re-running resumes: finished clips are kept.")]

#: What every prepare command's help says about resuming and exit status.
PARALLEL_AND_EXITS = (
    "Runs in parallel and resumes: finished clips are kept.\n\n"
    "Exit status: 0 all written; 1 some clips failed{failure} (listed; the others are written, "
    "re-run to retry); 2 the release or the options are unusable.\n\n")

FLOW_HELP = (
    "Onset-to-apex TV-L1 optical flow (u, v) and optical strain of every clip, as 28x28 PNGs "
    "plus an index.csv (the STSTNet input).\n\n"
    "The images match the published MEGC2019 STSTNet set (cv2.imread order: strain, v, u), so "
    "models trained on one accept the other. " + PARALLEL_AND_EXITS.format(failure="") +
    "A clip the sheet lists whose folder or frames are missing stops the command before any "
    "work; --skip-missing leaves such clips out (count and first names printed).\n\n"
    "Example: fervid prepare flow --dataset casme2 --data-root CASME2/CASME2_RAW_selected "
    "--sheet CASME2/CASME2-coding-20140508.xlsx --protocol 3class --out flow/casme2")


@prepare_app.command("flow", help=FLOW_HELP)
def flow(
    dataset: Annotated[str, typer.Option(help=DATASET_HELP.format(
        which="one whose clips are read from one folder"))],
    data_root: DataRootOption,
    out: OutOption,
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
    skip_missing: Annotated[bool, typer.Option(
        help="Leave out clips whose folders or frames are missing or damaged (count and first "
             "names printed) instead of stopping.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Read a release, then :func:`fervid.prepare.flow.prepare_flow` (see ``FLOW_HELP``)."""
    from fervid.prepare.flow import prepare_flow

    err = Console(stderr=True)
    console = Console()
    try:
        dataset = _dataset(dataset, lambda s: s.reads_one_root, "by prepare flow")
        check_output_dir(out)
    except FervidError as error:
        _fail(err, "cannot prepare flow:", str(error))
    try:
        table = _read_release(dataset, data_root, protocol.value, sheet, skip_missing)
    except FervidError as error:
        _fail(err, f"cannot read {dataset} from {data_root}:", str(error))
    if table.skipped:
        from fervid.datasets.from_config import skipped_line

        log.warning("%s", skipped_line(table.skipped, "--skip-missing"))
    try:
        result = prepare_flow(table, out, size=size, workers=workers, progress=progress)
    except (FervidError, OSError) as error:
        _fail(err, f"cannot prepare {out}:", str(error))

    _summary(console, f"prepare flow: {dataset} ({protocol.value}) -> {result.index}",
             [("clips written", result.written), ("already done", result.skipped),
              ("outside the protocol", result.unlabelled), ("failed", len(result.failed))]
             + ([("left out: folder or frames missing", len(table.skipped))]
                if table.skipped else []))
    _report_failures(err, result.failed, "finished images are kept")


def _read_release(dataset: str, data_root: Path, protocol: str, sheet: Path | None,
                  skip_missing: bool):
    """The clips of ``dataset`` under ``data_root`` as its registered reader gives them.

    Raises
    ------
    OptionError
        A sheet given to a release without one, or missing for one that needs it.
    DatasetFormatError
        From the reader.
    """
    from fervid.datasets.registry import ReadRequest, dataset_spec

    spec = dataset_spec(dataset)
    problem = spec.sheet_problem(sheet is not None)
    if problem is not None:
        raise OptionError(f"{dataset} {problem}" + ("; do not pass --sheet" if sheet is not None
                                                    else ": pass --sheet"))
    return spec.read(ReadRequest(Path(data_root), protocol, sheet, skip_missing=skip_missing))


FACES_HELP = (
    "Crop and align the face in every frame of a raw release, into the layout its reader "
    "loads: CASME II subXX/<clip>/reg_img{N}.jpg (the Cropped release's names), SAMM and SMIC "
    "their own names, DFEW Clip/clip_224x224/NNNNN/NNNNN_{N:05d}.jpg plus a copy of "
    "EmoLabel_DataSplit/, CK+ a complete CK+ folder (cohn-kanade-images/ with the frames' "
    "names, each sequence's Emotion/ and FACS/ copied, Landmarks/ moved into crop pixels). "
    "Read the output with the same sheet as the raw release.\n\n"
    "One face is tracked through each clip (dlib detector every --detect-every frames, "
    "landmarks in between) and warped onto a 5- or 68-point template. Also written: "
    "_face_tracks/<clip>.csv (per frame: status, box, 68 landmarks in source pixels) and "
    "prepare_faces.json (the settings; a re-run with other settings is refused). "
    "Where the release has a coding sheet (--sheet, or its sheet file in --data-root or beside "
    "it), the clips it lists that the folder lacks are counted and the first named. "
    + PARALLEL_AND_EXITS.format(failure=", e.g. no face found") +
    "Example: fervid prepare faces --dataset casme2 --data-root CASME2/CASME2_RAW_selected "
    "--out CASME2/Aligned (beside the raw folder, so a config's data.sheet "
    "../CASME2-coding-20140508.xlsx still resolves), then fervid loso --data-root "
    "CASME2/Aligned ...; fervid prepare faces --dataset ckplus --data-root CK+ --out "
    "CK+_aligned, then fervid loso --config configs/smastn_ckplus.yaml --data-root "
    "CK+_aligned ...")


@prepare_app.command("faces", help=FACES_HELP)
def faces(
    dataset: Annotated[str, typer.Option(help=DATASET_HELP.format(
        which="one with a raw layout to prepare"))],
    data_root: DataRootOption,
    out: OutOption,
    size: Annotated[int, typer.Option(
        min=8, help="Side of the square face crops in pixels (224: DFEW's clip_224x224, whose "
                    "folder name is kept at any size; CASME II's Cropped faces are about "
                    "170-230 px).")] = 224,
    margin: Annotated[float, typer.Option(
        min=0.0, max=1.9, help="Border around the face on each side, as a fraction of the face "
                               "region (0.1: the crops of `fervid predict`).")] = 0.1,
    template: Annotated[TemplateName, typer.Option(
        help="Fit eyes, nose tip and mouth corners (5point) or all 68 landmarks (68point).")
    ] = TemplateName.five,
    align: Annotated[AlignName | None, typer.Option(
        help="clip: one warp per clip, from its mean landmarks (keeps landmark noise out of "
             "micro-motions; default for casme2, samm, smic); onset: one warp per clip, from its "
             "first face (CK+'s neutral frame, so the expression's motion is kept and does not "
             "move the crop; default for ckplus); frame: one warp per frame (moving heads; "
             "default for dfew); register: onset, then every frame registered onto the onset "
             "frame with sub-pixel accuracy from the face outline, nose bridge and forehead "
             "(head drift and tremor out of dynamic images, the expression kept).")] = None,
    motion: Annotated[MotionName, typer.Option(
        help="--align register: the motion model fitted per frame (euclidean: rotation and "
             "shift).")] = MotionName.euclidean,
    detector: Annotated[DetectorName, typer.Option(
        help="dlib face detector: hog (fast, frontal faces) or cnn (turned faces, much "
             "slower).")] = DetectorName.hog,
    detect_every: Annotated[int, typer.Option(
        min=1, help="Run the detector every N frames; landmarks track the face in between.")
    ] = 5,
    clips: Annotated[str | None, typer.Option(
        help="dfew only: clip numbers to prepare, e.g. 1,5,100-120 (default all).")] = None,
    sheet: Annotated[Path | None, typer.Option(
        help="The coding sheet to list the clips the folder lacks (default: the release's "
             "sheet file in --data-root or its parent, when there).")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Processes (default: all cores; 1 = in this process).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Run :func:`fervid.prepare.faces.prepare_faces` (see ``FACES_HELP``)."""
    from fervid.number_ranges import parse_ranges
    from fervid.prepare.faces import prepare_faces

    err = Console(stderr=True)
    try:
        dataset = _dataset(dataset, lambda s: s.prepare is not None,
                           "by prepare faces (it registers no raw layout)")
    except FervidError as error:
        _fail(err, "cannot prepare faces:", str(error))
    _warn_sheet_clips_missing(dataset, data_root, sheet)
    try:
        check_output_dir(out)
        numbers = None if clips is None else set(parse_ranges(clips, option="--clips"))
        result = prepare_faces(dataset, data_root, out, size=size, margin=margin,
                               template=template.value, align=align and align.value,
                               detector=detector.value, detect_every=detect_every,
                               clips=numbers, workers=workers, progress=progress,
                               motion=motion.value)
    except (FervidError, OSError) as error:
        _fail(err, f"cannot prepare faces of {dataset} from {data_root} into {out}:",
              str(error))

    rows = [("clips written", result.written), ("already done", result.skipped),
            ("failed", len(result.failed)), ("frames written", result.frames)]
    if result.frames_without_face:
        rows.append(("frames without a tracked face (aligned from the others)",
                     result.frames_without_face))
    if result.frames:
        rows.append(("frames/s", f"{result.frames / result.seconds:.1f}"))
    _summary(Console(), f"prepare faces: {dataset} -> {result.out}", rows)
    _report_failures(err, result.failed, "finished clips are kept")


def _warn_sheet_clips_missing(dataset: str, data_root: Path, sheet: Path | None) -> None:
    """Warn (one line) of the clips the release's coding sheet lists that ``data_root`` lacks
    or holds with frames missing: they cannot be prepared."""
    from fervid.datasets.from_config import first_names
    from fervid.prepare.raw_clips import find_sheet, sheet_clips_missing

    sheet = sheet if sheet is not None else find_sheet(dataset, data_root)
    if sheet is None or not Path(data_root).is_dir():
        return
    try:
        missing = sheet_clips_missing(dataset, data_root, sheet)
    except FervidError as error:
        log.warning("cannot compare %s with its sheet %s: %s", data_root, sheet, error)
        return
    if missing:
        log.warning("%s lists %d clip(s) that %s lacks or holds with frames missing; they are "
                    "not prepared: %s", Path(sheet).name, len(missing), data_root,
                    first_names([p.name for p in missing]))


def _summary(console: Console, title: str, rows: list[tuple[str, object]]) -> None:
    """The closing results table of a prepare command."""
    console.print(title, markup=False, highlight=False, soft_wrap=True)  # paths stay whole
    table = Table(show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for what, value in rows:
        table.add_row(what, str(value))
    console.print(table)


def _report_failures(err: Console, failed: list[tuple[str, str]], kept: str) -> None:
    """List failed clips and exit 1 when there are any."""
    if failed:
        err.print(f"[bold red]{len(failed)} clip(s) failed[/] (re-run the same command to retry "
                  f"them; {kept}):")
        for key, message in failed[:MAX_FAILURES_SHOWN]:
            # soft_wrap: paths in messages stay whole (copyable) on narrow terminals.
            err.print(f"  {key}: {message}", markup=False, highlight=False, soft_wrap=True)
        if len(failed) > MAX_FAILURES_SHOWN:
            err.print(f"  ... and {len(failed) - MAX_FAILURES_SHOWN} more")
        raise typer.Exit(EXIT_CLIPS_FAILED)


def _fail(err: Console, headline: str, detail: str) -> NoReturn:
    """Print an input error as one line without a traceback (messages hold paths: escaped, no
    markup) and exit 2."""
    err.print("[bold red]error:[/] " + escape(one_line(f"{headline} {detail}")),
              highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)
