"""One tiny real JPEG, for trees whose frames are hard links to it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def tiny_jpeg(path: Path) -> Path:
    """An 8×8 grey JPEG at ``path`` (kept outside the tree it is linked into)."""
    if not path.exists():
        cv2.imwrite(str(path), np.full((8, 8), 128, np.uint8))
    return path
