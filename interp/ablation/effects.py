"""What an ablation changed: the headline naming percentages of experiments 1-5 from answers and
labels, and each effect against the random controls of equal size (interval, p-value). Pure
numpy, no torch.

Metrics are taken over all images of an experiment's main table: exp. 1-2, % answered with the
background and with the object colour; exp. 3, % written word and % font per prompt; exp. 4-5,
% written word and % font (exp. 5 also % background), the tables' TOTAL row. Beside them, per
experiment, 100 x the mean cosine of each image's ablated embedding to its unablated one: how far
an ablation moved the embeddings, whether or not any answer changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from interp.naming.experiments import EXPERIMENTS, STROOP_ROLES, Labels
from interp.naming.report import template_slug

#: the key of each image's cosine between its ablated and unablated embedding, beside the prompts
COSINE = "(cosine to unablated)"
#: label kind each answer share compares with
ROLE_KINDS = {"background": "bg_color", "object": "obj_color", **STROOP_ROLES}
#: metrics of the report's headline table, in its order
HEADLINE = ("exp4.written", "exp4.font", "exp5.written", "exp5.font", "exp1.background",
            "exp1.object", "exp2.object.object", "exp2.background.background", "exp4.cosine",
            "exp5.cosine", "exp1.cosine")
ROLE_TEXT = {"background": "background", "object": "object", "font": "font",
             "written": "written word"}


@dataclass(frozen=True)
class Metric:
    """One answer share: experiment, prompt, which label the answer equals."""

    name: str  # exp4.written, exp2.object.background
    experiment: int
    template: str
    role: str  # background | object | font | written

    @property
    def label(self) -> str:
        """`exp. 4: % written word`, `exp. 2 (object prompt): % object`, `exp. 3 `{}`: % font`."""
        exp = EXPERIMENTS[self.experiment]
        prompt = ""
        if exp.table == "grid" and len(exp.templates) > 1:
            prompt = f" ({_short(self.template)} prompt)"
        elif len(exp.templates) > 1:
            prompt = f" `{self.template}`"
        if self.role == "cosine":
            return f"exp. {self.experiment}: embedding cosine to unablated, x100"
        return f"exp. {self.experiment}{prompt}: % {ROLE_TEXT[self.role]}"


def _short(template: str) -> str:
    """A prompt's short name in metric names: `object` for 'The color of the object is {}'."""
    for word in ("object", "background"):
        if f"of the {word}" in template:
            return word
    return template_slug(template)


def metrics(numbers: Sequence[int]) -> list[Metric]:
    """The metrics of the chosen experiments."""
    out = []
    for n in numbers:
        exp = EXPERIMENTS[n]
        if exp.table == "grid":
            for template in exp.templates:
                stem = f"exp{n}" if n == 1 else f"exp{n}.{_short(template)}"
                out += [Metric(f"{stem}.{r}", n, template, r) for r in ("background", "object")]
        elif exp.table == "roles":
            out += [Metric(f"exp{n}.{template_slug(t)}.{r}", n, t, r)
                    for t in exp.templates for r in ("written", "font")]
        else:
            out += [Metric(f"exp{n}.{r}", n, exp.templates[0], r) for r in exp.roles]
        out.append(Metric(f"exp{n}.cosine", n, COSINE, "cosine"))
    return out


Predict = Callable[[str, str], np.ndarray]  # (set name, template) -> answers of its images


def measure(numbers: Sequence[int], predict: Predict,
            labels: dict[str, Labels]) -> dict[str, float]:
    """Per metric, the % of the experiment's images (its main table) answered with that role's
    colour; `labels[set]` covers the images `predict` answers."""
    out = {}
    for m in metrics(numbers):
        exp = EXPERIMENTS[m.experiment]
        lab = labels[exp.set_name]
        keep = exp.select(lab)
        answers = predict(exp.set_name, m.template)[keep]
        hits = answers if m.role == "cosine" else answers == lab[ROLE_KINDS[m.role]][keep]
        out[m.name] = float(100 * np.mean(hits))
    return out


@dataclass(frozen=True)
class Against:
    """An effect against the random controls: their mean, central 95% range and the p-value."""

    mean: float
    lo: float
    hi: float
    p: float
    draws: int


def against_controls(effect: float, controls: Sequence[float]) -> Against:
    """Is |effect| larger than random ablations of equal size give? p = (1 + #{|c| >= |effect|})
    / (draws + 1): exact under the null that the selection is one more random draw, its floor
    1 / (draws + 1). NaN without draws."""
    c = np.asarray(controls, dtype=float)
    if not c.size:
        return Against(*(float("nan"),) * 4, 0)
    p = (1 + int(np.sum(np.abs(c) >= abs(effect) - 1e-9))) / (c.size + 1)
    lo, hi = np.percentile(c, [2.5, 97.5])
    return Against(float(c.mean()), float(lo), float(hi), float(p), int(c.size))
