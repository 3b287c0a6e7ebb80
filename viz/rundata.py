"""Read what the analysis left in a run directory (neurons.csv, analysis.zarr, run.json, naming/).

The viz side never runs a model: everything it draws comes through these readers.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import zarr

from interp.errors import ChromaError
from interp.rundir import RunDir
from interp.units import parse_unit_id
from stimuli import natural
from stimuli.palette import COLOR_TERMS

TEXT_COLUMNS = {"unit_id", "block", "type", "color_term", "color_modality", "nf_color_term",
                "best_word", "best_font", "best_bg", "best_color", "multimodal_term"}
LABEL_KINDS = ("word", "font", "bg", "color")
TERM_PREFIXES = ("best_", "color_term", "nf_", "multimodal_term")  # colour-term columns


def load_units(run: Path) -> list[dict]:
    """neurons.csv as one dict per unit (numbers parsed, NaN for empty), in file order."""
    path = RunDir(run).neurons_csv
    if not path.exists():
        raise ChromaError(f"{path} not found; run `chromadissect analyze --run-dir {run}` first")
    with open(path, newline="") as f:
        return [_parse_row(row) for row in csv.DictReader(f)]


def _parse_row(row: dict[str, str]) -> dict:
    out: dict = {}
    for key, text in row.items():
        if key in TEXT_COLUMNS:
            out[key] = term_name(text) if key.startswith(TERM_PREFIXES) else text
        elif key == "unit":
            out[key] = int(text)
        else:
            out[key] = float(text) if text not in ("", "None") else math.nan
    return out


def term_name(label) -> str:
    """A colour label as its name, whether given as a name or as a palette index (int or text)."""
    text = str(label)
    return COLOR_TERMS[int(text)] if text.isdigit() and int(text) < len(COLOR_TERMS) else text


def by_block(units: list[dict]) -> dict[str, list[dict]]:
    """Units grouped by block, blocks in the order they appear in neurons.csv."""
    groups: dict[str, list[dict]] = {}
    for u in units:
        groups.setdefault(u["block"], []).append(u)
    return groups


def block_sizes(units: list[dict]) -> dict[str, int]:
    """Block name -> number of units, in the order the blocks appear in neurons.csv."""
    sizes: dict[str, int] = {}
    for u in units:
        sizes[u["block"]] = max(sizes.get(u["block"], 0), u["unit"] + 1)
    return sizes


def find_unit(units: list[dict], unit_id: str) -> dict:
    """The record of `block:unit`, or a one-line error naming the valid blocks / unit range."""
    block, unit = parse_unit_id(unit_id)
    sizes = block_sizes(units)
    if block not in sizes:
        raise ChromaError(f"unknown block {block!r}; blocks are {', '.join(sizes)}")
    if unit >= sizes[block]:
        raise ChromaError(f"unit {unit} out of range for {block}: units are 0-{sizes[block] - 1}")
    return next(u for u in units if u["block"] == block and u["unit"] == unit)


def read_array(group: zarr.Group | None, key: str, units: slice | int) -> np.ndarray | None:
    """group[key][units] or None when that array is absent."""
    if group is None or key not in group:
        return None
    return np.asarray(group[key][units])


def stroop_labels(run: Path) -> dict[str, np.ndarray]:
    """Stroop label codes (word, font_color, bg_color) from the activation store; {} if absent."""
    path = RunDir(run).activations
    if not path.exists():
        return {}
    root = zarr.open_group(path, mode="r")
    return {kind: np.asarray(root[f"stroop/labels/{kind}"][:])
            for kind in ("word", "font_color", "bg_color") if f"stroop/labels/{kind}" in root}


def read_json(path: Path) -> dict:
    """A JSON file as a dict; {} when it does not exist."""
    return json.loads(Path(path).read_text()) if Path(path).exists() else {}


def unit_attributions(run: Path, unit_id: str, index: dict | None = None) -> list[dict]:
    """Entries of RUN/attributions/index.json (or of `index`, read once by the caller) for one
    unit, image paths made absolute."""
    run = RunDir(run)
    if index is None:
        index = read_json(run.attributions_index)
    entries = index.get("units", {}).get(unit_id, [])
    return [{**e, "path": run.attributions / e["image"]} for e in entries]



def natural_provenance(info: dict) -> str | None:
    """`bundled` or `folder` for the run's natural set (run.json; older runs: from natural_dir),
    None when the run has no natural set."""
    spec = info.get("stimuli", {}).get("natural")
    if spec is None:
        return None
    return spec.get("provenance") or ("folder" if spec.get("natural_dir") else "bundled")


def natural_caveat(info: dict, short: bool = False) -> str | None:
    """The not-comparable-with-ImageNet note when the natural set is the bundled photos;
    None otherwise."""
    return natural.caveat(short) if natural_provenance(info) == "bundled" else None


def run_info(run: Path) -> dict:
    """RUN/run.json as a dict ({} when absent)."""
    return read_json(RunDir(run).json_path)
