"""The ablation figure: each headline effect against its random controls, and the dose-response."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from interp.ablation.effects import HEADLINE
from interp.ablation.report import headline


def effects_figure(path: Path, summary: pd.DataFrame, effects: pd.DataFrame, plan) -> None:
    """Left: delta per headline metric (dot), the control draws (grey) and their 95% range;
    right: delta against the fraction of the selection silenced (none for --each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = headline(summary)
    chosen = list(dict.fromkeys(rows["metric"]))
    if not set(chosen) & set(HEADLINE):
        chosen = chosen[:8]
        rows = rows[rows["metric"].isin(chosen)]
    doses = not plan.each and (effects["kind"] == "dose").any()
    fig, axes = plt.subplots(1, 2 if doses else 1, figsize=(11 if doses else 7, 4.2),
                             squeeze=False)
    ax = axes[0, 0]
    labels = []
    for y, (_, r) in enumerate(rows.iterrows()):
        ctrl = effects[(effects["kind"] == "control") & (effects["metric"] == r["metric"])]
        ax.scatter(ctrl["delta"], [y] * len(ctrl), s=10, color="0.6", zorder=1)
        if r["draws"]:
            ax.plot([r["control_lo"], r["control_hi"]], [y, y], color="0.4", lw=3, alpha=0.5)
        ax.scatter([r["delta"]], [y], s=40, color="tab:red", zorder=3)
        labels.append(f"{r['unit']} {r['label']}".strip() if plan.each else r["label"])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("delta (points); grey: random controls")
    ax.set_title(f"{plan.selection} ({plan.mode}, {len(plan.units)} units)", fontsize=9)
    if doses:
        ax = axes[0, 1]
        for metric in chosen[:4]:
            d = effects[effects["metric"] == metric]
            d = d[d["kind"].isin(("dose", "selection"))].sort_values("fraction")
            ax.plot(100 * d["fraction"], d["delta"], marker="o",
                    label=rows[rows["metric"] == metric]["label"].iloc[0])
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel("% of the selection silenced")
        ax.set_ylabel("delta (points)")
        ax.legend(fontsize=7)
        ax.set_title("dose-response", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
