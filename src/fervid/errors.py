"""The one base class of every error a user can fix.

``fervid.cli`` catches :class:`FervidError` only: it prints the message as one line and exits
with status 2. Any other exception is a bug in fervid and is shown with its traceback.
"""

from __future__ import annotations

from pathlib import Path


class FervidError(Exception):
    """An error the user can fix: the message names the file (row, field) and the problem."""


class UserPathError(FervidError):
    """A path the user gave cannot be read or written (missing, a folder, no permission)."""


class PathNotFoundError(UserPathError, FileNotFoundError):
    """A path the user gave does not exist, or is not the kind asked for (a file, a folder).

    Also a :class:`FileNotFoundError`, so ``except FileNotFoundError`` keeps catching it.
    """


class OptionError(FervidError, ValueError):
    """An option or argument the user chose has a value that is not valid (an unknown name,
    a count out of range); the message names the option and the valid values."""


def path_error(path: str | Path, err: OSError, what: str = "file") -> UserPathError:
    """An :class:`OSError` on a path the user gave, as a :class:`UserPathError` naming it
    (``what``: what the path was for, e.g. ``"config file"``); a missing path gives a
    :class:`PathNotFoundError`."""
    cls = PathNotFoundError if isinstance(err, FileNotFoundError) else UserPathError
    return cls(f"{path}: cannot use this {what}: {err.strerror or err}")


def library_reason(err: Exception) -> str:
    """One line of why a library call failed, for a message that names the file: the
    exception's type and its first line, or for ``torch.load`` its weights-only unpickler's
    reason (its first line only advises unsafe loading); at most 200 characters."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    reason = next((line for line in lines if line.startswith("WeightsUnpickler error")),
                  lines[0] if lines else "")
    return f"{type(err).__name__}: {reason}"[:200]
