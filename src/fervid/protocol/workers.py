"""Local worker processes for LOSO: disjoint fold shards trained side by side.

On a CPU, small per-fold models use cores better as several single-threaded processes than as
one multi-threaded one. Each worker trains its own shard of folds and writes its fold files
itself; progress comes back to the parent's rich display through a queue.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, wait

import torch

from fervid.progress import ProgressLike


class QueueProgress:
    """Progress calls of a worker, forwarded to the parent as messages."""

    def __init__(self, q, worker: int):
        self.q, self.worker, self.next_id = q, worker, 0

    def add_task(self, description: str, total: float | None = None, **fields) -> int:
        self.next_id += 1
        self.q.put(("add", self.worker, self.next_id, description, total, fields))
        return self.next_id

    def update(self, task: int, **kwargs) -> None:
        self.q.put(("update", self.worker, task, kwargs))

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def remove_task(self, task: int) -> None:
        self.q.put(("remove", self.worker, task))


class WorkerWarning(UserWarning):
    """A warning raised in a worker process, shown by the parent as its own."""


def _pump(q, progress: ProgressLike, tasks: dict) -> None:
    while True:
        try:
            msg = q.get_nowait()
        except queue_mod.Empty:
            return
        kind, worker, task = msg[0], msg[1], msg[2]
        if kind == "warn":
            # The parent shows it the way the command shows its own warnings (one line).
            warnings.warn(f"[w{worker}] {task}", WorkerWarning, stacklevel=2)
        elif kind == "add":
            _, _, _, description, total, fields = msg
            tasks[worker, task] = progress.add_task(f"[w{worker}] {description}", total=total,
                                                    **fields)
        elif kind == "update" and (worker, task) in tasks:
            progress.update(tasks[worker, task], **msg[3])
        elif kind == "remove" and (worker, task) in tasks:
            progress.remove_task(tasks.pop((worker, task)))


#: How often a worker checks that the run that started it is still alive, seconds.
PARENT_POLL_S = 1.0


def _exit_when_orphaned(parent: int) -> None:
    """Stop this worker once its parent is gone: a killed run must not leave workers training
    (and writing fold files) behind it, where a resumed run would write the same folds."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _run_worker(fn: Callable, shard: list[int], worker: int, threads: int, q,
                parent: int | None = None) -> None:
    if parent is not None:
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    torch.set_num_threads(threads)

    def forward(message, category, filename, lineno, file=None, line=None) -> None:
        q.put(("warn", worker, str(message)))

    warnings.showwarning = forward  # a spawned process: nothing else is affected
    fn(shard, QueueProgress(q, worker))


def run_in_workers(fn: Callable[[list[int], ProgressLike], object], shards: list[list[int]],
                   threads: int, progress: ProgressLike) -> None:
    """Call ``fn(shard, progress)`` for every shard, each in its own spawned process.

    ``fn`` must be picklable (a module-level function or a functools.partial of one).
    A worker's exception is raised here after the others have finished.
    """
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        q = manager.Queue()
        tasks: dict = {}
        with ProcessPoolExecutor(len(shards), mp_context=ctx) as pool:
            futures = [pool.submit(_run_worker, fn, shard, i, threads, q, os.getpid())
                       for i, shard in enumerate(shards)]
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.5)
                _pump(q, progress, tasks)
            _pump(q, progress, tasks)
            for f in futures:
                f.result()
