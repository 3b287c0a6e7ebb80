"""RUN/neurons.csv: one row per unit, from the arrays of RUN/analysis.zarr."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import zarr

from interp.analysis import sensitivity
from interp.analysis.selectivity import (
    CONJUNCTION,
    MULTIMODAL,
    BlockSelectivity,
    Conjunction,
    Selectivity,
    corrected_p,
    family_null,
    is_testable,
)
from interp.analysis.steps import STROOP_KINDS
from interp.analysis.types import COLOR_KINDS, ConjunctionResult, KindResult, UnitTests, classify
from interp.rundir import RunDir
from stimuli.palette import COLOR_TERMS

COLUMNS = ("unit_id", "block", "unit", "type", "color_term", "color_modality", "csi", "hue_deg",
           "nf_color_term", "best_word", "f_word", "p_word", "best_font", "f_font", "p_font",
           "best_bg", "f_bg", "p_bg", "best_color", "f_color", "p_color", "multimodal_term",
           "f_mm_word", "f_mm_font", "f_mm_bg", "p_multimodal", "n_eff",
           "max_natural", "max_stroop", "max_words", "max_shapes",
           "mean_natural", "mean_stroop", "mean_words")
MAX_SETS = ("natural", "stroop", "words", "shapes")


def load_nulls(out: zarr.Group) -> dict[str, np.ndarray]:
    """Per permutation, the max over every testable unit of each kind's (and the multimodal
    conjunction's) permuted statistic."""
    g = out["stroop/selectivity_null"]
    return {name: g[f"{name}/null_max"][:] for name in g.group_keys()}


def read_selectivity(out: zarr.Group, block: str, min_n_eff_fraction: float
                     ) -> BlockSelectivity:
    """The selectivity pass's arrays of one block, as `select_all` returned them."""
    sel = out[f"stroop/{block}/selectivity"]
    n_eff = sel["n_eff"][:]
    kinds = {k: Selectivity(*(sel[f"{k}/{a}"][:] for a in ("best", "f", "chance", "stat")))
             for k in STROOP_KINDS}
    m = sel[MULTIMODAL]
    conj = Conjunction(*(m[a][:] for a in ("term", "stat", "f", "chance")))
    top_n = out[f"stroop/{block}/topn_index"].shape[1]
    return BlockSelectivity(kinds, conj, n_eff, is_testable(n_eff, top_n, min_n_eff_fraction))


def unit_tests(sel: BlockSelectivity, nulls: dict[str, np.ndarray]) -> UnitTests:
    """Corrected p of one block's tests: word over units; font, bg and colour present over units
    and the three kinds (one family); the conjunction over units; NaN for untestable units."""
    color_null = family_null(nulls, COLOR_KINDS)

    def p(stat, null):
        return np.where(sel.testable, corrected_p(stat, null), np.nan)

    kinds = {k: KindResult(s.best, s.f, s.chance,
                           p(s.stat, color_null if k in COLOR_KINDS else nulls[k]))
             for k, s in sel.kinds.items()}
    m = sel.conjunction
    multimodal = None if m is None else ConjunctionResult(m.term, m.f, m.chance,
                                                          p(m.stat, nulls[MULTIMODAL]))
    return UnitTests(kinds, multimodal, sel.testable)


def _column(out: zarr.Group, path: str, n: int, fill=np.nan) -> np.ndarray:
    return out[path][:] if path in out else np.full(n, fill)


def block_maxima(out: zarr.Group, block: str, n: int) -> dict[str, np.ndarray]:
    """Max and mean (over images) per-image max of every set, NaN where a set is absent."""
    maxima = {s: _column(out, f"{s}/{block}/max", n) for s in MAX_SETS}
    return maxima | {f"mean_{s}": _column(out, f"{s}/{block}/mean_max", n) for s in MAX_SETS}


def block_inputs(out: zarr.Group, block: str, nulls: dict, settings
                 ) -> tuple[BlockSelectivity, UnitTests, dict[str, np.ndarray]]:
    """What classifying one block takes: its selectivity arrays, tests and maxima."""
    sel = read_selectivity(out, block, settings.min_n_eff_fraction)
    tests = unit_tests(sel, nulls)
    return sel, tests, block_maxima(out, block, sel.n_eff.size)


def block_rows(out: zarr.Group, block: str, sel: BlockSelectivity, tests: UnitTests,
               maxima: dict[str, np.ndarray], settings) -> list[dict]:
    """Rows of one block: types from its tests and maxima, plus CSI, hue, NF colour."""
    kinds, mm = tests.kinds, tests.multimodal
    n = kinds["color"].best.size
    c = classify(tests, maxima, settings.thresholds)
    nf_set = "natural" if f"natural/{block}/hue_deg" in out else "stroop"
    csi = _column(out, f"natural/{block}/csi", n)
    hue = _column(out, f"{nf_set}/{block}/hue_deg", n)
    nf_term = _column(out, f"{nf_set}/{block}/nf_color_term", n, -1)
    rows = []
    for u in range(n):
        row = {"unit_id": f"{block}:{u}", "block": block, "unit": u, "type": c.type[u],
               "color_term": c.term[u], "color_modality": c.modality[u], "csi": csi[u],
               "hue_deg": hue[u], "n_eff": sel.n_eff[u],
               "nf_color_term": COLOR_TERMS[int(nf_term[u])] if nf_term[u] >= 0 else "",
               "multimodal_term": COLOR_TERMS[int(mm.term[u])], "p_multimodal": mm.p[u]}
        row.update({f"f_mm_{k}": mm.f[u, i] for i, k in enumerate(CONJUNCTION)})
        for kind, r in kinds.items():
            row.update({f"best_{kind}": COLOR_TERMS[int(r.best[u])], f"f_{kind}": r.f[u],
                        f"p_{kind}": r.p[u]})
        row.update({f"max_{s}": maxima[s][u] for s in MAX_SETS})
        row.update({f"mean_{s}": maxima[f"mean_{s}"][u] for s in ("natural", "stroop", "words")})
        rows.append(row)
    return rows


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{float(value):.6g}"
    return str(value)


def write_neurons_csv(run_dir: Path, out: zarr.Group, blocks: list[str], sets: list[str],
                      settings) -> Path:
    """Classify every unit and write RUN/neurons.csv atomically; per-block type counts go to
    run.json, the counts under other thresholds to RUN/figures/types_sensitivity.csv."""
    nulls = load_nulls(out)
    run = RunDir(run_dir)
    path = run.neurons_csv
    tmp = path.with_suffix(".csv.tmp")
    counts, inputs = {}, []
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for block in blocks:
            sel, tests, maxima = block_inputs(out, block, nulls, settings)
            inputs.append((block, tests, maxima))
            counts[block] = {}
            for row in block_rows(out, block, sel, tests, maxima, settings):
                writer.writerow([_fmt(row[c]) for c in COLUMNS])
                counts[block][row["type"]] = counts[block].get(row["type"], 0) + 1
    tmp.replace(path)
    sensitivity.write_csv(run.types_sensitivity_csv,
                          sensitivity.count_rows(inputs, sensitivity.rules(settings.thresholds)))
    run.update({"analysis": {"types_by_block": counts, "sets": sets}})
    return path
