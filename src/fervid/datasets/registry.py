"""One table of every dataset release: name → :class:`DatasetSpec`, in the spirit of
:mod:`fervid.models.registry`.

A reader file registers its release at its end, ``register_dataset(DatasetSpec(...))``: its
name (written there and nowhere else), its readers, the layouts and protocols it supports, its
class maps, how its subject ids look, and the hook ``fervid prepare faces`` lists its raw clips
with. Everything that used to choose a reader by name (:func:`fervid.datasets.load_dataset`,
:mod:`fervid.datasets.from_config`, :func:`fervid.prepare.raw_clips.find_clips`, config
validation, the CLI's choices) looks the name up here.

The table is complete whenever it is read: importing this module imports the
``fervid.datasets`` package first, which imports every reader file. A reader of your own
registers the same way, from a module named in ``$FERVID_DATASETS`` (see
:func:`load_dataset_plugins`), loaded on the first lookup.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fervid.config import register_name_source
from fervid.errors import OptionError
from fervid.samples import SampleTable

#: What a release supports; ``DatasetSpec.layouts`` and ``DatasetSpec.protocols`` use these.
LAYOUTS = ("raw", "cropped", "precomputed", "handcrafted", "video", "images", "csv")
PROTOCOLS = ("loso", "kfold", "holdout", "spotting")

#: The environment variable naming reader modules to load: Python files or importable module
#: names, separated by ``os.pathsep`` (``:`` on Linux and macOS).
PLUGIN_ENV = "FERVID_DATASETS"


class UnknownDatasetError(OptionError):
    """A dataset name nothing is registered under, or one that cannot serve the request."""


@dataclass(frozen=True)
class ReadRequest:
    """What a clip reader is asked for: the release at ``root``, under class ``protocol``.

    ``sheet`` is the coding sheet (given only to a release whose spec names one); ``paths`` are
    the parts of a composite release (``DatasetSpec.parts``), already resolved under ``root``.
    ``skip_missing``: leave out the clips whose folders or frames are missing or damaged,
    listed in the table's ``skipped``, instead of raising (``--skip-missing``,
    ``data.skip_missing``; :func:`fervid.datasets.frames.release_table`).
    """

    root: Path
    protocol: str
    sheet: Path | None = None
    paths: Mapping[str, Path] = field(default_factory=dict)
    skip_missing: bool = False


@dataclass(frozen=True)
class PrepareHook:
    """How ``fervid prepare faces`` finds a raw release's clips.

    ``find(root, out_dir, clips)`` returns one :class:`~fervid.datasets.clip_jobs.ClipJob` per
    clip (None for a folder without frames); ``clips`` (clip numbers) is passed only when
    ``takes_clip_numbers``. ``expects`` describes the layout, for the "no clips found" error.

    ``align`` is the release's default alignment (``clip``, ``onset`` or ``frame``; see
    :class:`fervid.prepare.faces.FaceSettings`); ``grey``: its frames are grey, and a crop whose
    three channels are equal is written as one; ``copies``: folders of the release copied next
    to the faces as they are (label files its reader needs).
    """

    find: Callable[..., list]
    expects: str
    takes_clip_numbers: bool = False
    align: str = "clip"
    grey: bool = False
    copies: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    """One release.

    Attributes
    ----------
    name : str
        The name configs and the CLI use (``data.dataset``, ``--dataset``).
    subject : str
        How the reader writes a subject id (``'sub01'``), or ``''`` when the release names
        none (one face per sample). LOSO needs it.
    layouts : tuple of str
        The on-disk forms fervid reads or prepares (see :data:`LAYOUTS`).
    protocols : tuple of str
        The evaluation protocols it runs under (see :data:`PROTOCOLS`).
    read : callable, optional
        ``read(ReadRequest) -> SampleTable``: its clips (LOSO, ``fervid prepare flow``).
    read_faces : callable, optional
        ``read_faces(root) -> FaceImageSet``: its still faces (``fervid fit``).
    read_splits : callable, optional
        ``read_splits(root, **options)``: its own k folds (``fervid kfold``).
    read_intervals : callable, optional
        ``read_intervals(ReadRequest) -> IntervalRelease``: its long videos and their coded
        expression intervals (spotting; :mod:`fervid.datasets.long_videos`).
    classes : mapping
        Class protocol (``'5class'``) → class names in label order, where it has named ones.
    sheet : str, optional
        The file name of the coding sheet ``read`` needs; None: it has none and refuses one.
    sheet_optional : bool
        ``sheet`` may be left out (SMIC's third-party apex sheet): ``read`` gets None then.
    labels_from : str
        Where its labels come from when it has no sheet (for the error refusing one).
    parts : tuple of str
        A composite release: the ``data.paths`` keys naming its parts under ``--data-root``.
    open_parts : bool
        A composite whose parts are whatever ``data.paths`` names
        (:mod:`fervid.datasets.composite`): every key reaches ``read``.
    prepare : PrepareHook, optional
        How ``fervid prepare faces`` lists its raw clips.
    fps : float
        Frame rate of the release (0: unknown or per video).
    face_points : numpy.ndarray, optional
        How its still faces are framed: ``(5, 2)`` eye centres, nose tip and mouth corners
        (image-left first) of its mean face, in unit image coordinates. Video faces for a frame
        model trained on it are warped onto these (:mod:`fervid.predict.frames`); None: onto
        the 5-point template, as ``fervid prepare faces`` crops.
    default_for : tuple of str
        The protocols whose configs read it when they name no dataset (``fervid fit``: one).
    """

    name: str
    subject: str
    layouts: tuple[str, ...]
    protocols: tuple[str, ...]
    read: Callable[[ReadRequest], SampleTable] | None = None
    read_faces: Callable[[Path], Any] | None = None
    read_splits: Callable[..., Any] | None = None
    read_intervals: Callable[[ReadRequest], Any] | None = None
    classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sheet: str | None = None
    sheet_optional: bool = False
    labels_from: str = ""
    parts: tuple[str, ...] = ()
    open_parts: bool = False
    prepare: PrepareHook | None = None
    fps: float = 0.0
    face_points: Any = field(default=None, compare=False)  # an array: left out of ==
    default_for: tuple[str, ...] = ()

    def __post_init__(self):
        # A spec is a value: its class map cannot be changed through it.
        object.__setattr__(self, "classes", MappingProxyType(dict(self.classes)))
        bad = [x for x in self.layouts if x not in LAYOUTS] + [
            x for x in self.protocols if x not in PROTOCOLS]
        if bad:
            raise ValueError(f"dataset {self.name!r}: unknown layout or protocol {bad}; "
                             f"layouts {LAYOUTS}, protocols {PROTOCOLS}")
        if (self.read is None and self.read_faces is None and self.read_splits is None
                and self.read_intervals is None):
            raise ValueError(f"dataset {self.name!r} registers no reader")

    def sheet_problem(self, given: bool) -> str | None:
        """What is wrong with giving (``given``) or not giving a coding sheet for this release:
        ``"has no coding sheet (...)"``, ``"needs its coding sheet (...)"``, or None. Each
        interface adds its own remedy (an argument, a config key)."""
        if self.sheet is None and given and not self.is_composite:
            return f"has no coding sheet (labels come from {self.labels_from or 'its files'})"
        if self.sheet is not None and not given and not self.sheet_optional:
            return f"needs its coding sheet ({self.sheet})"
        return None

    @property
    def is_composite(self) -> bool:
        """Read from several releases named in ``data.paths``."""
        return bool(self.parts) or self.open_parts

    @property
    def reads_one_root(self) -> bool:
        """Clips read from one folder (and maybe a sheet): what :func:`load_dataset` takes."""
        return self.read is not None and not self.is_composite


_SPECS: dict[str, DatasetSpec] = {}
_LOADED_PLUGINS: set[str] = set()


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the table (once per name) and return it."""
    if spec.name in _SPECS:
        raise ValueError(f"dataset {spec.name!r} is registered twice")
    _SPECS[spec.name] = spec
    return spec


def load_dataset_plugins() -> None:
    """Import the reader modules ``$FERVID_DATASETS`` names (each once): paths of Python files
    or importable module names, separated by ``os.pathsep``. Each registers its datasets.

    Raises
    ------
    OptionError
        A named file does not exist, or a module cannot be imported.
    """
    for entry in filter(None, os.environ.get(PLUGIN_ENV, "").split(os.pathsep)):
        if entry in _LOADED_PLUGINS:
            continue
        _LOADED_PLUGINS.add(entry)
        try:
            if entry.endswith(".py") or os.sep in entry:
                path = Path(entry)
                if not path.is_file():
                    raise OptionError(f"{PLUGIN_ENV}: reader file {path} not found")
                name = f"fervid_dataset_plugin_{path.stem}"
                module_spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[name] = module
                module_spec.loader.exec_module(module)
            else:
                importlib.import_module(entry)
        except ImportError as e:
            _LOADED_PLUGINS.discard(entry)
            raise OptionError(f"{PLUGIN_ENV}: cannot import {entry!r}: {e}") from None
        except OptionError:
            _LOADED_PLUGINS.discard(entry)
            raise


def dataset_specs(*, load_plugins: bool = True) -> list[DatasetSpec]:
    """Every registered release, in registration order (after loading ``$FERVID_DATASETS``
    unless ``load_plugins`` is False)."""
    if load_plugins:
        load_dataset_plugins()
    return list(_SPECS.values())


def dataset_names(protocol: str | None = None) -> list[str]:
    """The registered names, in registration order; with ``protocol``, those supporting it."""
    return [s.name for s in dataset_specs() if protocol is None or protocol in s.protocols]


def dataset_spec(name: str, usable: Callable[[DatasetSpec], bool] | None = None,
                 purpose: str = "") -> DatasetSpec:
    """The spec registered under ``name``.

    ``usable`` narrows the names valid here (e.g. those with a clip reader); ``purpose`` says
    for what, in the error.

    Raises
    ------
    UnknownDatasetError
        An unknown name, or one ``usable`` refuses; one line naming it and the valid names.
    """
    specs = dataset_specs()
    valid = [s.name for s in specs if usable is None or usable(s)]
    spec = _SPECS.get(name)
    if spec is not None and name in valid:
        return spec
    what = f"unknown dataset {name!r}" if spec is None else f"dataset {name!r} cannot be used " \
                                                          f"{purpose or 'here'}"
    raise UnknownDatasetError(f"{what}; valid names: {', '.join(valid)}")


def default_dataset(protocol: str) -> str | None:
    """The dataset a ``protocol`` config reads when it names none (``default_for``)."""
    return next((s.name for s in dataset_specs() if protocol in s.default_for), None)


# Config validation comes before this stage and cannot import it: it asks the table through
# the lookup installed here (see fervid.config.register_name_source).
register_name_source("dataset", dataset_names, default_dataset)
