"""Folders written by ``fervid prepare faces``: what their settings file says about the faces.

Read by training (:func:`fervid.runs.checkpoint.input_spec_from_config`): a model trained on
faces prepared with ``--align register`` records it, so ``fervid predict`` registers the
frames of each window as well.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

#: The settings file ``fervid prepare faces`` writes at the top of its output folder.
PREPARED_SETTINGS = "prepare_faces.json"
#: How many folders above a frame file its prepared output's top may lie (CK+:
#: ``cohn-kanade-images/S052/001/frame.png``).
PREPARED_DEPTH = 5


def _prepared_align(folder: Path) -> str | None:
    """``align`` of the nearest ``prepare_faces.json`` at or above ``folder`` (None: none,
    or unreadable)."""
    for above in [folder, *folder.parents][:PREPARED_DEPTH]:
        settings = above / PREPARED_SETTINGS
        if settings.is_file():
            try:
                align = json.loads(settings.read_text(encoding="utf-8")).get("align")
            except (OSError, ValueError, AttributeError):
                return None
            return align if isinstance(align, str) else None
    return None


def prepared_with_registration(frames: Iterable[Path | str]) -> bool:
    """Whether every frame file given lies in a ``fervid prepare faces --align register``
    output (its nearest ``prepare_faces.json`` above says ``align: register``): faces whose
    frames were registered onto their clip's onset. False when none is given."""
    folders = {Path(f).parent for f in frames}  # a clip's frames share one folder
    aligns = {_prepared_align(Path(os.path.abspath(folder))) for folder in folders}
    return aligns == {"register"}
