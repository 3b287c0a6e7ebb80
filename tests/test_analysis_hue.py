"""Hue bins off the palette's hues, the random-crop null of Fig. 3, and both end to end."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest

from interp.analysis import hue
from interp.analysis.geometry import Axis, Field
from interp.rundir import RunDir
from stimuli.palette import COLOR_TERMS, IS_ACHROMATIC, PALETTE

CHROMATIC_RGB = PALETTE[~IS_ACHROMATIC].astype(int)
ROUNDING = np.array(list(itertools.product((-1, 0, 1), repeat=3)))


# --- bins ------------------------------------------------------------------------------------

def test_palette_hues():
    names = [c for c in COLOR_TERMS if not IS_ACHROMATIC[COLOR_TERMS.index(c)]]
    got = dict(zip(names, hue.palette_hues(), strict=True))
    for name, deg in {"red": 30, "yellow": 90, "green": 150, "blue": 270, "purple": 330,
                      "brown": 60}.items():
        assert got[name] == pytest.approx(deg)  # what made 12 bins from 0 degrees ambiguous
    assert got["pink"] == pytest.approx(20.59, abs=0.01)
    assert got["orange"] == pytest.approx(69.64, abs=0.01)


def test_default_bins_are_centred_on_the_primaries():
    edges = hue.hue_bin_edges(12)
    np.testing.assert_allclose(edges, 15 + 30 * np.arange(13))
    np.testing.assert_allclose(hue.bin_centres(edges), np.arange(1, 13) * 30 % 360)
    assert hue.edge_margin(hue.palette_hues(), edges) > 5  # orange: 5.4 below the 75 edge


@pytest.mark.slow
@pytest.mark.parametrize("n_bins", [*range(1, 37), 48, 60, 72])
def test_no_palette_hue_on_an_edge(n_bins):
    edges = hue.hue_bin_edges(n_bins)
    assert len(edges) == n_bins + 1 and edges[0] >= 0 and edges[-1] - edges[0] == pytest.approx(360)
    margin = hue.edge_margin(hue.palette_hues(), edges)
    assert margin > 0.9  # strictly inside for every bin count, and within rounding of the best
    if n_bins <= 12:
        assert margin >= hue.MIN_EDGE_MARGIN_DEG
    best = max(hue.edge_margin(hue.palette_hues(), off + 360 / n_bins * np.arange(n_bins + 1))
               for off in np.linspace(0, 360 / n_bins, 2001))
    assert margin >= min(best - 0.01, hue.MIN_EDGE_MARGIN_DEG)


@pytest.mark.parametrize("n_bins", [4, 6, 8, 10, 12, 36])
def test_rounding_by_one_keeps_every_palette_colour_in_its_bin(n_bins):
    edges = hue.hue_bin_edges(n_bins)
    for rgb in CHROMATIC_RGB:
        h, _ = hue.hue_chroma(np.clip(rgb + ROUNDING, 0, 255) / 255)
        assert len(set(hue.hue_bin_index(h, edges).tolist())) == 1, rgb


def test_histogram_wraps_past_360_and_drops_nan():
    edges = hue.hue_bin_edges(12)
    np.testing.assert_array_equal(hue.hue_bin_index(np.array([350, 10, 15, 44.9, np.nan]), edges),
                                  [11, 11, 0, 0, -1])
    h = hue.hue_histogram(np.array([350, 10, 30, 200, np.nan]), 12)
    np.testing.assert_allclose(h[[11, 0, 6]], [0.5, 0.25, 0.25])
    np.testing.assert_allclose(hue.hue_histogram([10, 20, 200, np.nan], [0, 90, 180, 270, 360]),
                               [2 / 3, 0, 1 / 3, 0])  # explicit edges are used as given
    assert hue.hue_histogram([np.nan], 12).sum() == 0
    assert hue.pearson_r([1, 2, 3], [2, 4, 6.5]) > 0.99 and np.isnan(hue.pearson_r([1, 1], [1, 2]))


def test_corpus_histogram_uses_the_same_bins():
    corpus = hue.CorpusHue(12)
    corpus.add(np.array([[[255, 0, 0], [128, 128, 128], [255, 192, 203]]], dtype=np.uint8))
    assert corpus.histogram()[0] == 1.0  # red (30) and pink (20.6) in [15, 45); grey ignored
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    corpus = hue.CorpusHue(12)
    corpus.add(image)
    h, c = hue.hue_chroma(image.reshape(-1, 3) / 255)
    np.testing.assert_allclose(corpus.histogram(), hue.hue_histogram(h[c >= hue.CHROMA_THRESHOLD]))


# --- the random-crop null --------------------------------------------------------------------

FIELD = Field(Axis(4, -2, 8), Axis(4, -2, 8))  # 4x4 map on 16x16 images, boxes past the border


def _uniform(rgb):
    return lambda i: np.broadcast_to(np.array(rgb, dtype=np.uint8), (16, 16, 3)).copy()


def _noise(i):
    return np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def _blocks(units=(6, 3), n=5):
    w = np.random.default_rng(1).random((sum(units), n)).astype(np.float32)
    return [hue.NullBlock(w[:units[0]], (4, 4), FIELD), hue.NullBlock(w[units[0]:], (4, 4), FIELD)]


def test_null_pairs_distinct_images_few_locations():
    pool = hue.null_pool(np.random.default_rng(0), 40, 5, pool_images=12)
    assert pool.size == 12 and len(set(pool.tolist())) == 12
    index, loc = hue.null_pairs(np.random.default_rng(1), 30, 5, pool, (3, 7), locs_per_image=2)
    assert index.shape == (30, 5) and loc.shape == (30, 5, 2)
    assert all(len(set(row)) == 5 for row in index.tolist()) and set(index.ravel()) <= set(pool)
    assert loc[..., 0].max() < 3 and loc[..., 1].max() < 7 and loc.min() >= 0
    for image in np.unique(index):
        assert len(np.unique(loc[index == image], axis=0)) <= 2
    again = hue.null_pairs(np.random.default_rng(1), 30, 5, pool, (3, 7), locs_per_image=2)
    np.testing.assert_array_equal(index, again[0])
    np.testing.assert_array_equal(loc, again[1])
    with pytest.raises(ValueError):
        hue.null_pairs(np.random.default_rng(1), 3, 13, pool, (3, 7))


def _reference_nfs(images, index, value, loc, field, max_side):
    """NFs crop by crop: each padded crop's valid pixels summed per f x f cell, weighted."""
    from interp.analysis.features import cell_factor, nf_shape, padded_crop

    f, (ch, cw) = cell_factor(field.size, max_side), nf_shape(field.size, max_side)
    out = np.full((*index.shape[:1], ch, cw, 3), np.nan)
    for u in range(index.shape[0]):
        sums, counts = np.zeros((ch, cw, 3)), np.zeros((ch, cw))
        for i, (y, x), w in zip(index[u], loc[u], np.clip(value[u], 0, None), strict=True):
            crop, valid = padded_crop(images[i], field.box(int(y), int(x)))
            pad = np.zeros((ch * f, cw * f, 3))
            ok = np.zeros((ch * f, cw * f))
            pad[:crop.shape[0], :crop.shape[1]] = np.where(valid[..., None], crop, 0)
            ok[:crop.shape[0], :crop.shape[1]] = valid
            sums += w * pad.reshape(ch, f, cw, f, 3).sum(axis=(1, 3))
            counts += w * ok.reshape(ch, f, cw, f).sum(axis=(1, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[u] = np.where(counts[..., None] > 0, sums / counts[..., None], np.nan)
    return out


@pytest.mark.parametrize("field,map_shape,max_side", [
    (FIELD, (4, 4), 64), (Field(Axis(8, -30, 61), Axis(8, -20, 45)), (3, 3), 16),
    (Field(Axis(1, 0, 1), Axis(1, 0, 1)), (16, 16), 64)])
def test_summed_area_nfs_and_batched_hues_match_crop_by_crop(field, map_shape, max_side):
    from interp.analysis.features import integral_image, neuron_features

    rng = np.random.default_rng(3)
    images = [_noise(i) for i in range(10)]
    images[3][:] = (255, 0, 0)
    index = np.stack([rng.choice(10, 6, replace=False) for _ in range(7)])
    loc = np.stack([rng.integers(0, map_shape[0], (7, 6)), rng.integers(0, map_shape[1], (7, 6))],
                   axis=-1)
    value = rng.random((7, 6)) - 0.2
    value[2] = -1  # never positive: NaN NF, NaN hue
    want = _reference_nfs(images, index, value, loc, field, max_side)
    got = neuron_features(images.__getitem__, index, value, loc, field, max_side)
    np.testing.assert_allclose(got, want, atol=1e-5)  # NaN where NaN
    cached = neuron_features(None, index, value, loc, field, max_side, images_per_step=2,
                             integral=lambda i: integral_image(images[i]))
    np.testing.assert_allclose(cached, got, atol=1e-6)
    want = got
    hues = hue.dominant_hues(want)
    np.testing.assert_allclose(hues, [hue.dominant_hue(u) for u in want], atol=1e-9)
    assert np.isnan(hues[2]) and np.isfinite(np.delete(hues, 2)).all()


def test_null_of_a_uniform_corpus_is_r_1():
    corpus = hue.CorpusHue(12)
    corpus.add(_uniform((0, 0, 255))(0))
    edges = hue.hue_bin_edges(12)
    null = hue.random_crop_null(_uniform((0, 0, 255)), _blocks(), 20, edges, corpus.histogram(),
                                draws=3, seed=0)
    assert null["r"] == pytest.approx([1, 1, 1])
    assert (null["mean"], null["lo"], null["hi"]) == pytest.approx((1, 1, 1))
    assert null["units"] == [9, 9, 9] and null["draws"] == 3
    assert null["interval"] == "min-max of 3 draws"
    np.testing.assert_allclose(null["hist_mean"], corpus.histogram())


def test_null_draws_are_seeded():
    edges = hue.hue_bin_edges(12)
    corpus = hue.CorpusHue(edges)
    for i in range(20):
        corpus.add(_noise(i))
    args = (_noise, _blocks(), 20, edges, corpus.histogram())
    a = hue.random_crop_null(*args, draws=3, seed=4)
    assert a == hue.random_crop_null(*args, draws=3, seed=4)
    b = hue.random_crop_null(*args, draws=3, seed=5)
    assert a["r"] != b["r"] and len(a["r"]) == 3
    assert a["lo"] <= a["mean"] <= a["hi"]
    assert np.all(np.array(a["hist_lo"]) <= np.array(a["hist_hi"]))
    assert sum(a["hist_mean"]) == pytest.approx(1)


def test_null_summary_and_key():
    s = hue.null_summary(np.array([0.5, np.nan, 0.7]), np.array([[0.2, 0.8], [0.4, 0.6]]))
    assert (s["mean"], s["lo"], s["hi"]) == pytest.approx((0.6, 0.5, 0.7))
    assert s["hist_lo"] == [0.2, 0.6] and s["hist_hi"] == [0.4, 0.8]
    edges = hue.hue_bin_edges(12)
    key = hue.null_key(_blocks(), edges, 20, 5, 0, 64)
    assert key == hue.null_key(_blocks(), edges, 20, 5, 0, 64)
    assert key != hue.null_key(_blocks(), edges, 20, 5, 1, 64)
    assert key != hue.null_key(_blocks((5, 3)), edges, 20, 5, 0, 64)


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_histogram_csv(tmp_path):
    edges = hue.hue_bin_edges(4)
    null = {"hist_mean": [0.1, 0.2, 0.3, 0.4], "hist_lo": [0, 0.1, 0.2, 0.3],
            "hist_hi": [0.2, 0.3, 0.4, 0.5]}
    path = hue.write_histogram_csv(tmp_path / "f" / "h.csv", edges, np.array([1, 0, 0, 0.0]),
                                   np.full(4, 0.25), null)
    rows = _csv(path)
    assert [r["lo_deg"] for r in rows] == ["75", "165", "255", "345"] and rows[3]["hi_deg"] == "75"
    assert float(rows[1]["null_hi"]) == 0.3 and float(rows[0]["unit_fraction"]) == 1
    no_null = hue.write_histogram_csv(tmp_path / "g.csv", edges, np.zeros(4), np.zeros(4), None)
    assert _csv(no_null)[0]["null_mean"] == "nan"


def test_hue_figure_shows_the_null():
    from viz import figures

    units = np.array([0.5, 0.25, 0.25, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    corpus = np.arange(12, 0, -1) / 78
    null = {"mean": 0.93, "lo": 0.9, "hi": 0.95, "interval": "min-max of 5 draws",
            "hist_lo": [0.0] * 12, "hist_hi": [0.1] * 12}
    fig = figures.hue_figure(units, corpus, 7, hue.hue_bin_edges(12), null)
    ax = fig.axes[0]
    assert "random-crop null: 0.930 [0.900, 0.950]" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("random-crop null" in t for t in labels)
    # 12 unit bars + 12 null bars, the bin across 0 degrees drawn at both ends: 13 + 13
    assert len(ax.patches) == 26
    assert "random-crop" not in figures.hue_figure(units, corpus, 7).axes[0].get_title()


# --- end to end: the planted model through extract + analyze ---------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from interp.analysis.analyze import Settings, analyze
    from interp.extract import extract

    path = tmp_path_factory.mktemp("hue") / "run"
    extract(path, {"model": "tests.planted:build", "pretrained": "none", "seed": 0,
                   "layers": ["units", "pooled"]}, ["natural", "stroop"],
            samples_per_combo=1, limit=120, batch_size=60, workers=0)
    analyze(path, Settings(top_n=16, n_permutations=20))
    return path


@pytest.mark.slow
def test_run_records_bins_null_and_table(run):
    from interp.analysis.runio import open_analysis
    from viz import figures

    analysis = json.loads(RunDir(run).json_path.read_text())["analysis"]
    null = analysis["hue_pearson_r_null"]
    assert len(null["r"]) == hue.NULL_DRAWS and null["lo"] <= null["mean"] <= null["hi"]
    attrs = open_analysis(run)["natural"].attrs
    np.testing.assert_allclose(attrs["hue_bins_deg"], hue.hue_bin_edges(12))
    assert attrs["hue_null"]["seconds"] >= 0 and attrs["hue_pearson_r_null"] == null
    assert len(attrs["hue_null"]["units"]) == hue.NULL_DRAWS
    extras = figures.hue_extras(run)
    np.testing.assert_allclose(extras["edges"], attrs["hue_bins_deg"])
    assert extras["null"]["r"] == null["r"] and "key" not in extras["null"]
    rows = _csv(RunDir(run).hue_histogram_csv)
    assert len(rows) == 12 and rows[0]["lo_deg"] == "15"
    np.testing.assert_allclose([float(r["unit_fraction"]) for r in rows], attrs["unit_hue"],
                               atol=1e-6)
    np.testing.assert_allclose([float(r["null_mean"]) for r in rows],
                               attrs["hue_null"]["hist_mean"], atol=1e-6)
    fig = figures.hue_figure(*figures.hue_data(run, []), **extras)
    assert "random-crop null" in fig.axes[0].get_title()


@pytest.mark.slow
def test_rerun_reuses_the_null(run, tmp_path, monkeypatch):
    import shutil

    from interp.analysis.analyze import Settings, analyze
    from interp.analysis.runio import open_analysis

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = open_analysis(copy)["natural"].attrs["hue_null"]

    def boom(*args, **kwargs):
        raise AssertionError("null recomputed")

    monkeypatch.setattr(hue, "random_crop_null", boom)
    analyze(copy, Settings(top_n=16, n_permutations=20))
    assert open_analysis(copy)["natural"].attrs["hue_null"] == before
