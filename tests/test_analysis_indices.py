"""Pure numpy indices on hand-made arrays: top-N, Eq. 1 + permutation test, types, hue, CSI."""

import numpy as np
import pytest

from interp.analysis import hue, selectivity, sensitivity, topn
from interp.analysis.csi import csi, luminance_gray, opponent_pca_gray
from interp.analysis.steps import stroop_kinds
from interp.analysis.table import unit_tests
from interp.analysis.types import (
    TYPES,
    ConjunctionResult,
    KindResult,
    Thresholds,
    UnitTests,
    classify,
    is_selective,
)
from stimuli.palette import COLOR_TERMS, PALETTE
from tests import planted

# --- top-N --------------------------------------------------------------------------------

def test_topn_streaming_equals_full_sort_with_ties_by_index():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 6, (997, 13)).astype(np.float16)  # many ties
    values[5, 3] = np.nan
    ref_i, ref_v = topn.topn_reference(values, 17)
    for chunk in (1, 16, 100, 997):
        top = topn.stream_topn(((s, values[s:s + chunk]) for s in range(0, 997, chunk)), 13, 17)
        np.testing.assert_array_equal(top.index, ref_i)
        np.testing.assert_array_equal(top.value, ref_v)
    # ties: the earliest images win, in index order
    col = values[:, 0].astype(np.float32)
    best = col.max()
    expected = np.flatnonzero(col == best)[:17]
    np.testing.assert_array_equal(ref_i[0, :expected.size], expected)


def test_topn_known_answer():
    values = np.array([[1, 5], [3, 5], [2, 0], [3, 1]], dtype=np.float32)
    top = topn.stream_topn([(0, values[:2]), (2, values[2:])], 2, 2)
    np.testing.assert_array_equal(top.index, [[1, 3], [0, 1]])
    np.testing.assert_array_equal(top.value, [[3, 3], [5, 5]])


# --- Eq. 1 and the permutation test --------------------------------------------------------

def test_eq1_hand_computed():
    codes = [np.array([0, 1, 1, 2])]
    index = np.array([[0, 1, 2], [3, 2, 0]])
    weights = np.array([[2.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    f = selectivity.label_fractions(index, weights, codes, 3)
    np.testing.assert_allclose(f, [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    # two code arrays (font, background): an image counts for both of its labels
    f2 = selectivity.label_fractions(index, weights, [np.array([0, 1, 1, 2]),
                                                      np.array([1, 0, 2, 0])], 3)
    np.testing.assert_allclose(f2, [[0.75, 1.0, 0.25], [0.5, 0.5, 1.0]])


def _select_all(acts, labels, n=100, perms=200):
    top = topn.stream_topn([(0, acts)], acts.shape[1], n)
    result, null = selectivity.select_all({"b": (top.index, top.value)},
                                          stroop_kinds(labels), len(COLOR_TERMS), perms)
    return {k: (r, null[k]) for k, r in result["b"].kinds.items()}


def test_permutation_test_finds_planted_and_not_random():
    labels = planted.stroop_labels(2000)
    acts = planted.planted_activations(labels)
    sel = _select_all(acts, labels)
    col = {c: i for i, c in enumerate(planted.PLANTED_COLUMNS)}
    p = {k: selectivity.corrected_p(s.stat, null) for k, (s, null) in sel.items()}
    red, blue, black, green = (COLOR_TERMS.index(c) for c in ("red", "blue", "black", "green"))
    assert sel["word"][0].best[col["color_word_red"]] == red
    assert p["word"][col["color_word_red"]] < .01
    assert sel["font"][0].best[col["color_blue_font"]] == blue
    assert sel["bg"][0].best[col["color_black_bg"]] == black
    assert sel["color"][0].best[col["multimodal_green"]] == green
    for kind, (s, _null) in sel.items():
        for name in ("random", "random2", "any_word", "dead"):
            r = KindResult(s.best, s.f, s.chance, p[kind])
            assert not is_selective(r, Thresholds())[col[name]], (kind, name)
    assert p["word"][col["dead"]] == 1.0
    # chance differs per kind: about 1/11 for a single label, about 2/11 for colour present
    assert abs(sel["word"][0].chance.mean() - 1 / 11) < 0.02
    assert abs(sel["color"][0].chance.mean() - 2 / 11) < 0.03


def test_null_is_the_max_over_blocks():
    labels = planted.stroop_labels(500)
    acts = planted.planted_activations(labels)
    top_a = topn.stream_topn([(0, acts[:, :4])], 4, 50)
    top_b = topn.stream_topn([(0, acts[:, 4:])], 4, 50)
    kinds = stroop_kinds(labels)
    _, null_a = selectivity.select_all({"a": (top_a.index, top_a.value)}, kinds, 11, 30)
    _, null_b = selectivity.select_all({"b": (top_b.index, top_b.value)}, kinds, 11, 30)
    _, both = selectivity.select_all({"a": (top_a.index, top_a.value),
                                      "b": (top_b.index, top_b.value)}, kinds, 11, 30)
    assert set(both) == {*kinds, selectivity.MULTIMODAL}
    for k in both:
        np.testing.assert_allclose(both[k], np.maximum(null_a[k], null_b[k]))


def test_corrected_p_counts_the_max_null():
    null = np.array([0.5, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(selectivity.corrected_p(np.array([2.5, 0.1, 9]), null),
                               [2 / 5, 1.0, 1 / 5])


# --- types ----------------------------------------------------------------------------------

def _unit_tests(acts, labels, n=100, perms=200):
    top = topn.stream_topn([(0, acts)], acts.shape[1], n)
    result, null = selectivity.select_all({"b": (top.index, top.value)}, stroop_kinds(labels),
                                          len(COLOR_TERMS), perms, min_n_eff_fraction=0.25)
    return unit_tests(result["b"], null)


def test_classification_recovers_every_planted_type():
    labels = planted.stroop_labels(2000)
    acts = planted.planted_activations(labels)
    tests = _unit_tests(acts, labels)
    col = planted.PLANTED_COLUMNS.index
    means = {"mean_natural": np.full(acts.shape[1], 0.25), "mean_stroop": acts.mean(axis=0),
             "mean_words": np.full(acts.shape[1], 0.25)}
    means["mean_words"][col("any_word")] = 2.2
    maxima = {"natural": np.full(acts.shape[1], 0.6), "stroop": acts.max(axis=0),
              "words": np.full(acts.shape[1], 0.5), **means}
    maxima["words"][col("any_word")] = 2.4
    for s in ("words", "natural"):
        maxima[s][col("dead")] = 0.0
    c = classify(tests, maxima)
    got = dict(zip(planted.PLANTED_COLUMNS, zip(c.type, c.term, c.modality, strict=True),
                   strict=True))
    assert got["color_word_red"] == ("color_word", "red", "")
    assert got["multimodal_green"] == ("color_multimodal", "green", "")
    assert got["color_blue_font"] == ("color_chromatic", "blue", "font")
    assert got["color_black_bg"] == ("color_achromatic", "black", "bg")
    assert got["any_word"] == ("any_word", "", "")
    assert got["dead"] == ("not_activated", "", "")
    assert got["random"][0] == "unassigned" and got["random2"][0] == "unassigned"


def _results(p, best=0, f=0.0, chance=1 / 11):
    n = len(p)
    return KindResult(np.full(n, best), np.full(n, f), np.full(n, chance), np.asarray(p, float))


def test_not_activated_rule_and_thresholds_are_parameters():
    r = _results(np.ones(2))
    tests = UnitTests({k: r for k in ("word", "font", "bg", "color")})
    maxima = {"natural": np.array([1.0, 1.0]), "stroop": np.array([0.4, 0.6])}
    assert list(classify(tests, maxima).type) == ["not_activated", "unassigned"]
    c = classify(tests, maxima, Thresholds(not_activated_ratio=0.3))
    assert list(c.type) == ["unassigned", "unassigned"]


# --- hue and colour terms ----------------------------------------------------------------------

@pytest.mark.parametrize("rgb,deg", [((1, 0, 0), 30.0), ((1, 1, 0), 90.0), ((0, 0, 1), 270.0),
                                     ((0, 1, 1), 150.0 + 60.0)])
def test_opponent_hue_of_primaries(rgb, deg):
    h, c = hue.hue_chroma(np.array(rgb, dtype=float))
    expected = np.degrees(np.arctan2((rgb[0] + rgb[1] - 2 * rgb[2]) / np.sqrt(6),
                                     (rgb[0] - rgb[1]) / np.sqrt(2))) % 360
    assert h == pytest.approx(expected) and c > 0.5
    if rgb != (0, 1, 1):
        assert h == pytest.approx(deg)


def test_dominant_hue_ignores_achromatic_and_padding():
    nf = np.full((10, 10, 3), 0.5)  # grey: ignored
    nf[:3] = (1.0, 0.0, 0.0)  # red, 30 degrees
    nf[3, :2] = (0.0, 0.0, 1.0)  # a little blue
    nf[9] = np.nan  # padding
    assert hue.dominant_hue(nf) == pytest.approx(30.0, abs=1e-6)
    assert np.isnan(hue.dominant_hue(np.full((4, 4, 3), 0.3)))


def test_nearest_color_term_of_palette_and_centre():
    for name, rgb in zip(COLOR_TERMS, PALETTE, strict=True):
        assert hue.nearest_color_term(np.broadcast_to(rgb / 255, (4, 4, 3))) == name
    nf = np.zeros((8, 8, 3))  # black surround, red centre
    nf[2:6, 2:6] = (1, 0, 0)
    assert hue.nearest_color_term(nf) == "red"


# --- CSI ----------------------------------------------------------------------------------

def test_csi_values():
    a = np.array([[2.0, 2.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    g = np.array([[2.0, 2.0], [0.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
    out = csi(a, g)
    np.testing.assert_allclose(out[:3], [0.0, 1.0, 0.0])  # gray stronger: clipped to 0
    assert np.isnan(out[3])


def test_grayscales():
    img = np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    g = luminance_gray(img)
    assert (g[..., 0] == g[..., 1]).all() and g[0, 0, 0] == 76 and g[0, 1, 0] == 29
    rng = np.random.default_rng(0)
    gray = np.repeat(rng.integers(0, 256, (16, 16, 1)), 3, axis=2).astype(np.uint8)
    np.testing.assert_array_equal(opponent_pca_gray(gray, (-4, 20, 2, 10)), gray)
    out = opponent_pca_gray(rng.integers(0, 256, (16, 16, 3)).astype(np.uint8), (4, 8, 4, 8))
    assert (out[4:8, 4:8, 0] == out[4:8, 4:8, 2]).all()


# --- conjunction, null family, testable units, colour modality, sensitivity ---------------------

def test_conjunction_stat_hand_computed():
    z_word = np.array([[5.0, 1.0, 0.0], [0.0, 3.0, 9.0]])
    z_font = np.array([[4.0, 6.0, 0.0], [9.0, 2.0, 1.0]])
    z_bg = np.array([[3.0, 7.0, 8.0], [9.0, 9.0, 0.5]])
    term, stat = selectivity.conjunction_stat([z_word, z_font, z_bg])
    np.testing.assert_array_equal(term, [0, 1])  # min per colour: [3, 1, 0] and [0, 2, 0.5]
    np.testing.assert_allclose(stat, [3.0, 2.0])


def _stroop_block(n_images=1100, units=40, n=100, seed=0):
    labels = planted.stroop_labels(n_images, seed)
    rng = np.random.default_rng(seed)
    index = np.stack([rng.choice(n_images, n, replace=False) for _ in range(units)])
    return labels, index, np.ones((units, n))


def test_multimodal_25_25_25_unit_has_the_conjunction_z_by_hand():
    labels, index, value = _stroop_block()
    word, font, bg = labels["word"], labels["font_color"], labels["bg_color"]
    rng = np.random.default_rng(3)
    green = COLOR_TERMS.index("green")
    groups = [np.flatnonzero(word == green), np.flatnonzero(font == green),
              np.flatnonzero(bg == green),
              np.flatnonzero((word != green) & (font != green) & (bg != green))]
    index[0] = np.concatenate([rng.choice(g, 25, replace=False) for g in groups])
    result, null = selectivity.select_all({"b": (index, value)}, stroop_kinds(labels), 11, 50)
    conj = result["b"].conjunction
    assert conj.term[0] == green
    np.testing.assert_allclose(conj.f[0], [0.25, 0.25, 0.25])
    chance = np.array([(word == green).mean(), (font == green).mean(), (bg == green).mean()])
    np.testing.assert_allclose(conj.chance[0], chance)
    z = (0.25 - chance) * 10 / np.sqrt(chance * (1 - chance))  # n_eff = 100
    np.testing.assert_allclose(conj.stat[0], z.min())
    assert conj.stat[0] > null[selectivity.MULTIMODAL].max()  # far above every shuffle's max
    # its colour-present f is 0.5 but no single kind reaches 0.3: a colour type would need 0.35+
    assert result["b"].kinds["color"].f[0] == pytest.approx(0.5)


def test_family_null_is_the_max_over_its_kinds():
    nulls = {"font": np.array([1.0, 5.0, 2.0]), "bg": np.array([3.0, 1.0, 2.5]),
             "color": np.array([0.0, 4.0, 4.0]), "word": np.array([9.0, 9.0, 9.0])}
    np.testing.assert_allclose(selectivity.family_null(nulls, ("font", "bg", "color")),
                               [3.0, 5.0, 4.0])


def test_thin_units_are_untestable_and_left_out_of_the_null():
    labels, index, value = _stroop_block(units=30)
    thin = value.copy()
    thin[:10, 4:] = 0.0  # ten units with 4 positive top-N weights: n_eff = 4
    kinds = stroop_kinds(labels)
    _, null_rest = selectivity.select_all({"b": (index[10:], value[10:])}, kinds, 11, 40, 0, 0.25)
    res, null = selectivity.select_all({"b": (index, thin)}, kinds, 11, 40, 0, 0.25)
    for k in null:
        np.testing.assert_allclose(null[k], null_rest[k])  # the thin units set nothing
    assert not res["b"].testable[:10].any() and res["b"].testable[10:].all()
    np.testing.assert_allclose(res["b"].n_eff[:10], 4.0)
    _, null_all = selectivity.select_all({"b": (index, thin)}, kinds, 11, 40, 0, 0.0)
    assert null_all["word"].mean() > null["word"].mean()  # kept in, they raise the null
    tests = unit_tests(res["b"], null)
    assert np.isnan(tests.kinds["word"].p[:10]).all() and np.isnan(tests.multimodal.p[:10]).all()
    maxima = {s: np.ones(30) for s in ("natural", "stroop", "words")}
    types = classify(tests, maxima).type
    assert (types[:10] == "untestable").all()


def test_is_testable_floor_and_fraction():
    n_eff = np.array([0.0, 4.0, 8.0, 24.9, 25.0, 100.0])
    np.testing.assert_array_equal(selectivity.is_testable(n_eff, 100, 0.25),
                                  [False, False, False, False, True, True])
    np.testing.assert_array_equal(selectivity.is_testable(n_eff, 16, 0.25),  # floor of 8
                                  [False, False, True, True, True, True])
    np.testing.assert_array_equal(selectivity.is_testable(n_eff, 100, 0.0),
                                  [False, True, True, True, True, True])


def test_colour_modality_font_bg_both_pooled():
    red, blue = COLOR_TERMS.index("red"), COLOR_TERMS.index("blue")
    #            unit:  font-only, bg-only, both, pooled-only, font red + bg blue (bg larger)
    font = KindResult(np.array([red, 0, red, 0, red]), np.array([.4, .1, .4, .1, .3]),
                      np.full(5, 1 / 11), np.array([.01, 1, .01, 1, .01]))
    bg = KindResult(np.array([0, red, red, 0, blue]), np.array([.1, .4, .4, .1, .5]),
                    np.full(5, 1 / 11), np.array([1, .01, .01, 1, .01]))
    color = KindResult(np.full(5, red), np.array([.45, .45, .8, .4, .5]), np.full(5, 2 / 11),
                       np.array([.01, .01, .01, .01, .01]))
    word = KindResult(np.zeros(5, int), np.full(5, .1), np.full(5, 1 / 11), np.ones(5))
    tests = UnitTests({"word": word, "font": font, "bg": bg, "color": color})
    c = classify(tests, {s: np.ones(5) for s in ("natural", "stroop", "words")})
    assert list(c.type) == ["color_chromatic"] * 5
    assert list(c.term) == ["red", "red", "red", "red", "blue"]
    assert list(c.modality) == ["font", "bg", "both", "pooled", "bg"]
    # the font kind alone (p corrected over the family) types the unit: no pooled bar to pass
    weak = KindResult(color.best, np.full(5, .2), color.chance, np.ones(5))
    c2 = classify(UnitTests({"word": word, "font": font, "bg": bg, "color": weak}),
                  {s: np.ones(5) for s in ("natural", "stroop", "words")})
    assert list(c2.modality) == ["font", "bg", "both", "", "bg"]
    assert c2.type[3] == "unassigned"


def test_sensitivity_grid_counts_every_unit_once_per_setting():
    labels = planted.stroop_labels(2000)
    acts = planted.planted_activations(labels)
    tests = _unit_tests(acts, labels)
    maxima = {s: np.ones(acts.shape[1]) for s in ("natural", "stroop", "words")}
    rule_list = sensitivity.rules()
    assert sum(r.default for r in rule_list) == 1 and rule_list[-1].name == "plain_f"
    rows = sensitivity.count_rows([("b", tests, maxima)], rule_list)
    by_setting = {}
    for r in rows:
        key = (r["rule"], r["alpha"], r["min_selectivity"])
        by_setting[key] = by_setting.get(key, 0) + r["count"]
    assert set(by_setting.values()) == {acts.shape[1]}
    default = {r["type"]: r["count"] for r in rows if r["default"]}
    expected = classify(tests, maxima).type
    assert default == {t: int((expected == t).sum()) for t in TYPES}
    # with every p at 1 the tested rules type nothing, the plain rule still reads f
    none = UnitTests({k: KindResult(r.best, r.f, r.chance, np.ones_like(r.f))
                      for k, r in tests.kinds.items()},
                     ConjunctionResult(tests.multimodal.term, tests.multimodal.f,
                                       tests.multimodal.chance, np.ones(acts.shape[1])))
    rows = sensitivity.count_rows([("b", none, maxima)], rule_list)
    colour = {(r["rule"], r["alpha"], r["min_selectivity"]): r["count"] for r in rows
              if r["type"] == "color_chromatic"}
    assert colour[("plain_f", "", sensitivity.PLAIN_EFFECT)] >= 1
    assert all(v == 0 for k, v in colour.items() if k[0] == "test")
