"""The static HTML atlas under RUN/atlas/: index → block pages → unit pages, all from file://.

Fast at 15,104 units: one NF sprite sheet per block and set (CSS background-position), unit data
embedded in each block page as JS (file:// forbids fetch), cards rendered for a chosen subset only.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from PIL import Image

from interp.analysis.runio import open_analysis
from interp.progress import bar
from interp.rundir import RunDir
from viz import ablation, card, figures, probes, rundata
from viz.pages import ASSETS, SPRITE_SETS, TEMPLATES, Site, card_relpath, file_stem, sprite_path

log = logging.getLogger(__name__)

NF_READ_BATCH = 64
#: Processes that render cards (a matplotlib figure is drawn on one core), and the fewest cards
#: per process worth a process's start-up (its imports take seconds).
CARD_PROCESSES = min(4, os.cpu_count() or 1)
CARDS_PER_PROCESS = 8
#: Which score picks the units of each type that get a rendered card.
CARD_SCORE = {"color_chromatic": "f_color", "color_achromatic": "f_color", "color_word": "f_word",
              "color_multimodal": "f_word", "any_word": "max_words"}


def card_path(run: Path, block: str, unit: int) -> Path:
    """Where the card PNG of a unit lives (the atlas and `chromadissect neuron` agree on it)."""
    return RunDir(run).atlas / card_relpath(block, unit)


def select_card_units(units: list[dict], per_type: int) -> list[dict]:
    """The `per_type` best units of each scored type in each block (the ones that get cards)."""
    chosen = []
    for block_units in rundata.by_block(units).values():
        for kind, score in CARD_SCORE.items():
            of_kind = [u for u in block_units if u["type"] == kind]
            of_kind.sort(key=lambda u, s=score: -_finite(u.get(s)))
            chosen += of_kind[:per_type]
    return chosen


def _finite(value) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf


def nf_thumbnail(nf: np.ndarray | None, size: int) -> np.ndarray:
    """An NF (h, w, 3) raw floats, NaN padding -> (size, size, 3) uint8 (mid grey when absent)."""
    if nf is None:
        return np.full((size, size, 3), 128, np.uint8)
    image = Image.fromarray((card.nf_display(nf) * 255).round().astype(np.uint8))
    return np.asarray(image.resize((size, size), Image.Resampling.BOX))


def sprite_sheet(thumbs: np.ndarray, columns: int) -> np.ndarray:
    """(n, s, s, 3) thumbnails -> one image, unit u at row u // columns, column u % columns."""
    n, size = thumbs.shape[:2]
    rows = math.ceil(n / columns)
    sheet = np.full((rows * size, columns * size, 3), 255, np.uint8)
    for u in range(n):
        y, x = divmod(u, columns)
        sheet[y * size:(y + 1) * size, x * size:(x + 1) * size] = thumbs[u]
    return sheet


def block_thumbnails(group, set_name: str, block: str, n_units: int, size: int) -> np.ndarray:
    """Thumbnails of every unit's NF in one block, reading NFs a batch of units at a time."""
    thumbs = np.empty((n_units, size, size, 3), np.uint8)
    for start in range(0, n_units, NF_READ_BATCH):
        batch = rundata.read_array(group, f"{set_name}/{block}/nf",
                                   slice(start, min(start + NF_READ_BATCH, n_units)))
        for i in range(min(NF_READ_BATCH, n_units - start)):
            thumbs[start + i] = nf_thumbnail(None if batch is None else batch[i], size)
    return thumbs


def build_atlas(run: Path, *, cards_per_type: int = 1, thumb: int = 40) -> Path:
    """Write figures, sprites, index, block and unit pages and chosen cards; return index.html."""
    run = Path(run)
    out = RunDir(run).atlas
    units = rundata.load_units(run)
    sizes = rundata.block_sizes(units)
    site = Site(run, sizes, thumb)
    figs = figures.write_figures(run, units)
    (out / "sprites").mkdir(parents=True, exist_ok=True)
    for name in ASSETS:
        shutil.copy(TEMPLATES / name, out / name)
    render_cards(run, select_card_units(units, cards_per_type))
    cards = {u["unit_id"] for u in units if card_path(run, u["block"], u["unit"]).exists()}
    group = open_analysis(run)
    by_block = rundata.by_block(units)
    for block, n in bar(sizes.items(), desc="atlas blocks", unit="block"):
        for set_name in SPRITE_SETS:
            thumbs = block_thumbnails(group, set_name, block, n, thumb)
            sheet = sprite_sheet(thumbs, site.columns(n))
            Image.fromarray(sheet).save(out / sprite_path(block, set_name), quality=90)
        site.write(f"blocks/{file_stem(block)}.html", site.block_page(block, by_block[block]))
        for record in by_block[block]:
            site.write(f"units/{file_stem(block)}/{record['unit']}.html",
                       site.unit_page(record, by_block[block], cards))
    if probes.has_probes(run):
        site.write("probes.html", probes.probes_page(site))
    if site.ablation is not None:
        site.write("ablation.html", ablation.ablation_page(site))
    site.write("index.html", site.index_page(units, figs))
    RunDir(run).atlas_settings.write_text(json.dumps({"thumb": thumb,
                                                       "cards_per_type": cards_per_type}))
    index = RunDir(run).atlas_index
    log.info("atlas of %d units in %d blocks: %s", len(units), len(sizes), index)
    return index


def render_cards(run: Path, records: list[dict], processes: int | None = None) -> None:
    """Render the cards of `records`, skipping cards already newer than neurons.csv; in
    `processes` (default CARD_PROCESSES) spawned processes when there are enough of them."""
    csv_time = RunDir(run).neurons_csv.stat().st_mtime
    todo = [(r, card_path(run, r["block"], r["unit"])) for r in records]
    todo = [(r, p) for r, p in todo if not (p.exists() and p.stat().st_mtime >= csv_time)]
    processes = CARD_PROCESSES if processes is None else processes
    if processes < 2 or len(todo) < CARDS_PER_PROCESS * processes:
        for record, path in bar(todo, desc="unit cards", unit="card"):
            card.write_card(run, record, path)
        return
    # spawn, not fork: the parent's zarr event-loop thread and torch's pools do not survive fork
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        jobs = [pool.submit(card.write_card, run, record, path) for record, path in todo]
        for job in bar(as_completed(jobs), total=len(jobs), desc="unit cards", unit="card"):
            job.result()


def refresh_unit_page(run: Path, record: dict, units: list[dict]) -> None:
    """Rewrite one unit's page (e.g. after `chromadissect neuron` drew its card), if built."""
    settings = rundata.read_json(RunDir(run).atlas_settings)
    if not settings:
        return
    site = Site(run, rundata.block_sizes(units), settings["thumb"])
    block_units = rundata.by_block(units)[record["block"]]
    has_card = card_path(run, record["block"], record["unit"]).exists()
    site.write(f"units/{file_stem(record['block'])}/{record['unit']}.html",
               site.unit_page(record, block_units, {record["unit_id"]} if has_card else set()))
