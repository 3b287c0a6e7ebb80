"""`BLOCK:UNIT` parsing, on hand-made strings."""

import numpy as np
import pytest

from interp.errors import UsageError
from interp.extract import unit_maps
from interp.units import parse_unit_id


@pytest.mark.parametrize("text, expected", [
    ("layer3.2:417", ("layer3.2", 417)),
    ("layer1.0:0", ("layer1.0", 0)),
    ("features:007", ("features", 7)),
    ("visual.trunk.stages.3:12", ("visual.trunk.stages.3", 12)),
])
def test_parses_block_and_unit(text, expected):
    assert parse_unit_id(text) == expected


@pytest.mark.parametrize("text", ["layer3.2", "layer3.2:", ":417", "layer3.2:-1", "layer3.2:4a",
                                  "layer3.2: 417", "layer 3:1", "layer3.2:٣", ""])
def test_refuses_anything_else_with_the_expected_form(text):
    with pytest.raises(UsageError, match=r"expected BLOCK:UNIT, e\.g\. layer3\.2:417"):
        parse_unit_id(text)


@pytest.mark.parametrize("unit, message", [("layer1.0", "expected BLOCK:UNIT"),
                                           ("layer9.9:1", "unknown block 'layer9.9'")])
def test_unit_maps_refuses_bad_unit_ids(tiny_loaded, unit, message):
    with pytest.raises(UsageError, match=message):
        unit_maps(tiny_loaded, np.zeros((1, 64, 64, 3), np.uint8), [unit])


def test_unit_maps_refuses_a_unit_beyond_the_block(tiny_loaded):
    block = next(iter(tiny_loaded.blocks))
    n = tiny_loaded.map_shapes[block][0]
    with pytest.raises(UsageError, match=f"{block} has {n} units"):
        unit_maps(tiny_loaded, np.zeros((1, 64, 64, 3), np.uint8), [f"{block}:{n}"])
