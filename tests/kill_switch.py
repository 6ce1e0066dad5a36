"""Run a ``fervid`` command in a child process that SIGKILLs itself at its N-th file event.

A *file event* is one step of putting a file on disk under the watched folder (the command's
output): closing a file opened for writing there (or a ``torch.save`` to a path there), an
``os.replace`` / ``os.rename`` into or out of it, or an ``os.unlink`` of a file there. The
child counts them and, at event N, dies by SIGKILL: no ``finally`` block, no ``atexit``, as
under ``kill -9`` or the OOM killer. It dies *before* a rename or unlink happens, and *after*
a close, having cut the file to half the bytes written through that handle, as a write
interrupted between two system calls leaves it. Event counts are deterministic (the commands
run single-process here), so a seeded N is a reproducible "random moment".

Every event is journaled, one line each (``number, kind, path``, and ``KILL`` on the fatal
one), written before the kill, so a test can tell what each attempt did and did not do.

Children are forked from a ``forkserver`` that imported fervid, torch and OpenCV once (and
never ran a thread pool), so an attempt starts in milliseconds instead of seconds.
"""

from __future__ import annotations

import builtins
import io
import multiprocessing
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from fervid.files import TMP_MARK

#: Imported once by the fork server (not one of them runs any computation there).
PRELOAD = ["kill_switch", "torch", "cv2", "pandas", "lightning_fabric", "matplotlib.pyplot",
           "fervid.cli", "fervid.cli.fit", "fervid.cli.prepare", "fervid.protocol.loso",
           "fervid.protocol.kfold", "fervid.protocol.holdout", "fervid.prepare.faces",
           "fervid.prepare.flow", "fervid.datasets", "fervid.datasets.from_config",
           "fervid.report.loso", "fervid.report.kfold", "fervid.representation.video_clips"]
#: Written by a logger of its own, as often as it likes: not events.
UNCOUNTED = ("tensorboard",)


@dataclass(frozen=True)
class Event:
    number: int
    kind: str       # close, append, save, replace, rename, unlink
    path: str       # relative to the watched folder (for a move: its destination, else source)
    source: str     # a move's source ("" otherwise; "-" when outside the watched folder)
    killed: bool

    @property
    def in_place(self) -> bool:
        """A file written under its final name (no temporary name or folder on its path)."""
        return self.kind in ("close", "save", "append") and TMP_MARK not in self.path


class _Switch:
    def __init__(self, watch: Path, kill_at: int, journal: Path):
        self.watch = os.path.realpath(watch) + os.sep
        self.kill_at, self.count = kill_at, 0
        self.fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def rel(self, path) -> str | None:
        """``path`` relative to the watched folder, or None outside it (or uncounted)."""
        try:
            full = os.path.realpath(os.fspath(path))
        except TypeError:  # a file descriptor or a buffer
            return None
        if not full.startswith(self.watch):
            return None
        rel = full[len(self.watch):]
        return None if rel.split(os.sep, 1)[0] in UNCOUNTED else rel

    def event(self, kind: str, rel: str, source: str = "", before_death=None) -> None:
        self.count += 1
        fatal = self.count == self.kill_at
        os.write(self.fd, f"{self.count}\t{kind}\t{rel}\t{source}\t{'KILL' if fatal else ''}\n"
                 .encode())
        if fatal:
            if before_death is not None:
                before_death()
            os.kill(os.getpid(), signal.SIGKILL)

    def install(self) -> None:
        real_open, real_replace, real_rename = builtins.open, os.replace, os.rename
        real_unlink = os.unlink
        switch = self

        def watched_open(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            rel = switch.rel(file) if isinstance(file, (str, os.PathLike)) else None
            if rel is None or not any(c in mode for c in "wax+"):
                return f
            start = os.path.getsize(file) if "a" in mode else 0
            return _Watched(f, lambda: switch.event(
                "append" if "a" in mode else "close", rel,
                before_death=lambda: _cut_in_half(file, start)))

        def move(kind, real):
            def moved(src, dst, *args, **kwargs):
                rel_dst, rel_src = switch.rel(dst), switch.rel(src)
                if rel_dst is not None or rel_src is not None:
                    switch.event(kind, rel_dst if rel_dst is not None else "-",
                                 rel_src if rel_src is not None else "-")
                return real(src, dst, *args, **kwargs)
            return moved

        def unlink(path, *args, **kwargs):
            rel = switch.rel(path) if not kwargs.get("dir_fd") else None
            if rel is not None and os.path.lexists(path):
                switch.event("unlink", rel)
            return real_unlink(path, *args, **kwargs)

        builtins.open = io.open = watched_open
        os.replace, os.rename = move("replace", real_replace), move("rename", real_rename)
        os.unlink = os.remove = unlink

        import torch

        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            real_save(obj, f, *args, **kwargs)
            rel = switch.rel(f) if isinstance(f, (str, os.PathLike)) else None
            if rel is not None:
                switch.event("save", rel, before_death=lambda: _cut_in_half(f, 0))

        torch.save = save


def _cut_in_half(path, start: int) -> None:
    """Keep ``start`` bytes and half of what was written after them."""
    size = os.path.getsize(path)
    os.truncate(path, start + (size - start) // 2)


class _Watched:
    """A file object that reports its close."""

    def __init__(self, f, on_close):
        self._f, self._on_close = f, on_close

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __iter__(self):
        return iter(self._f)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if not self._f.closed:
            self._f.close()
            self._on_close()


def _child(argv: list[str], watch: str, kill_at: int, journal: str, log: str,
           env: dict[str, str]) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(env)
    import tempfile

    tempfile.tempdir = None  # the fork server may have settled it before TMPDIR was set
    import torch

    torch.set_num_threads(1)
    _Switch(Path(watch), kill_at, Path(journal)).install()
    from fervid.cli import app
    from fervid.cli.common import run_app

    run_app(app, argv)  # exits through SystemExit: the command's exit status


@dataclass(frozen=True)
class Attempt:
    """One run of a command: its exit status (-9: killed), its events and its output."""

    returncode: int
    events: list[Event]
    output: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


class Launcher:
    """Runs ``fervid`` commands in forked children; see the module docstring."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.runs = 0
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(PRELOAD)

    def run(self, argv: list[str], watch: Path, kill_at: int = 0, *,
            env: dict[str, str] | None = None, timeout: float = 120) -> Attempt:
        """Run ``fervid ARGV``, killed at its ``kill_at``-th event under ``watch`` (0: never)."""
        self.runs += 1
        journal, log = self.folder / f"{self.runs}.events", self.folder / f"{self.runs}.log"
        child = self.ctx.Process(target=_child, args=(
            [str(a) for a in argv], str(watch), kill_at, str(journal), str(log), env or {}))
        child.start()
        child.join(timeout)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise TimeoutError(f"fervid {' '.join(map(str, argv))} ran over {timeout} s")
        return Attempt(child.exitcode, read_journal(journal), log.read_text(errors="replace"))


def read_journal(path: Path) -> list[Event]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        number, kind, rel, source, mark = line.split("\t")
        events.append(Event(int(number), kind, rel, source, mark == "KILL"))
    return events
