"""Unit card (paper Fig. 4 style): neuron features, top-9 crops, Eq. 1 bars, numbers, attributions.

`card_data` gathers everything from the run (no model); `draw_card` turns it into a Figure.
"""

from __future__ import annotations

import logging
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from interp.analysis import features, selectivity
from interp.analysis.runio import open_analysis
from stimuli.palette import COLOR_TERMS, PALETTE
from viz import rundata

log = logging.getLogger(__name__)

CARD_SETS = ("natural", "stroop")
KIND_TITLES = {"word": "written word", "font": "font colour", "bg": "background colour",
               "color": "colour present (font or bg)"}
#: Stroop label kinds in the store behind each Eq. 1 kind.
STORE_KINDS = {"word": ("word",), "font": ("font_color",), "bg": ("bg_color",),
               "color": ("font_color", "bg_color")}
CARD_DPI = 90


@dataclass
class CardData:
    """Everything a card shows for one unit; absent parts are None / empty and simply not drawn."""

    record: dict
    nf: dict[str, np.ndarray | None] = field(default_factory=dict)
    crops: dict[str, list[tuple]] = field(default_factory=dict)
    fractions: dict[str, np.ndarray] = field(default_factory=dict)
    attributions: list[tuple[str, np.ndarray]] = field(default_factory=list)
    caveat: str | None = None  # the bundled natural set's note, printed at the bottom


def label_fractions(top_index: np.ndarray, top_value: np.ndarray,
                    labels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Eq. 1 for one unit over the 11 colour terms, per kind (word, font, bg, color).

    `labels` maps store kinds (word, font_color, bg_color) to codes per image; for the kind
    `color` an image counts for c when its font or its background is c.
    """
    return {kind: selectivity.label_fractions(top_index[None], top_value[None],
                                              [labels[k] for k in store_kinds],
                                              len(COLOR_TERMS))[0]
            for kind, store_kinds in STORE_KINDS.items() if all(k in labels for k in store_kinds)}


def card_data(run: Path, record: dict, *, with_crops: bool = True) -> CardData:
    """Gather NFs, crops, Eq. 1 fractions and attribution images of one unit from the run."""
    run = Path(run)
    group = open_analysis(run)
    block, unit = record["block"], record["unit"]
    data = CardData(record=record, caveat=rundata.natural_caveat(rundata.run_info(run), True))
    for set_name in CARD_SETS:
        data.nf[set_name] = rundata.read_array(group, f"{set_name}/{block}/nf", unit)
        data.crops[set_name] = unit_crops(run, set_name, block, unit) if with_crops else []
    index = rundata.read_array(group, f"stroop/{block}/topn_index", unit)
    value = rundata.read_array(group, f"stroop/{block}/topn_value", unit)
    labels = rundata.stroop_labels(run)
    if index is not None and value is not None and labels:
        data.fractions = label_fractions(index, value, labels)
    for entry in rundata.unit_attributions(run, record["unit_id"])[:4]:
        if entry["path"].exists():
            title = f"{entry.get('method', '')} {entry.get('set', '')}:{entry.get('index', '')}"
            data.attributions.append((title, np.asarray(Image.open(entry["path"]).convert("RGB"))))
    return data


def unit_crops(run: Path, set_name: str, block: str, unit: int, k: int = 9) -> list[tuple]:
    """Top-k crops through the analysis helper; [] (with a warning) where it cannot give them,
    e.g. a run whose stimulus specs or field attributes are missing."""
    try:
        return list(features.unit_crops(run, set_name, block, unit, k=k))
    except Exception as err:  # a card without crops beats no card; the reason is logged
        log.warning("no %s crops for %s:%d (%s: %s)", set_name, block, unit,
                    type(err).__name__, err)
        return []


def padding_pattern(h: int, w: int) -> np.ndarray:
    """A light checkerboard (h, w, 3): padding must not look like the palette's white or grey."""
    cell = max(1, max(h, w) // 12)
    yy, xx = np.mgrid[:h, :w] // cell
    return np.repeat(np.where((yy + xx) % 2 == 0, 0.78, 0.92)[..., None], 3, axis=2)


def nf_display(nf: np.ndarray) -> np.ndarray:
    """Raw NF (h, w, 3) floats with NaN padding -> RGB floats in [0, 1], padding checkered."""
    shown = np.where(np.isfinite(nf), nf, padding_pattern(*nf.shape[:2]))
    return np.clip(shown, 0, 1)


def crop_display(crop: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """A uint8 crop (h, w, 3) as floats, its padding (valid False) checkered."""
    shown = crop.astype(float) / 255
    if valid is not None:
        shown[~valid] = padding_pattern(*crop.shape[:2])[~valid]
    return shown


def crop_caption(set_name: str, labels: dict) -> str:
    """Short caption of a crop's labels: `RED` + `font blue · bg white`, or the photo's name."""
    term = rundata.term_name
    if set_name in ("stroop", "stroop-white") and "word" in labels:
        return (f"{term(labels['word']).upper()}\nfont {term(labels.get('font_color', '?'))}"
                f" · bg {term(labels.get('bg_color', '?'))}")
    source = labels.get("source", "")
    return Path(str(source)).name[:28] if source != "" else ""


MODALITY_TEXT = {"font": "as font colour", "bg": "as background",
                 "both": "as font and as background", "pooled": "as font or background, pooled"}


def summary_lines(record: dict) -> list[str]:
    """The numbers of a card, one per line."""
    def num(key: str, fmt: str = ".3f") -> str:
        value = record.get(key, math.nan)
        return "—" if not isinstance(value, float) or math.isnan(value) else format(value, fmt)
    lines = [record["unit_id"], f"type: {record.get('type', '?').replace('_', ' ')}"]
    if record.get("color_term"):
        modality = MODALITY_TEXT.get(record.get("color_modality", ""), "")
        lines.append(f"colour term: {record['color_term']}" + (f" ({modality})" if modality
                                                              else ""))
    if record.get("type") == "color_multimodal" or num("p_multimodal") != "—":
        lines.append(f"multimodal test: {record.get('multimodal_term') or '—'}  "
                     f"p={num('p_multimodal', '.2g')}  n_eff={num('n_eff', '.0f')}")
    hue = num("hue_deg", ".0f")
    lines += [f"CSI: {num('csi')}", f"hue: {hue}°" if hue != "—" else "hue: —",
              f"NF colour: {record.get('nf_color_term') or '—'}"]
    for kind in ("word", "font", "bg", "color"):
        lines.append(f"{kind}: {record.get(f'best_{kind}') or '—'}  f={num(f'f_{kind}', '.2f')}"
                     f"  p={num(f'p_{kind}', '.2g')}")
    lines.append("max: " + ", ".join(f"{s} {num(f'max_{s}', '.3g')}"
                                     for s in ("natural", "stroop", "words", "shapes")))
    return lines


def draw_card(data: CardData) -> Figure:
    """The card figure: NFs + numbers on top, crops in the middle, Eq. 1 bars, attributions.

    Laid out by hand (fixed bands, inches) and with crops drawn as one mosaic per set: a layout
    engine and one axes per crop made a card take seconds.
    """
    bands = [("top", 2.7), ("crops", 4.1), ("bars", 2.4)]
    bands += [("attributions", 2.4)] if data.attributions else []
    bands += [("caveat", 0.45)] if data.caveat else []
    height = sum(h for _, h in bands)
    fig = Figure(figsize=(12, height))
    top = height
    for name, h in bands:
        y0, y1 = (top - h) / height, top / height
        top -= h
        {"top": _draw_top, "crops": _draw_crops, "bars": _draw_fractions,
         "attributions": _draw_attributions, "caveat": _draw_caveat}[name](fig, y0, y1, data)
    return fig


def _draw_top(fig: Figure, y0: float, y1: float, data: CardData) -> None:
    h = (y1 - y0) * 0.85
    for i, set_name in enumerate(CARD_SETS):
        ax = fig.add_axes((0.03 + i * 0.2, y0 + 0.02 * (y1 - y0), 0.17, h))
        nf = data.nf.get(set_name)
        if nf is not None:
            ax.imshow(nf_display(nf), interpolation="nearest")
        else:
            ax.text(0.5, 0.5, "no NF", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"neuron feature ({set_name})", fontsize=10)
        ax.set_axis_off()
    fig.text(0.45, y1 - 0.02 * (y1 - y0), "\n".join(summary_lines(data.record)), va="top",
             family="monospace", fontsize=9.5)


def mosaic(tiles: list[np.ndarray], columns: int = 3, gap: int = 2,
           row_gap: int = 2) -> np.ndarray:
    """Equal-sized (h, w, 3) float tiles -> one white-gapped grid image, row-major."""
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    out = np.ones((rows * (h + row_gap), columns * (w + gap) - gap, 3))
    for i, tile in enumerate(tiles):
        y, x = divmod(i, columns)
        out[y * (h + row_gap):y * (h + row_gap) + h, x * (w + gap):x * (w + gap) + w] = tile
    return out


def _draw_crops(fig: Figure, y0: float, y1: float, data: CardData) -> None:
    for i, set_name in enumerate(CARD_SETS):
        ax = fig.add_axes((0.03 + i * 0.5, y0 + 0.01, 0.44, (y1 - y0) * 0.9))
        ax.set_axis_off()
        ax.set_title(f"top-9 {set_name}", fontsize=10)
        crops = data.crops.get(set_name) or []
        if not crops:
            ax.text(0.5, 0.5, "crops not available", ha="center", va="center",
                    transform=ax.transAxes)
            continue
        h, w = crops[0][0].shape[:2]
        gap, row_gap = max(2, w // 6), max(2, h * 3 // 10)
        tiles = [crop_display(c[0], c[1]) for c in crops]
        ax.imshow(mosaic(tiles, gap=gap, row_gap=row_gap), interpolation="nearest")
        for j, (_, _, index, labels) in enumerate(crops):
            y, x = divmod(j, 3)
            ax.text(x * (w + gap) + w / 2, y * (h + row_gap) + h + row_gap * 0.1,
                    f"#{index} {crop_caption(set_name, labels)}", ha="center", va="top",
                    fontsize=6.5, linespacing=1.0)


def _draw_fractions(fig: Figure, y0: float, y1: float, data: CardData) -> None:
    colors = PALETTE / 255
    width = 0.94 / len(KIND_TITLES)
    for i, (kind, title) in enumerate(KIND_TITLES.items()):
        ax = fig.add_axes((0.06 + i * width, y0 + 0.38 * (y1 - y0), width * 0.8,
                           0.5 * (y1 - y0)))
        ax.set_title(f"f ({title})", fontsize=9)
        # colour names under the first chart only: the bars are drawn in the colours themselves
        ax.set_xticks(range(len(COLOR_TERMS)), COLOR_TERMS if i == 0 else [], rotation=90,
                      fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        values = data.fractions.get(kind)
        if values is None:
            ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.bar(range(len(COLOR_TERMS)), values, color=colors, edgecolor="black", linewidth=0.6)
        ax.set_ylim(0, max(1e-3, float(values.max())) * 1.1)
        if i == 0:
            ax.set_ylabel("colour-label selectivity", fontsize=8)


def _draw_attributions(fig: Figure, y0: float, y1: float, data: CardData) -> None:
    n = len(data.attributions)
    for i, (caption, image) in enumerate(data.attributions):
        ax = fig.add_axes((0.03 + i * 0.94 / n, y0 + 0.02, 0.9 / n, (y1 - y0) * 0.8))
        ax.imshow(image)
        ax.set_title(caption, fontsize=8)
        ax.set_axis_off()


def _draw_caveat(fig: Figure, y0: float, y1: float, data: CardData) -> None:
    fig.text(0.03, (y0 + y1) / 2, textwrap.fill(data.caveat or "", 170), va="center",
             fontsize=8, color="#8B1A1A")


def save_card(data: CardData, out: Path) -> Path:
    """Draw a card and write it to `out` (PNG)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_card(data).savefig(out, dpi=CARD_DPI)
    return out


def write_card(run: Path, record: dict, out: Path) -> Path:
    """Render the card of one unit to `out` (PNG)."""
    return save_card(card_data(run, record), out)
