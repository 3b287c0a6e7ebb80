"""Naming results on disk: experiment tables as CSV and Markdown, confusion-matrix figures."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np

from interp.naming.experiments import EXPERIMENTS, Experiment, Variant
from stimuli.palette import COLOR_TERMS

NONE_NOTE = {
    "grid": "Other = neither the background nor the object colour.",
    "roles": "None = neither the background, the font nor the written colour.",
    "per_color": "Each cell: % of all images answered with the row's colour while that colour "
                 "is the image's font / written word / background; none = any other answer.",
}


def template_slug(template: str) -> str:
    """File-name-safe short name of a template (`{}` -> `bare`)."""
    words = re.sub(r"[^a-z0-9]+", "_", template.lower().replace("{}", "")).strip("_")
    return words or "bare"


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows as CSV, columns in first-seen order (missing cells left empty)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows({k: _fmt(k, v) for k, v in row.items()} for row in rows)


def _fmt(column: str, value: object) -> object:
    """Floats with 2 decimals as the paper; interval bounds with 3, to stay distinct at 0.01%."""
    if isinstance(value, float):
        digits = 3 if column.endswith(("_lo", "_hi")) else 2
        return "" if math.isnan(value) else f"{value:.{digits}f}"
    return value


def _pct(row: dict, col: str) -> str:
    value = row.get(f"{col}_pct", float("nan"))
    text = "—" if math.isnan(value) else f"{value:.2f}%"
    paper = row.get(f"published_{col}_pct")
    return text if paper is None else f"{text} (paper {paper:.2f}%)"


def grid_markdown(rows: list[dict], template: str) -> list[str]:
    """The paper's 2x2 layout: background % / object % per chromaticity group."""
    cell = {(r["background"], r["object"]): r for r in rows if r["template"] == template}
    lines = [f"Prompt: `{template}` — background % / object %", "",
             "| background \\ object | achromatic | chromatic |", "|---|---|---|"]
    for bg in ("achromatic", "chromatic"):
        parts = [f"{_pct(cell[bg, o], 'background')} / {_pct(cell[bg, o], 'object')} "
                 f"(n={cell[bg, o]['n_images']})" for o in ("achromatic", "chromatic")]
        lines.append(f"| {bg} | {' | '.join(parts)} |")
    return lines + [""]


def flat_markdown(rows: list[dict], key: str, cols: list[str]) -> list[str]:
    """One line per row (template or colour), one column per percentage."""
    lines = [f"| {key} | " + " | ".join(f"{c} %" for c in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for row in rows:
        label = f"`{row[key]}`" if key == "template" else row[key]
        lines.append(f"| {label} | " + " | ".join(_pct(row, c) for c in cols) + " |")
    return lines + [""]


def table_stem(exp: Experiment, variant: Variant) -> str:
    """File stem of a variant's table: `exp5`, `exp5_colored_bg`."""
    return f"exp{exp.number}{variant.suffix}"


def interval_note(rows: list[dict]) -> str:
    """One line: the widest 95% Wilson half-width of the table (each bound is in the CSV)."""
    widths = [max(row[k] - row[k + "_lo"], row[k + "_hi"] - row[k]) for row in rows
              for k in row if k.endswith("_pct") and k + "_lo" in row and not math.isnan(row[k])]
    if not widths:
        return "No images, no intervals."
    return (f"95% Wilson intervals: every percentage here is within ±{max(widths):.2f} points "
            "(each bound in the CSV, `*_pct_lo` / `*_pct_hi`, over `n_images`).")


def variant_lines(exp: Experiment, variant: Variant, published: bool) -> list[str]:
    """Which images a variant uses and, for experiments with several, where the paper stands."""
    if len(exp.variants) == 1:
        return []
    lines = [f"Images: {variant.label}.", ""]
    if variant.published and variant.evidence:
        lines += [variant.evidence, ""]
    elif published and not variant.published:
        main = next(v for v in exp.variants if v.published)
        lines += [f"The paper's figures stand beside `{table_stem(exp, main)}.md` "
                  f"({main.name}), the variant they match.", ""]
    return lines


def experiment_markdown(exp: Experiment, rows: list[dict], model: str, published: bool,
                        variant: Variant | None = None) -> str:
    """A variant's table as Markdown, with the paper's figures in brackets when given."""
    variant = variant or exp.variants[0]
    title = f"# Experiment {exp.number}: {exp.description}"
    if len(exp.variants) > 1:
        title += f" — {variant.name}"
    lines = [title, "", f"Model: {model}; set: `{exp.set_name}`.", "",
             *variant_lines(exp, variant, published)]
    if published and variant.published:
        lines += ["Published figures (paper, RN50/openai) in brackets.", ""]
    if exp.table == "grid":
        for template in exp.templates:
            lines += grid_markdown(rows, template)
    elif exp.table == "roles":
        n = rows[0]["n_images"] if rows else 0
        lines += [f"n = {n} images per prompt.", ""]
        lines += flat_markdown(rows, "template", ["background", "font", "written", "none"])
    else:
        n = rows[-1]["n_images"] if rows else 0
        lines += [f"Prompt: `{exp.templates[0]}`; n = {n} images.", ""]
        lines += flat_markdown(rows, "color", [*exp.roles, "none"])
    lines += [NONE_NOTE[exp.table], "", interval_note(rows)]
    return "\n".join(lines) + "\n"


def confusion_figure(path: Path, matrix: np.ndarray, number: int, template: str,
                     target: str, images: str = "") -> None:
    """11x11 confusion matrix (row-normalised %, counts in cells) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(100.0 * matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    fig.subplots_adjust(left=0.16, right=0.98, bottom=0.17, top=0.93)
    im = ax.imshow(share, cmap="viridis", vmin=0, vmax=100)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=6,
                    color="black" if share[i, j] > 60 else "white")
    ax.set_xticks(range(len(COLOR_TERMS)), COLOR_TERMS, rotation=60, fontsize=8)
    ax.set_yticks(range(len(COLOR_TERMS)), COLOR_TERMS, fontsize=8)
    ax.set_xlabel("predicted colour")
    ax.set_ylabel(f"asked-for colour ({target})")
    title = f"Experiment {number}: {EXPERIMENTS[number].set_name}, '{template}'"
    ax.set_title(title + (f"\n{images}" if images else ""), fontsize=9)
    fig.colorbar(im, ax=ax, label="% of row")
    fig.savefig(path, dpi=110)
    plt.close(fig)
