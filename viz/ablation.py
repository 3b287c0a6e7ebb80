"""The atlas's Ablations page (ablation.html) and the ablation lines of the index and unit pages,
from RUN/ablation/summary.csv (`chromadissect ablate`), read once per atlas build."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from interp.ablation import report
from interp.ablation.report import headline, report_path, summary_path
from interp.rundir import RunDir

#: the metric the index quotes for each selection
WRITTEN = "exp4.written"


def read_summary(run: Path) -> pd.DataFrame | None:
    """RUN/ablation/summary.csv, or None when the run has no ablation rows."""
    path = summary_path(RunDir(run))
    if not path.exists():
        return None
    table = report.read_summary(path)
    return table if len(table) else None


def _num(value: float, spec: str) -> str:
    """A number as the pages show it (NaN: a dash)."""
    return "—" if value is None or math.isnan(value) else format(value, spec)


def groups(table: pd.DataFrame) -> list[tuple[tuple[str, str, str], pd.DataFrame]]:
    """summary.csv's rows per (selection, mode, folder), in file order."""
    return list(table.groupby(["selection", "mode", "folder"], sort=False))


def describe(rows: pd.DataFrame) -> str:
    """How the units were silenced: together (with the count per block) or each alone."""
    units = [u for u in rows["unit"].unique() if u]
    if units and rows["unit"].all():
        return "1 unit silenced alone" if len(units) == 1 else \
            f"{len(units)} units, each silenced alone"
    first = rows.iloc[0]
    return f"{int(first['n_units'])} units silenced together (per block: " \
           f"{first['units_per_block']})"


def unit_href(unit_id: str, blocks: dict[str, list]) -> str | None:
    """A unit's page relative to the atlas root (`blocks`: Site.blocks), None if not in it."""
    block, _, unit = unit_id.rpartition(":")
    return f"units/{blocks[block][1]}/{unit}.html" if block in blocks and unit.isdigit() \
        else None


def section(key: tuple[str, str, str], rows: pd.DataFrame, folder: Path,
            blocks: dict[str, list]) -> dict:
    """One selection and mode: its headline table (unit column when units were silenced one at
    a time), the dose columns it has, its figure."""
    selection, mode, name = key
    shown = headline(rows)
    doses = [c for c in rows.columns if c.startswith("dose_") and rows[c].notna().any()]
    per_unit = bool(rows["unit"].all())
    draws = int(rows["draws"].max())
    head = ["unit"] * per_unit + ["metric", "base %", "ablated %", "delta", "random delta "
                                  "(95% range)", "p", "draws", *(f"{c[5:]}%" for c in doses)]
    body = [{"unit": r["unit"] if per_unit else None, "href": unit_href(r["unit"], blocks),
             "cells": [r["label"], _num(r["base_pct"], ".1f"), _num(r["ablated_pct"], ".1f"),
                       _num(r["delta"], "+.1f"),
                       f"{_num(r['control_lo'], '+.1f')} … {_num(r['control_hi'], '+.1f')}"
                       if r["draws"] else "—",
                       _num(r["p"], ".3f") if r["draws"] else "—", str(int(r["draws"])),
                       *(_num(r[c], "+.1f") for c in doses)]}
             for _, r in shown.iterrows()]
    figure = folder / name / "effects.png"
    return {"selection": selection, "mode": mode, "folder": name, "describe": describe(rows),
            "draws": draws, "floor": _num(1 / (draws + 1), ".3f") if draws else None,
            "head": head, "rows": body,
            "figure": f"../ablation/{name}/effects.png" if figure.exists() else None,
            "effects": f"../ablation/{name}/effects.csv"
            if (folder / name / "effects.csv").exists() else None}


def index_lines(table: pd.DataFrame | None) -> list[dict]:
    """Per selection and mode, what the index says: selection, mode, units and the exp. 4
    written-word delta with its p (for units each silenced alone, the largest |delta|)."""
    lines = []
    for (selection, mode, _), rows in groups(table) if table is not None else []:
        written = rows[rows["metric"] == WRITTEN]
        effect = None
        if len(written):
            top = written.loc[written["delta"].abs().fillna(0).idxmax()]
            unit = f" ({top['unit']}, largest of {len(written)})" if len(written) > 1 else ""
            effect = f"{_num(top['delta'], '+.1f')} points{unit}, p " + \
                (_num(top["p"], ".3f") if top["draws"] else "— (no controls)")
        lines.append({"selection": selection, "mode": mode, "units": describe(rows),
                      "written": effect})
    return lines


def unit_effects(table: pd.DataFrame | None) -> dict[str, list[list[str]]]:
    """unit id -> the table of its unit page (header first): each selection and mode that
    silenced it alone, its headline metrics' delta, p and draws."""
    out: dict[str, list[list[str]]] = {}
    if table is None:
        return out
    for (selection, mode, _), rows in groups(table[table["unit"] != ""]):
        for _, r in headline(rows).iterrows():
            out.setdefault(r["unit"], [["selection / mode", "metric", "delta", "p", "draws"]])
            out[r["unit"]].append([f"{selection} / {mode}", r["label"], _num(r["delta"], "+.1f"),
                                   _num(r["p"], ".3f") if r["draws"] else "—",
                                   str(int(r["draws"]))])
    return out


def ablation_context(run: Path, table: pd.DataFrame, blocks: dict[str, list]) -> dict:
    """What ablation.html shows: one section per selection and mode, the files' links."""
    folder = summary_path(RunDir(run)).parent
    return {"sections": [section(key, rows, folder, blocks) for key, rows in groups(table)],
            "report": report_path(RunDir(run)).exists()}


def ablation_page(site) -> str:
    """ablation.html for the Site of a run (which has read its summary.csv)."""
    return site.render("ablation.html", "", {"page": "ablation"}, model=site.model_name(),
                       **ablation_context(site.run, site.ablation, site.blocks))
