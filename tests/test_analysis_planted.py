"""End to end on known answers: the planted model through the real extraction, then `analyze`."""

import csv
import shutil

import numpy as np
import pytest

from interp.analysis.analyze import Settings, analyze
from interp.analysis.features import unit_crops
from interp.analysis.runio import open_analysis
from interp.cli import main as cli_main
from interp.extract import extract
from interp.rundir import RunDir
from tests import planted

pytestmark = pytest.mark.slow  # builds real runs: `make test` runs it, `-m "not slow"` skips it

SETTINGS = Settings(top_n=100, n_permutations=200)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted") / "run"
    extract(path, {"model": "tests.planted:build", "pretrained": "none", "seed": 0,
                   "layers": ["units", "pooled"]}, ["natural", "stroop", "words"],
            samples_per_combo=1, limit=990, batch_size=90, workers=0)
    analyze(path, SETTINGS)
    return path


def _rows(run):
    with open(RunDir(run).neurons_csv, newline="") as f:
        return {r["unit_id"]: r for r in csv.DictReader(f)}


@pytest.mark.parametrize("block", ["units", "pooled"])
def test_every_planted_type_is_recovered(run, block):
    rows = _rows(run)
    assert len(rows) == 2 * len(planted.UNITS)
    r = {name: rows[f"{block}:{planted.unit(name)}"] for name in planted.UNITS}
    assert (r["red"]["type"], r["red"]["color_term"]) == ("color_chromatic", "red")
    assert (r["blue"]["type"], r["blue"]["color_term"]) == ("color_chromatic", "blue")
    assert (r["black"]["type"], r["black"]["color_term"]) == ("color_achromatic", "black")
    assert r["dead"]["type"] == "not_activated"
    assert r["edge"]["type"] not in ("color_chromatic", "color_word", "color_multimodal")
    for name in ("noise_a", "noise_b"):
        assert r[name]["type"] in ("unassigned", "not_activated"), name


@pytest.mark.parametrize("block", ["units", "pooled"])
def test_csi_of_chroma_and_luminance_units(run, block):
    r = {name: _rows(run)[f"{block}:{planted.unit(name)}"] for name in planted.UNITS}
    assert float(r["red"]["csi"]) > 0.95 and float(r["blue"]["csi"]) > 0.95
    assert float(r["edge"]["csi"]) < 0.05 and float(r["black"]["csi"]) < 0.05
    assert r["dead"]["csi"] == ""  # never activated: undefined, not 0
    assert abs(float(r["red"]["hue_deg"]) - 30) < 15  # red is at 30 degrees in opponent space


def test_topn_and_crops_of_the_red_unit(run):
    g = open_analysis(run)["stroop/units"]
    index = g["topn_index"][planted.unit("red")]
    crops = unit_crops(run, "stroop", "units", planted.unit("red"), k=9)
    assert len(crops) == 9 and [c[2] for c in crops] == list(index[:9])
    for pixels, valid, _i, labels in crops:
        assert pixels.shape[:2] == valid.shape == (3, 3)  # 3x3 Sobel field
        assert "red" in (labels["font_color"], labels["bg_color"])
    assert g["nf"].shape[1:] == (3, 3, 3)
    nf = g["nf"][planted.unit("red")]
    assert nf[1, 1, 0] > 0.9 and nf[1, 1, 1:].max() < 0.1  # raw red, not stretched


def test_resume_redoes_only_what_is_missing(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = RunDir(copy).neurons_csv.read_text()
    out = open_analysis(copy, mode="a")
    out["stroop"].attrs["done"] = []  # selectivity and its permutation test: redone
    out["natural/pooled"].attrs["done"] = ["nf", "topn"]  # CSI of this block: redone
    nf_before = out["stroop/pooled/nf"][:]
    analyze(copy, SETTINGS)
    assert RunDir(copy).neurons_csv.read_text() == before
    np.testing.assert_array_equal(open_analysis(copy)["stroop/pooled/nf"][:], nf_before)


def test_cli_refuses_other_settings_and_missing_sets(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert cli_main(["analyze", "--run-dir", str(copy), "--top-n", "7"]) == 1
    assert "analyze" in capsys.readouterr().err
    assert cli_main(["analyze", "--run-dir", str(copy), "--sets", "shapes,stroop"]) == 2


def test_opponent_gray_variant_removes_chroma_only(run):
    from interp.analysis.csi import csi, opponent_gray_activations
    from interp.analysis.geometry import Field
    from interp.analysis.runio import load_set
    from interp.models import load_model
    from interp.rundir import RunDir

    loaded = load_model(**RunDir(run).model_settings())
    g = open_analysis(run)["natural/units"]
    field = Field.from_attrs(g.attrs["field"])
    index, loc, value = g["topn_index"][:], g["topn_loc"][:], g["topn_value"][:]
    a_gray = opponent_gray_activations(loaded, load_set(run, "natural").render, "units", index,
                                       loc, field)
    values = csi(value, a_gray)
    assert values[planted.unit("red")] > 0.95 and values[planted.unit("blue")] > 0.95
    assert np.isnan(values[planted.unit("dead")])


def test_other_thresholds_reclassify_without_recomputing(run, tmp_path):
    from dataclasses import replace

    from interp.analysis.types import Thresholds

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    strict = replace(SETTINGS, thresholds=Thresholds(min_selectivity=0.99))
    analyze(copy, strict)
    rows = _rows(copy)
    red = rows[f"units:{planted.unit('red')}"]
    assert float(red["f_color"]) == 1.0 and red["type"] == "color_chromatic"  # effect 1 >= 0.99
    edge_pooled = rows[f"pooled:{planted.unit('edge')}"]
    assert edge_pooled["type"] not in ("color_chromatic", "color_achromatic")
