"""Robustness of Fig. 5: the share of each unit type per block under every threshold setting of
RUN/figures/types_sensitivity.csv (written by `analyze`), the default setting in bold."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from interp.analysis.sensitivity import PLAIN_EFFECT
from interp.rundir import RunDir

PLAIN_LABEL = (f"plain f rule, no test (effect >= {PLAIN_EFFECT}: f >= 0.32 word/font/bg, "
               f">= 0.39 colour present; multimodal f >= 0.20 each)")


def read_rows(run: Path) -> list[dict[str, str]]:
    """The sensitivity table of a run, [] when the run has none (an older analysis)."""
    path = RunDir(run).types_sensitivity_csv
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def shares(rows: list[dict[str, str]]) -> tuple[list[str], list[str], dict]:
    """(blocks, types, {setting: {type: share per block}}) from the table's rows."""
    blocks = list(dict.fromkeys(r["block"] for r in rows))
    types = list(dict.fromkeys(r["type"] for r in rows))
    out: dict = {}
    for r in rows:
        key = (r["rule"], r["alpha"], r["min_selectivity"], r["default"] == "1")
        series = out.setdefault(key, {t: np.zeros(len(blocks)) for t in types})
        series[r["type"]][blocks.index(r["block"])] = int(r["count"]) / max(1, int(r["units"]))
    return blocks, types, out


def sensitivity_figure(rows: list[dict[str, str]]) -> Figure | None:
    """One panel per type: its share per block, one line per setting (grey), the default (black)
    and the plain f rule (orange, dashed)."""
    if not rows:
        return None
    blocks, types, series = shares(rows)
    cols = 4
    fig = Figure(figsize=(3.2 * cols, 2.6 * -(-len(types) // cols) + 0.8), layout="constrained")
    axes = fig.subplots(-(-len(types) // cols), cols, sharex=True, squeeze=False).ravel()
    x = np.arange(len(blocks))
    for ax, name in zip(axes, types, strict=False):
        for (rule, alpha, eff, default), by_type in series.items():
            style = _style(rule, default)
            label = _label(rule, alpha, eff, default)
            ax.plot(x, by_type[name], label=label, **style)
        ax.set_title(name.replace("color_", "colour ").replace("_", " "), fontsize=10)
        ax.set_ylim(bottom=0)
        ax.set_xticks(x, blocks, rotation=90, fontsize=7)
    for ax in axes[len(types):]:
        ax.set_visible(False)
    axes[0].set_ylabel("share of units")
    handles, labels = axes[0].get_legend_handles_labels()
    keep = [i for i, lab in enumerate(labels) if not lab.startswith("_")]
    fig.legend([handles[i] for i in keep], [labels[i] for i in keep], loc="outside upper center",
               ncol=3, frameon=False, fontsize=8, title_fontsize=10,
               title="Unit types per block under other thresholds (grey: alpha in "
               "{0.01, 0.05, 0.1} x effect in {0.1, 0.2, 0.3})")
    return fig


def _style(rule: str, default: bool) -> dict:
    if rule == "plain_f":
        return {"color": "#E69F00", "linestyle": "--", "linewidth": 1.5, "zorder": 2}
    if default:
        return {"color": "black", "linewidth": 2.0, "zorder": 3}
    return {"color": "#999999", "linewidth": 0.8, "alpha": 0.7, "zorder": 1}


def _label(rule: str, alpha: str, eff: str, default: bool) -> str:
    if rule == "plain_f":
        return PLAIN_LABEL
    if default:
        return f"default (alpha {alpha}, effect {eff})"
    return "_other" if (alpha, eff) != ("0.01", "0.1") else "other settings"
