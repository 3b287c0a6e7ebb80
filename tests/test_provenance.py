"""Natural-set provenance: run.json records bundled photos vs a folder, and every reader of the
numbers computed from natural images (figures, atlas index and pages, cards) carries the caveat."""

from __future__ import annotations

import json

import numpy as np
import pytest
from markupsafe import escape
from PIL import Image

from interp.extract import extract
from interp.rundir import RunDir
from stimuli import get_set, natural
from viz import atlas, card, figures, rundata
from viz.synthetic import make_synthetic_run

PLANTED = {"model": "tests.planted:build", "pretrained": "none", "seed": 0, "layers": ["units"]}
BLOCKS = {"layer1.0": 2, "layer2.0": 3}


def _photos(folder, n: int = 2):
    folder.mkdir()
    for i in range(n):
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_caveat_names_the_photos_and_what_is_not_comparable():
    text = natural.caveat()
    for photo in natural.BUNDLED_PHOTOS:
        assert photo.rsplit(".", 1)[0] in text
    assert "hubble_deep_field, ihc, retina are not natural scenes" in text
    for short in (False, True):
        line = natural.caveat(short)
        assert "\n" not in line and "ImageNet" in line
        assert all(k in line for k in ("CSI", "Pearson r", "not-activated", "any-word"))


def test_bundled_and_folder_provenance(tmp_path):
    bundled = get_set("natural", samples_per_combo=2, image_size=32).provenance()
    assert bundled["provenance"] == "bundled" and bundled["caveat"] == natural.caveat()
    assert len(bundled["photos"]) == 8 and bundled["n_images"] == 16
    assert bundled["not_natural_scenes"] == ["hubble_deep_field", "ihc", "retina"]
    folder = _photos(tmp_path / "photos")
    record = get_set("natural", image_size=32, natural_dir=folder).provenance()
    assert record == {"provenance": "folder", "folder": str(folder.resolve()), "n_photos": 2,
                      "n_skipped": 0, "n_images": 2}


def test_extract_records_provenance_in_run_json_and_resumes(tmp_path):
    path = tmp_path / "run"
    for _ in range(2):  # the second run resumes: the record is not a compared setting
        extract(path, PLANTED, ["natural"], samples_per_combo=2, batch_size=8, workers=0)
    spec = RunDir(path).read()["stimuli"]["natural"]
    assert spec["provenance"] == "bundled" and spec["caveat"] == natural.caveat()
    assert spec["natural_dir"] is None and spec["n_sources"] == 8


def test_extract_from_a_folder_has_no_caveat(tmp_path):
    folder = _photos(tmp_path / "photos", 3)
    extract(tmp_path / "run", PLANTED, ["natural"], natural_dir=folder, batch_size=8, workers=0)
    info = RunDir(tmp_path / "run").read()
    assert info["stimuli"]["natural"]["provenance"] == "folder"
    record = info["stimuli"]["natural"]
    assert record["n_photos"] == 3 and "caveat" not in record
    assert rundata.natural_caveat(info) is None


@pytest.mark.parametrize(("spec", "expected"), [
    ({"provenance": "bundled"}, "bundled"), ({"provenance": "folder"}, "folder"),
    ({"natural_dir": None}, "bundled"), ({"natural_dir": "/photos"}, "folder")])
def test_readers_infer_provenance_of_older_runs(spec, expected):
    info = {"stimuli": {"natural": spec}}
    assert rundata.natural_provenance(info) == expected
    assert (rundata.natural_caveat(info, True) is not None) == (expected == "bundled")
    assert rundata.natural_provenance({"stimuli": {"stroop": {}}}) is None


def _synthetic(tmp_path, provenance: str):
    run = make_synthetic_run(tmp_path / provenance, BLOCKS, n_stroop=330)
    info = json.loads(RunDir(run).json_path.read_text())
    info["stimuli"]["natural"] = {"natural_dir": None if provenance == "bundled" else "/photos",
                                  "provenance": provenance}
    RunDir(run).json_path.write_text(json.dumps(info))
    return run


@pytest.mark.slow
def test_figures_built_from_natural_images_carry_the_note(tmp_path, monkeypatch):
    notes = []
    real = figures.footnote
    monkeypatch.setattr(figures, "footnote",
                        lambda fig, note: notes.append(note) or real(fig, note))
    figures.write_figures(_synthetic(tmp_path, "bundled"))
    assert notes == [natural.caveat(short=True)] * 3  # CSI, types, hue histogram
    notes.clear()
    figures.write_figures(_synthetic(tmp_path, "folder"))
    assert notes == [None] * 3


def test_footnote_is_drawn_under_the_figure():
    fig = figures.footnote(figures.csi_figure(["a"], np.array([[1.0, 0, 0, 0, 0]])), "a note")
    assert fig._supxlabel.get_text() == "a note"
    assert figures.footnote(figures.csi_figure(["a"], np.ones((1, 5)) / 5), None)._supxlabel is None


@pytest.mark.slow
def test_atlas_index_and_unit_pages_show_the_note(tmp_path):
    run = _synthetic(tmp_path, "bundled")
    atlas.build_atlas(run, cards_per_type=0, thumb=8)
    out = RunDir(run).atlas
    assert escape(natural.caveat()) in (out / "index.html").read_text()
    short = escape(natural.caveat(short=True))
    assert short in (out / "units" / "layer1.0" / "0.html").read_text()
    assert short in (out / "blocks" / "layer2.0.html").read_text()
    folder = _synthetic(tmp_path, "folder")
    atlas.build_atlas(folder, cards_per_type=0, thumb=8)
    assert 'class="caveat' not in RunDir(folder).atlas_index.read_text()


def test_card_shows_the_note(tmp_path):
    run = _synthetic(tmp_path, "bundled")
    record = rundata.load_units(run)[0]
    data = card.card_data(run, record, with_crops=False)
    assert data.caveat == natural.caveat(short=True)
    texts = [t.get_text().replace("\n", " ") for t in card.draw_card(data).texts]
    assert data.caveat in texts
    folder = _synthetic(tmp_path, "folder")
    assert card.card_data(folder, rundata.load_units(folder)[0], with_crops=False).caveat is None
