"""How much Fig. 5 depends on its two main thresholds: type counts per block under a grid of
alpha x effect size, and under a plain fixed rule on f with no significance test.

Everything is reclassified from the stored tests (no model, no new shuffles), so the grid costs
a few classifications per block. Written to RUN/figures/types_sensitivity.csv; viz draws it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from interp.analysis.types import (
    TYPES,
    ConjunctionResult,
    KindResult,
    Thresholds,
    UnitTests,
    classify,
)

ALPHAS = (0.01, 0.05, 0.1)
EFFECTS = (0.1, 0.2, 0.3)  # min_selectivity; the multimodal one is half of it, as the defaults
PLAIN_EFFECT = 0.25  # plain rule: f >= 0.32 at chance 1/11 (word, font, bg), 0.39 at 2/11
COLUMNS = ("rule", "alpha", "min_selectivity", "multimodal_min_selectivity", "default", "block",
           "type", "count", "units")


@dataclass(frozen=True)
class Rule:
    """One way of typing units: a name, its thresholds, and whether p-values count."""

    name: str
    thresholds: Thresholds
    tested: bool = True
    default: bool = False


def rules(base: Thresholds | None = None) -> list[Rule]:
    """The alpha x effect grid around `base` (its own cell marked default), then the plain rule."""
    base = Thresholds() if base is None else base
    grid = []
    for alpha in ALPHAS:
        for eff in EFFECTS:
            t = replace(base, alpha=alpha, min_selectivity=eff, multimodal_min_selectivity=eff / 2)
            is_default = (alpha, eff, eff / 2) == (base.alpha, base.min_selectivity,
                                                   base.multimodal_min_selectivity)
            grid.append(Rule("test", t, default=is_default))
    plain = replace(base, alpha=1.0, min_selectivity=PLAIN_EFFECT,
                    multimodal_min_selectivity=PLAIN_EFFECT / 2)
    return [*grid, Rule("plain_f", plain, tested=False)]


def untested(tests: UnitTests) -> UnitTests:
    """The same f values with every p set to 0 and every unit testable: only effect sizes
    decide (the plain rule)."""
    kinds = {k: KindResult(r.best, r.f, r.chance, np.zeros_like(r.f, dtype=np.float64))
             for k, r in tests.kinds.items()}
    m = tests.multimodal
    mm = None if m is None else ConjunctionResult(m.term, m.f, m.chance, np.zeros(len(m.term)))
    return UnitTests(kinds, mm, None)


def count_rows(blocks: Iterable[tuple[str, UnitTests, dict]], rule_list: list[Rule]
               ) -> list[dict]:
    """One row per (rule, block, type): the number of units of that type."""
    rows = []
    for block, tests, maxima in blocks:
        plain = untested(tests)
        for rule in rule_list:
            types = classify(tests if rule.tested else plain, maxima, rule.thresholds).type
            t = rule.thresholds
            for name in TYPES:
                rows.append({"rule": rule.name, "alpha": t.alpha if rule.tested else "",
                             "min_selectivity": t.min_selectivity,
                             "multimodal_min_selectivity": t.multimodal_min_selectivity,
                             "default": int(rule.default), "block": block, "type": name,
                             "count": int((types == name).sum()), "units": len(types)})
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    """RUN/figures/types_sensitivity.csv, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
    return path
