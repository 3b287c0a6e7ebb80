"""Label-combination tables, ordered so that any prefix of the combinations is well mixed."""

from __future__ import annotations

import math
from itertools import product

import numpy as np

N_COLORS = 11


def mixed_order(n: int) -> np.ndarray:
    """A permutation of range(n) by a golden-ratio stride: any prefix spreads over all rows."""
    stride = max(1, round(n * 0.6180339887))
    while math.gcd(stride, n) != 1:
        stride += 1
    return (np.arange(n, dtype=np.int64) * stride) % n


def table(rows: list[tuple[int, ...]]) -> np.ndarray:
    """(n_combos, k) int64 array of the rows in mixed order."""
    arr = np.array(rows, dtype=np.int64)
    return arr[mixed_order(len(arr))]


def shape_combos(n_shapes: int) -> np.ndarray:
    """(shape, bg_color, obj_color) with the object colour different from the background."""
    return table([(s, bg, obj) for s, bg, obj in product(range(n_shapes), range(N_COLORS),
                                                          range(N_COLORS)) if obj != bg])


def stroop_combos(backgrounds: tuple[int, ...] = tuple(range(N_COLORS))) -> np.ndarray:
    """(word, font_color, bg_color): font != word, background != word and != font."""
    return table([(w, f, b) for b, w, f in product(backgrounds, range(N_COLORS), range(N_COLORS))
                  if f != w and b != w and b != f])


def word_combos(n_words: int) -> np.ndarray:
    """(word, font_color, bg_color) for non-colour words: font != background."""
    return table([(w, f, b) for w, f, b in product(range(n_words), range(N_COLORS),
                                                    range(N_COLORS)) if f != b])
