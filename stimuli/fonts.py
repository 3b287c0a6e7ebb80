"""The TrueType text fonts that ship with matplotlib, and cached measurements of words in them.

Fonts are loaded lazily and cached per process (DataLoader workers build their own caches), with
Pillow's basic layout engine so that glyph placement is the same wherever raqm is installed or not.
"""

from __future__ import annotations

import string
from functools import cache, lru_cache
from pathlib import Path

import matplotlib
from PIL import ImageFont

_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
_LETTERS = string.ascii_lowercase
_X_HEIGHT = "acemnorsuvwxz"
_ASCENDERS = "bdhkl"


def _looks_like_text(font: ImageFont.FreeTypeFont, size: int) -> bool:
    """True when a-z render as distinct letters on a common x-height with taller ascenders.

    Rules out symbol fonts that map ASCII to other glyphs (cmsy10, cmex10) and fonts without
    the letters (STIXSiz*, STIXNonUni*, *Display, LastResort).
    """
    masks = {bytes(font.getmask(c)) for c in _LETTERS}
    if len(masks) < len(_LETTERS):
        return False
    boxes = [font.getbbox(c) for c in _X_HEIGHT]
    tops, bottoms = [b[1] for b in boxes], [b[3] for b in boxes]
    asc_top = max(font.getbbox(c)[1] for c in _ASCENDERS)
    return (max(tops) - min(tops) <= 0.06 * size and max(bottoms) - min(bottoms) <= 0.15 * size
            and asc_top < min(tops) - 0.15 * size)


@cache
def text_fonts() -> tuple[Path, ...]:
    """Paths of matplotlib's bundled fonts that render every lowercase letter, sorted by name."""
    size = 100
    found = []
    for path in sorted(_FONT_DIR.glob("*.ttf")):
        font = ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)
        if _looks_like_text(font, size):
            found.append(path)
    return tuple(found)


@cache
def font_names() -> tuple[str, ...]:
    """Display names of text_fonts() (file stems, e.g. 'DejaVuSans-Bold')."""
    return tuple(p.stem for p in text_fonts())


@lru_cache(maxsize=4096)
def get_font(font_index: int, size: int) -> ImageFont.FreeTypeFont:
    """The font number font_index of text_fonts() at an integer pixel size (cached)."""
    return ImageFont.truetype(str(text_fonts()[font_index]), size,
                              layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=65536)
def ink_box(font_index: int, word: str, size: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the word's ink relative to the drawing origin."""
    return get_font(font_index, size).getbbox(word)


@lru_cache(maxsize=4096)
def max_fitting_size(font_index: int, word: str, largest: int, room: int) -> int:
    """Largest integer size <= largest at which the word's ink fits in a room x room square."""
    size = largest
    while size > 1:
        left, top, right, bottom = ink_box(font_index, word, size)
        if right - left <= room and bottom - top <= room:
            return size
        size -= 1
    return 1
