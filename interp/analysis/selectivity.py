"""Colour-label selectivity (Eq. 1 of the paper) and its label-shuffle permutation tests.

f_c(n) = sum of the top-N activations whose image has label c / sum of all top-N activations.
A label kind is given as one or more integer code arrays (images,): "colour present" is
[font, background], which never coincide in a Stroop image, so an image counts for both labels.

Per unit and label the statistic is the binomial z-score of f_c against the label's chance level
(its base rate), with the effective number of top-N images n_eff from the weights. Each kind's
null is the max over all testable units of the best label's z under shuffled labels
(Westfall-Young). The colour multimodal test is a conjunction: T = max_c min(z_word(c), z_font(c),
z_bg(c)), with its own max-statistic null from the same shuffles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from interp.progress import bar as progress_bar

Tops = Mapping[str, tuple[np.ndarray, np.ndarray]]  # block -> (top-N index, top-N value)
CONJUNCTION = ("word", "font", "bg")  # the kinds of the colour multimodal conjunction
MULTIMODAL = "multimodal"  # name of the conjunction's null


@dataclass
class Selectivity:
    """Per unit, for one label kind: best label, its f, the label's chance level, statistic."""

    best: np.ndarray  # (units,) label code with the largest standardised excess over chance
    f: np.ndarray  # (units,) Eq. 1 of that label
    chance: np.ndarray  # (units,) base rate of that label in the set
    stat: np.ndarray  # (units,) binomial z-score of f against chance


@dataclass
class Conjunction:
    """Per unit, the colour with the largest min(z_word, z_font, z_bg) and what it rests on."""

    term: np.ndarray  # (units,) colour code c maximising min over the three kinds of z(c)
    stat: np.ndarray  # (units,) T = that min
    f: np.ndarray  # (units, 3) f_word(c), f_font(c), f_bg(c)
    chance: np.ndarray  # (units, 3) chance of c as word, font, background


@dataclass
class BlockSelectivity:
    """Everything the selectivity pass finds for one block."""

    kinds: dict[str, Selectivity]
    conjunction: Conjunction | None
    n_eff: np.ndarray  # (units,) effective number of top-N images
    testable: np.ndarray  # (units,) bool: n_eff large enough for the test


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


MIN_N_EFF = 8.0  # absolute floor of n_eff for a testable unit, whatever N


def is_testable(n_eff: np.ndarray, top_n: int, min_n_eff_fraction: float) -> np.ndarray:
    """Units whose top-N carries enough images for the binomial z: n_eff >= max(MIN_N_EFF,
    fraction x N), capped at N (fraction 0: every unit that responds at all). Thinner units have
    a heavy-tailed z (4 equal weights on one label give z = 6.3, above the whole null's 95%
    point) that would set the null for everyone (bench/thresholds.py)."""
    n_eff = np.asarray(n_eff, dtype=np.float64)
    need = min(top_n, max(MIN_N_EFF, min_n_eff_fraction * top_n))
    need = 0.0 if min_n_eff_fraction <= 0 else need
    return (n_eff > 0) & (n_eff >= need - 1e-9)


def z_scores(f: np.ndarray, chance: np.ndarray, n_eff: np.ndarray) -> np.ndarray:
    """(units, labels) binomial z of f against chance with n_eff draws; -inf for dead units."""
    spread = np.sqrt(np.clip(chance * (1 - chance), 1e-12, None))[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (f - chance[None, :]) * np.sqrt(n_eff)[:, None] / spread
    return np.where(n_eff[:, None] > 0, z, -np.inf)


def conjunction_stat(z: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """T = max over labels c of min over kinds of z_k(c), and the maximising c, per unit.

    Large only when c is over-represented as word, as font and as background at once. Its
    max-statistic null's 95% point is T = 2.25 at N = 100 and 15,104 untuned units (f >= 0.156
    in each kind at n_eff = 100), 2.01 at N = 16 (bench/thresholds.py, docs/types.md)."""
    low = np.minimum.reduce([np.asarray(k, dtype=np.float64) for k in z])
    term = low.argmax(axis=1)
    return term, low[np.arange(low.shape[0]), term]


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
        return sum(self._one(c, rows) for c in codes)

    def _one(self, code: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        rows = self.index.ravel() if rows is None else rows
        n_units = self.index.shape[0]
        hits = np.bincount(self.offset + code[rows], weights=self.w,
                           minlength=n_units * self.n_labels)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = hits.reshape(n_units, self.n_labels) / self.total[:, None]
        return np.where(self.total[:, None] > 0, f, 0.0)

    def kind_fractions(self, kinds: Mapping[str, Sequence[np.ndarray]],
                       rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Eq. 1 of every kind, each code array counted once (colour present = font + bg)."""
        cache: dict[int, np.ndarray] = {}
        for codes in kinds.values():
            for c in codes:
                if id(c) not in cache:
                    cache[id(c)] = self._one(c, rows)
        return {k: sum(cache[id(c)] for c in codes) for k, codes in kinds.items()}

    def z(self, kinds, chance, rows=None, n_eff=None
          ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(fractions, z-scores) of every kind, each (units, labels); `n_eff` 0 marks units
        left out (their z is -inf)."""
        f = self.kind_fractions(kinds, rows)
        n_eff = self.n_eff if n_eff is None else n_eff
        return f, {k: z_scores(f[k], chance[k], n_eff) for k in kinds}


def label_fractions(index: np.ndarray, value: np.ndarray, codes: Sequence[np.ndarray],
                    n_labels: int) -> np.ndarray:
    """Eq. 1 for every unit and label of one kind: (units, N) top-N -> (units, labels)."""
    return _Block(index, value, n_labels).fractions(codes)


def _observed(blk: _Block, kinds, chance, conjunction: bool, testable: np.ndarray
              ) -> BlockSelectivity:
    f, z = blk.z(kinds, chance)
    units = np.arange(blk.index.shape[0])
    result = {}
    for kind in kinds:
        best = np.where(blk.n_eff > 0, z[kind].argmax(axis=1), f[kind].argmax(axis=1))
        result[kind] = Selectivity(best, f[kind][units, best], chance[kind][best],
                                   z[kind][units, best])
    conj = None
    if conjunction:
        term, stat = conjunction_stat([z[k] for k in CONJUNCTION])
        conj = Conjunction(term, stat, np.stack([f[k][units, term] for k in CONJUNCTION], 1),
                           np.stack([chance[k][term] for k in CONJUNCTION], 1))
    return BlockSelectivity(result, conj, blk.n_eff, testable)


def _permuted_max(blk: _Block, kinds, chance, conjunction: bool, testable: np.ndarray,
                  rows: np.ndarray) -> dict[str, float]:
    """Max over the block's testable units of every kind's statistic under one shuffle."""
    _, z = blk.z(kinds, chance, rows, np.where(testable, blk.n_eff, 0.0))
    out = {k: float(v.max(initial=-np.inf)) for k, v in z.items()}
    if conjunction:
        out[MULTIMODAL] = float(np.minimum.reduce([z[k] for k in CONJUNCTION]).max(initial=-np.inf))
    return out


def select_all(tops: Tops, kinds: Mapping[str, Sequence[np.ndarray]], n_labels: int,
               n_permutations: int = 1000, seed: int = 0, min_n_eff_fraction: float = 0.0
               ) -> tuple[dict[str, BlockSelectivity], dict[str, np.ndarray]]:
    """Eq. 1, best labels, the conjunction and the max-statistic null of every kind, over all
    blocks at once.

    Each permutation shuffles the images' labels once, for every unit of every block and every
    kind; the null of kind k holds, per permutation, the max over all testable units of the
    statistic, so `corrected_p` against it corrects for the number of units. The conjunction
    (colour multimodal) is computed when `kinds` has word, font and bg; its null is "multimodal".
    Units with n_eff < min_n_eff_fraction x N are left out of every null (`is_testable`).
    """
    blocks = {b: _Block(i, v, n_labels) for b, (i, v) in tops.items()}
    chance = {k: base_rates(c, n_labels) for k, c in kinds.items()}
    conj = all(k in kinds for k in CONJUNCTION)
    testable = {b: is_testable(blk.n_eff, blk.index.shape[1], min_n_eff_fraction)
                for b, blk in blocks.items()}
    result = {b: _observed(blk, kinds, chance, conj, testable[b]) for b, blk in blocks.items()}
    names = [*kinds, *([MULTIMODAL] if conj else [])]
    null = {k: np.full(n_permutations, -np.inf) for k in names}
    rng = np.random.default_rng(seed)
    n_images = next(iter(kinds.values()))[0].size
    for p in progress_bar(range(n_permutations), desc="label shuffles", unit="perm",
                          leave=False):
        perm = rng.permutation(n_images)
        for b, blk in blocks.items():
            rows = perm[blk.index.ravel()]  # image i takes the labels of image perm[i]
            for k, v in _permuted_max(blk, kinds, chance, conj, testable[b], rows).items():
                null[k][p] = max(null[k][p], v)
    return result, null


def corrected_p(stat: np.ndarray, null_max: np.ndarray) -> np.ndarray:
    """Westfall-Young max-statistic p-values: the share of permutations whose max over all units
    reaches the unit's statistic (plus one), corrected for the number of units by construction."""
    exceed = (null_max[None, :] >= np.asarray(stat)[:, None] - 1e-12).sum(axis=1)
    return (1 + exceed) / (1 + null_max.size)


def family_null(nulls: Mapping[str, np.ndarray], kinds: Sequence[str]) -> np.ndarray:
    """The null of a family of kinds tested together: per shuffle, the max over the kinds' nulls
    (each already a max over units), so the family-wise error holds for the whole family."""
    return np.maximum.reduce([np.asarray(nulls[k]) for k in kinds])
