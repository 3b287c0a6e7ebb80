"""Figures, unit card and the `neuron` command against a synthetic run with known contents."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from interp.analysis.runio import open_analysis
from interp.cli import main
from interp.errors import ChromaError
from stimuli.palette import COLOR_TERMS
from viz import card, figures, rundata
from viz.synthetic import make_synthetic_run

BLOCKS = {"layer1.0": 16, "layer2.0": 24}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_synthetic_run(tmp_path_factory.mktemp("viz") / "run", BLOCKS)


def test_csi_fractions_bins_and_ignores_nan():
    csi = np.array([0.05, 0.1, 0.3, 0.6, 1.0, 1.2, np.nan])
    np.testing.assert_allclose(figures.csi_fractions(csi), [1, 1, 1, 1, 2] / np.float64(6))


def test_type_fractions_counts_unknown_as_unassigned():
    fr = figures.type_fractions(["color_word", "color_word", "mystery", "not_activated"])
    expected = dict.fromkeys(figures.TYPE_ORDER, 0.0) | {
        "color_word": 0.5, "unassigned": 0.25, "not_activated": 0.25}
    np.testing.assert_allclose(fr, [expected[t] for t in figures.TYPE_ORDER])


def test_label_fractions_eq1_by_hand():
    labels = {"word": np.array([3, 3, 5, 0]), "font_color": np.array([5, 1, 3, 3]),
              "bg_color": np.array([0, 0, 0, 5])}
    top_index = np.array([0, 1, 2])
    weights = np.array([2.0, 1.0, 1.0])
    f = card.label_fractions(top_index, weights, labels)
    red, blue, white = (COLOR_TERMS.index(c) for c in ("red", "blue", "white"))
    assert f["word"][red] == pytest.approx(0.75) and f["word"][blue] == pytest.approx(0.25)
    assert f["font"][blue] == pytest.approx(0.5) and f["font"][red] == pytest.approx(0.25)
    assert f["bg"][white] == pytest.approx(1.0)
    # colour present: font or background, so white (bg of all three) is 1, blue 0.5, red 0.25
    assert f["color"][[white, blue, red]] == pytest.approx([1.0, 0.5, 0.25])


@pytest.mark.slow
def test_write_figures_png_and_svg(run):
    pngs = figures.write_figures(run)
    names = {p.stem for p in pngs}
    assert {"csi_by_block", "types_by_block", "hue_histogram", "naming_exp1"} <= names
    for png in pngs:
        assert png.with_suffix(".svg").stat().st_size > 1000
        width, height = Image.open(png).size
        assert width >= 600 and height >= 300


def test_hue_data_uses_the_analysis_histograms(run):
    units = rundata.load_units(run)
    unit_hist, corpus, n = figures.hue_data(run, units)
    attrs = open_analysis(run)["natural"].attrs
    np.testing.assert_allclose(unit_hist, attrs["unit_hue"])
    np.testing.assert_allclose(corpus, attrs["corpus_hue"])
    assert n == sum(1 for u in units if u["csi"] >= 0.25 and np.isfinite(u["hue_deg"]))


def test_naming_figure_plots_the_percentage_columns():
    rows = [{"color": "red", "n": "4", "font_pct": "50.0", "written_pct": "25.0"},
            {"color": "blue", "n": "4", "font_pct": "0.0", "written_pct": "100.0"}]
    fig = figures.naming_figure("exp4", rows)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["font_pct", "written_pct"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["red", "blue"]
    widths = sorted(p.get_width() for p in ax.patches)
    assert widths == [0.0, 25.0, 50.0, 100.0]
    assert figures.naming_figure("none", [{"a": "x", "b": "1"}]) is None


def test_card_data_of_the_planted_red_unit(run):
    units = rundata.load_units(run)
    record = rundata.find_unit(units, "layer1.0:0")
    data = card.card_data(run, record, with_crops=False)
    nf = data.nf["natural"]
    centre = nf[nf.shape[0] // 2, nf.shape[1] // 2]
    assert centre[0] > 0.8 and centre[1] < 0.3 and centre[2] < 0.3  # a red blob
    assert COLOR_TERMS[int(np.argmax(data.fractions["word"]))] == "red"
    assert data.fractions["word"].sum() == pytest.approx(1.0)
    shown = card.nf_display(nf)
    assert np.isfinite(shown).all() and shown.min() >= 0 and shown.max() <= 1
    assert [t for t, _ in data.attributions] == ["integrated_gradients stroop:0"]
    assert data.attributions[0][1].shape == (32, 32, 3)


def test_neuron_command_prints_record_and_writes_card(run, capsys):
    assert main(["neuron", str(run), "layer2.0:1"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["unit_id"] == "layer2.0:1" and record["type"] == "color_word"
    assert record["hue_deg"] is None  # NaN in the CSV -> null in JSON
    fractions = record["label_fractions"]["word"]
    assert max(fractions, key=fractions.get) == "blue"
    width, height = Image.open(record["card"]).size
    assert width == 12 * card.CARD_DPI and height > 8 * card.CARD_DPI


@pytest.mark.parametrize("unit_id, code, message", [
    ("layer9.9:0", 1, "unknown block 'layer9.9'; blocks are layer1.0, layer2.0"),
    ("layer2.0:24", 1, "unit 24 out of range for layer2.0: units are 0-23"),
    ("layer2.0", 2, "unit 'layer2.0': expected BLOCK:UNIT, e.g. layer3.2:417"),
])
def test_neuron_command_unknown_unit_one_line(run, capsys, unit_id, code, message):
    assert main(["neuron", str(run), unit_id]) == code
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_find_unit_missing_csv_says_what_to_run(tmp_path):
    with pytest.raises(ChromaError, match="chromadissect analyze"):
        rundata.load_units(tmp_path)


def test_neuron_command_out_option(run, tmp_path, capsys):
    out = tmp_path / "cards" / "u.png"
    assert main(["neuron", str(run), "layer1.0:3", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["card"] == str(out)
    assert Image.open(out).size[0] == 12 * card.CARD_DPI
