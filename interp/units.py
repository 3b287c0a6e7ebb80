"""Unit names: `BLOCK:UNIT`, a hook point's dotted module path and a channel index."""

from __future__ import annotations

import re

from interp.errors import UsageError

_UNIT_ID = re.compile(r"(\S+):([0-9]+)")


def parse_unit_id(text: str) -> tuple[str, int]:
    """`layer3.2:417` -> ("layer3.2", 417); anything else is a UsageError saying the form."""
    match = _UNIT_ID.fullmatch(text)
    if match is None:
        raise UsageError(f"unit {text!r}: expected BLOCK:UNIT, e.g. layer3.2:417")
    return match[1], int(match[2])
