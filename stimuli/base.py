"""The StimulusSet contract shared by every set: length, spec, render by index, labels as arrays.

Image order: index i -> combination i % n_combos, sample i // n_combos, so the first N images
cover all combinations evenly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from stimuli.errors import UsageError

#: Bump when rendering changes, so that specs (and runs built on them) tell old from new images.
RENDER_VERSION = 1


class StimulusSet(ABC):
    """An index-addressable set of images and their labels; picklable, cheap to build."""

    name: str = ""
    label_names: dict[str, tuple[str, ...]] = {}

    def __init__(self, *, samples_per_combo: int = 500, image_size: int = 224, seed: int = 0,
                 limit: int | None = None) -> None:
        if samples_per_combo < 1:
            raise UsageError(f"--samples-per-combo must be at least 1, got {samples_per_combo}")
        if image_size < 32:
            raise UsageError(f"--image-size must be at least 32 pixels, got {image_size}")
        if limit is not None and limit < 1:
            raise UsageError(f"--limit must be at least 1, got {limit}")
        self.samples_per_combo = int(samples_per_combo)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.limit = None if limit is None else int(limit)

    @property
    @abstractmethod
    def n_combos(self) -> int:
        """Number of label combinations."""

    def full_length(self) -> int:
        """Number of images before --limit."""
        return self.n_combos * self.samples_per_combo

    def __len__(self) -> int:
        n = self.full_length()
        return n if self.limit is None else min(n, self.limit)

    def spec(self) -> dict:
        """JSON-able description; equal specs <=> identical images and labels."""
        return {"name": self.name, "version": RENDER_VERSION,
                "samples_per_combo": self.samples_per_combo, "image_size": self.image_size,
                "seed": self.seed, "limit": self.limit, "length": len(self)}

    def check_index(self, i: int) -> int:
        i = int(i)
        if not 0 <= i < len(self):
            raise IndexError(f"{self.name}: index {i} out of range [0, {len(self)})")
        return i

    def render(self, i: int) -> np.ndarray:
        """(H, W, 3) uint8 image number i: a pure function of (spec, i)."""
        return self._render(self.check_index(i))

    def labels(self) -> dict[str, np.ndarray]:
        """Every label kind as a 1-D array of length len(self), without rendering."""
        return self._labels(np.arange(len(self), dtype=np.int64))

    def report(self) -> dict:
        """Problems met while building the set (natural: skipped files); {} when none."""
        return {}

    def split(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(combination, sample) of each image index."""
        index = np.asarray(index, dtype=np.int64)
        return index % self.n_combos, index // self.n_combos

    @abstractmethod
    def _render(self, i: int) -> np.ndarray: ...

    @abstractmethod
    def _labels(self, index: np.ndarray) -> dict[str, np.ndarray]: ...
