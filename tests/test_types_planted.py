"""Unit types on known answers: units planted on label groups of real Stroop images, among
N_UNTUNED untuned units, through the real extraction and `analyze` (issue 9's acceptance test)."""

import csv
from collections import Counter

import pytest
import zarr

from interp.analysis.analyze import FORMAT, Settings, analyze
from interp.extract import extract
from interp.rundir import RunDir
from tests import planted_labels as pl


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted-labels") / "run"
    extract(path, {"model": "tests.planted_labels:build", "pretrained": "none", "seed": 0,
                   "layers": ["units"]}, ["natural", "stroop", "words"],
            samples_per_combo=pl.SPEC["samples_per_combo"], batch_size=110, workers=0,
            stimulus_seed=pl.SPEC["seed"])
    analyze(path, Settings(top_n=pl.TOP_N, n_permutations=200, nf_max_side=8))
    return path


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def rows(run):
    return _csv(RunDir(run).neurons_csv)


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
    # a real font and background effect pushes the word's f below chance (word, font and bg
    # never share a colour), so the conjunction stays far from significance: no partial-null
    # false positive
    both = rows[pl.unit("both_orange")]
    assert both["multimodal_term"] != "orange" or float(both["p_multimodal"]) > 0.5
    assert float(both["f_word"]) < 0.2
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


@pytest.mark.slow
def test_sensitivity_table_default_equals_the_table(run, rows):
    table = _csv(RunDir(run).types_sensitivity_csv)
    default = {r["type"]: int(r["count"]) for r in table if r["default"] == "1"}
    counts = Counter(r["type"] for r in rows)
    assert {t: n for t, n in default.items() if n} == dict(counts)
    settings = {(r["rule"], r["alpha"], r["min_selectivity"]) for r in table}
    assert len(settings) == 10  # 3 x 3 grid + the plain f rule
    # a more lenient effect size keeps every planted word unit
    lenient = [r for r in table if r["rule"] == "test" and r["min_selectivity"] == "0.1"]
    for r in lenient:
        if r["type"] == "color_word":
            assert int(r["count"]) >= 4


@pytest.mark.slow
def test_old_format_analysis_is_recomputed(run, rows, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    out = zarr.open_group(RunDir(copy).analysis, mode="a")
    out.attrs["format"] = 1
    out["stroop/units/selectivity/word/stat"][:] = 0.0  # a stale result must not survive
    analyze(copy, Settings(top_n=pl.TOP_N, n_permutations=200, nf_max_side=8))
    again = _csv(RunDir(copy).neurons_csv)
    assert [r["type"] for r in again] == [r["type"] for r in rows]
    assert zarr.open_group(RunDir(copy).analysis, mode="r").attrs["format"] == FORMAT


@pytest.mark.slow
def test_figures_include_the_sensitivity_figure_and_untestable(run, rows):
    from viz import figures, sensitivity

    written = figures.write_figures(run)
    assert RunDir(run).figures / "types_sensitivity.png" in written
    assert (RunDir(run).figures / "types_sensitivity.svg").exists()
    blocks, types, series = sensitivity.shares(sensitivity.read_rows(run))
    assert blocks == ["units"] and "untestable" in types and len(series) == 10
    default = next(v for k, v in series.items() if k[3])
    assert default["untestable"][0] == pytest.approx(1 / pl.N_UNITS)
    assert "untestable" in figures.TYPE_ORDER
