"""Per-clip work over a pool of processes: one failing clip never stops the others.

``fervid prepare flow`` and ``fervid prepare faces`` both run one function per clip; this runs
it in this process (``workers == 1``) or in spawned worker processes, and returns each clip's
result or a one-line error message.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import cv2

from fervid.errors import FervidError
from fervid.files import atomic_write_bytes


class OutputFolderError(FervidError, ValueError):
    """The output folder cannot take this run's outputs (made with other settings, or it is
    the input folder itself); the message names it."""


def init_worker() -> None:
    # One OpenCV thread per process: the processes already use every core.
    cv2.setNumThreads(1)


def describe_error(err: BaseException) -> str:
    """A clip's failure as one line for the summary."""
    if isinstance(err, BrokenProcessPool):
        return ("a worker process died (killed, out of memory, or started from a script without "
                "an `if __name__ == '__main__':` guard); re-run, or use workers=1 to see why")
    text = str(err) or type(err).__name__
    plain = isinstance(err, (FervidError, OSError, ValueError))
    return text if plain else f"{type(err).__name__}: {text}"


def map_clips(work: Callable[..., Any], jobs: Sequence[tuple[str, tuple]], *, workers: int,
              advance: Callable[[], None]) -> tuple[dict[str, Any], dict[str, str]]:
    """Call ``work(*args)`` for every ``(key, args)`` of ``jobs``.

    Returns ``(results, errors)``, both keyed by clip key; ``advance()`` is called once per
    finished clip. ``work`` and its arguments must be picklable when ``workers > 1``.
    """
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if workers == 1 or len(jobs) <= 1:
        for key, args in jobs:
            try:
                results[key] = work(*args)
            except Exception as err:  # one bad clip must not stop the others
                errors[key] = describe_error(err)
            advance()
        return results, errors
    # "spawn", not fork: a child forked after OpenCV started its thread pool deadlocks.
    pool = ProcessPoolExecutor(min(workers, len(jobs)), initializer=init_worker,
                               mp_context=multiprocessing.get_context("spawn"))
    try:
        futures: dict[Future, str] = {pool.submit(work, *args): key for key, args in jobs}
        for future in as_completed(futures):
            err = future.exception()
            if err is None:
                results[futures[future]] = future.result()
            else:
                errors[futures[future]] = describe_error(err)
            advance()
    except BaseException:
        # Ctrl-C: do not wait for the queued clips; finished outputs stay valid.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results, errors


def check_settings(path: Path, settings: dict, what: str) -> None:
    """Refuse to resume into a folder whose outputs (``what``: images, faces) were made with
    other settings; record ``settings`` at ``path`` otherwise.

    Raises :class:`OutputFolderError` naming the folder and the settings that differ, or
    ``path`` when it is not a settings file fervid wrote.
    """
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise OutputFolderError(f"{path}: not a readable settings file ({err}); use another "
                                    "--out folder or empty this one") from err
        if not isinstance(old, dict):
            raise OutputFolderError(f"{path}: not a settings file; use another --out folder "
                                    "or empty this one")
        diff = [k for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
        if diff:
            raise OutputFolderError(f"{path.parent} holds {what} made with other settings "
                                    f"({', '.join(diff)}: {[old.get(k) for k in diff]} there, "
                                    f"{[settings.get(k) for k in diff]} now); use another --out "
                                    "folder or empty this one")
        return
    atomic_write_bytes(path, (json.dumps(settings, indent=2) + "\n").encode())
