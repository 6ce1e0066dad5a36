"""Readers for the official releases, each returning a :class:`SampleTable`.

============  ==========  ============================  ==========================
dataset       subject     clip                          protocols
============  ==========  ============================  ==========================
``casme2``    ``sub01``   ``EP02_01f``                  ``5class``, ``3class``, ``all``
``samm``      ``006``     ``006_1_2``                   ``5class``, ``3class``, ``all``
``smic``      ``s01``     ``s01_ne_01``                 ``3class``
``ckplus``    ``S052``    ``S052_001``                  ``7class``, ``6class``
============  ==========  ============================  ==========================

The ids are those of MEGC2019's ``combined_3class_gt.csv`` (whose SAMM subjects alone are
unpadded, ``6``; :func:`read_megc2019` pads them). Every reader checks the whole release before
failing and raises one :class:`~fervid.samples.DatasetFormatError` listing the problems.
"""

from __future__ import annotations

from pathlib import Path

from fervid.datasets.casme2 import CASME2_EMOTIONS, CASME2_PROTOCOLS, read_casme2
from fervid.datasets.ckplus import CKPLUS_PROTOCOLS, ckplus_subject_folds, read_ckplus
from fervid.datasets.megc2019 import read_megc2019, read_megc2019_gt
from fervid.datasets.megc2019_handcrafted import FEATURE_SETS, HandcraftedSet, read_handcrafted
from fervid.datasets.precomputed import PrecomputedSet, read_precomputed
from fervid.datasets.samm import SAMM_EMOTIONS, SAMM_PROTOCOLS, read_samm
from fervid.datasets.sheets import AnnotationWarning
from fervid.datasets.smic import SMIC_PROTOCOLS, read_smic, read_smic_hs_e_sheet
from fervid.errors import OptionError
from fervid.samples import SampleTable

#: Names :func:`load_dataset` accepts.
DATASET_NAMES: tuple[str, ...] = ("casme2", "samm", "smic", "ckplus")

#: Dataset name -> protocol name -> class names.
PROTOCOLS: dict[str, dict[str, tuple[str, ...]]] = {
    "casme2": CASME2_PROTOCOLS, "samm": SAMM_PROTOCOLS, "smic": SMIC_PROTOCOLS,
    "ckplus": CKPLUS_PROTOCOLS}

_SHEET_NAMES = {"casme2": "CASME2-coding-20140508.xlsx", "samm": "SAMM_Micro_FACS_Codes_v2.xlsx"}


def load_dataset(name: str, root: Path, protocol: str, sheet: Path | None = None) -> SampleTable:
    """Read one dataset by name.

    Parameters
    ----------
    name : {'casme2', 'samm', 'smic', 'ckplus'}
        The dataset.
    root : Path
        Its frame folder (see :func:`read_casme2`, :func:`read_samm`, :func:`read_smic`), or
        for ``ckplus`` the folder holding ``cohn-kanade-images/`` and ``Emotion/``
        (:func:`read_ckplus`).
    protocol : str
        One of ``PROTOCOLS[name]``.
    sheet : Path, optional
        The coding sheet; required for ``casme2`` and ``samm``, refused for ``smic`` and
        ``ckplus``.

    Raises
    ------
    OptionError
        Unknown name or protocol, or a missing or unexpected sheet.
    DatasetFormatError
        From the reader.
    """
    if name not in DATASET_NAMES:
        raise OptionError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    if name in ("smic", "ckplus"):
        if sheet is not None:
            where = "its folders" if name == "smic" else "its Emotion/ files"
            raise OptionError(f"{name} has no coding sheet (labels come from {where}); "
                              "do not pass sheet")
        reader = read_smic if name == "smic" else read_ckplus
        return reader(Path(root), protocol)
    if sheet is None:
        raise OptionError(f"{name} needs its coding sheet ({_SHEET_NAMES[name]}): pass sheet=")
    reader = read_casme2 if name == "casme2" else read_samm
    return reader(Path(root), Path(sheet), protocol)


__all__ = [
    "CASME2_EMOTIONS", "CKPLUS_PROTOCOLS", "DATASET_NAMES", "FEATURE_SETS", "PROTOCOLS",
    "SAMM_EMOTIONS", "AnnotationWarning", "HandcraftedSet", "PrecomputedSet",
    "ckplus_subject_folds", "load_dataset", "read_casme2", "read_ckplus", "read_handcrafted",
    "read_megc2019", "read_megc2019_gt", "read_precomputed", "read_samm", "read_smic",
    "read_smic_hs_e_sheet",
]
