"""Procedural, index-addressable stimulus sets and their labels.

`get_set(name, ...)` builds one; see docs/architecture.md for the StimulusSet contract.
"""

from __future__ import annotations

from pathlib import Path

from stimuli.base import StimulusSet
from stimuli.errors import UsageError

SET_NAMES = ("shapes", "stroop", "stroop-white", "words", "natural")

__all__ = ["SET_NAMES", "StimulusSet", "get_set"]


def get_set(name: str, *, samples_per_combo: int = 500, image_size: int = 224, seed: int = 0,
            limit: int | None = None, natural_dir: str | Path | None = None) -> StimulusSet:
    """Build the stimulus set `name`; unknown names are a UsageError listing the valid ones."""
    from stimuli.natural import NaturalSet
    from stimuli.shapes import ShapesSet
    from stimuli.text import StroopSet, StroopWhiteSet, WordsSet

    classes = {"shapes": ShapesSet, "stroop": StroopSet, "stroop-white": StroopWhiteSet,
               "words": WordsSet, "natural": NaturalSet}
    if name not in classes:
        raise UsageError(f"unknown stimulus set {name!r}; choose from {', '.join(SET_NAMES)}")
    kwargs = dict(samples_per_combo=samples_per_combo, image_size=image_size, seed=seed,
                  limit=limit)
    if name == "natural":
        return NaturalSet(natural_dir=natural_dir, **kwargs)
    return classes[name](**kwargs)
