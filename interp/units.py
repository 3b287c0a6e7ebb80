"""Unit names: `BLOCK:UNIT`, a hook point's dotted module path and a channel index."""

from __future__ import annotations

import re
from collections.abc import Mapping

from interp.errors import UsageError

_UNIT_ID = re.compile(r"(\S+):([0-9]+)")


def parse_unit_id(text: str) -> tuple[str, int]:
    """`layer3.2:417` -> ("layer3.2", 417); anything else is a UsageError saying the form."""
    match = _UNIT_ID.fullmatch(text)
    if match is None:
        raise UsageError(f"unit {text!r}: expected BLOCK:UNIT, e.g. layer3.2:417")
    return match[1], int(match[2])


def model_unit(text: str, units_per_block: Mapping[str, int]) -> tuple[str, int]:
    """`parse_unit_id`, checked against a model's hooked blocks and their unit counts
    (`models.unit_counts(loaded)`)."""
    block, unit = parse_unit_id(text)
    if block not in units_per_block:
        raise UsageError(f"unit {text!r}: unknown block {block!r}; blocks: "
                         f"{', '.join(units_per_block)}")
    if unit >= units_per_block[block]:
        raise UsageError(f"unit {text!r}: {block} has {units_per_block[block]} units")
    return block, unit
