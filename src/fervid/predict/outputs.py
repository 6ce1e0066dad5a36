"""What ``fervid predict`` writes: the probabilities as JSON, a timeline picture, an annotated
video with the face box and the current label, and (frame models) per-frame probabilities as
CSV."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import av
import cv2
import matplotlib
import numpy as np
import pandas as pd

from fervid.files import TMP_MARK, atomic_write, atomic_write_bytes

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402


def write_predictions_json(path: Path, payload: dict) -> None:
    atomic_write_bytes(path, json.dumps(payload, indent=2).encode())


def write_frame_probs_csv(path: Path, times: np.ndarray, frame_probs: np.ndarray,
                          classes: Sequence[str]) -> None:
    """One row per frame: ``frame, time_s, face`` (1 or 0), ``label`` and one probability
    column per class (empty on frames without a face).

    ``times`` ``(T,)`` seconds, ``frame_probs`` ``(T, K)`` with NaN rows where no face.
    """
    table = _frame_probs_table(np.arange(len(times)), times, frame_probs, classes)
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def _frame_probs_table(frames: np.ndarray, times: np.ndarray, frame_probs: np.ndarray,
                       classes: Sequence[str]) -> pd.DataFrame:
    face = np.isfinite(frame_probs).all(axis=1)
    table = pd.DataFrame({"frame": frames, "time_s": np.round(times, 4),
                          "face": face.astype(int)})
    labels = np.array(classes, dtype=object)[np.nan_to_num(frame_probs, nan=-1).argmax(axis=1)]
    table["label"] = np.where(face, labels, None)
    for k, name in enumerate(classes):
        table[name] = frame_probs[:, k].round(6)
    return table


class FrameProbsWriter:
    """``frame_probs.csv`` (:func:`write_frame_probs_csv`'s rows) written as frames are
    classified, into a temporary file moved into place by :meth:`commit`: a long video's
    rows never wait in memory, and a run that fails leaves any earlier file as it was.

    Use as a context manager: leaving it without :meth:`commit` removes the temporary file.
    """

    def __init__(self, path: Path, fps: float, classes: Sequence[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}{TMP_MARK}{os.getpid()}")
        self._file = self._tmp.open("w", newline="")
        self._fps, self._classes = fps, list(classes)
        self.rows = 0

    def write(self, frame_probs: np.ndarray) -> None:
        """The next ``len(frame_probs)`` frames' rows (``(N, K)``, NaN rows: no face)."""
        if not len(frame_probs):
            return
        frames = np.arange(self.rows, self.rows + len(frame_probs))
        table = _frame_probs_table(frames, frames / self._fps, frame_probs, self._classes)
        table.to_csv(self._file, index=False, header=self.rows == 0)
        self.rows += len(frame_probs)

    def commit(self) -> None:
        if self.rows == 0:  # the header alone
            _frame_probs_table(np.zeros(0, int), np.zeros(0), np.zeros((0, len(self._classes))),
                               self._classes).to_csv(self._file, index=False)
        self._file.close()
        os.replace(self._tmp, self.path)

    def close(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> FrameProbsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_timeline(path: Path, starts: np.ndarray, ends: np.ndarray, probs: np.ndarray,
                   classes: Sequence[str], title: str, *, frame_times: np.ndarray | None = None,
                   frame_probs: np.ndarray | None = None, threshold: float | None = None
                   ) -> None:
    """Each class's probability at the centre of every window, over time in seconds; with
    ``frame_probs`` ``(T, K)`` (NaN: no face) at ``frame_times`` ``(T,)``, each frame's too,
    as thin lines under the windows'; with ``threshold`` (AU models), a dashed line where a
    class starts to count as present."""
    centres = (np.asarray(starts) + np.asarray(ends)) / 2
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=100)
    for k, name in enumerate(classes):
        if frame_probs is not None:
            ax.plot(frame_times, frame_probs[:, k], color=f"C{k}", linewidth=0.7, alpha=0.35)
        # Past the ten colours of the cycle (12 AUs), the line style tells classes apart.
        ax.plot(centres, probs[:, k], color=f"C{k}", linestyle="-" if k < 10 else ":",
                marker="o" if len(centres) < 30 else None, label=name)
    ax.set_xlabel("time (s, window centre)" if frame_probs is None
                  else "time (s): windows at their centre, thin lines per frame")
    ax.set_ylabel("probability")
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def write_annotated_video(path: Path, frames: Iterable[np.ndarray], fps: float,
                          boxes: np.ndarray, labels: Sequence[str | None]) -> None:
    """Re-encode ``frames`` (RGB) with the face box and the frame's label drawn on them.

    ``boxes`` ``(T, 4)`` (NaN rows: no face), ``labels`` one text per frame (None: none).
    H.264 when the FFmpeg build has it, else MPEG-4 part 2.
    """
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"

    def encode(tmp: Path) -> None:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = None
            for index, frame in enumerate(frames):
                if stream is None:
                    stream = container.add_stream(codec, rate=round(fps) or 30)
                    # Encoders want even sides; crop the odd last row / column if any.
                    stream.height, stream.width = (frame.shape[0] // 2 * 2,
                                                   frame.shape[1] // 2 * 2)
                    stream.pix_fmt = "yuv420p"
                image = np.ascontiguousarray(frame[:stream.height, :stream.width])
                if index < len(boxes) and np.isfinite(boxes[index]).all():
                    _draw(image, boxes[index], labels[index] if index < len(labels) else None)
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            if stream is not None:
                for packet in stream.encode():
                    container.mux(packet)

    atomic_write(path, encode)


def _draw(image: np.ndarray, box: np.ndarray, label: str | None) -> None:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    cv2.rectangle(image, (x0, y0), (x1, y1), (0, 255, 0), 2)
    if label:
        cv2.putText(image, label, (x0, max(y0 - 8, 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 255, 0), 2, cv2.LINE_AA)
