"""The ablation's files: per selection its effects, ablated tables and figure
(RUN/ablation/{selection}-{mode}/); the headline table over every selection measured
(RUN/ablation/summary.csv) and its report (RUN/ablation/report.md)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from interp.ablation.effects import HEADLINE, against_controls, metrics
from interp.ablation.selection import Condition
from interp.naming.experiments import EXPERIMENTS, experiment_table
from interp.naming.report import table_stem, write_csv
from interp.rundir import RunDir

Measured = Mapping[str, Mapping[str, float]]  # condition -> metric -> %


def summary_path(run: RunDir) -> Path:
    return run.ablation / "summary.csv"


def report_path(run: RunDir) -> Path:
    return run.ablation / "report.md"


def per_block(cond: Condition) -> str:
    """`layer4.1 29, layer4.2 29`: how many units a condition silences in each block."""
    return ", ".join(f"{b} {len(units)}" for b, units in cond.by_block().items())


def effect_rows(plan, base: Mapping[str, float], measured: Measured) -> list[dict]:
    """One row per condition and metric: base %, ablated %, delta (points)."""
    rows = []
    for cond in plan.conditions:
        for metric, value in measured[cond.name].items():
            rows.append({"condition": cond.name, "kind": cond.kind, "fraction": cond.fraction,
                         "n_units": len(cond.units), "metric": metric, "base_pct": base[metric],
                         "ablated_pct": value, "delta": value - base[metric]})
    return rows


def summary_rows(plan, numbers: Sequence[int], effects: pd.DataFrame,
                 sizes: Mapping[str, int]) -> list[dict]:
    """The headline rows of one selection: per measured condition (the selection, or each
    unit) and metric, the effect against its controls (same blocks) and its doses."""
    chosen = {m.name: m for m in metrics(numbers)}
    rows = []
    measured = [c for c in plan.conditions if c.kind in ("selection", "unit")]
    for cond in measured:
        ctrl = _controls(effects, cond)
        for metric, m in chosen.items():
            mine = effects[(effects["condition"] == cond.name) & (effects["metric"] == metric)]
            delta = float(mine["delta"].iloc[0])
            vs = against_controls(delta, ctrl[ctrl["metric"] == metric]["delta"].to_numpy())
            row = {"selection": plan.selection, "mode": plan.mode, "folder": plan.folder,
                   "unit": cond.units[0] if len(cond.units) == 1 else "",
                   "n_units": len(cond.units), "units_per_block": per_block(cond),
                   "metric": metric, "label": m.label,
                   "images": sizes[EXPERIMENTS[m.experiment].set_name],
                   "base_pct": float(mine["base_pct"].iloc[0]),
                   "ablated_pct": float(mine["ablated_pct"].iloc[0]), "delta": delta,
                   "control_mean": vs.mean, "control_lo": vs.lo, "control_hi": vs.hi,
                   "p": vs.p, "draws": vs.draws}
            for f, d in _doses(effects, metric).items():
                row[f"dose_{round(100 * f):02d}"] = d
            rows.append(row)
    return rows


def _controls(effects: pd.DataFrame, cond) -> pd.DataFrame:
    """The control rows a condition is weighed against: all draws for a selection, the draws
    of its own block for a unit silenced alone (--each)."""
    ctrl = effects[effects["kind"] == "control"]
    if cond.kind == "unit":
        block = next(iter(cond.by_block()))
        ctrl = ctrl[ctrl["condition"].str.startswith(f"control-{block}-")]
    return ctrl


def _doses(effects: pd.DataFrame, metric: str) -> dict[float, float]:
    rows = effects[(effects["kind"] == "dose") & (effects["metric"] == metric)]
    return dict(zip(rows["fraction"], rows["delta"], strict=True))


def write_tables(out: Path, numbers: Sequence[int], base: Mapping, answers: Mapping,
                 labels: Mapping) -> None:
    """The selection's naming tables, `exp{N}.csv`: each percentage ablated, unablated
    (`base_`) and the difference (`delta_`, points)."""
    for n in numbers:
        exp = EXPERIMENTS[n]
        for variant in exp.variants:
            lab = labels[exp.set_name]
            ablated = experiment_table(exp, lambda s, t: answers[s][t], lab, variant)
            clean = experiment_table(exp, lambda s, t: base[s][t], lab, variant)
            rows = []
            for a, b in zip(ablated, clean, strict=True):
                row = dict(a)
                for key in [k for k in a if k.endswith("_pct")]:
                    row[f"base_{key}"] = b[key]
                    row[f"delta_{key}"] = a[key] - b[key]
                rows.append(row)
            write_csv(out / f"{table_stem(exp, variant)}.csv", rows)


def write(run: RunDir, plan, numbers: Sequence[int], base_metrics: Mapping[str, float],
          measured: Measured, base: Mapping, answers: Mapping, labels: Mapping,
          sizes: Mapping[str, int]) -> Path:
    """Every file of one ablate call; merges its rows into summary.csv, rewrites report.md."""
    out = run.ablation / plan.folder
    out.mkdir(parents=True, exist_ok=True)
    effects = pd.DataFrame(effect_rows(plan, base_metrics, measured))
    effects.to_csv(out / "effects.csv", index=False, float_format="%.6g")
    (out / "conditions.json").write_text(json.dumps(
        {c.name: {"kind": c.kind, "fraction": c.fraction, "units": list(c.units)}
         for c in plan.conditions}, indent=1) + "\n")
    if not plan.each:
        write_tables(out, numbers, base, answers["selection"], labels)
    rows = pd.DataFrame(summary_rows(plan, numbers, effects, sizes))
    from interp.ablation.figure import effects_figure  # figure imports this module

    effects_figure(out / "effects.png", rows, effects, plan)
    summary = merge_summary(summary_path(run), rows)
    report_path(run).write_text(report_markdown(summary, run.ablation))
    return report_path(run)


#: summary.csv's text columns, read as text ('' where empty): a selection like `3` stays one
TEXT = ("selection", "mode", "folder", "unit", "units_per_block", "metric", "label")


def read_summary(path: Path) -> pd.DataFrame:
    """summary.csv as a DataFrame; `unit` is "" where a row measures no single unit."""
    table = pd.read_csv(path, dtype=dict.fromkeys(TEXT, str), keep_default_na=False,
                        na_values=[""])
    table[list(TEXT)] = table[list(TEXT)].fillna("")
    return table


def merge_summary(path: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """summary.csv with these rows in place of any earlier ones of the same selection and mode
    (its folder); the merged table is returned."""
    if path.exists():
        old = read_summary(path)
        same = old["folder"].isin(set(rows["folder"]))
        rows = pd.concat([old[~same], rows], ignore_index=True)
    rows.to_csv(path, index=False, float_format="%.6g")
    return rows


def _pct(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.1f}"


def _signed(value: float) -> str:
    return "–" if isinstance(value, float) and math.isnan(value) else f"{value:+.1f}"


def report_markdown(summary: pd.DataFrame, folder: Path) -> str:
    """report.md: per selection and mode, the headline metrics against the random controls."""
    lines = ["# Ablation: naming with units silenced", "",
             "Each effect (delta, in percentage points of the experiment's images) is the "
             "ablated share minus the unablated one, from the same images and prompts. The "
             "random controls silence as many units per block, drawn from the same blocks "
             "(not-activated units and the selection excluded); p = (1 + #{|control delta| >= "
             "|delta|}) / (draws + 1), so its floor is 1 / (draws + 1). Dose columns: the "
             "delta with that share of the selection silenced.", ""]
    for (selection, mode, _), rows in summary.groupby(["selection", "mode", "folder"],
                                                      sort=False):
        first = rows.iloc[0]
        folder_name = first["folder"]
        each = folder_name.endswith("-each")
        draws = int(first["draws"])
        floor = f"p floor {1 / (draws + 1):.3f}" if draws else "no controls"
        lines += [f"## `{selection}` — {mode}", "",
                  f"{int(first['n_units'])} units silenced together (per block: "
                  f"{first['units_per_block']})" if not each
                  else f"{rows['unit'].nunique()} units, each silenced alone",
                  "", f"{draws} random control draws ({floor}).", ""]
        if (folder / folder_name / "effects.png").exists():
            lines += [f"![effects]({folder_name}/effects.png)", ""]
        doses = [c for c in rows.columns if c.startswith("dose_") and rows[c].notna().any()]
        head = ["unit"] * each + ["metric", "base %", "ablated %", "delta", "random delta "
                                  "(95% range)", "p", *(f"{c[5:]}%" for c in doses)]
        lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for _, r in headline(rows).iterrows():
            cells = [f"`{r['unit']}`"] * each + [
                r["label"], _pct(r["base_pct"]), _pct(r["ablated_pct"]), _signed(r["delta"]),
                f"{_signed(r['control_lo'])} … {_signed(r['control_hi'])}" if draws else "–",
                f"{r['p']:.3f}" if draws else "–", *(_signed(r[c]) for c in doses)]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"Every metric: `summary.csv`; per condition: `{folder_name}/effects.csv`.",
                  ""]
    return "\n".join(lines)


def headline(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows a report shows of one selection: the headline metrics in their order (all
    rows if none is one), each unit's together, units in order of appearance."""
    if rows["metric"].isin(HEADLINE).any():
        rows = rows[rows["metric"].isin(HEADLINE)]
    order = rows["metric"].map(lambda m: HEADLINE.index(m) if m in HEADLINE else len(HEADLINE))
    units = rows["unit"].map({u: i for i, u in enumerate(rows["unit"].unique())})
    return rows.assign(_unit=units, _order=order).sort_values(["_unit", "_order"], kind="stable")
