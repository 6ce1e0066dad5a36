"""What every command shares: the consoles and how errors end a command.

A :class:`~fervid.errors.FervidError` is a mistake the user can fix: one red line, exit 2
(``predict``: 3 for a video with no face). Anything else is a bug in fervid: :func:`main`
prints its traceback and a line asking for a report, and exits 1.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated

import typer
from rich.console import Console

from fervid.errors import FervidError

console = Console()
err = Console(stderr=True)

#: Errors the user can fix: printed as one clear message, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (FervidError,)
#: Exit status of a user error.
EXIT_USER_ERROR = 2
#: Exit status of a bug (an exception that is not a FervidError).
EXIT_BUG = 1


def fail(message: str, code: int = EXIT_USER_ERROR) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def run_app(app: typer.Typer, args: list[str] | None = None) -> None:
    """Run ``app``; an exception that is not a user error is shown as the bug it is."""
    try:
        app(args=args)
    except FervidError as e:  # raised outside a command's own handler
        err.print(f"[bold red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
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
