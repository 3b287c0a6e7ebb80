"""Colour-label selectivity (Eq. 1 of the paper) and its label-shuffle permutation test.

f_c(n) = sum of the top-N activations whose image has label c / sum of all top-N activations.
Labels are integer codes; a "kind" may also be a boolean membership matrix (images, labels), as
for "colour present" (font or background), where one image counts for several labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def membership(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """(images,) integer codes -> (images, n_labels) bool membership."""
    out = np.zeros((labels.shape[0], n_labels), dtype=bool)
    out[np.arange(labels.shape[0]), labels] = True
    return out


def label_fractions(weights: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Eq. 1 for every unit and label: (units, N) weights, (units, N, labels) membership -> f."""
    weights = np.clip(np.asarray(weights, dtype=np.float64), 0, None)
    total = weights.sum(axis=1, keepdims=True)
    hits = np.einsum("un,unl->ul", weights, member.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hits / total, 0.0)


def base_rates(member: np.ndarray) -> np.ndarray:
    """Chance level of each label: the fraction of the set's images that carry it."""
    return member.mean(axis=0)


@dataclass
class Selectivity:
    """Per unit, for one label kind: best label, its f, chance level, statistic and its null."""

    best: np.ndarray  # (units,) label code with the largest f
    f: np.ndarray  # (units,) f of the best label
    chance: np.ndarray  # (units,) base rate of the best label
    stat: np.ndarray  # (units,) standardised excess of the best label over chance
    null_max: np.ndarray  # (permutations,) max over these units of the permuted statistic

    def p_values(self, null_max: np.ndarray | None = None) -> np.ndarray:
        """Corrected p-values against this block's null, or a wider one (see corrected_p)."""
        return corrected_p(self.stat, self.null_max if null_max is None else null_max)


def corrected_p(stat: np.ndarray, null_max: np.ndarray) -> np.ndarray:
    """Westfall-Young max-statistic p-values, corrected for the number of units in the family.

    `null_max[k]` is the max over the family's units of the statistic under permutation k; the
    elementwise max of several blocks' nulls (same permutations) is the null of all their units.
    """
    exceed = (null_max[None, :] >= np.asarray(stat)[:, None] - 1e-12).sum(axis=1)
    return (1 + exceed) / (1 + null_max.size)


def effective_n(weights: np.ndarray) -> np.ndarray:
    """(sum w)^2 / sum w^2 per unit: how many equally weighted images the top-N amounts to."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0, None)
    sq = (w * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sq > 0, w.sum(axis=1) ** 2 / sq, 0.0)


def _standardised_best(f: np.ndarray, chance: np.ndarray,
                       n_eff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best label per unit as a z-score of its f against chance (binomial, n_eff draws)."""
    spread = np.sqrt(np.clip(chance * (1 - chance), 1e-12, None))[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        score = (f - chance[None, :]) * np.sqrt(n_eff)[:, None] / spread
    score = np.where(n_eff[:, None] > 0, score, -np.inf)  # dead units: never selective
    best = np.where(n_eff > 0, score.argmax(axis=1), f.argmax(axis=1))
    return best, score[np.arange(f.shape[0]), best]


def select(topn_index: np.ndarray, topn_value: np.ndarray, member: np.ndarray,
           n_permutations: int = 1000, seed: int = 0) -> Selectivity:
    """Eq. 1, best label and a label-shuffle null for (units, N) top-N images of one set.

    Each permutation shuffles the images' labels once for all units (so permutation k is the same
    in every block with the same seed and labels); the statistic is the best label's excess over
    chance as a binomial z-score (effective number of images from the weights), which makes
    units and labels of different base rates and weight spreads comparable inside one max.
    """
    chance = base_rates(member)
    n_eff = effective_n(topn_value)
    f_all = label_fractions(topn_value, member[topn_index])
    best, stat = _standardised_best(f_all, chance, n_eff)
    rng = np.random.default_rng(seed)
    null_max = np.empty(n_permutations)
    codes = _as_codes(member)
    for k in range(n_permutations):
        perm = rng.permutation(member.shape[0])
        f_perm = _fractions_permuted(topn_index, topn_value, member, codes, perm)
        null_max[k] = _standardised_best(f_perm, chance, n_eff)[1].max(initial=-np.inf)
    units = np.arange(f_all.shape[0])
    return Selectivity(best, f_all[units, best], chance[best], stat, null_max)


def _as_codes(member: np.ndarray) -> np.ndarray | None:
    """Integer codes when every image has exactly one label (fast bincount path), else None."""
    if (member.sum(axis=1) == 1).all():
        return member.argmax(axis=1)
    return None


def _fractions_permuted(topn_index, topn_value, member, codes, perm) -> np.ndarray:
    """Eq. 1 with the images' labels shuffled by `perm`."""
    if codes is None:
        return label_fractions(topn_value, member[perm][topn_index])
    n_units, n_labels = topn_index.shape[0], member.shape[1]
    w = np.clip(np.asarray(topn_value, dtype=np.float64), 0, None)
    lab = codes[perm][topn_index]
    flat = (np.arange(n_units)[:, None] * n_labels + lab).ravel()
    hits = np.bincount(flat, weights=w.ravel(), minlength=n_units * n_labels)
    total = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hits.reshape(n_units, n_labels) / total, 0.0)
