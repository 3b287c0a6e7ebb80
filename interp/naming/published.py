"""The paper's published naming figures for RN50 with OpenAI weights (papers/color-in-clip.md,
Tables 1-5), transcribed as printed, to stand beside measured ones. Percentages.

Tables 4-5 rows: per colour c, % of all images answered c where c is the font / written word /
background colour (or none); the paper has no white row in Table 4.

Table 5 was measured on all stroop images, white backgrounds included: its TOTAL row equals
Table 3's first row (same prompt, all images) and its white row has a non-zero background cell
(answering "white" for a white background). So these figures stand beside experiment 5's
all-backgrounds variant (exp5.csv) only, never beside the coloured-only one.
"""

from __future__ import annotations

from interp.naming.experiments import STROOP_FONT_TEMPLATE

OBJ_T = "The color of the object is {}"
BG_T = "The color of the background is {}"

#: exp 1-2: (template, background group, object group) -> (background %, object %)
GRID = {
    ("{}", "achromatic", "achromatic"): (63.80, 35.96),
    ("{}", "achromatic", "chromatic"): (6.28, 91.08),
    ("{}", "chromatic", "achromatic"): (99.74, 0.19),
    ("{}", "chromatic", "chromatic"): (78.62, 20.42),
    (OBJ_T, "achromatic", "achromatic"): (24.88, 73.69),
    (OBJ_T, "achromatic", "chromatic"): (4.61, 92.85),
    (OBJ_T, "chromatic", "achromatic"): (99.83, 0.15),
    (OBJ_T, "chromatic", "chromatic"): (16.50, 83.41),
    (BG_T, "achromatic", "achromatic"): (70.88, 28.74),
    (BG_T, "achromatic", "chromatic"): (5.46, 93.16),
    (BG_T, "chromatic", "achromatic"): (99.95, 0.02),
    (BG_T, "chromatic", "chromatic"): (81.34, 18.61),
}

#: exp 3: template -> (background, font, written, none) %
ROLES = {
    STROOP_FONT_TEMPLATE: (38.03, 2.35, 59.53, 0.09),
    "The text says {}": (13.95, 0.81, 85.16, 0.08),
    BG_T: (38.63, 1.69, 59.63, 0.05),
    "{}": (21.78, 1.07, 77.07, 0.09),
    "My favorite word, written in the color {}": (36.98, 1.98, 61.01, 0.04),
}

#: exp 4: colour -> (font, written, none) %
STROOP_WHITE = {
    "black": (0.99, 8.23, 0.14), "grey": (0.97, 5.16, 0.60), "red": (1.37, 7.97, 0.29),
    "green": (2.63, 8.66, 0.17), "blue": (2.40, 8.50, 0.21), "yellow": (1.61, 8.05, 0.21),
    "brown": (0.99, 8.51, 0.18), "orange": (1.56, 8.65, 0.12), "pink": (1.73, 8.62, 0.17),
    "purple": (2.49, 8.77, 0.07), "TOTAL": (16.72, 81.11, 2.17),
}

#: exp 5 (all backgrounds, white included): colour -> (font, written, background, none) %
STROOP_COLOURED = {
    "white": (0.00, 1.73, 0.01, 0.00), "black": (0.00, 5.74, 0.13, 0.00),
    "grey": (0.01, 3.05, 1.24, 0.05), "red": (0.12, 4.71, 3.50, 0.01),
    "green": (0.40, 5.67, 3.07, 0.01), "blue": (0.26, 4.91, 3.42, 0.00),
    "yellow": (0.27, 6.13, 7.74, 0.01), "brown": (0.00, 6.71, 3.06, 0.00),
    "orange": (0.26, 6.65, 4.80, 0.00), "pink": (0.21, 6.26, 3.14, 0.00),
    "purple": (0.83, 7.96, 7.92, 0.00), "TOTAL": (2.35, 59.53, 38.03, 0.09),
}


def applies(model: str, pretrained: str) -> bool:
    """True when the run's model is the one the paper measured: RN50 with OpenAI weights."""
    return model == "RN50" and pretrained == "openai"


def published_values(experiment: int, row: dict) -> dict[str, float]:
    """Published percentages matching one measured table row, as `published_<col>_pct` columns
    (empty when the paper has no such row)."""
    if experiment in (1, 2):
        key = (row["template"], row["background"], row["object"])
        cols, values = ("background", "object"), GRID.get(key)
    elif experiment == 3:
        cols, values = ("background", "font", "written", "none"), ROLES.get(row["template"])
    elif experiment == 4:
        cols, values = ("font", "written", "none"), STROOP_WHITE.get(row["color"])
    else:
        cols, values = ("font", "written", "background", "none"), STROOP_COLOURED.get(row["color"])
    if values is None:
        return {}
    return {f"published_{c}_pct": v for c, v in zip(cols, values, strict=True)}
