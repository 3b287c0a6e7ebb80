"""Naming bookkeeping on stub scorers whose answers are known, and the experiment definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from interp.naming import published
from interp.naming.experiments import (
    ALL_BACKGROUNDS,
    COLORED_BG,
    EXPERIMENTS,
    STROOP_FONT_TEMPLATE,
    confusion,
    errors,
    experiment_table,
    prompts,
    wilson_interval,
)
from stimuli.palette import COLOR_TERMS, IS_ACHROMATIC, color_index

WHITE = color_index("white")


def shapes_labels() -> dict[str, np.ndarray]:
    pairs = [(b, o) for b, o in itertools.product(range(11), repeat=2) if b != o]
    bg, obj = np.array(pairs).T
    return {"bg_color": bg, "obj_color": obj, "shape": np.zeros_like(bg)}


def stroop_labels(white_only: bool = False) -> dict[str, np.ndarray]:
    triples = [t for t in itertools.product(range(11), repeat=3) if len(set(t)) == 3]
    if white_only:
        triples = [t for t in triples if t[2] == WHITE]
    word, font, bg = np.array(triples).T
    return {"word": word, "font_color": font, "bg_color": bg}


LABELS = {"shapes": shapes_labels(), "stroop": stroop_labels(),
          "stroop-white": stroop_labels(white_only=True)}


def stub(kind: str):
    """A scorer that always answers the image's `kind` label."""
    return lambda set_name, template: LABELS[set_name][kind].copy()


def none_of_them(set_name: str, template: str) -> np.ndarray:
    """A scorer answering the first colour that is none of the image's word/font/background."""
    lab = LABELS[set_name]
    used = np.stack([lab["word"], lab["font_color"], lab["bg_color"]], axis=1)
    return np.array([min(set(range(11)) - set(row)) for row in used])


def test_templates_and_sets_exactly_as_designed():
    font = "The word is written in {} font"
    assert EXPERIMENTS[1].set_name == "shapes" and EXPERIMENTS[1].templates == ("{}",)
    assert EXPERIMENTS[2].set_name == "shapes"
    assert EXPERIMENTS[2].templates == ("The color of the object is {}",
                                        "The color of the background is {}")
    assert EXPERIMENTS[3].set_name == "stroop"
    assert EXPERIMENTS[3].templates == (font, "The text says {}",
                                        "The color of the background is {}", "{}",
                                        "My favorite word, written in the color {}")
    assert EXPERIMENTS[4].set_name == "stroop-white" and EXPERIMENTS[4].templates == (font,)
    assert EXPERIMENTS[5].set_name == "stroop" and EXPERIMENTS[5].templates == (font,)
    assert prompts(font)[COLOR_TERMS.index("red")] == "The word is written in red font"
    assert prompts("{}") == list(COLOR_TERMS)


def test_experiment5_has_an_all_backgrounds_and_a_coloured_only_variant():
    lab = LABELS["stroop"]
    assert EXPERIMENTS[5].variants == (ALL_BACKGROUNDS, COLORED_BG)
    assert [v.published for v in EXPERIMENTS[5].variants] == [True, False]
    assert EXPERIMENTS[5].select(lab).all()  # main variant: white backgrounds included
    keep = EXPERIMENTS[5].select(lab, COLORED_BG)
    assert keep.sum() == 990 - 90  # 11*10*9 triples, 90 of them on white
    assert not (lab["bg_color"][keep] == WHITE).any()
    assert EXPERIMENTS[3].select(lab).all()
    assert all(len(EXPERIMENTS[n].variants) == 1 for n in (1, 2, 3, 4))


def test_experiment5_variants_counts_white_rows_and_totals():
    exp = EXPERIMENTS[5]
    every = experiment_table(exp, stub("bg_color"), LABELS["stroop"], ALL_BACKGROUNDS)
    coloured = experiment_table(exp, stub("bg_color"), LABELS["stroop"], COLORED_BG)
    assert [r["color"] for r in every] == [r["color"] for r in coloured] == [*COLOR_TERMS, "TOTAL"]
    assert {r["n_images"] for r in every} == {990} and {r["n_images"] for r in coloured} == {900}
    # answering the background: the white row counts white backgrounds in the all-bg variant only
    assert every[WHITE]["n_answers"] == 90 and every[WHITE]["background_pct"] == 100 * 90 / 990
    assert coloured[WHITE]["n_answers"] == 0 and coloured[WHITE]["background_pct"] == 0
    assert every[-1]["background_pct"] == coloured[-1]["background_pct"] == 100
    for rows in (every, coloured):
        assert sum(r["n_answers"] for r in rows[:-1]) == rows[-1]["n_answers"]
        assert sum(r["background_pct"] for r in rows[:-1]) == pytest.approx(100)
    # answering the written word: 90 white words, all on a coloured background
    written = experiment_table(exp, stub("word"), LABELS["stroop"], COLORED_BG)
    assert written[WHITE]["written_pct"] == pytest.approx(100 * 90 / 900)
    assert experiment_table(exp, stub("word"), LABELS["stroop"]) \
        == experiment_table(exp, stub("word"), LABELS["stroop"], ALL_BACKGROUNDS)


def test_experiment5_all_backgrounds_total_equals_experiment3_first_row():
    """The paper's Table 5 TOTAL = Table 3 row 1: the same prompt on the same (all) images."""
    rng = np.random.default_rng(0)
    answers = rng.integers(0, 11, size=990)
    table3 = experiment_table(EXPERIMENTS[3], lambda s, t: answers, LABELS["stroop"])[0]
    total5 = experiment_table(EXPERIMENTS[5], lambda s, t: answers, LABELS["stroop"])[-1]
    assert table3["template"] == STROOP_FONT_TEMPLATE
    for role in ("background", "font", "written", "none"):
        for suffix in ("_pct", "_pct_lo", "_pct_hi"):
            assert total5[role + suffix] == table3[role + suffix]
    coloured = experiment_table(EXPERIMENTS[5], lambda s, t: answers, LABELS["stroop"],
                                COLORED_BG)[-1]
    assert coloured["n_images"] == 900 != table3["n_images"]
    t4 = published.ROLES[STROOP_FONT_TEMPLATE]
    assert published.STROOP_COLOURED["TOTAL"] == (t4[1], t4[2], t4[0], t4[3])
    assert published.STROOP_COLOURED["white"][2] > 0  # paper: white answers on white backgrounds


def test_wilson_interval_hand_computed():
    z2 = 1.959963984540054 ** 2
    lo, hi = wilson_interval(0, 10)  # lo = 0, hi = z²/(n + z²)
    assert lo == 0 and hi == pytest.approx(z2 / (10 + z2))
    assert hi == pytest.approx(0.27753, abs=1e-5)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.23659, abs=1e-5), pytest.approx(0.76341, abs=1e-5))
    lo, hi = wilson_interval(100, 100)  # lo = n/(n + z²), hi = 1
    assert lo == pytest.approx(100 / (100 + z2)) and lo == pytest.approx(0.96301, abs=1e-5)
    assert hi == 1
    lo, hi = wilson_interval(np.array([1, 0]), np.array([4, 0]))  # vectorised; n = 0 -> NaN
    assert lo[0] == pytest.approx(0.04558, abs=1e-5) and hi[0] == pytest.approx(0.69936, abs=1e-5)
    assert np.isnan(lo[1]) and np.isnan(hi[1])


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_every_percentage_has_its_wilson_interval_and_n(number):
    exp = EXPERIMENTS[number]
    size = len(LABELS[exp.set_name]["bg_color"])
    answers = np.random.default_rng(number).integers(0, 11, size=size)
    for variant in exp.variants:
        rows = experiment_table(exp, lambda s, t: answers, LABELS[exp.set_name], variant)
        for row in rows:
            pct = [k for k in row if k.endswith("_pct")]
            assert pct and row["n_images"] > 0
            for k in pct:
                assert row[k + "_lo"] <= row[k] <= row[k + "_hi"]
                successes = round(row[k] * row["n_images"] / 100)
                lo, hi = wilson_interval(successes, row["n_images"])
                assert (row[k + "_lo"], row[k + "_hi"]) == (pytest.approx(100 * lo),
                                                            pytest.approx(100 * hi))


def test_always_background_reads_100_percent_background_in_every_group():
    for number in (1, 2):
        rows = experiment_table(EXPERIMENTS[number], stub("bg_color"), LABELS["shapes"])
        assert len(rows) == 4 * len(EXPERIMENTS[number].templates)
        for row in rows:
            assert (row["background_pct"], row["object_pct"], row["other_pct"]) == (100, 0, 0)


def test_grid_groups_split_by_chromaticity():
    rows = experiment_table(EXPERIMENTS[1], stub("obj_color"), LABELS["shapes"])
    sizes = {(r["background"], r["object"]): r["n_images"] for r in rows}
    # 3 achromatic and 8 chromatic colours, object != background
    assert sizes == {("achromatic", "achromatic"): 6, ("achromatic", "chromatic"): 24,
                     ("chromatic", "achromatic"): 24, ("chromatic", "chromatic"): 56}
    assert all(r["object_pct"] == 100 for r in rows)


def test_mixed_answers_give_the_known_split():
    lab = LABELS["shapes"]
    # background on achromatic-background images, a third colour on the others
    pairs = zip(lab["bg_color"], lab["obj_color"], strict=True)
    third = np.array([min(set(range(11)) - {b, o}) for b, o in pairs])
    pred = np.where(IS_ACHROMATIC[lab["bg_color"]], lab["bg_color"], third)
    rows = experiment_table(EXPERIMENTS[1], lambda s, t: pred, lab)
    for row in rows:
        expect = 100.0 if row["background"] == "achromatic" else 0.0
        assert row["background_pct"] == expect and row["other_pct"] == 100 - expect


def test_always_written_word_reads_100_percent_written():
    for number in (3, 4, 5):
        exp = EXPERIMENTS[number]
        rows = experiment_table(exp, stub("word"), LABELS[exp.set_name])
        totals = rows if number == 3 else [rows[-1]]
        for row in totals:
            assert row["written_pct"] == 100
            assert row["font_pct"] == 0 and row["none_pct"] == 0
    rows = experiment_table(EXPERIMENTS[3], stub("word"), LABELS["stroop"])
    assert [r["template"] for r in rows] == list(EXPERIMENTS[3].templates)


def test_per_colour_rows_are_shares_of_all_images_and_sum_to_total():
    exp = EXPERIMENTS[4]
    lab = LABELS["stroop-white"]
    rows = experiment_table(exp, stub("font_color"), lab)
    assert [r["color"] for r in rows] == [*COLOR_TERMS, "TOTAL"]
    assert rows[-1]["font_pct"] == 100
    n = len(lab["word"])
    for row in rows[:-1]:
        c = COLOR_TERMS.index(row["color"])
        assert row["font_pct"] == pytest.approx(100 * (lab["font_color"] == c).sum() / n)
    assert sum(r["font_pct"] for r in rows[:-1]) == pytest.approx(100)
    assert rows[COLOR_TERMS.index("white")]["font_pct"] == 0  # no white font on white


def test_background_and_none_columns():
    rows = experiment_table(EXPERIMENTS[5], stub("bg_color"), LABELS["stroop"])
    assert rows[-1]["background_pct"] == 100 and rows[-1]["written_pct"] == 0
    for number in (3, 4, 5):
        exp = EXPERIMENTS[number]
        rows = experiment_table(exp, none_of_them, LABELS[exp.set_name])
        assert all(r["none_pct"] == 100 for r in (rows if number == 3 else rows[-1:]))
    # experiment 4 has no background column: answering the white background counts as none
    rows = experiment_table(EXPERIMENTS[4], stub("bg_color"), LABELS["stroop-white"])
    assert "background_pct" not in rows[-1] and rows[-1]["none_pct"] == 100
    assert rows[WHITE]["none_pct"] == 100


def test_confusion_and_errors():
    lab = LABELS["stroop"]
    m = confusion(lab["font_color"], lab["font_color"])
    assert m.sum() == 990 and (m == np.diag(np.diag(m))).all()
    m = confusion(lab["font_color"], lab["word"])
    assert np.trace(m) == 0 and m.sum() == 990
    exp = EXPERIMENTS[5]
    assert len(errors(exp, exp.templates[0], lab["word"], lab)) == 990  # main: all backgrounds
    wrong = errors(exp, exp.templates[0], lab["word"], lab, COLORED_BG)
    assert len(wrong) == 900 and (lab["bg_color"][wrong] != WHITE).all()
    assert len(errors(exp, exp.templates[0], lab["font_color"], lab)) == 0


def test_published_figures_are_consistent_with_their_totals():
    for table, width in ((published.STROOP_WHITE, 3), (published.STROOP_COLOURED, 4)):
        body = np.array([v for k, v in table.items() if k != "TOTAL"])
        assert body.shape[1] == width
        np.testing.assert_allclose(body.sum(axis=0), table["TOTAL"], atol=0.06)
    for bg_pct, obj_pct in published.GRID.values():
        assert bg_pct + obj_pct <= 100
    for row in published.ROLES.values():
        assert sum(row) == pytest.approx(100, abs=0.1)
    assert set(published.ROLES) == set(EXPERIMENTS[3].templates)
    row = {"template": "{}", "background": "chromatic", "object": "achromatic"}
    assert published.published_values(1, row) == {"published_background_pct": 99.74,
                                                   "published_object_pct": 0.19}
    assert published.published_values(4, {"color": "white"}) == {}
    assert published.applies("RN50", "openai") and not published.applies("RN50", "none")
