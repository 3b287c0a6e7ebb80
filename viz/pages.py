"""The atlas pages (index, block, unit) from the jinja2 templates in viz/templates/.

Templates are autoescaped: values reach them as plain data and are escaped where they are written.
Each page embeds what its script needs as window.ATLAS (file:// forbids fetch).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from interp.rundir import RunDir
from viz import ablation, figures, rundata
from viz.rundata import term_name

TEMPLATES = Path(__file__).parent / "templates"
#: Files in TEMPLATES copied as they are beside the pages.
ASSETS = ("atlas.css", "atlas.js")
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                  keep_trailing_newline=True)
ENV.policies["json.dumps_kwargs"] = {"sort_keys": False}  # window.ATLAS keeps the block order

SPRITE_COLUMNS = 64
SPRITE_SETS = ("natural", "stroop")
BLOCK_FIELDS = ("unit", "type", "csi", "hue_deg", "color_term", "color_modality", "f_word",
                "f_font", "f_bg", "f_color", "max_natural", "max_stroop", "max_words")
SORT_FIELDS = {"unit": "unit", "csi": "CSI", "f_color": "f colour (font or bg)",
               "f_word": "f written word", "f_font": "f font colour", "f_bg": "f background",
               "max_stroop": "max on Stroop", "max_words": "max on words"}
UNIT_ROWS = ("type", "color_term", "color_modality", "csi", "hue_deg", "nf_color_term",
             "best_word", "f_word", "p_word", "best_font", "f_font", "p_font", "best_bg", "f_bg",
             "p_bg", "best_color", "f_color", "p_color", "multimodal_term", "f_mm_word",
             "f_mm_font", "f_mm_bg", "p_multimodal", "n_eff", "max_natural", "max_stroop",
             "max_words", "max_shapes", "mean_natural", "mean_stroop", "mean_words")


def sprite_path(block: str, set_name: str) -> str:
    """A block's NF sprite sheet, relative to the atlas root (JPEG: NFs are photo-like)."""
    return f"sprites/{file_stem(block)}.{set_name}.jpg"


def card_relpath(block: str, unit: int) -> str:
    """A unit's card PNG, relative to the atlas root."""
    return f"cards/{file_stem(block)}/{unit}.png"


def file_stem(block: str) -> str:
    """A block name safe as a file name (dotted names like layer3.2 stay as they are)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", block)


def fmt(value) -> str:
    """A table cell: numbers to 4 significant digits, NaN / empty as a dash."""
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return str(value) if value != "" else "—"


def json_value(value):
    """A value for the embedded JS data: rounded floats, None for NaN."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


class Site:
    """Writes the pages of one run's atlas; knows the blocks, their files and the sprite layout."""

    def __init__(self, run: Path, sizes: dict[str, int], thumb: int):
        self.run, self.out, self.sizes, self.thumb = Path(run), RunDir(run).atlas, sizes, thumb
        self.blocks = {b: [n, file_stem(b)] for b, n in sizes.items()}
        self.info = rundata.run_info(self.run)
        self.attributions = rundata.read_json(RunDir(run).attributions_index)
        #: RUN/ablation/summary.csv (None without one) and, per unit silenced alone, its table
        self.ablation = ablation.read_summary(self.run)
        self.unit_ablation = ablation.unit_effects(self.ablation)

    def columns(self, n_units: int) -> int:
        return min(n_units, SPRITE_COLUMNS)

    def write(self, relpath: str, text: str) -> None:
        path = self.out / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def render(self, template: str, root: str, data: dict, **context) -> str:
        """A page from its template; `root` leads back to the atlas root, `data` joins the block
        list in the page's window.ATLAS."""
        atlas = {"root": root, "blocks": self.blocks, **data}
        return ENV.get_template(template).render(root=root, thumb=self.thumb, atlas=atlas,
                                                 **context)

    def sprite(self, block: str, unit: int, set_name: str, scale: int) -> dict:
        """Where a unit's tile sits in its block's sprite sheet, drawn `scale` times larger."""
        cols = self.columns(self.sizes[block])
        size = self.thumb * scale
        return {"set": set_name, "url": sprite_path(block, set_name),
                "x": (unit % cols) * size, "y": (unit // cols) * size,
                "width": cols * size, "height": math.ceil(self.sizes[block] / cols) * size}

    def model_name(self) -> str:
        model = self.info.get("model", {})
        return f"{model.get('model', '?')} / {model.get('pretrained', '?')}"

    def index_page(self, units: list[dict], figure_pngs: list[Path]) -> str:
        """Model and settings, per-block type counts with links, figures, naming tables."""
        counts = Counter((u["block"], u["type"]) for u in units)
        blocks = [{"name": b, "stem": stem, "n": n,
                   "counts": [counts[b, t] for t in figures.TYPE_ORDER]}
                  for b, (n, stem) in self.blocks.items()]
        return self.render(
            "index.html", "", {"page": "index"}, model=self.model_name(), n_units=len(units),
            blocks=blocks, type_labels=[figures.TYPE_LABELS[t] for t in figures.TYPE_ORDER],
            note=rundata.natural_caveat(self.info, short=False), figures=figure_pngs,
            naming_tables=self.naming_tables(),
            naming_images=sorted(RunDir(self.run).naming.glob("*.png")),
            naming_attributions=self.naming_attributions(), settings=settings_rows(self.info),
            probes=(self.out / "probes.html").exists(),
            ablations=ablation.index_lines(self.ablation),
            failure_types=self.info.get("daf", {}).get("results", {}).get("failure_types"))

    def naming_tables(self) -> list[dict]:
        """Each naming experiment's CSV: its path and rows (header first)."""
        tables = []
        for path in sorted(RunDir(self.run).naming.glob("exp*.csv")):
            with open(path, newline="") as f:
                tables.append({"path": path, "rows": list(csv.reader(f))})
        return tables

    def naming_attributions(self, limit: int = 12) -> list[dict]:
        """The first naming attribution maps of `chromadissect attribute`, with captions."""
        entries = self.attributions.get("naming", [])
        folder = RunDir(self.run).attributions
        shown = [e for e in entries if (folder / e["image"]).exists()][:limit]
        return [{"image": e["image"],
                 "caption": f"exp {e.get('experiment', '')} #{e.get('index', '')}: "
                            f"{term_name(e.get('predicted'))} vs {term_name(e.get('contrast'))}"}
                for e in shown]

    def block_page(self, block: str, units: list[dict]) -> str:
        """Thumbnail grid of one block with type filter, sort order and NF set."""
        counts = Counter(u["type"] for u in units)
        types = [(t, figures.TYPE_LABELS[t], counts[t]) for t in figures.TYPE_ORDER if counts[t]]
        rows = [[json_value(u.get(f, math.nan)) for f in BLOCK_FIELDS] for u in units]
        data = {"page": "block", "block": block, "fields": BLOCK_FIELDS, "units": rows,
                "cols": self.columns(len(units)), "thumb": self.thumb,
                "sprites": {s: sprite_path(block, s) for s in SPRITE_SETS}}
        return self.render("block.html", "../", data, block_name=block, n_units=len(units),
                           note=rundata.natural_caveat(self.info, short=True), types=types,
                           sort_fields=SORT_FIELDS.items())

    def unit_page(self, record: dict, block_units: list[dict], cards: set[str]) -> str:
        """One unit: its card (if rendered) or NFs, its numbers, links to neighbours."""
        block, unit, unit_id = record["block"], record["unit"], record["unit_id"]
        attributions = [{"image": e["image"], "method": e.get("method", "")}
                        for e in rundata.unit_attributions(self.run, unit_id, self.attributions)
                        if e["path"].exists()]
        return self.render(
            "unit.html", "../../", {"page": "unit", "block": block}, unit_id=unit_id,
            block_name=block, stem=file_stem(block), unit=unit,
            prev_unit=unit - 1 if unit > 0 else None,
            next_unit=unit + 1 if unit + 1 < len(block_units) else None,
            card=card_relpath(block, unit) if unit_id in cards else None,
            sprites=[self.sprite(block, unit, s, 3) for s in SPRITE_SETS],
            command=f"chromadissect neuron {self.run} {unit_id}",
            note=rundata.natural_caveat(self.info, short=True),
            numbers=[(k, fmt(record[k])) for k in UNIT_ROWS if k in record],
            attributions=attributions, ablation=self.unit_ablation.get(unit_id, []))


def settings_rows(info: dict) -> list[tuple[str, str]]:
    """run.json flattened into (`section.key`, value) rows, long values shortened."""
    rows = []
    for key, value in flatten(info).items():
        text = value if isinstance(value, str) else json.dumps(value)
        rows.append((key, text if len(text) <= 200 else text[:197] + "..."))
    return rows


def flatten(d: dict, prefix: str = "", depth: int = 2) -> dict:
    """Nested dicts to dotted keys, `depth` levels deep."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and depth > 0 and value:
            out.update(flatten(value, f"{prefix}{key}.", depth - 1))
        else:
            out[f"{prefix}{key}"] = value
    return out
