"""Which face a track follows: :func:`face_choice` names the rule that picks a track's first
face among several, :func:`pick_face` keeps following the same one frame to frame."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from fervid.errors import OptionError
from fervid.faces.detection import FaceBox, FaceDetection

#: Picks the face a track starts on from one frame's detections (never an empty list).
FaceChooser = Callable[[Sequence[FaceDetection]], FaceDetection]


def face_choice(rule: str) -> FaceChooser:
    """The function that picks a track's face from one frame's detections, by name.

    Parameters
    ----------
    rule
        ``largest``: the largest box; ``left:N``: the N-th face from the left (1: the leftmost;
        the rightmost when fewer are in view), by box centre; ``at:X,Y``: the face whose box
        centre is nearest the point (X, Y), in pixels of the full frame.

    Raises
    ------
    OptionError
        Any other rule (the message lists the valid forms).
    """
    text = rule.strip().lower()
    if text == "largest":
        return lambda faces: max(faces, key=lambda f: f.box.area)
    if match := re.fullmatch(r"left:(\d+)", text):
        n = int(match.group(1))
        if n >= 1:
            return lambda faces: sorted(faces, key=lambda f: f.box.center[0])[
                min(n, len(faces)) - 1]
    if match := re.fullmatch(r"at:(-?[\d.]+),(-?[\d.]+)", text):
        x, y = float(match.group(1)), float(match.group(2))
        return lambda faces: min(faces, key=lambda f: (f.box.center[0] - x) ** 2
                                 + (f.box.center[1] - y) ** 2)
    raise OptionError(f"unknown face choice {rule!r}: use 'largest', 'left:N' (N >= 1, the N-th "
                      "face from the left) or 'at:X,Y' (the face nearest pixel X, Y)")


def pick_face(faces: list[FaceDetection], previous: FaceBox | None, min_overlap: float,
          choose: FaceChooser) -> FaceDetection | None:
    """The face continuing ``previous`` (IoU >= ``min_overlap``), else ``choose``'s; None if
    none."""
    if not faces:
        return None
    if previous is not None:
        best = max(faces, key=lambda f: f.box.iou(previous))
        if best.box.iou(previous) >= min_overlap:
            return best
    return choose(faces)
