"""Unit types of the paper (Fig. 5) from selectivity tests and activations per set.

Every threshold lives in `Thresholds`, with its default and the reason for it. The tests come
in as `UnitTests` (p-values already corrected for every unit of the run: see selectivity.py),
so `classify` is pure and cheap: reclassifying under other thresholds needs no recomputation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stimuli.palette import COLOR_TERMS, IS_ACHROMATIC

TYPES = ("not_activated", "untestable", "color_chromatic", "color_achromatic", "color_word",
         "color_multimodal", "any_word", "unassigned")
COLOR_KINDS = ("font", "bg", "color")  # the colour type's family: font, background, either
MODALITIES = ("font", "bg", "both", "pooled")


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the classification, in one place.

    alpha: family-wise error rate of each type's test, 0.05: the usual level. The p-values are
        max-statistic corrected for all units (and, for the colour type, for its three kinds).
    min_selectivity: effect size, (f - chance) / (1 - chance) of the best label, 0.2. Chance is
        the label's base rate in the set (about 1/11 for a word, font or background colour,
        2/11 for "colour present" = font or background), so the same number asks the same of
        each kind: f >= 0.27 (3x chance) for a word, font or background, f >= 0.35 for colour
        present. Effective bars at N = 100 and 15,104 units (docs/types.md): the null's 95%
        point is z = 6.05 (word) and 6.11 (colour family), i.e. f >= 0.265 / 0.266 at chance 1/11,
        so this effect bar (0.273) binds for word, font, bg; colour present needs f >= 0.42.
    multimodal_min_selectivity: the effect asked of each of word, font and background of a colour
        multimodal unit, for the colour of its conjunction, 0.1 (f >= 0.18, 2x chance): such a
        unit splits its top-N over three modalities (word, font and background never share a
        colour in one Stroop image), about 1/4 to 1/3 each. The conjunction's null 95% point at
        N = 100 and 15,104 units is T = 2.25 (f >= 0.156 each), so this bar (0.182) binds.
    not_activated_ratio: the paper's rule, max on Stroop < 0.5 x max on natural images.
    dead_activation: a unit whose max on every set is at most this is not activated (ReLU dead).
    any_word_drive: an any-word unit's mean response (per-image max, averaged over the set) on
        Stroop and on `words` each reach this x its mean response on natural images, 1.5:
        rendered words drive it clearly more than photos do on average. Means, not maxima: a
        natural corpus with text in it (ImageNet has plenty) drives a text unit as hard as a
        rendered word in its few text images, so a max ratio would miss exactly these units,
        while only a small share of photos hold text, so the mean ratio stays high.
    any_word_alike: ... and the smaller of those two means is at least this x the larger, 0.5:
        colour words and other words drive it alike (within a factor 2).
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


@dataclass
class ConjunctionResult:
    """The colour multimodal test of every unit: its colour, f and chance of that colour as word,
    font and background (units, 3), and the conjunction's corrected p."""

    term: np.ndarray
    f: np.ndarray
    chance: np.ndarray
    p: np.ndarray


@dataclass
class UnitTests:
    """What `classify` needs from the selectivity pass for one block of units.

    kinds: "word", "font", "bg", "color" (colour present); the p of font, bg and color is
        corrected over the colour family (all units x those three kinds), the word's over units.
    multimodal: the conjunction test (None: no multimodal type).
    testable: units whose top-N is thick enough to test (None: all); the others are typed
        `untestable` (unless not activated), never silently `unassigned`.
    """

    kinds: dict[str, KindResult]
    multimodal: ConjunctionResult | None = None
    testable: np.ndarray | None = None


@dataclass
class Classification:
    """Per unit: type, colour term ("" when the type has none), colour modality ("" unless a
    colour type): font, bg, both (font and background, same colour) or pooled (only the
    colour-present kind passed)."""

    type: np.ndarray
    term: np.ndarray
    modality: np.ndarray


def effect(f: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """Normalised excess over chance, (f - chance) / (1 - chance): 0 at chance, 1 when all."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(f, dtype=np.float64) - chance) / (1 - np.asarray(chance))


def is_selective(r: KindResult, t: Thresholds, min_effect: float | None = None) -> np.ndarray:
    """Significant and large enough: p <= alpha and normalised excess over chance >= threshold."""
    cut = t.min_selectivity if min_effect is None else min_effect
    return (r.p <= t.alpha) & (effect(r.f, r.chance) >= cut)


def _max(maxima: dict[str, np.ndarray], name: str, n: int) -> np.ndarray:
    return np.asarray(maxima.get(name, np.full(n, np.nan)), dtype=np.float64)


def color_selective(kinds: dict[str, KindResult], t: Thresholds
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(selective, colour code, modality) of the colour type: any of font, bg, colour present
    selective; the colour is that of the passing kind with the largest effect."""
    passing = {k: is_selective(kinds[k], t) for k in COLOR_KINDS}
    score = np.stack([np.where(passing[k], effect(kinds[k].f, kinds[k].chance), -np.inf)
                      for k in COLOR_KINDS])
    selective = np.logical_or.reduce([passing[k] for k in COLOR_KINDS])
    term = np.choose(score.argmax(axis=0), [kinds[k].best for k in COLOR_KINDS])
    font = passing["font"] & (kinds["font"].best == term)
    bg = passing["bg"] & (kinds["bg"].best == term)
    modality = np.where(font & bg, "both", np.where(font, "font", np.where(bg, "bg", "pooled")))
    return selective, term, np.where(selective, modality, "").astype(object)


def multimodal_selective(m: ConjunctionResult | None, t: Thresholds, n: int) -> np.ndarray:
    """The conjunction significant and each of word, font, background large enough."""
    if m is None:
        return np.zeros(n, dtype=bool)
    big = (effect(m.f, m.chance) >= t.multimodal_min_selectivity).all(axis=1)
    return (m.p <= t.alpha) & big


def any_word(tests: UnitTests, maxima: dict[str, np.ndarray], t: Thresholds) -> np.ndarray:
    """No label preference, and rendered words (Stroop and `words`) drive it clearly harder on
    average than photos, colour words and other words alike (`Thresholds.any_word_*`)."""
    n = len(tests.kinds["color"].best)
    natural, stroop, words = (_max(maxima, f"mean_{s}", n) for s in ("natural", "stroop", "words"))
    preference = np.logical_or.reduce([is_selective(r, t) for r in tests.kinds.values()])
    return ~preference & (stroop >= t.any_word_drive * natural) \
        & (words >= t.any_word_drive * natural) \
        & (np.fmin(stroop, words) >= t.any_word_alike * np.fmax(stroop, words))


def not_activated(maxima: dict[str, np.ndarray], t: Thresholds, n: int) -> np.ndarray:
    """The paper's rule (max on Stroop < ratio x max on natural), or no response at all."""
    natural, stroop, words = (_max(maxima, s, n) for s in ("natural", "stroop", "words"))
    all_max = np.fmax(np.fmax(natural, stroop), words)
    return ~(all_max > t.dead_activation) | (stroop < t.not_activated_ratio * natural)


def classify(tests: UnitTests, maxima: dict[str, np.ndarray],
             t: Thresholds = Thresholds()) -> Classification:
    """Type, colour term and colour modality per unit; rules in priority order, units fitting
    none: unassigned.

    `maxima` has per set ("natural", "stroop", "words") the max activation, and as "mean_{set}"
    the mean over the set's images of the per-image max (for any word).
    """
    kinds = tests.kinds
    n = len(kinds["color"].best)
    color, color_term, modality = color_selective(kinds, t)
    word = is_selective(kinds["word"], t)
    multimodal = multimodal_selective(tests.multimodal, t, n)
    untestable = np.zeros(n, bool) if tests.testable is None else ~np.asarray(tests.testable)
    achromatic = IS_ACHROMATIC[color_term]
    none = np.zeros(n, dtype=int)
    mm_term = none if tests.multimodal is None else tests.multimodal.term
    rules = [  # last assignment wins, so list from lowest to highest priority
        (any_word(tests, maxima, t), "any_word", None),
        (color & ~achromatic, "color_chromatic", color_term),
        (color & achromatic, "color_achromatic", color_term),
        (word, "color_word", kinds["word"].best),
        (multimodal, "color_multimodal", mm_term),
        (untestable, "untestable", None),
        (not_activated(maxima, t, n), "not_activated", None),
    ]
    types = np.full(n, "unassigned", dtype=object)
    term = np.full(n, "", dtype=object)
    for mask, name, best in rules:
        types[mask] = name
        term[mask] = "" if best is None else np.asarray(COLOR_TERMS, dtype=object)[best[mask]]
    is_color = np.isin(types, ("color_chromatic", "color_achromatic"))
    return Classification(types, term, np.where(is_color, modality, "").astype(object))
