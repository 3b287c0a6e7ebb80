"""Colour-label selectivity (Eq. 1 of the paper) and its label-shuffle permutation test.

f_c(n) = sum of the top-N activations whose image has label c / sum of all top-N activations.
A label kind is given as one or more integer code arrays (images,): "colour present" is
[font, background], which never coincide in a Stroop image, so an image counts for both labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

Tops = Mapping[str, tuple[np.ndarray, np.ndarray]]  # block -> (top-N index, top-N value)


@dataclass
class Selectivity:
    """Per unit, for one label kind: best label, its f, the label's chance level, statistic."""

    best: np.ndarray  # (units,) label code with the largest standardised excess over chance
    f: np.ndarray  # (units,) Eq. 1 of that label
    chance: np.ndarray  # (units,) base rate of that label in the set
    stat: np.ndarray  # (units,) binomial z-score of f against chance


def base_rates(codes: Sequence[np.ndarray], n_labels: int) -> np.ndarray:
    """Chance level of each label: the fraction of the set's images that carry it."""
    n = codes[0].size
    return sum(np.bincount(c, minlength=n_labels) for c in codes) / n


def effective_n(weights: np.ndarray) -> np.ndarray:
    """(sum w)^2 / sum w^2 per unit: how many equally weighted images the top-N amounts to."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0, None)
    sq = (w * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sq > 0, w.sum(axis=1) ** 2 / sq, 0.0)


class _Block:
    """One block's top-N, prepared once for repeated Eq. 1 under shuffled labels."""

    def __init__(self, index: np.ndarray, value: np.ndarray, n_labels: int) -> None:
        self.index, self.n_labels = index, n_labels
        w = np.clip(np.asarray(value, dtype=np.float64), 0, None)
        self.total = w.sum(axis=1)
        self.w = w.ravel()
        self.offset = (np.arange(index.shape[0]) * n_labels).repeat(index.shape[1])
        self.n_eff = effective_n(w)

    def fractions(self, codes: Sequence[np.ndarray], rows: np.ndarray | None = None
                  ) -> np.ndarray:
        """(units, labels) Eq. 1; `rows` (units * N,) are the images whose labels each top-N
        entry takes (its own by default, shuffled ones in the permutation test)."""
        rows = self.index.ravel() if rows is None else rows
        n_units = self.index.shape[0]
        hits = sum(np.bincount(self.offset + c[rows], weights=self.w,
                               minlength=n_units * self.n_labels) for c in codes)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = hits.reshape(n_units, self.n_labels) / self.total[:, None]
        return np.where(self.total[:, None] > 0, f, 0.0)

    def best(self, f: np.ndarray, chance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best label per unit and its z-score (binomial, n_eff draws at the label's chance)."""
        spread = np.sqrt(np.clip(chance * (1 - chance), 1e-12, None))[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            score = (f - chance[None, :]) * np.sqrt(self.n_eff)[:, None] / spread
        score = np.where(self.n_eff[:, None] > 0, score, -np.inf)  # dead units: never selective
        best = np.where(self.n_eff > 0, score.argmax(axis=1), f.argmax(axis=1))
        return best, score[np.arange(f.shape[0]), best]


def label_fractions(index: np.ndarray, value: np.ndarray, codes: Sequence[np.ndarray],
                    n_labels: int) -> np.ndarray:
    """Eq. 1 for every unit and label of one kind: (units, N) top-N -> (units, labels)."""
    return _Block(index, value, n_labels).fractions(codes)


def select_all(tops: Tops, kinds: Mapping[str, Sequence[np.ndarray]], n_labels: int,
               n_permutations: int = 1000, seed: int = 0
               ) -> tuple[dict[str, dict[str, Selectivity]], dict[str, np.ndarray]]:
    """Eq. 1, best label and the max-statistic null of every kind, over all blocks at once.

    Each permutation shuffles the images' labels once, for every unit of every block and every
    kind; the null of kind k holds, per permutation, the max over all units of the statistic,
    so `corrected_p` against it corrects for the number of units. The statistic is the best
    label's excess over chance as a binomial z-score (effective number of images from the
    weights), comparable across units, labels and base rates inside one max.
    """
    blocks = {b: _Block(i, v, n_labels) for b, (i, v) in tops.items()}
    chance = {k: base_rates(c, n_labels) for k, c in kinds.items()}
    result: dict[str, dict[str, Selectivity]] = {k: {} for k in kinds}
    for name, blk in blocks.items():
        for kind, codes in kinds.items():
            f = blk.fractions(codes)
            best, stat = blk.best(f, chance[kind])
            units = np.arange(f.shape[0])
            result[kind][name] = Selectivity(best, f[units, best], chance[kind][best], stat)
    null = {k: np.full(n_permutations, -np.inf) for k in kinds}
    rng = np.random.default_rng(seed)
    n_images = next(iter(kinds.values()))[0].size
    for p in tqdm(range(n_permutations), desc="label shuffles", unit="perm", disable=None,
                  leave=False):
        perm = rng.permutation(n_images)
        for blk in blocks.values():
            rows = perm[blk.index.ravel()]  # image i takes the labels of image perm[i]
            for kind, codes in kinds.items():
                stat = blk.best(blk.fractions(codes, rows), chance[kind])[1]
                null[kind][p] = max(null[kind][p], stat.max(initial=-np.inf))
    return result, null


def corrected_p(stat: np.ndarray, null_max: np.ndarray) -> np.ndarray:
    """Westfall-Young max-statistic p-values: the share of permutations whose max over all units
    reaches the unit's statistic (plus one), corrected for the number of units by construction."""
    exceed = (null_max[None, :] >= np.asarray(stat)[:, None] - 1e-12).sum(axis=1)
    return (1 + exceed) / (1 + null_max.size)
