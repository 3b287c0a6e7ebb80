"""A synthetic run directory in the layout of docs/architecture.md, with no model and no extraction.

Used by the viz tests and the atlas benchmark so figures, cards and the atlas can be built and
checked against known contents (e.g. unit 0 of every block is a red colour unit).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import zarr
from PIL import Image

from interp.analysis.hue import hue_histogram
from interp.rundir import RunDir
from stimuli.palette import COLOR_TERMS, PALETTE

UNIT_TYPES = ("not_activated", "color_chromatic", "color_achromatic", "color_word",
              "color_multimodal", "any_word", "unassigned")

NEURON_COLUMNS = (
    "unit_id", "block", "unit", "type", "color_term", "csi", "hue_deg", "nf_color_term",
    "best_word", "f_word", "p_word", "best_font", "f_font", "p_font", "best_bg", "f_bg", "p_bg",
    "best_color", "f_color", "p_color", "max_natural", "max_stroop", "max_words", "max_shapes",
)

#: RN50's bottleneck blocks and their widths: 16 blocks, 15,104 units.
RN50_BLOCKS: dict[str, int] = {
    **{f"layer1.{i}": 256 for i in range(3)}, **{f"layer2.{i}": 512 for i in range(4)},
    **{f"layer3.{i}": 1024 for i in range(6)}, **{f"layer4.{i}": 2048 for i in range(3)},
}

#: Hue (degrees) of each chromatic colour term in the synthetic data.
TERM_HUE = {"red": 0.0, "orange": 39.0, "yellow": 60.0, "green": 120.0, "blue": 240.0,
            "purple": 300.0, "pink": 350.0, "brown": 30.0}


def make_synthetic_run(path: str | Path, blocks: dict[str, int] | None = None, *,
                       nf_size: int = 12, top_n: int = 20, n_stroop: int = 990,
                       seed: int = 0) -> Path:
    """Write run.json, neurons.csv, analysis.zarr (nf, top-N), Stroop labels, naming tables.

    Known answers: unit 0 of every block is `color_chromatic`, colour term red, NF a red blob,
    f_color 0.9; unit 1 is `color_word` for "blue"; blocks of 8+ units have all seven types.
    """
    run = RunDir(path)
    run.path.mkdir(parents=True, exist_ok=True)
    blocks = blocks or {"layer1.0": 16, "layer2.0": 24}
    rng = np.random.default_rng(seed)
    rows = [row for block, n in blocks.items() for row in _block_rows(block, n, rng)]
    _write_csv(run.neurons_csv, rows)
    stroop_labels = _stroop_labels(n_stroop, rng)
    _write_analysis(run, blocks, rows, stroop_labels, nf_size, top_n, rng)
    _write_stroop_store(run, stroop_labels)
    _write_naming(run)
    _write_attributions(run, f"{next(iter(blocks))}:0")
    run.json_path.write_text(json.dumps({
        "model": {"model": "synthetic", "pretrained": "none", "seed": seed,
                  "layers": list(blocks), "n_units": blocks},
        "stimuli": {"stroop": {"samples_per_combo": 1, "limit": n_stroop}},
        "analysis": {"top_n": top_n},
    }, indent=2))
    return run.path


def _block_rows(block: str, n_units: int, rng: np.random.Generator) -> list[dict]:
    """neurons.csv rows for one block; unit i gets type UNIT_TYPES[(i + 1) % 7] after units 0, 1."""
    rows = []
    for unit in range(n_units):
        kind = ("color_chromatic" if unit == 0 else "color_word" if unit == 1
                else UNIT_TYPES[unit % len(UNIT_TYPES)])
        term = "red" if unit == 0 else "blue" if unit == 1 else COLOR_TERMS[int(rng.integers(11))]
        if kind == "color_achromatic":
            term = ("white", "black", "grey")[unit % 3]
        colour_unit = kind in ("color_chromatic", "color_multimodal")
        csi = 0.9 if unit == 0 else float(np.clip(rng.beta(2, 5) + 0.4 * colour_unit, 0, 1))
        f = {k: float(rng.uniform(0.05, 0.3)) for k in ("word", "font", "bg", "color")}
        if kind == "color_word" or kind == "color_multimodal":
            f["word"] = float(rng.uniform(0.5, 0.9))
        if kind.startswith("color_") and kind != "color_word":
            f["color"] = 0.9 if unit == 0 else float(rng.uniform(0.5, 0.95))
        hue = TERM_HUE.get(term, np.nan) if colour_unit else np.nan
        rows.append({
            "unit_id": f"{block}:{unit}", "block": block, "unit": unit, "type": kind,
            "color_term": term if kind not in ("not_activated", "any_word", "unassigned") else "",
            "csi": round(csi, 4), "hue_deg": hue, "nf_color_term": term,
            **{f"best_{k}": term for k in ("word", "font", "bg", "color")},
            **{f"f_{k}": round(v, 4) for k, v in f.items()},
            **{f"p_{k}": round(float(rng.uniform(0, 0.001 if v > 0.5 else 1)), 5)
               for k, v in f.items()},
            "max_natural": round(float(rng.uniform(1, 5)), 3),
            "max_stroop": round(float(rng.uniform(0.1, 1) if kind == "not_activated"
                                      else rng.uniform(2, 6)), 3),
            "max_words": round(float(rng.uniform(1, 6)), 3),
            "max_shapes": round(float(rng.uniform(1, 6)), 3),
        })
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=NEURON_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _stroop_labels(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random word / font_color / bg_color codes, all three different per image."""
    word = np.arange(n) % 11
    font = (word + 1 + rng.integers(0, 10, n)) % 11
    bg = np.array([next(c for c in rng.permutation(11) if c not in (w, f))
                   for w, f in zip(word, font, strict=True)])
    return {"word": word, "font_color": font, "bg_color": bg}


def _nf_image(term: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A blob of the term's palette colour on mid grey, with a NaN padding row at the top."""
    yy, xx = np.mgrid[:size, :size] / (size - 1) - 0.5
    blob = np.exp(-(xx**2 + yy**2) / 0.08)[..., None]
    colour = PALETTE[COLOR_TERMS.index(term)] / 255.0
    nf = (blob * colour + (1 - blob) * 0.5 + rng.normal(0, 0.02, (size, size, 3))).clip(0, 1)
    nf[0] = np.nan
    return nf.astype(np.float32)


def _write_analysis(run: RunDir, blocks: dict[str, int], rows: list[dict],
                    stroop: dict[str, np.ndarray], nf_size: int, top_n: int,
                    rng: np.random.Generator) -> None:
    """analysis.zarr: {set}/{block}/nf, topn_index, topn_value; top-N favour each unit's term."""
    root = zarr.open_group(run.analysis, mode="w")
    # As the analysis stores them: hue histograms (12 bins of 30 degrees) of the corpus and units.
    corpus = np.array([30, 45, 20, 10, 8, 6, 5, 8, 10, 6, 4, 12]) / 164
    root.require_group("natural").attrs.update({
        "corpus_hue": corpus.tolist(), "unit_hue": hue_histogram(
            np.array([r["hue_deg"] if r["csi"] >= 0.25 else np.nan for r in rows]), 12).tolist()})
    by_block = {b: [r for r in rows if r["block"] == b] for b in blocks}
    for set_name in ("natural", "stroop"):
        for block, n in blocks.items():
            group = root.require_group(f"{set_name}/{block}")
            group.attrs["rf_size"] = [nf_size, nf_size]
            nf = np.stack([_nf_image(r["nf_color_term"], nf_size, rng) for r in by_block[block]])
            group.create_array("nf", data=nf, chunks=(min(n, 256), nf_size, nf_size, 3),
                               dimension_names=["unit", "y", "x", "rgb"])
            index, value = _topn(by_block[block], stroop, top_n, rng)
            group.create_array("topn_index", data=index, dimension_names=["unit", "rank"])
            group.create_array("topn_value", data=value, dimension_names=["unit", "rank"])
        root.require_group(block).attrs["rf_size"] = [nf_size, nf_size]


def _topn(rows: list[dict], stroop: dict[str, np.ndarray], top_n: int,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Top-N Stroop images per unit: mostly images whose word is the unit's best word."""
    index = np.empty((len(rows), top_n), dtype=np.int64)
    for i, row in enumerate(rows):
        is_best = stroop["word"] == COLOR_TERMS.index(row["best_word"])
        n_best = min(top_n // 2, int(is_best.sum()))
        index[i, :n_best] = rng.choice(np.flatnonzero(is_best), n_best, replace=False)
        index[i, n_best:] = rng.choice(np.flatnonzero(~is_best), top_n - n_best, replace=False)
    value = np.sort(rng.uniform(1, 5, (len(rows), top_n)), axis=1)[:, ::-1]
    return index, value.astype(np.float32)


def _write_stroop_store(run: RunDir, labels: dict[str, np.ndarray]) -> None:
    """activations.zarr/stroop/labels/* only: what the card needs for Eq. 1 bars."""
    root = zarr.open_group(run.activations, mode="w")
    for kind, codes in labels.items():
        arr = root.create_array(f"stroop/labels/{kind}", data=codes.astype(np.int64),
                                dimension_names=["image"])
        arr.attrs["names"] = list(COLOR_TERMS)


def _write_naming(run: RunDir) -> None:
    """Two small naming tables (CSV + Markdown) in the documented place."""
    naming = run.naming
    naming.mkdir(exist_ok=True)
    table = [{"template": "{}", "group": f"bg {b} / obj {o}", "background_pct": bp,
              "object_pct": op} for (b, o, bp, op) in
             [("achromatic", "achromatic", 63.8, 30.1), ("achromatic", "chromatic", 8.2, 91.08),
              ("chromatic", "achromatic", 99.74, 0.1), ("chromatic", "chromatic", 78.62, 20.0)]]
    for name in ("exp1", "exp2"):
        with open(naming / f"{name}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
        (naming / f"{name}.md").write_text(f"# {name}\n\n| group | bg % |\n|---|---|\n")


def _write_attributions(run: RunDir, unit_id: str) -> None:
    """One unit attribution and one naming attribution image, indexed as `attribute` does."""
    out = run.attributions
    (out / "units").mkdir(parents=True, exist_ok=True)
    (out / "naming").mkdir(exist_ok=True)
    ramp = np.linspace(0, 255, 32 * 32 * 3).reshape(32, 32, 3).astype(np.uint8)
    Image.fromarray(ramp).save(out / "units" / "unit0_ig.png")
    Image.fromarray(ramp[::-1]).save(out / "naming" / "exp1_0.png")
    index = {"units": {unit_id: [{"method": "integrated_gradients", "image": "units/unit0_ig.png",
                                  "set": "stroop", "index": 0}]},
             "naming": [{"experiment": 1, "template": "{}", "index": 0, "set": "shapes",
                         "image": "naming/exp1_0.png", "method": "integrated_gradients",
                         "predicted": 3, "contrast": 5, "correct": 5}]}
    run.attributions_index.write_text(json.dumps(index, indent=2))
