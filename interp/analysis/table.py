"""RUN/neurons.csv: one row per unit, from the arrays of RUN/analysis.zarr."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import zarr

from interp.analysis.selectivity import corrected_p
from interp.analysis.steps import STROOP_KINDS
from interp.analysis.types import KindResult, Thresholds, classify
from interp.rundir import RunDir
from stimuli.palette import COLOR_TERMS

COLUMNS = ("unit_id", "block", "unit", "type", "color_term", "csi", "hue_deg", "nf_color_term",
           "best_word", "f_word", "p_word", "best_font", "f_font", "p_font", "best_bg", "f_bg",
           "p_bg", "best_color", "f_color", "p_color",
           "max_natural", "max_stroop", "max_words", "max_shapes")
MAX_SETS = ("natural", "stroop", "words", "shapes")


def global_null(out: zarr.Group, kind: str) -> np.ndarray:
    """Per permutation, the max over every unit of the permuted statistic of `kind`."""
    return out[f"stroop/selectivity_null/{kind}/null_max"][:]


def kind_results(out: zarr.Group, block: str, nulls: dict[str, np.ndarray]
                 ) -> dict[str, KindResult]:
    res = {}
    for kind in STROOP_KINDS:
        g = out[f"stroop/{block}/selectivity/{kind}"]
        p = corrected_p(g["stat"][:], nulls[kind])
        res[kind] = KindResult(g["best"][:], g["f"][:], g["chance"][:], p)
    return res


def _column(out: zarr.Group, path: str, n: int, fill=np.nan) -> np.ndarray:
    return out[path][:] if path in out else np.full(n, fill)


def block_rows(out: zarr.Group, block: str, nulls: dict, t: Thresholds) -> list[dict]:
    """Rows of one block: types from its selectivity and maxima, plus CSI, hue, NF colour."""
    kinds = kind_results(out, block, nulls)
    n = kinds["color"].best.size
    maxima = {s: _column(out, f"{s}/{block}/max", n) for s in MAX_SETS}
    types, terms = classify(kinds, maxima, t)
    nf_set = "natural" if f"natural/{block}/hue_deg" in out else "stroop"
    csi = _column(out, f"natural/{block}/csi", n)
    hue = _column(out, f"{nf_set}/{block}/hue_deg", n)
    nf_term = _column(out, f"{nf_set}/{block}/nf_color_term", n, -1)
    rows = []
    for u in range(n):
        row = {"unit_id": f"{block}:{u}", "block": block, "unit": u, "type": types[u],
               "color_term": terms[u], "csi": csi[u], "hue_deg": hue[u],
               "nf_color_term": COLOR_TERMS[int(nf_term[u])] if nf_term[u] >= 0 else ""}
        for kind, r in kinds.items():
            row.update({f"best_{kind}": COLOR_TERMS[int(r.best[u])], f"f_{kind}": r.f[u],
                        f"p_{kind}": r.p[u]})
        row.update({f"max_{s}": maxima[s][u] for s in MAX_SETS})
        rows.append(row)
    return rows


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{float(value):.6g}"
    return str(value)


def write_neurons_csv(run_dir: Path, out: zarr.Group, blocks: list[str], sets: list[str],
                      settings) -> Path:
    """Classify every unit and write RUN/neurons.csv atomically; per-block type counts go to
    run.json."""
    nulls = {k: global_null(out, k) for k in STROOP_KINDS}
    path = Path(run_dir) / "neurons.csv"
    tmp = path.with_suffix(".csv.tmp")
    counts = {}
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for block in blocks:
            rows = block_rows(out, block, nulls, settings.thresholds)
            counts[block] = {}
            for row in rows:
                writer.writerow([_fmt(row[c]) for c in COLUMNS])
                counts[block][row["type"]] = counts[block].get(row["type"], 0) + 1
    tmp.replace(path)
    RunDir(run_dir).update({"analysis": {"types_by_block": counts, "sets": sets}})
    return path
