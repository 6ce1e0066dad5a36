"""Readers for the official releases, each returning a :class:`SampleTable`.

============  ============  ============================  ==================================
dataset       subject       clip                          protocols
============  ============  ============================  ==================================
``casme2``    ``sub01``     ``EP02_01f``                  ``5class``, ``3class``, ``all``
``samm``      ``006``       ``006_1_2``                   ``5class``, ``3class``, ``all``
``smic``      ``s01``       ``s01_ne_01``                 ``3class``
``ckplus``    ``S052``      ``S052_001``                  ``7class``, ``6class``
``casme``     ``sub01``     ``EP01_5``                    ``all``, ``3class``
``casme_sq``  ``s15``       ``anger1_1``                  ``4class``, ``3class`` (+ ``_all``)
``casme3``    ``spNO.1``    ``a``, ``a_2``                ``7class``, ``4class``, ``3class``
``dfme``      (sheet's)     (sheet's Filename)            ``7class``, ``3class``
``mmme``      (sheet's)     (video stem and onset)        ``7class``, ``3class``
``4dme``      (sheet's)     (sheet's fold_name)           ``5class``, ``3class``
``mmew``      (sheet's)     (sheet's Filename)            ``all``, ``3class``
============  ============  ============================  ==================================

Releases read through their own splits (``dfew``, ``ferv39k``, ``mafw``), still-face releases
(``fer2013``, ``image_folder``) and composites (``megc2019``, ``composite``) are in the same
table; ``fervid data list`` prints it.

The ids are those of MEGC2019's ``combined_3class_gt.csv`` (whose SAMM subjects alone are
unpadded, ``6``; :func:`read_megc2019` pads them). Every reader checks the whole release before
failing and raises one :class:`~fervid.samples.DatasetFormatError` listing the problems.
"""

from __future__ import annotations

from pathlib import Path

# isort: off
# Each reader file registers its release (fervid.datasets.registry) when imported; this order is
# the order the table lists the names in.
from fervid.datasets import casme2, samm, smic, ckplus  # noqa: F401
from fervid.datasets import megc2019, dfew, fer2013, image_folder  # noqa: F401
from fervid.datasets import casme, casme_sq, casme3, dfme, mmme, fourdme, mmew  # noqa: F401
from fervid.datasets import ferv39k, mafw  # noqa: F401
from fervid.datasets import casme_sq_long, samm_lv  # noqa: F401
from fervid.datasets import composite  # noqa: F401
# isort: on
from fervid.datasets import megc2019_handcrafted, precomputed  # noqa: F401
from fervid.datasets.casme2 import CASME2_EMOTIONS, read_casme2
from fervid.datasets.ckplus import CKPLUS_PROTOCOLS, ckplus_subject_folds, read_ckplus
from fervid.datasets.megc2019 import read_megc2019, read_megc2019_gt
from fervid.datasets.megc2019_handcrafted import FEATURE_SETS, HandcraftedSet, read_handcrafted
from fervid.datasets.precomputed import PrecomputedSet, read_precomputed
from fervid.datasets.registry import (
    DatasetSpec,
    ReadRequest,
    dataset_names,
    dataset_spec,
    dataset_specs,
    register_dataset,
)
from fervid.datasets.samm import SAMM_EMOTIONS, read_samm
from fervid.datasets.sheets import AnnotationWarning
from fervid.datasets.smic import read_smic, read_smic_hs_e_sheet
from fervid.errors import OptionError
from fervid.samples import SampleTable


def _reads_one_root(spec: DatasetSpec) -> bool:
    return spec.reads_one_root


#: Names :func:`load_dataset` accepts: the built-in releases whose clips are read from one
#: folder (and maybe a sheet). Readers registered later are looked up all the same.
DATASET_NAMES: tuple[str, ...] = tuple(
    s.name for s in dataset_specs(load_plugins=False) if _reads_one_root(s))

#: Dataset name -> protocol name -> class names.
PROTOCOLS: dict[str, dict[str, tuple[str, ...]]] = {
    s.name: dict(s.classes) for s in dataset_specs(load_plugins=False) if s.name in DATASET_NAMES}


def load_dataset(name: str, root: Path, protocol: str, sheet: Path | None = None) -> SampleTable:
    """Read one dataset by name: its registered reader (:mod:`fervid.datasets.registry`).

    Parameters
    ----------
    name : str
        The dataset: one of :data:`DATASET_NAMES`, or a registered reader of your own.
    root : Path
        Its frame folder (see :func:`read_casme2`, :func:`read_samm`, :func:`read_smic`), or
        for CK+ the folder holding ``cohn-kanade-images/`` and ``Emotion/``
        (:func:`read_ckplus`).
    protocol : str
        One of its class protocols (``PROTOCOLS[name]``).
    sheet : Path, optional
        The coding sheet: required where the spec names one (CASME II, SAMM, ...), optional
        for SMIC (its third-party apex sheet), refused where labels come from elsewhere (CK+).

    Raises
    ------
    OptionError
        Unknown name or protocol, or a missing or unexpected sheet.
    DatasetFormatError
        From the reader.
    """
    spec = dataset_spec(name, _reads_one_root, "by load_dataset (it reads clips from one folder)")
    problem = spec.sheet_problem(sheet is not None)
    if problem is not None:
        raise OptionError(f"{name} {problem}" + ("; do not pass sheet" if sheet is not None
                                                 else ": pass sheet="))
    return spec.read(ReadRequest(Path(root), protocol, None if sheet is None else Path(sheet)))


__all__ = [
    "CASME2_EMOTIONS", "CKPLUS_PROTOCOLS", "DATASET_NAMES", "FEATURE_SETS", "PROTOCOLS",
    "SAMM_EMOTIONS", "AnnotationWarning", "DatasetSpec", "HandcraftedSet", "PrecomputedSet",
    "ReadRequest", "ckplus_subject_folds", "dataset_names", "dataset_spec", "dataset_specs",
    "load_dataset", "register_dataset", "read_casme2", "read_ckplus", "read_handcrafted",
    "read_megc2019", "read_megc2019_gt", "read_precomputed", "read_samm", "read_smic",
    "read_smic_hs_e_sheet",
]
