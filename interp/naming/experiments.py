"""Zero-shot naming experiments 1-5 (paper §2-3): their definitions and the pure bookkeeping
that turns (predictions, labels) into the paper's tables. No torch here.

A prediction is a palette index (into COLOR_TERMS). "None" means the predicted colour is none of
the image's labelled colours of the experiment (shapes: background, object; Stroop: written word,
font, background). The sets keep those labels distinct (object != background; word != font !=
background), so each prediction falls in exactly one column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from stimuli.palette import COLOR_TERMS, IS_ACHROMATIC, color_index

Labels = dict[str, np.ndarray]
N_COLORS = len(COLOR_TERMS)

STROOP_FONT_TEMPLATE = "The word is written in {} font"

#: Which label kind each Stroop role reads, in the paper's column order.
STROOP_ROLES = {"background": "bg_color", "font": "font_color", "written": "word"}

#: two-sided 95% normal quantile, for the Wilson intervals
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Variant:
    """One selection of an experiment's images, tabulated on its own (exp 5: white bg in/out)."""

    suffix: str  # after `exp{N}` in file names: "" for the main table
    name: str  # which images, short, for titles
    note: str = ""  # why this variant, for the table text
    white_bg: bool = True  # images on a white background kept
    published: bool = True  # the paper's figures are this variant's
    evidence: str = ""  # why the paper's figures are this variant's

    @property
    def label(self) -> str:
        """Name and note, e.g. for the Markdown's "Images:" line."""
        return f"{self.name} — {self.note}" if self.note else self.name


ALL_IMAGES = Variant("", "all images of the set")
ALL_BACKGROUNDS = Variant(
    "", "all backgrounds (white included)", "the variant the paper's Table 5 totals match",
    evidence="The paper's Table 5 TOTAL row equals its Table 3 first row (same prompt), so both "
             "were measured on the same images, white backgrounds included; its white row's "
             "background cell (0.01%) needs white backgrounds too.")
COLORED_BG = Variant("_colored_bg", "coloured backgrounds only (white excluded)",
                     white_bg=False, published=False)


@dataclass(frozen=True)
class Experiment:
    """One zero-shot experiment: which set, which images of it, which prompts, which table."""

    number: int
    set_name: str
    templates: tuple[str, ...]
    table: str  # "grid" (exp 1-2), "roles" (exp 3), "per_color" (exp 4-5)
    #: label kind each template asks for: the "correct" answer of confusion matrices and errors
    targets: dict[str, str] = field(default_factory=dict)
    #: label kinds counted as columns of a per-colour table
    roles: tuple[str, ...] = ()
    description: str = ""
    #: image selections, each its own table; the first is the main one (`exp{N}.csv`)
    variants: tuple[Variant, ...] = (ALL_IMAGES,)

    def select(self, labels: Labels, variant: Variant | None = None) -> np.ndarray:
        """Boolean mask of the set's images a variant uses (default: the main one, all images)."""
        variant = variant or self.variants[0]
        if not variant.white_bg:
            return labels["bg_color"] != color_index("white")
        return np.ones(len(next(iter(labels.values()))), dtype=bool)


EXPERIMENTS: dict[int, Experiment] = {
    1: Experiment(1, "shapes", ("{}",), "grid", {"{}": "bg_color"},
                  description="global colour label of a shape on a background"),
    2: Experiment(2, "shapes",
                  ("The color of the object is {}", "The color of the background is {}"), "grid",
                  {"The color of the object is {}": "obj_color",
                   "The color of the background is {}": "bg_color"},
                  description="colour of the object / of the background"),
    3: Experiment(3, "stroop",
                  (STROOP_FONT_TEMPLATE, "The text says {}", "The color of the background is {}",
                   "{}", "My favorite word, written in the color {}"), "roles",
                  {STROOP_FONT_TEMPLATE: "font_color", "The text says {}": "word",
                   "The color of the background is {}": "bg_color", "{}": "font_color",
                   "My favorite word, written in the color {}": "font_color"},
                  description="which prompt asks best for the font colour (Stroop set)"),
    4: Experiment(4, "stroop-white", (STROOP_FONT_TEMPLATE,), "per_color",
                  {STROOP_FONT_TEMPLATE: "font_color"}, roles=("font", "written"),
                  description="Stroop test on a white background"),
    5: Experiment(5, "stroop", (STROOP_FONT_TEMPLATE,), "per_color",
                  {STROOP_FONT_TEMPLATE: "font_color"}, roles=("font", "written", "background"),
                  description="Stroop test on coloured backgrounds",
                  variants=(ALL_BACKGROUNDS, COLORED_BG)),
}


def prompts(template: str) -> list[str]:
    """The 11 prompts of a template, one per colour term, in COLOR_TERMS order."""
    return [template.format(term) for term in COLOR_TERMS]


def percent(mask: np.ndarray) -> float:
    """Percentage of True in a boolean array (NaN when empty)."""
    return float(100.0 * mask.mean()) if mask.size else float("nan")


def wilson_interval(successes: np.ndarray | int, n: np.ndarray | int,
                    z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion, as fractions (NaN where n = 0); unlike
    the normal approximation it stays inside [0, 1] and is not empty at 0 or n successes."""
    k, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p, shrink = k / n, z * z / n
        centre = (p + shrink / 2) / (1 + shrink)
        half = z * np.sqrt(p * (1 - p) / n + shrink / (4 * n)) / (1 + shrink)
    lo = np.where((k == 0) & (n > 0), 0.0, np.clip(centre - half, 0, 1))  # exact ends
    return lo, np.where((k == n) & (n > 0), 1.0, np.clip(centre + half, 0, 1))


def pct_columns(name: str, mask: np.ndarray) -> dict[str, float]:
    """`name_pct` = % of True in mask, with its 95% Wilson bounds `name_pct_lo`, `name_pct_hi`."""
    lo, hi = wilson_interval(int(mask.sum()), mask.size)
    return {f"{name}_pct": percent(mask), f"{name}_pct_lo": float(100 * lo),
            f"{name}_pct_hi": float(100 * hi)}


def grid_rows(template: str, pred: np.ndarray, labels: Labels) -> list[dict]:
    """Experiments 1-2: the 2x2 achromatic/chromatic grid of % background / % object / % other."""
    bg, obj = labels["bg_color"], labels["obj_color"]
    rows = []
    for bg_kind, bg_achrom in (("achromatic", True), ("chromatic", False)):
        for obj_kind, obj_achrom in (("achromatic", True), ("chromatic", False)):
            group = (IS_ACHROMATIC[bg] == bg_achrom) & (IS_ACHROMATIC[obj] == obj_achrom)
            p, b, o = pred[group], bg[group], obj[group]
            rows.append({
                "template": template, "background": bg_kind, "object": obj_kind,
                "n_images": int(group.sum()),
                **pct_columns("background", p == b), **pct_columns("object", p == o),
                **pct_columns("other", (p != b) & (p != o)),
            })
    return rows


def stroop_roles(pred: np.ndarray, labels: Labels) -> dict[str, np.ndarray]:
    """Per image, which role the prediction matches: background, font, written, none (masks)."""
    masks = {role: pred == labels[kind] for role, kind in STROOP_ROLES.items()}
    masks["none"] = ~(masks["background"] | masks["font"] | masks["written"])
    return masks


def roles_row(template: str, pred: np.ndarray, labels: Labels) -> dict:
    """Experiment 3: one row per template, % background / font / written word / none."""
    masks = stroop_roles(pred, labels)
    row = {"template": template, "n_images": int(pred.size)}
    for role, m in masks.items():
        row.update(pct_columns(role, m))
    return row


def per_color_rows(pred: np.ndarray, labels: Labels, roles: tuple[str, ...]) -> list[dict]:
    """Experiments 4-5: per colour c, % of all (n_images) images answered c where c is the
    image's font / written word / background colour (or none of the listed roles); then TOTAL."""
    masks = stroop_roles(pred, labels)
    counted = np.zeros(pred.size, dtype=bool)
    for role in roles:
        counted |= masks[role]
    columns = {role: masks[role] for role in roles} | {"none": ~counted}
    rows = []
    for term, answered in [*((t, pred == c) for c, t in enumerate(COLOR_TERMS)),
                           ("TOTAL", np.ones(pred.size, dtype=bool))]:
        row = {"color": term, "n_answers": int(answered.sum()), "n_images": int(pred.size)}
        for role, m in columns.items():
            row.update(pct_columns(role, answered & m))
        rows.append(row)
    return rows


def confusion(target: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """11x11 counts: rows = the asked-for colour, columns = the predicted colour."""
    matrix = np.zeros((N_COLORS, N_COLORS), dtype=np.int64)
    np.add.at(matrix, (target, pred), 1)
    return matrix


Predictor = Callable[[str, str], np.ndarray]


def experiment_table(exp: Experiment, predict: Predictor, labels: Labels,
                     variant: Variant | None = None) -> list[dict]:
    """Table rows of one experiment variant (default: the main one); `predict(set_name,
    template)` answers for the whole set."""
    keep = exp.select(labels, variant)
    chosen = {kind: values[keep] for kind, values in labels.items()}
    rows: list[dict] = []
    for template in exp.templates:
        pred = predict(exp.set_name, template)[keep]
        if exp.table == "grid":
            rows += grid_rows(template, pred, chosen)
        elif exp.table == "roles":
            rows.append(roles_row(template, pred, chosen))
        else:
            rows += per_color_rows(pred, chosen, exp.roles)
    return rows


def errors(exp: Experiment, template: str, pred: np.ndarray, labels: Labels,
           variant: Variant | None = None) -> np.ndarray:
    """Indices (into the set) of a variant's images not answered with the asked-for colour."""
    wrong = (pred != labels[exp.targets[template]]) & exp.select(labels, variant)
    return np.flatnonzero(wrong)
