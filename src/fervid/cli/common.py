"""What every command shares: the consoles, the global options, and how errors and warnings
end up on screen.

A :class:`~fervid.errors.FervidError` is a mistake the user can fix: one red line, exit 2
(``predict``: 3 for a video with no face). Anything else is a bug in fervid: :func:`main`
prints its traceback and a line asking for a report, and exits 1. A Python warning raised
during a command, or a warning fervid logs, is one ``warning:`` line on stderr
(:func:`warning_lines`), like an error.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from fervid.errors import FervidError, UserPathError

console = Console()
err = Console(stderr=True)

#: Errors the user can fix: printed as one clear message, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (FervidError,)
#: Exit status of a user error.
EXIT_USER_ERROR = 2
#: Exit status of a bug (an exception that is not a FervidError).
EXIT_BUG = 1


def one_line(message: object) -> str:
    """``message`` as one line: an error is one line of output, whatever its parts hold (a
    wrapped library message may span several)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def print_error(message: object) -> None:
    """Print a user error as the one red ``error:`` line (paths in it stay as written)."""
    err.print(f"[bold red]error:[/] {escape(one_line(message))}", markup=True, highlight=False,
              soft_wrap=True)


def print_warning(message: object) -> None:
    """Print a warning as one yellow ``warning:`` line on stderr."""
    err.print(f"[bold yellow]warning:[/] {escape(one_line(message))}", markup=True,
              highlight=False, soft_wrap=True)


#: Warnings printed in full per command; the rest are only counted.
MAX_WARNINGS = 10


class WarningLines:
    """A :func:`warnings.showwarning` that prints each warning as one ``warning:`` line (no
    source path, no code line), the first ``limit`` of them, none when ``quiet``, and counts
    the rest for :meth:`finish`."""

    def __init__(self, *, quiet: bool = False, limit: int = MAX_WARNINGS):
        self.quiet, self.limit = quiet, limit
        self.count = 0
        self._lock = threading.Lock()  # data loaders may warn from their threads

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:
        with self._lock:
            self.count += 1
            shown = not self.quiet and self.count <= self.limit
        if shown:
            print_warning(message)

    def finish(self) -> None:
        """Print the count of the warnings not shown, if any."""
        hidden = self.count if self.quiet else self.count - self.limit
        if hidden <= 0:
            return
        plural = "s" if hidden > 1 else ""
        if self.quiet:
            print_warning(f"{hidden} warning{plural} hidden (--quiet)")
        else:
            print_warning(f"{hidden} more warning{plural} (only the first {self.limit} are "
                          "shown)")


class _LogLines(logging.Handler):
    """fervid's own log warnings as :class:`WarningLines` too (errors as ``error:`` lines)."""

    def __init__(self, lines: WarningLines):
        super().__init__(logging.WARNING)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:  # a bad format string must not end the command
            self.handleError(record)
            return
        if record.levelno >= logging.ERROR:
            print_error(message)
        else:
            self.lines.show(message, UserWarning, record.pathname, record.lineno)


@contextlib.contextmanager
def warning_lines(*, quiet: bool = False, limit: int = MAX_WARNINGS) -> Iterator[WarningLines]:
    """Within the block, Python warnings and the warnings fervid logs are
    :class:`WarningLines`; on leaving it the count of those not shown is printed. The warning
    filters and handler, and fervid's log handlers, are restored after."""
    lines = WarningLines(quiet=quiet, limit=limit)
    handler = _LogLines(lines)
    logger = logging.getLogger("fervid")
    with warnings.catch_warnings():
        warnings.showwarning = lines.show
        logger.addHandler(handler)
        try:
            yield lines
        finally:
            logger.removeHandler(handler)
            lines.finish()


def _print_version(value: bool) -> None:
    if value:
        from fervid.runs.provenance import version_line

        console.print(version_line(), highlight=False, soft_wrap=True)
        raise typer.Exit()


def global_options(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print fervid's version (and git commit) and exit.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="Hide warnings; their count is still printed at the end.")] = False,
) -> None:
    # The root callback of the `fervid` app (`app.callback()(global_options)`): warnings
    # become one line each for the whole command, however the app is called.
    ctx.with_resource(warning_lines(quiet=quiet))


def fail(message: str, code: int = EXIT_USER_ERROR) -> typer.Exit:
    print_error(message)
    return typer.Exit(code)


def check_output_dir(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output folder that is a file or lies under one.

    Raises
    ------
    UserPathError
        Naming the path and the file in the way.
    """
    path = Path(path)
    blocker = _file_in_the_way(path)
    if blocker is not None:
        where = "is" if blocker == path else f"lies under {blocker}, which is"
        raise UserPathError(f"{path}: the output folder ({option}) {where} a file, "
                            "not a folder; choose another path")


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing path at or above ``folder``, when it is not a folder (a file,
    so nothing can be made under it); ``None`` when that path is a folder or nothing exists."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def run_app(app: typer.Typer, args: list[str] | None = None) -> None:
    """Run ``app``; an exception that is not a user error is shown as the bug it is."""
    try:
        app(args=args)
    except FervidError as e:  # raised outside a command's own handler
        print_error(e)
        sys.exit(EXIT_USER_ERROR)
    except Exception:
        traceback.print_exc()
        err.print("[bold red]This is a bug in fervid, not a mistake in your input:[/] please "
                  "report it with the traceback above and the command you ran.",
                  highlight=False, soft_wrap=True)
        sys.exit(EXIT_BUG)


#: The one override option of every command that takes a config.
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override any config field, e.g. --set train.lr=1e-4 (repeatable).")]


def config_overrides(set_: list[str] | None, **shortcuts) -> list[str]:
    """``--set`` items plus the command's shortcut options (``train.epochs=...``) that were
    given: ``config_overrides(set_, **{"train.epochs": epochs})``. Shortcuts win."""
    return list(set_ or []) + [f"{k}={v}" for k, v in shortcuts.items() if v is not None]


def check_output_file(path: Path, option: str) -> None:
    """Refuse, before any work, an output file that is a folder or lies under a file.

    Raises
    ------
    UserPathError
        Naming the path and, when one is in the way, the file above it.
    """
    path = Path(path)
    if path.is_dir():
        raise UserPathError(f"{path}: {option} names a folder; give a file name in it")
    blocker = _file_in_the_way(path.parent)
    if blocker is not None:
        raise UserPathError(f"{path}: {option} lies under {blocker}, which is a file, not a "
                            "folder; choose another path")
