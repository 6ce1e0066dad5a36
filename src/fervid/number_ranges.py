"""Lists of numbers as users type them on the command line: ``1,5,10-12``."""

from __future__ import annotations

import re

from fervid.errors import OptionError

_PART = re.compile(r"(\d+)(?:\s*-\s*(\d+))?")


def parse_ranges(spec: str, *, option: str) -> list[int]:
    """``'1,5,10-12'`` → ``[1, 5, 10, 11, 12]`` (sorted, each once).

    Raises :class:`~fervid.errors.OptionError` naming ``option`` (e.g. ``--folds``) and the
    part that is not ``N`` or ``A-B`` with ``A <= B``.
    """
    chosen: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        match = _PART.fullmatch(part)
        first = int(match.group(1)) if match else 0
        last = int(match.group(2) or first) if match else -1
        if last < first:
            raise OptionError(f"{option} {spec!r}: {part!r} is not N or A-B with A <= B "
                              "(e.g. 1,5,10-12)")
        chosen.update(range(first, last + 1))
    return sorted(chosen)
