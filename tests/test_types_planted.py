"""Unit types on known answers: units planted on label groups of real Stroop images, among
N_UNTUNED untuned units, through the real extraction and `analyze` (issue 9's acceptance test)."""

import csv

import pytest

from interp.analysis.analyze import Settings, analyze
from interp.extract import extract
from tests import planted_labels as pl


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted-labels") / "run"
    extract(path, {"model": "tests.planted_labels:build", "pretrained": "none", "seed": 0,
                   "layers": ["units"]}, ["natural", "stroop", "words"],
            samples_per_combo=pl.SPEC["samples_per_combo"], batch_size=110, workers=0,
            stimulus_seed=pl.SPEC["seed"])
    analyze(path, Settings(top_n=pl.TOP_N, n_permutations=200, nf_max_side=8))
    with open(path / "neurons.csv", newline="") as f:
        return [r for r in csv.DictReader(f)]


@pytest.mark.slow
@pytest.mark.parametrize("plant", pl.PLANTS, ids=lambda p: p.name)
def test_every_planted_unit_is_typed_right(rows, plant):
    r = rows[pl.unit(plant.name)]
    assert (r["type"], r["color_term"], r["color_modality"]) == \
        (plant.type, plant.term, plant.modality), r


@pytest.mark.slow
def test_planted_f_is_what_was_planted(rows):
    for plant in pl.PLANTS:
        r = rows[pl.unit(plant.name)]
        kind, _, share = plant.shares[0]
        f = float(r[{"word": "f_word", "font_color": "f_font", "bg_color": "f_bg"}[kind]])
        if plant.type != "color_multimodal":
            assert abs(f - share) < 0.02, (plant.name, f)
    mm = rows[pl.unit("multimodal_green")]
    assert mm["multimodal_term"] == "green"
    for k in ("word", "font", "bg"):
        assert abs(float(mm[f"f_mm_{k}"]) - 0.25) < 0.02


@pytest.mark.slow
def test_special_units(rows):
    assert rows[pl.unit("any_word")]["type"] == "any_word"
    assert rows[pl.unit("dead")]["type"] == "not_activated"
    thin = rows[pl.unit("thin")]
    assert thin["type"] == "untestable" and float(thin["n_eff"]) < 5
    assert thin["p_word"] == "" and thin["p_multimodal"] == ""


@pytest.mark.slow
def test_untuned_units_stay_unassigned(rows):
    untuned = rows[len(pl.PLANTS) + len(pl.SPECIAL):]
    assert len(untuned) == pl.N_UNTUNED
    typed = [r["unit_id"] for r in untuned if r["type"] != "unassigned"]
    assert len(typed) <= 0.005 * pl.N_UNTUNED, typed
