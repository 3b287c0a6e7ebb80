"""`stroop`, `stroop-white` and `words`: one word in one font colour on a uniform background.

Font, size and position are seeded per image; the size is capped so the word fits, and the
position keeps the measured ink box (never clipped) at least MARGIN pixels from the border.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from stimuli.base import StimulusSet
from stimuli.combos import stroop_combos, word_combos
from stimuli.fonts import font_names, get_font, ink_box, max_fitting_size
from stimuli.palette import COLOR_TERMS, PALETTE, color_index
from stimuli.rng import uniforms, uniforms_one

#: Font size (pixels) as a fraction of the image size: smallest and largest, before fitting.
SIZE_RANGE = (0.09, 0.25)
#: Smallest font size in pixels (unless the word would not fit: tiny images), for legibility.
MIN_SIZE = 10
#: Pixels kept free between the ink and the image border.
MARGIN = 2

#: Short common English words with no colour meaning, lengths 3-6 like the colour terms.
NON_COLOR_WORDS: tuple[str, ...] = (
    "house", "table", "dog", "music", "paper", "chair",
    "river", "book", "window", "clock", "horse",
)

_COLORS = tuple(tuple(int(v) for v in rgb) for rgb in PALETTE)


def _per_key(fn: Callable[..., int | tuple[int, ...]], *keys: np.ndarray) -> np.ndarray:
    """fn(*key) for each row of the (non-negative int) key columns, once per distinct key."""
    dims = tuple(int(c.max()) + 1 for c in keys)
    distinct, inverse = np.unique(np.ravel_multi_index(keys, dims), return_inverse=True)
    columns = np.unravel_index(distinct, dims)
    values = np.array([fn(*k) for k in zip(*(c.tolist() for c in columns), strict=True)],
                      dtype=np.int64)
    return values[inverse]


@cache
def _rows(cls: type[TextSet]) -> list[tuple[int, int, int]]:
    """The combination table of a set class as Python tuples (fast indexing per image)."""
    return [tuple(r) for r in cls.combos.tolist()]


class TextSet(StimulusSet):
    """Shared rendering of the word sets; subclasses fix the words and the combination table."""

    words: tuple[str, ...] = ()
    combos: np.ndarray = np.zeros((0, 3), dtype=np.int64)

    @property
    def n_combos(self) -> int:
        return len(self.combos)

    @property
    def label_names(self) -> dict[str, tuple[str, ...]]:  # type: ignore[override]
        return {"word": self.words, "font_color": COLOR_TERMS, "bg_color": COLOR_TERMS,
                "font": font_names()}

    def spec(self) -> dict:
        return {**super().spec(), "words": list(self.words), "fonts": list(font_names())}

    def size_range(self) -> tuple[int, int]:
        lo = max(MIN_SIZE, round(SIZE_RANGE[0] * self.image_size))
        return lo, max(lo, round(SIZE_RANGE[1] * self.image_size))

    def _params(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """Labels plus the ink box and its top-left corner, for every image index."""
        combo, _ = self.split(index)
        word, font_color, bg = self.combos[combo].T
        u = uniforms(self.seed, self.name, index, 4)
        n_fonts = len(font_names())
        font = np.minimum((u[:, 0] * n_fonts).astype(np.int64), n_fonts - 1)
        lo, hi = self.size_range()
        room = self.image_size - 2 * MARGIN
        top = _per_key(lambda f, w: max_fitting_size(f, self.words[w], hi, room), font, word)
        size = np.minimum(top, np.where(top < lo, top, lo + (u[:, 1] * (top - lo + 1)).astype(
            np.int64)))
        boxes = _per_key(lambda f, w, s: ink_box(f, self.words[w], s), font, word, size)
        width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        x0 = MARGIN + (u[:, 2] * (room - width + 1)).astype(np.int64)
        y0 = MARGIN + (u[:, 3] * (room - height + 1)).astype(np.int64)
        return {"word": word, "font_color": font_color, "bg_color": bg, "font": font,
                "size": size, "x0": x0, "y0": y0, "left": boxes[:, 0], "top": boxes[:, 1],
                "width": width, "height": height}

    def _labels(self, index: np.ndarray) -> dict[str, np.ndarray]:
        p = self._params(index)
        out = {k: p[k].astype(np.int32) for k in ("word", "font_color", "bg_color", "font")}
        out["size"] = p["size"].astype(np.float32)
        out["x"] = (p["x0"] + p["width"] / 2).astype(np.float32)
        out["y"] = (p["y0"] + p["height"] / 2).astype(np.float32)
        return out

    def _params_one(self, i: int) -> dict[str, int]:
        """_params for one index in plain Python (render speed); tests hold the two equal."""
        word, font_color, bg = _rows(type(self))[i % self.n_combos]
        u = uniforms_one(self.seed, self.name, i, 4)
        n_fonts = len(font_names())
        font = min(int(u[0] * n_fonts), n_fonts - 1)
        lo, hi = self.size_range()
        room = self.image_size - 2 * MARGIN
        text = self.words[word]
        top = max_fitting_size(font, text, hi, room)
        size = top if top < lo else min(top, lo + int(u[1] * (top - lo + 1)))
        left, top_y, right, bottom = ink_box(font, text, size)
        width, height = right - left, bottom - top_y
        return {"word": word, "font_color": font_color, "bg_color": bg, "font": font,
                "size": size, "x0": MARGIN + int(u[2] * (room - width + 1)),
                "y0": MARGIN + int(u[3] * (room - height + 1)), "left": left, "top": top_y,
                "width": width, "height": height}

    def _render(self, i: int) -> np.ndarray:
        p = self._params_one(i)
        img = Image.new("RGB", (self.image_size, self.image_size), _COLORS[p["bg_color"]])
        origin = (p["x0"] - p["left"], p["y0"] - p["top"])
        ImageDraw.Draw(img).text(origin, self.words[p["word"]], fill=_COLORS[p["font_color"]],
                                 font=get_font(p["font"], p["size"]))
        return np.array(img)


class StroopSet(TextSet):
    """11 colour words x 10 font colours (!= word) x 9 backgrounds (!= word, != font)."""

    name = "stroop"
    words = COLOR_TERMS
    combos = stroop_combos()


class WordsSet(TextSet):
    """Non-colour words x 11 font colours x 10 backgrounds (!= font): the 'any word' control."""

    name = "words"
    words = NON_COLOR_WORDS
    combos = word_combos(len(NON_COLOR_WORDS))


_WHITE = color_index("white")
_STROOP_POS = {tuple(row): k for k, row in enumerate(StroopSet.combos.tolist())}
_WHITE_ROWS = stroop_combos(backgrounds=(_WHITE,))
#: Position in StroopSet.combos of each white-background combination, in stroop-white order.
_WHITE_IN_STROOP = np.array([_STROOP_POS[tuple(r)] for r in _WHITE_ROWS.tolist()], dtype=np.int64)


class StroopWhiteSet(StroopSet):
    """The white-background subset of `stroop` (experiment 4): the very same images.

    Image i is stroop image (its combination's place in stroop) + sample * stroop's n_combos.
    """

    name = "stroop-white"
    combos = _WHITE_ROWS

    def stroop_index(self, index: np.ndarray) -> np.ndarray:
        """Index in `stroop` (same seed and size) of each stroop-white image index."""
        combo, sample = self.split(index)
        return _WHITE_IN_STROOP[combo] + sample * len(StroopSet.combos)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._stroop = StroopSet(samples_per_combo=self.samples_per_combo,
                                 image_size=self.image_size, seed=self.seed)

    def _params(self, index: np.ndarray) -> dict[str, np.ndarray]:
        return self._stroop._params(self.stroop_index(index))

    def _params_one(self, i: int) -> dict[str, int]:
        sample, combo = divmod(i, self.n_combos)
        parent = int(_WHITE_IN_STROOP[combo]) + sample * len(StroopSet.combos)
        return self._stroop._params_one(parent)
