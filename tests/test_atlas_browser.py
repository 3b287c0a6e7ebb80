"""The atlas in headless Chromium from file://: index -> block -> unit, type filter, no errors.

Needs Debian's `chromium` (`make test` installs it where missing) and playwright (test extra);
no browser download. Screenshots go to runs/test-artifacts/atlas-browser/ (or
$CHROMADISSECT_ARTIFACTS) for a look by eye.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from interp.rundir import RunDir
from viz import atlas, card, rundata
from viz.synthetic import make_synthetic_run

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (test extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install chromium"),
              pytest.mark.slow]  # a real browser: `make test` runs it, `-m "not slow"` skips it

BLOCKS = {"layer1.0": 8, "layer2.0": 40}
ARTIFACTS = Path(os.environ.get("CHROMADISSECT_ARTIFACTS",
                                Path(__file__).parents[1] / "runs" / "test-artifacts"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = make_synthetic_run(tmp_path_factory.mktemp("browser") / "run", BLOCKS)
    atlas.build_atlas(run, cards_per_type=0, thumb=24)
    units = rundata.load_units(run)
    record = rundata.find_unit(units, "layer1.0:1")
    card.write_card(run, record, atlas.card_path(run, "layer1.0", 1))
    atlas.refresh_unit_page(run, record, units)
    return run


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.errors = []
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("requestfailed", lambda r: page.errors.append(f"failed: {r.url}"))
        yield page
        browser.close()


def shot(page, name: str) -> None:
    out = ARTIFACTS / "atlas-browser"
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)


def test_index_block_unit_filter_and_jump(run, page):
    units = [u for u in rundata.load_units(run) if u["block"] == "layer2.0"]
    page.goto(RunDir(run).atlas_index.resolve().as_uri())
    assert "synthetic / none" in page.text_content("h1")
    shot(page, "1-index")

    page.click("#blocks a:text-is('layer2.0')")
    page.wait_for_url("**/blocks/layer2.0.html")
    assert page.locator("#grid .tile").count() == 40
    shot(page, "2-block")
    sprite = "e => getComputedStyle(e).backgroundImage"
    assert "layer2.0.natural.jpg" in page.locator("#grid .tile").first.evaluate(sprite)
    page.select_option("#nfset", "stroop")
    assert "layer2.0.stroop.jpg" in page.locator("#grid .tile").first.evaluate(sprite)

    page.select_option("#type", "color_word")
    words = [u for u in units if u["type"] == "color_word"]
    tiles = page.locator("#grid .tile")
    assert tiles.count() == len(words) < 40
    assert all("t-color_word" in tiles.nth(i).get_attribute("class") for i in range(len(words)))
    assert page.text_content("#count") == f"showing {len(words)} of 40 units"
    page.select_option("#sort", "f_word")
    best = max(words, key=lambda u: u["f_word"])
    assert tiles.first.get_attribute("data-unit") == str(best["unit"])
    shot(page, "3-block-colour-word-by-f-word")

    tiles.first.click()
    page.wait_for_url(f"**/units/layer2.0/{best['unit']}.html")
    assert page.text_content("h1") == f"layer2.0:{best['unit']}"
    assert "sprites/layer2.0.natural.jpg" in page.locator(".nf-big").first.evaluate(sprite)
    shot(page, "4-unit")

    page.fill("#jump input", "layer9.9:1")
    page.press("#jump input", "Enter")
    assert "unknown block" in page.text_content("#jump-msg")
    page.fill("#jump input", "layer1.0:1")
    page.press("#jump input", "Enter")
    page.wait_for_url("**/units/layer1.0/1.html")
    assert page.locator("img.card").evaluate("img => img.complete && img.naturalWidth") > 0
    shot(page, "5-unit-with-card")
    assert page.errors == []
