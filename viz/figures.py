"""The paper's per-layer figures (Fig. 2, 3, 5) and the naming tables as bar charts.

Each `*_figure` function takes plain data and returns a matplotlib Figure (no pyplot state);
`write_figures` reads a run and writes PNG + SVG into RUN/figures/.
"""

from __future__ import annotations

import csv
import logging
import math
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from interp.analysis import hue as hue_mod
from interp.analysis.hue import hue_histogram
from interp.analysis.runio import open_analysis
from interp.analysis.types import Thresholds
from interp.rundir import RunDir
from stimuli.palette import IS_ACHROMATIC, PALETTE
from viz import rundata, sensitivity

log = logging.getLogger(__name__)

#: Okabe & Ito (2008) colour-blind-safe categorical palette.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#999999", "#000000")

TYPE_ORDER = ("color_chromatic", "color_achromatic", "color_multimodal", "color_word",
              "any_word", "unassigned", "untestable", "not_activated")
TYPE_COLORS = dict(zip(TYPE_ORDER, ("#D55E00", "#999999", "#CC79A7", "#0072B2", "#56B4E9",
                                    "#F0E442", "#009E73", "#000000"), strict=True))
TYPE_LABELS = {t: t.replace("color_", "colour ").replace("_", " ") for t in TYPE_ORDER}

#: CSI bins of Fig. 2 (Rafegas & Vanrell 2018 style): none, low, medium, high, very high.
CSI_EDGES = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
HUE_BINS = 12


def csi_fractions(csi: np.ndarray) -> np.ndarray:
    """Fraction of units in each CSI bin (NaN units ignored); the last bin includes 1.0."""
    csi = csi[np.isfinite(csi)]
    counts, _ = np.histogram(np.clip(csi, 0, 1), bins=CSI_EDGES)
    return counts / max(len(csi), 1)


def type_fractions(types: list[str]) -> np.ndarray:
    """Fraction of units of each type in TYPE_ORDER (unknown type names count as unassigned)."""
    known = [t if t in TYPE_ORDER else "unassigned" for t in types]
    return np.array([known.count(t) for t in TYPE_ORDER]) / max(len(known), 1)


def _stacked_bars(ax, labels: list[str], fractions: np.ndarray, names: list[str],
                  colors: list) -> None:
    """Stacked bars: one per label (row of `fractions`), one segment per name (column)."""
    bottom = np.zeros(len(labels))
    for j, (name, color) in enumerate(zip(names, colors, strict=True)):
        ax.bar(labels, fractions[:, j] * 100, bottom=bottom, color=color, label=name,
               edgecolor="white", linewidth=0.5)
        bottom += fractions[:, j] * 100
    ax.set_ylabel("% of units in block")
    ax.set_ylim(0, 100)
    ax.tick_params(axis="x", labelrotation=60)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)


def csi_figure(blocks: list[str], fractions: np.ndarray) -> Figure:
    """Fig. 2: colour-selectivity distribution per block, stacked over CSI bins."""
    fig = Figure(figsize=(max(6, 0.5 * len(blocks) + 3), 4.2), layout="constrained")
    ax = fig.add_subplot()
    names = [f"{lo:g} ≤ CSI < {hi:g}" if hi < 1 else f"{lo:g} ≤ CSI ≤ 1"
             for lo, hi in zip(CSI_EDGES[:-1], CSI_EDGES[1:], strict=True)]
    colors = [(0.9, 0.9, 0.9), "#C6DBEF", "#6BAED6", "#2171B5", "#08306B"]
    _stacked_bars(ax, blocks, fractions, names, colors)
    ax.set_title("Colour selectivity index (CSI) per block")
    return fig


def types_figure(blocks: list[str], fractions: np.ndarray) -> Figure:
    """Fig. 5: unit types per block, stacked bars."""
    fig = Figure(figsize=(max(6, 0.5 * len(blocks) + 3), 4.2), layout="constrained")
    ax = fig.add_subplot()
    _stacked_bars(ax, blocks, fractions, [TYPE_LABELS[t] for t in TYPE_ORDER],
                  [TYPE_COLORS[t] for t in TYPE_ORDER])
    ax.set_title("Unit types per block")
    return fig


def hue_figure(units: np.ndarray, corpus: np.ndarray | None, n_units: int,
               edges: np.ndarray | None = None, null: dict | None = None) -> Figure:
    """Fig. 3: hue histogram of colour-selective units (bars in their opponent hue) vs the
    natural corpus, the random-crop null's per-bin range as grey bands, r against the null."""
    edges = hue_mod.as_edges(len(units) if edges is None else edges)
    width = (edges[-1] - edges[0]) / len(units)
    centres = hue_mod.bin_centres(edges)
    fig = Figure(figsize=(7, 4.3), layout="constrained")
    ax = fig.add_subplot()
    x, k = _wrapped(centres, width)
    ax.bar(x, units[k] * 100, width=width * 0.9, color=[_hue_rgb(c) for c in centres[k]],
           edgecolor="black", linewidth=0.5, label=f"colour-selective units (n={n_units})")
    title = "Hue of colour-selective units"
    if null is not None and "hist_lo" in null:
        lo, hi = np.asarray(null["hist_lo"])[k] * 100, np.asarray(null["hist_hi"])[k] * 100
        ax.bar(x, hi - lo, bottom=lo, width=width * 0.4, color="0.45", alpha=0.55,
               label=f"random-crop null NFs ({null.get('interval', 'range')})")
    if corpus is not None:
        order = np.argsort(centres)
        cx = np.concatenate([centres[order] - 360, centres[order], centres[order] + 360])
        ax.plot(cx, np.tile(corpus[order], 3) * 100, "o-", color="black",
                label="natural corpus pixels")
        title += " vs natural corpus" + _r_text(hue_mod.pearson_r(units, corpus), null)
    palette = hue_mod.palette_hues()
    ax.scatter(palette, np.zeros(len(palette)), marker="^", s=40, c=PALETTE[~IS_ACHROMATIC] / 255,
               edgecolors="black", linewidths=0.4, clip_on=False, zorder=3,
               label="palette colours")
    ax.set_xticks(np.arange(0, 361, 60))
    ax.set_xlabel(f"opponent hue (degrees); bins of {width:g}° from {edges[0] % 360:g}°")
    ax.set_ylabel("% of units / pixels")
    ax.set_xlim(0, 360)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    return fig


def _wrapped(centres: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Bar positions on [0, 360] and their bin: a bin across 0 degrees is drawn at both ends."""
    x, k = [], []
    for i, c in enumerate(centres):
        for shift in (-360, 0, 360):
            if c + shift + width / 2 > 0 and c + shift - width / 2 < 360:
                x.append(c + shift)
                k.append(i)
    return np.array(x), np.array(k)


def _r_text(r: float, null: dict | None) -> str:
    """": Pearson r = x (random-crop null: m [lo, hi])", or "" when r is undefined."""
    if not math.isfinite(r):
        return ""
    text = f": Pearson r = {r:.3f}"
    if null is not None and math.isfinite(null.get("mean", math.nan)):
        text += (f"\n(random-crop null: {null['mean']:.3f} [{null['lo']:.3f}, {null['hi']:.3f}],"
                 f" {null.get('interval', 'range')})")
    return text


def _hue_rgb(deg: float) -> tuple[float, float, float]:
    """The most saturated mid-grey-centred RGB of opponent hue `deg` (bars in their own hue)."""
    direction = hue_mod.OPPONENT[1:].T @ [math.cos(math.radians(deg)), math.sin(math.radians(deg))]
    rgb = 0.5 + 0.5 * direction / np.abs(direction).max()
    return tuple(float(v) for v in rgb)


def naming_figure(title: str, rows: list[dict[str, str]]) -> Figure | None:
    """A naming table (one CSV) as grouped horizontal bars of its percentage columns, with the
    `<col>_lo` / `<col>_hi` interval columns (when present) as error bars, not bars."""
    bounds = {c for c in rows[0] if c.endswith(("_lo", "_hi"))} if rows else set()
    pct = [c for c in rows[0] if _is_pct(c) and c not in bounds] if rows else []
    if not pct:
        return None
    text = [c for c in rows[0] if c not in pct and c not in bounds and not _numeric(rows, c)]
    labels = [" / ".join(r[c] for c in text) for r in rows]
    fig = Figure(figsize=(8, 1.2 + 0.25 * len(rows) * len(pct) ** 0.5), layout="constrained")
    ax = fig.add_subplot()
    height = 0.8 / len(pct)
    y = np.arange(len(rows))
    for j, col in enumerate(pct):
        values = np.array([_float(r[col]) for r in rows])
        ax.barh(y + j * height, values, height, label=col, color=OKABE_ITO[j % len(OKABE_ITO)])
        if {f"{col}_lo", f"{col}_hi"} <= bounds:
            lo = np.array([_float(r[f"{col}_lo"]) for r in rows])
            hi = np.array([_float(r[f"{col}_hi"]) for r in rows])
            err = np.nan_to_num(np.stack([values - lo, hi - values]).clip(min=0))
            ax.errorbar(values, y + j * height, xerr=err, fmt="none", ecolor="black",
                        elinewidth=0.6, capsize=1.5)
    ax.set_yticks(y + 0.4 - height / 2, labels)
    ax.invert_yaxis()
    ax.set_xlabel("%")
    ax.set_xlim(0, 100)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig


def _is_pct(column: str) -> bool:
    return any(k in column.lower() for k in ("%", "pct", "percent"))


def _numeric(rows: list[dict[str, str]], column: str) -> bool:
    return all(not math.isnan(_float(r[column])) for r in rows)


def _float(text: str) -> float:
    try:
        return float(text.rstrip("%"))
    except ValueError:
        return math.nan


def footnote(fig: Figure, note: str | None) -> Figure:
    """Print `note` (e.g. the bundled natural set's caveat) under the figure, wrapped to its width;
    the figures built from natural images carry it so that no copy of them travels without it."""
    if note:
        width = max(60, int(fig.get_figwidth() * 14))
        fig.supxlabel(textwrap.fill(note, width), fontsize=7.5, color="#8B1A1A")
    return fig


def save(fig: Figure, out: Path, stem: str) -> list[Path]:
    """Write `stem`.png (150 dpi) and `stem`.svg under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=150)
    fig.set_layout_engine("none")  # the SVG keeps the PNG's layout rather than solving it again
    fig.savefig(paths[1], dpi=150)
    return paths


def write_figures(run: Path, units: list[dict] | None = None) -> list[Path]:
    """Fig. 2, 3, 5, Fig. 5's robustness and one chart per naming table into RUN/figures/;
    returns the PNG paths."""
    run = Path(run)
    units = units if units is not None else rundata.load_units(run)
    out = RunDir(run).figures
    by_block = rundata.by_block(units)
    blocks = list(by_block)
    csi = np.stack([csi_fractions(np.array([u["csi"] for u in by_block[b]])) for b in blocks])
    types = np.stack([type_fractions([u["type"] for u in by_block[b]]) for b in blocks])
    note = rundata.natural_caveat(rundata.run_info(run), short=True)
    unit_hist, corpus, n = hue_data(run, units)
    written = [save(footnote(fig, note), out, stem)[0] for fig, stem in (
        (csi_figure(blocks, csi), "csi_by_block"), (types_figure(blocks, types), "types_by_block"),
        (hue_figure(unit_hist, corpus, n, **hue_extras(run)), "hue_histogram"))]
    robustness = sensitivity.sensitivity_figure(sensitivity.read_rows(run))
    if robustness is not None:
        written.append(save(footnote(robustness, note), out, "types_sensitivity")[0])
    for path in sorted(RunDir(run).naming.glob("exp*.csv")):
        with open(path, newline="") as f:
            fig = naming_figure(f"Naming {path.stem}", list(csv.DictReader(f)))
        if fig is not None:
            written.append(save(fig, out, f"naming_{path.stem}")[0])
    log.info("figures written to %s", out)
    return written


def hue_data(run: Path, units: list[dict]) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(unit hue histogram, corpus histogram or None, number of colour-selective units), Fig. 3.

    Colour-selective = CSI at least the analysis threshold. The histograms are the ones the
    analysis stored (analysis.zarr/natural attrs `unit_hue`, `corpus_hue`); without them the unit
    histogram is computed from neurons.csv and the corpus is left out.
    """
    cut = Thresholds().color_selective_csi
    hues = np.array([u["hue_deg"] if u.get("csi", math.nan) >= cut else math.nan for u in units])
    n = int(np.isfinite(hues).sum())
    attrs = _natural_attrs(run)
    if "unit_hue" in attrs and "corpus_hue" in attrs:
        return np.asarray(attrs["unit_hue"]), np.asarray(attrs["corpus_hue"]), n
    return hue_histogram(hues, HUE_BINS), None, n


def hue_extras(run: Path) -> dict:
    """hue_figure's `edges` and `null` as the analysis stored them (`hue_bins_deg`, `hue_null`);
    None each when absent (edges then follow hue.hue_bin_edges, as hue_data's fallback does)."""
    attrs = _natural_attrs(run)
    edges = attrs.get("hue_bins_deg") if "unit_hue" in attrs else None
    null = attrs.get("hue_null")
    return {"edges": None if edges is None else np.asarray(edges),
            "null": None if null is None else {k: v for k, v in null.items() if k != "key"}}


def _natural_attrs(run: Path) -> dict:
    group = open_analysis(run)
    return dict(group["natural"].attrs) if "natural" in group else {}
