"""The static atlas: pages, sprites, embedded data, cards and local links, on a synthetic run."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from markupsafe import escape
from PIL import Image

from interp.analysis.runio import open_analysis
from interp.cli import main
from interp.rundir import RunDir
from viz import atlas, rundata
from viz.synthetic import make_synthetic_run

pytestmark = pytest.mark.slow  # builds real runs: `make test` runs it, `-m "not slow"` skips it

BLOCKS = {"layer1.0": 2, "layer2.0": 70}  # layer1.0: one colour unit, one colour-word unit
THUMB = 10


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = make_synthetic_run(tmp_path_factory.mktemp("atlas") / "run", BLOCKS)
    atlas.build_atlas(run, cards_per_type=1, thumb=THUMB)
    return run


def embedded_data(page: Path) -> dict:
    text = page.read_text()
    return json.loads(re.search(r"window\.ATLAS = (.*?);</script>", text).group(1))


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        self.targets += [v for k, v in attrs if k in ("href", "src") and v]


def local_targets(page: Path) -> list[str]:
    parser = _Links()
    parser.feed(page.read_text())
    return parser.targets


def test_every_unit_has_a_page_and_every_block_a_page_and_sprites(run):
    out = RunDir(run).atlas
    assert (out / "index.html").exists()
    for block, n in BLOCKS.items():
        assert (out / "blocks" / f"{block}.html").exists()
        assert len(list((out / "units" / block).glob("*.html"))) == n
        for set_name in atlas.SPRITE_SETS:
            sheet = Image.open(out / "sprites" / f"{block}.{set_name}.jpg")
            columns = min(n, 64)
            assert sheet.size == (columns * THUMB, -(-n // columns) * THUMB)


def test_sprite_tile_of_unit_0_is_its_red_neuron_feature(run):
    sheet = np.asarray(Image.open(RunDir(run).atlas / "sprites" / "layer2.0.natural.jpg"))
    centre = sheet[THUMB // 2, THUMB // 2].astype(int)  # unit 0: a red blob on grey
    assert centre[0] > 200 and centre[1] < 120 and centre[2] < 120
    # unit 65 sits in row 1, column 1 of a 64-column sheet
    tile = sheet[THUMB:2 * THUMB, THUMB:2 * THUMB]
    nf = open_analysis(run)["natural/layer2.0/nf"][65]
    np.testing.assert_allclose(tile.mean(axis=(0, 1)) / 255, np.nanmean(nf, axis=(0, 1)),
                               atol=0.06)


def test_block_page_embeds_every_unit(run):
    data = embedded_data(RunDir(run).atlas / "blocks" / "layer2.0.html")
    assert data["block"] == "layer2.0" and len(data["units"]) == 70
    rows = {r[0]: dict(zip(data["fields"], r, strict=True)) for r in data["units"]}
    units = {u["unit"]: u for u in rundata.load_units(run) if u["block"] == "layer2.0"}
    assert rows[0]["type"] == "color_chromatic" and rows[1]["type"] == "color_word"
    assert all(rows[i]["csi"] == pytest.approx(units[i]["csi"], abs=1e-4) for i in units)
    assert rows[1]["hue_deg"] is None  # NaN becomes null, not the invalid JS token NaN
    assert data["blocks"] == {"layer1.0": [2, "layer1.0"], "layer2.0": [70, "layer2.0"]}


def test_cards_only_for_the_chosen_units(run):
    units = rundata.load_units(run)
    chosen = atlas.select_card_units(units, 1)
    # one per scored type (5 of the 7 types) and block: layer1.0 has only 2 of them
    assert len(chosen) == 2 + 5
    cards = {(p.parent.name, int(p.stem)) for p in (RunDir(run).atlas / "cards").rglob("*.png")}
    assert cards == {(u["block"], u["unit"]) for u in chosen}
    best_word = max((u for u in units if u["block"] == "layer2.0" and u["type"] == "color_word"),
                    key=lambda u: u["f_word"])
    assert best_word in chosen
    page = RunDir(run).atlas / "units" / "layer2.0" / f"{best_word['unit']}.html"
    assert 'class="card"' in page.read_text()


def test_cards_rendered_in_processes_are_the_sequential_ones(run, tmp_path, monkeypatch):
    chosen = atlas.select_card_units(rundata.load_units(run), 1)[:3]
    monkeypatch.setattr(atlas, "CARDS_PER_PROCESS", 1)
    made = {}
    for processes in (1, 2):
        folder = tmp_path / str(processes)
        monkeypatch.setattr(atlas, "card_path", lambda _r, block, unit, _f=folder:
                            _f / f"{block}-{unit}.png")
        atlas.render_cards(run, chosen, processes=processes)
        made[processes] = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert len(made[1]) == 3 and made[1] == made[2]


def test_pages_link_only_to_local_files_that_exist(run):
    out = RunDir(run).atlas
    pages = [out / "index.html", out / "blocks" / "layer1.0.html",
             out / "units" / "layer1.0" / "0.html", out / "units" / "layer2.0" / "69.html",
             out / "units" / "layer2.0" / "1.html"]
    for page in pages:
        text = page.read_text()
        assert "http://" not in text and "https://" not in text and "fetch(" not in text
        for target in local_targets(page):
            if target.startswith("#"):
                continue
            assert (page.parent / target.split("#")[0]).resolve().exists(), (page, target)


def test_unit_page_shows_its_attributions(run):
    page = (RunDir(run).atlas / "units" / "layer1.0" / "0.html").read_text()
    assert '<img src="../../../attributions/units/unit0_ig.png"' in page
    assert "attributions/" not in (RunDir(run).atlas / "units" / "layer1.0" / "1.html").read_text()


def test_unit_pages_link_neighbours(run):
    first = (RunDir(run).atlas / "units" / "layer2.0" / "0.html").read_text()
    last = (RunDir(run).atlas / "units" / "layer2.0" / "69.html").read_text()
    assert 'id="next" href="1.html"' in first and 'id="prev"' not in first
    assert 'id="prev" href="68.html"' in last and 'id="next"' not in last


def test_index_shows_model_figures_naming_and_type_counts(run):
    text = RunDir(run).atlas_index.read_text()
    assert "synthetic / none" in text
    for figure in ("csi_by_block", "types_by_block", "hue_histogram"):
        assert f"../figures/{figure}.png" in text
    assert "background_pct" in text  # naming table rendered from exp1.csv
    assert '<img src="../attributions/naming/exp1_0.png"' in text and "red vs blue" in text
    n_word = sum(u["type"] == "color_word" for u in rundata.load_units(run)
                 if u["block"] == "layer2.0")
    row = re.search(r'<a href="blocks/layer2.0.html">layer2.0</a></td>(.*?)</tr>', text).group(1)
    cells = [int(c) for c in re.findall(r"<td>(\d+)</td>", row)]
    assert cells[0] == 70 and cells[1 + atlas.figures.TYPE_ORDER.index("color_word")] == n_word


def test_text_from_the_run_reaches_the_pages_escaped(tmp_path):
    hostile = '<script>alert("x")</script>'
    run = make_synthetic_run(tmp_path / 'run "<i>', {"layer1.0": 2})
    info = json.loads((run / "run.json").read_text())
    info["model"]["model"] = hostile
    (run / "run.json").write_text(json.dumps(info))
    index = json.loads((run / "attributions" / "index.json").read_text())
    index["naming"][0]["predicted"] = hostile
    (run / "attributions" / "index.json").write_text(json.dumps(index))
    with open(run / "naming" / "exp1.csv", "a") as f:
        f.write(f"{{}},'{hostile}',1,2\n")
    atlas.build_atlas(run, cards_per_type=0, thumb=THUMB)
    text = (run / "atlas" / "index.html").read_text()
    assert "<script>alert" not in text and text.count("<script") == 2  # the page's own two
    assert text.count(escape(hostile)) == 4  # h1, settings table, naming table and caption
    h1 = re.search(r"<h1>(.*?)</h1>", text).group(1)
    assert h1 == f"chromadissect atlas: {escape(hostile)} / none"
    unit = (run / "atlas" / "units" / "layer1.0" / "1.html").read_text()
    assert "<i>" not in unit and f"{escape(run)} layer1.0:1</code>" in unit


def test_neuron_command_adds_its_card_to_the_unit_page(run, tmp_path, capsys):
    run = shutil.copytree(run, tmp_path / "run")
    page = RunDir(run).atlas / "units" / "layer2.0" / "7.html"  # not_activated: no card yet
    assert 'class="card"' not in page.read_text()
    assert main(["neuron", str(run), "layer2.0:7"]) == 0
    capsys.readouterr()
    assert 'class="card"' in page.read_text()
    assert (RunDir(run).atlas / "cards" / "layer2.0" / "7.png").exists()


def test_atlas_of_a_missing_run_is_one_line_error_and_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "no-run"
    assert main(["atlas", "--run-dir", str(missing)]) == 1
    assert "neurons.csv not found; run `chromadissect analyze" in capsys.readouterr().err
    assert not missing.exists()
