"""Reading a release's sample table by name, for a training loop of your own."""

from __future__ import annotations

import inspect
from pathlib import Path

from fervid.datasets import load_dataset
from fervid.errors import OptionError
from fervid.samples import SampleTable


def read_table(dataset_name: str, root: Path | str, **options) -> SampleTable:
    """The sample table of a release, read with fervid's own reader for it.

    Parameters
    ----------
    dataset_name
        A name :func:`fervid.datasets.load_dataset` knows (``casme2``, ``samm``, ``smic``,
        ``ckplus``, ...).
    root
        The release's frame folder (e.g. ``CASME2_RAW_selected``).
    **options
        The reader's options, e.g. ``protocol="5class"`` and, for CASME II and SAMM, the coding
        ``sheet=``.

    Returns
    -------
    SampleTable
        One :class:`~fervid.samples.Sample` per clip (frame paths, onset, apex, offset, label;
        ``label`` is None for an emotion outside the protocol: ``table.labelled()`` drops those).

    Raises
    ------
    FervidError
        One line: an unknown name, a missing or unknown option
        (:class:`~fervid.errors.OptionError`), a missing folder or a release that does not
        match the official layout (:class:`~fervid.samples.DatasetFormatError`).
    """
    try:  # a wrong option is the caller's to fix; a TypeError inside a reader stays a bug
        inspect.signature(load_dataset).bind(dataset_name, Path(root), **options)
    except TypeError as err:
        raise OptionError(f"read_table({dataset_name!r}, ...): {err}") from err
    return load_dataset(dataset_name, Path(root), **options)
