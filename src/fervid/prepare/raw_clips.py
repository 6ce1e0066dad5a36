"""The clips of a raw release, as :func:`fervid.prepare.faces.prepare_faces` reads them.

Each clip is a frame folder (CASME II, SAMM, SMIC, a CK+ sequence) or a video (DFEW), with the
folder its aligned faces go to under the output folder: the same path relative to the release,
so the dataset readers load the output as they load the release. How a release's clips are
found is its registered prepare hook (``DatasetSpec.prepare``, in its reader file).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from fervid.datasets.clip_jobs import ClipJob
from fervid.datasets.registry import ReadRequest, dataset_spec, dataset_specs
from fervid.datasets.sheets import AnnotationWarning
from fervid.errors import OptionError, PathNotFoundError
from fervid.samples import ClipProblem, DatasetFormatError

__all__ = ["ClipJob", "find_clips", "find_sheet", "sheet_clips_missing"]


def find_clips(dataset: str, data_root: Path, out_dir: Path,
               clips: set[int] | None = None) -> list[ClipJob]:
    """The clips of a raw release, in reading order, from its registered prepare hook.

    casme2: ``root/subXX/<clip>/img{N}.jpg`` (or ``reg_img{N}.jpg``); samm:
    ``root/NNN/<clip>/NNN_{N}.jpg``; smic: ``[HS/]s<N>/micro/<emotion>/<clip>/image{N}.bmp``
    (the micro clips the reader loads); dfew: ``root/Clip/original/NNNNN.mp4``, only the
    numbers in ``clips`` when given; ckplus: every sequence
    ``root/cohn-kanade-images/SXXX/NNN/SXXX_NNN_{N:08d}.png``, labelled or not (see
    :func:`fervid.datasets.ckplus.ckplus_clip_jobs`).

    Raises
    ------
    PathNotFoundError
        ``data_root`` (or DFEW's ``Clip/original``) is not a folder.
    UserPathError
        A folder of the release cannot be listed.
    OptionError
        An unknown dataset, ``clips`` given for a dataset not selected by clip numbers, or
        naming absent videos.
    DatasetFormatError
        No clip found.
    """
    root = Path(data_root)
    spec = dataset_spec(dataset, lambda s: s.prepare is not None,
                        "by prepare faces (it registers no raw layout)")
    hook = spec.prepare
    if not root.is_dir():
        raise PathNotFoundError(f"{root}: data folder not found")
    if clips is not None and not hook.takes_clip_numbers:
        numbered = [s.name.upper() for s in dataset_specs()
                    if s.prepare is not None and s.prepare.takes_clip_numbers]
        raise OptionError(f"a clip list selects {' or '.join(numbered)} videos; it does not "
                          f"apply to {dataset}")
    jobs = hook.find(root, out_dir, clips) if hook.takes_clip_numbers else hook.find(root, out_dir)
    kept = [j for j in jobs if j is not None]
    if not kept:
        raise DatasetFormatError(root, [f"no clips found (expected {hook.expects})"])
    return kept


def find_sheet(dataset: str, data_root: Path) -> Path | None:
    """The coding sheet of a release whose reader needs one (``DatasetSpec.sheet``), looked for
    in ``data_root`` and beside it (``CASME2_RAW_selected/``'s parent holds CASME II's); None
    for a release without one, or when it is in neither place."""
    spec = dataset_spec(dataset)
    if spec.sheet is None or spec.sheet_optional or spec.read is None or spec.is_composite:
        return None
    root = Path(data_root)
    return next((d / spec.sheet for d in (root, root.parent) if (d / spec.sheet).is_file()),
                None)


def sheet_clips_missing(dataset: str, data_root: Path, sheet: Path) -> tuple[ClipProblem, ...]:
    """The clips ``sheet`` lists that the raw release at ``data_root`` lacks or holds with
    frames missing, each with its problem: what its reader would skip
    (``ReadRequest.skip_missing``), so ``fervid prepare faces`` can say what it cannot prepare.

    Raises
    ------
    OptionError
        The release's reader reads no coding sheet.
    DatasetFormatError
        The sheet cannot be read, or the release has a problem beyond single clips.
    """
    spec = dataset_spec(dataset)
    if spec.sheet is None or spec.read is None or spec.is_composite:
        raise OptionError(f"{dataset} has no coding sheet to compare the folder with")
    # Every sheet row is looked for, whatever its class: any protocol lists them all.
    protocol = next(iter(spec.classes), "")
    with warnings.catch_warnings():  # the sheet's own quirks are the reader's to report
        warnings.simplefilter("ignore", AnnotationWarning)
        table = spec.read(ReadRequest(Path(data_root), protocol, Path(sheet), skip_missing=True))
    return table.skipped
