"""Unit types of the paper (Fig. 5) from selectivity results and max activations per set.

Every threshold lives in `Thresholds`, with its default and the reason for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stimuli.palette import COLOR_TERMS, IS_ACHROMATIC

TYPES = ("not_activated", "color_chromatic", "color_achromatic", "color_word",
         "color_multimodal", "any_word", "unassigned")


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the classification, in one place.

    alpha: family-wise error rate of the label-shuffle test (p-values are already corrected for
        the number of units by the max statistic), 0.05: the usual level.
    min_selectivity: effect size, (f - chance) / (1 - chance) of the best label, 0.2. Chance is
        the label's base rate in the set (1/11 for a word, font or background colour, about 2/11
        for "colour present" = font or background), so the same number asks the same of each
        kind: f >= 0.27 (3x chance) for a word, f >= 0.35 for colour present.
    multimodal_min_selectivity: the same effect size asked of each of word, font and background
        of a colour multimodal unit, 0.1: such a unit splits its top-N over three modalities,
        about 1/3 each, an effect of (1/3 - 1/11) / (10/11) = 0.27 per modality on average;
        0.1 (f >= 0.18, 2x chance) keeps those whose split is uneven.
    not_activated_ratio: the paper's rule, max on Stroop < 0.5 x max on natural images.
    dead_activation: a unit whose max on every set is at most this is not activated (ReLU dead).
    any_word_drive: an any-word unit's max on Stroop and on `words` each reach this x its max on
        natural images, 1.5: rendered words drive it clearly more than any photo (an untuned
        unit, responding alike to everything, has a ratio near 1 and must not qualify).
    any_word_alike: ... and min/max of those two maxima is at least this, 0.5: colour words and
        other words drive it alike (within a factor 2).
    color_selective_csi: CSI from which a unit counts as colour selective for the hue histogram,
        0.25: a quarter of its top-N response is lost without colour (Rafegas & Vanrell call
        0.1 low selectivity; 0.25 keeps clearly colour-driven units only).
    """

    alpha: float = 0.05
    min_selectivity: float = 0.2
    multimodal_min_selectivity: float = 0.1
    not_activated_ratio: float = 0.5
    dead_activation: float = 1e-6
    any_word_drive: float = 1.5
    any_word_alike: float = 0.5
    color_selective_csi: float = 0.25


@dataclass
class KindResult:
    """One label kind for every unit: best label code, f, chance of that label, corrected p."""

    best: np.ndarray
    f: np.ndarray
    chance: np.ndarray
    p: np.ndarray


def is_selective(r: KindResult, t: Thresholds, min_effect: float | None = None) -> np.ndarray:
    """Significant and large enough: p <= alpha and normalised excess over chance >= threshold."""
    with np.errstate(invalid="ignore", divide="ignore"):
        effect = (r.f - r.chance) / (1 - r.chance)
    cut = t.min_selectivity if min_effect is None else min_effect
    return (r.p <= t.alpha) & (effect >= cut)


def _max(maxima: dict[str, np.ndarray], name: str, n: int) -> np.ndarray:
    return np.asarray(maxima.get(name, np.full(n, np.nan)), dtype=np.float64)


def classify(kinds: dict[str, KindResult], maxima: dict[str, np.ndarray],
             t: Thresholds = Thresholds()) -> tuple[np.ndarray, np.ndarray]:
    """Type and colour term per unit; rules in priority order, units fitting none: unassigned.

    `kinds` has "word", "font", "bg", "color" (colour present) from the Stroop set, best labels
    being palette indices; `maxima` has the max activation per set ("natural", "stroop", "words").
    """
    n = len(kinds["color"].best)
    natural, stroop, words = (_max(maxima, s, n) for s in ("natural", "stroop", "words"))
    all_max = np.fmax(np.fmax(natural, stroop), words)
    not_activated = ~(all_max > t.dead_activation) | (stroop < t.not_activated_ratio * natural)
    sel = {k: is_selective(r, t) for k, r in kinds.items()}
    word, font, bg, color = kinds["word"], kinds["font"], kinds["bg"], kinds["color"]
    weak = {k: is_selective(kinds[k], t, t.multimodal_min_selectivity)
            for k in ("word", "font", "bg")}
    multimodal = (weak["word"] & weak["font"] & weak["bg"]
                  & (word.best == font.best) & (word.best == bg.best))
    any_word = ~(sel["word"] | sel["font"] | sel["bg"] | sel["color"]) \
        & (stroop >= t.any_word_drive * natural) & (words >= t.any_word_drive * natural) \
        & (np.fmin(stroop, words) >= t.any_word_alike * np.fmax(stroop, words))
    achromatic = IS_ACHROMATIC[color.best]
    types = np.full(n, "unassigned", dtype=object)
    term = np.full(n, "", dtype=object)
    rules = [  # last assignment wins, so list from lowest to highest priority
        (any_word, "any_word", None),
        (sel["color"] & ~achromatic, "color_chromatic", color.best),
        (sel["color"] & achromatic, "color_achromatic", color.best),
        (sel["word"], "color_word", word.best),
        (multimodal, "color_multimodal", word.best),
        (not_activated, "not_activated", None),
    ]
    for mask, name, best in rules:
        types[mask] = name
        term[mask] = "" if best is None else np.asarray(COLOR_TERMS, dtype=object)[best[mask]]
    return types, term
