"""HTML of the atlas pages (index, block, unit): plain strings, data embedded as window.ATLAS."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from html import escape
from pathlib import Path

from viz import figures, rundata
from viz.rundata import term_name

SPRITE_COLUMNS = 64
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
    return escape(str(value)) if value != "" else "—"


def json_value(value):
    """A value for the embedded JS data: rounded floats, None for NaN."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


class Site:
    """Writes the pages of one run's atlas; knows the blocks, their files and the sprite layout."""

    def __init__(self, run: Path, sizes: dict[str, int], thumb: int):
        self.run, self.out, self.sizes, self.thumb = Path(run), Path(run) / "atlas", sizes, thumb
        self.blocks = {b: [n, file_stem(b)] for b, n in sizes.items()}
        self.info = rundata.run_info(self.run)
        self.attributions = rundata.read_json(self.run / "attributions" / "index.json")

    def columns(self, n_units: int) -> int:
        return min(n_units, SPRITE_COLUMNS)

    def write(self, relpath: str, text: str) -> None:
        path = self.out / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def _page(self, title: str, root: str, data: dict, crumbs: str, body: str) -> str:
        atlas = json.dumps({"root": root, "blocks": self.blocks, **data}).replace("</", "<\\/")
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{root}atlas.css"><style>:root{{--thumb:{self.thumb}px}}</style></head>
<body><header><span class="crumbs">{crumbs}</span>
<form id="jump"><input name="q" size="16" placeholder="layer:unit" aria-label="jump to unit">
<button>go</button> <span id="jump-msg" class="err"></span></form></header>
{body}
<script>window.ATLAS = {atlas};</script><script src="{root}atlas.js"></script></body></html>
"""

    def _sprite_style(self, root: str, block: str, unit: int, set_name: str, scale: int) -> str:
        cols = self.columns(self.sizes[block])
        n_rows = math.ceil(self.sizes[block] / cols)
        x, y = (unit % cols) * self.thumb * scale, (unit // cols) * self.thumb * scale
        return (f"background-image:url('{root}{sprite_path(block, set_name)}');"
                f"background-position:-{x}px -{y}px;"
                f"background-size:{cols * self.thumb * scale}px {n_rows * self.thumb * scale}px")

    def caveat_html(self, short: bool = True) -> str:
        """A visible note when the natural set is the bundled photos (numbers not comparable
        with ImageNet results); empty otherwise."""
        text = rundata.natural_caveat(self.info, short)
        return f'<p class="caveat err" role="note"><b>Note:</b> {escape(text)}</p>' if text else ""

    def model_name(self) -> str:
        model = self.info.get("model", {})
        return f"{model.get('model', '?')} / {model.get('pretrained', '?')}"

    def index_page(self, units: list[dict], figure_pngs: list[Path]) -> str:
        """Model and settings, per-block type counts with links, figures, naming tables."""
        types = figures.TYPE_ORDER
        head = "".join(f"<th>{escape(figures.TYPE_LABELS[t])}</th>" for t in types)
        counts = Counter((u["block"], u["type"]) for u in units)
        rows = []
        for block, (n, stem) in self.blocks.items():
            cells = "".join(f"<td>{counts[block, t]}</td>" for t in types)
            rows.append(f'<tr><td><a href="blocks/{stem}.html">{escape(block)}</a></td>'
                        f"<td>{n}</td>{cells}</tr>")
        figs = "".join(
            f'<p><a href="../figures/{p.stem}.svg"><img src="../figures/{p.name}" '
            f'alt="{escape(p.stem)}" loading="lazy"></a></p>' for p in figure_pngs)
        body = f"""<h1>chromadissect atlas: {escape(self.model_name())}</h1>
<p>{len(units)} units in {len(self.blocks)} blocks. Click a block to browse its units.</p>
{self.caveat_html(short=False)}
<h2>Blocks</h2><table id="blocks"><tr><th>block</th><th>units</th>{head}</tr>{''.join(rows)}</table>
<h2>Figures</h2><div class="figures">{figs}</div>
<h2>Naming experiments</h2>{self.naming_html()}{self.naming_attributions_html()}
<h2>Run settings</h2>{settings_table(self.info)}"""
        return self._page("chromadissect atlas", "", {"page": "index"}, "<b>atlas</b>", body)

    def naming_html(self) -> str:
        naming = self.run / "naming"
        parts = []
        for path in sorted(naming.glob("exp*.csv")):
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            parts.append(f'<h3>{path.stem} <a href="../naming/{path.name}">csv</a></h3>'
                         + html_table(rows))
        for png in sorted(naming.glob("*.png")):
            parts.append(f'<a href="../naming/{png.name}"><img src="../naming/{png.name}" '
                         f'alt="{escape(png.stem)}" width="260" loading="lazy"></a>')
        return "".join(parts) or '<p class="note">no naming results in this run</p>'

    def naming_attributions_html(self, limit: int = 12) -> str:
        """The first naming attribution maps of `chromadissect attribute`, if any."""
        entries = self.attributions.get("naming", [])
        shown = [e for e in entries if (self.run / "attributions" / e["image"]).exists()][:limit]
        figs = "".join(
            f'<figure><a href="../attributions/{escape(e["image"])}"><img src="../attributions/'
            f'{escape(e["image"])}" width="180" loading="lazy" alt="attribution"></a><figcaption>'
            f'exp {escape(str(e.get("experiment", "")))} #{escape(str(e.get("index", "")))}: '
            f'{escape(term_name(e.get("predicted")))} vs {escape(term_name(e.get("contrast")))}'
            f"</figcaption></figure>" for e in shown)
        return f'<h3>Attributions of naming decisions</h3><div class="gallery">{figs}</div>' \
            if figs else ""

    def block_page(self, block: str, units: list[dict]) -> str:
        """Thumbnail grid of one block with type filter, sort order and NF set."""
        present = [t for t in figures.TYPE_ORDER if any(u["type"] == t for u in units)]
        type_opts = "".join(
            f'<option value="{t}">{escape(figures.TYPE_LABELS[t])} '
            f'({sum(u["type"] == t for u in units)})</option>' for t in present)
        sort_opts = "".join(f'<option value="{k}">{escape(v)}</option>'
                            for k, v in SORT_FIELDS.items())
        rows = [[json_value(u.get(f, math.nan)) for f in BLOCK_FIELDS] for u in units]
        data = {"page": "block", "block": block, "fields": BLOCK_FIELDS, "units": rows,
                "cols": self.columns(len(units)), "thumb": self.thumb,
                "sprites": {s: sprite_path(block, s) for s in ("natural", "stroop")}}
        body = f"""<h1>{escape(block)}: {len(units)} units</h1>{self.caveat_html()}
<div class="controls">
<label>type <select id="type">
<option value="all">all ({len(units)})</option>{type_opts}</select></label>
<label>sort by <select id="sort">{sort_opts}</select></label>
<label>neuron feature <select id="nfset"><option value="natural">natural</option>
<option value="stroop">stroop</option></select></label>
<span id="count" class="note"></span></div>
<p class="note">Thumbnails are neuron features; the frame colour is the unit type (as in the types
figure). Hover for numbers, click for the unit page.</p>
<div id="grid"></div>"""
        crumbs = f'<a href="../index.html">atlas</a> › <b>{escape(block)}</b>'
        return self._page(f"{block} · chromadissect", "../", data, crumbs, body)

    def unit_page(self, record: dict, block_units: list[dict], cards: set[str]) -> str:
        """One unit: its card (if rendered) or NFs, its numbers, links to neighbours."""
        block, unit, root = record["block"], record["unit"], "../../"
        stem = file_stem(block)
        links = [f'<a href="../../blocks/{stem}.html">all of {escape(block)}</a>']
        if unit > 0:
            links.insert(0, f'<a id="prev" href="{unit - 1}.html">← {unit - 1}</a>')
        if unit + 1 < len(block_units):
            links.append(f'<a id="next" href="{unit + 1}.html">{unit + 1} →</a>')
        if record["unit_id"] in cards:
            visual = f'<img class="card" src="{root}{card_relpath(block, unit)}" alt="unit card">'
        else:
            nfs = "".join(f'<span class="nf-big" title="NF {s}" '
                          f'style="{self._sprite_style(root, block, unit, s, 3)}"></span>'
                          for s in ("natural", "stroop"))
            command = f"chromadissect neuron {self.run} {record['unit_id']}"
            visual = (f"<p>{nfs}</p><p class=\"note\">Neuron features (natural, Stroop). Full card:"
                      f" <code>{escape(command)}</code></p>")
        numbers = "".join(f"<tr><th>{k}</th><td>{fmt(record.get(k, ''))}</td></tr>"
                          for k in UNIT_ROWS if k in record)
        body = f"""<h1>{escape(record['unit_id'])}</h1>
<p class="neighbours">{' · '.join(links)}</p>
{visual}{self.caveat_html()}
<h2>Numbers</h2><table id="numbers">{numbers}</table>{self.attribution_html(record['unit_id'])}"""
        crumbs = (f'<a href="{root}index.html">atlas</a> › <a href="../../blocks/{stem}.html">'
                  f'{escape(block)}</a> › <b>{unit}</b>')
        return self._page(f"{record['unit_id']} · chromadissect", root,
                          {"page": "unit", "block": block}, crumbs, body)

    def attribution_html(self, unit_id: str) -> str:
        entries = rundata.unit_attributions(self.run, unit_id, self.attributions)
        imgs = "".join(f'<a href="../../../attributions/{escape(e["image"])}">'
                       f'<img src="../../../attributions/{escape(e["image"])}" width="160" '
                       f'alt="{escape(str(e.get("method", "")))}" loading="lazy"></a>'
                       for e in entries if e["path"].exists())
        return f"<h2>Attributions</h2><p>{imgs}</p>" if imgs else ""


def html_table(rows: list[list[str]]) -> str:
    """A CSV (header row first) as an HTML table."""
    if not rows:
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def settings_table(info: dict) -> str:
    """run.json flattened into `section.key | value` rows (long values shortened)."""
    rows = []
    for key, value in flatten(info).items():
        text = value if isinstance(value, str) else json.dumps(value)
        text = text if len(text) <= 200 else text[:197] + "..."
        rows.append(f"<tr><th>{escape(key)}</th><td>{escape(text)}</td></tr>")
    return f"<table id=\"settings\">{''.join(rows)}</table>" if rows else "<p>no run.json</p>"


def flatten(d: dict, prefix: str = "", depth: int = 2) -> dict:
    """Nested dicts to dotted keys, `depth` levels deep."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and depth > 0 and value:
            out.update(flatten(value, f"{prefix}{key}.", depth - 1))
        else:
            out[f"{prefix}{key}"] = value
    return out
