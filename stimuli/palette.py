"""The eleven basic colour terms (Berlin & Kay) and their fixed RGB values: the one place they live.

Label arrays store a colour as its index into COLOR_TERMS.
"""

from __future__ import annotations

import numpy as np

COLOR_TERMS: tuple[str, ...] = (
    "white", "black", "grey", "red", "green", "blue",
    "yellow", "brown", "orange", "pink", "purple",
)

COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "brown": (150, 75, 0),
    "orange": (255, 165, 0),
    "pink": (255, 192, 203),
    "purple": (128, 0, 128),
}

ACHROMATIC: frozenset[str] = frozenset({"white", "black", "grey"})
CHROMATIC: frozenset[str] = frozenset(COLOR_TERMS) - ACHROMATIC

#: (11, 3) uint8 array of the palette, rows in COLOR_TERMS order.
PALETTE = np.array([COLOR_RGB[c] for c in COLOR_TERMS], dtype=np.uint8)

#: (11,) bool array, True where the colour term is achromatic.
IS_ACHROMATIC = np.array([c in ACHROMATIC for c in COLOR_TERMS])


def color_index(name: str) -> int:
    """Index of a colour term in COLOR_TERMS ('gray' is accepted for 'grey')."""
    name = "grey" if name == "gray" else name
    return COLOR_TERMS.index(name)
