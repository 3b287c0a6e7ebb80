"""Which units an ablation silences: a selection from neurons.csv (`type=color_word`,
`type=any_word,block=layer4.*`), explicit units (`layer3.2:417,layer4.0:12`) or `auto`; and the
conditions it is measured under (random controls of equal size per block, the dose-response).

Pure functions over the neurons table (a pandas DataFrame of RUN/neurons.csv): no torch here.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.errors import ChromaError, UsageError
from interp.units import parse_unit_id

#: short keys of a selection and the neurons.csv column each stands for
ALIASES = {"term": "color_term", "modality": "color_modality"}
#: `type=color`: the paper's colour units, chromatic or achromatic
TYPE_FAMILIES = {"color": ("color_chromatic", "color_achromatic")}
#: the types `auto` chooses among (the largest non-empty one), in order of preference on ties
AUTO_TYPES = ("any_word", "color_word", "color")
#: fractions of the selection silenced for the dose-response
DOSES = (0.1, 0.25, 0.5, 1.0)
_UNIT = re.compile(r"\S+:[0-9]+")


@dataclass(frozen=True)
class Condition:
    """One ablated condition: its name, what it is, the units silenced together."""

    name: str  # "selection", "control-03", "dose-25", "unit layer3.2:417"
    kind: str  # selection | control | dose | unit
    units: tuple[str, ...]
    fraction: float = 1.0

    def by_block(self) -> dict[str, list[int]]:
        """Unit indices per block, in the order given."""
        out: dict[str, list[int]] = {}
        for unit_id in self.units:
            block, unit = parse_unit_id(unit_id)
            out.setdefault(block, []).append(unit)
        return out


def is_explicit(spec: str | Sequence[str]) -> bool:
    """True for explicit units (`layer3.2:417,...` or a list of unit ids)."""
    items = _items(spec)
    return bool(items) and all(_UNIT.fullmatch(i) for i in items)


def _items(spec: str | Sequence[str]) -> list[str]:
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    return [p.strip() for p in parts if p.strip()]


def parse_filters(spec: str | Sequence[str]) -> dict[str, str]:
    """`type=any_word,block=layer4.*` -> {"type": "any_word", "block": "layer4.*"}."""
    filters = {}
    for item in _items(spec):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--units {item!r}: expected KEY=VALUE (e.g. type=color_word), "
                             "explicit units (layer3.2:417,layer4.0:12) or auto")
        filters[ALIASES.get(key.strip(), key.strip())] = value.strip()
    if not filters:
        raise UsageError("--units: empty; give e.g. type=color_word, layer3.2:417 or auto")
    return filters


def _matches(column: pd.Series, key: str, pattern: str) -> np.ndarray:
    """Rows whose `key` matches the glob `pattern` (type families expanded)."""
    text = column.fillna("").astype(str)
    if key == "type" and pattern in TYPE_FAMILIES:
        return text.isin(TYPE_FAMILIES[pattern]).to_numpy()
    if key in ("unit",) or pd.api.types.is_numeric_dtype(column):
        text = column.map(lambda v: "" if pd.isna(v) else f"{v:g}" if isinstance(v, float)
                          else str(v))
    return np.array([fnmatch.fnmatchcase(v, pattern) for v in text], dtype=bool)


def select(table: pd.DataFrame, spec: str | Sequence[str]) -> list[str]:
    """Unit ids the selection names, in the table's order: all filters must hold; explicit
    units are checked against the table; `auto` is the largest type of AUTO_TYPES."""
    if isinstance(spec, str) and spec.strip() == "auto":
        return select(table, f"type={auto_type(table)}")
    if is_explicit(spec):
        units = list(dict.fromkeys(_items(spec)))
        unknown = [u for u in units if u not in set(table["unit_id"])]
        if unknown:
            raise UsageError(f"--units {unknown[0]}: no such unit in neurons.csv (units look "
                             f"like {table['unit_id'].iloc[0]})")
        return units
    filters = parse_filters(spec)
    missing = [k for k in filters if k not in table.columns]
    if missing:
        raise UsageError(f"--units: neurons.csv has no column {missing[0]!r}; use one of "
                         f"{', '.join(['term', *table.columns])}")
    keep = np.ones(len(table), dtype=bool)
    for key, pattern in filters.items():
        keep &= _matches(table[key], key, pattern)
    units = table["unit_id"][keep].tolist()
    if not units:
        counts = table["type"].value_counts()
        raise ChromaError(f"--units {describe(spec)} selects no unit; the run's types: "
                          + ", ".join(f"{t} {n}" for t, n in counts.items()))
    return units


def auto_type(table: pd.DataFrame) -> str:
    """The largest non-empty type among any_word, color_word and color (chromatic or
    achromatic), the first of them on ties."""
    sizes = {t: int(_matches(table["type"], "type", t).sum()) for t in AUTO_TYPES}
    best = max(AUTO_TYPES, key=lambda t: (sizes[t], -AUTO_TYPES.index(t)))
    if sizes[best] == 0:
        raise ChromaError("--units auto: the run has no any_word, color_word or colour unit; "
                          "name units or a selection (e.g. --units layer4.2:7)")
    return best


def describe(spec: str | Sequence[str]) -> str:
    """The selection as one string, as a user would type it."""
    return spec.strip() if isinstance(spec, str) else ",".join(_items(spec))


def slug(text: str) -> str:
    """A folder name for a selection: `type=any_word,block=layer4.*` -> `type-any_word_block-
    layer4.x`; long ones end in a hash so they stay short and distinct."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text.replace("*", "x").replace(",", "_"))
    name = name.strip("-.") or "units"
    if len(name) > 60:
        name = f"{name[:48]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return name


# --- conditions ---------------------------------------------------------------------------

def control_pool(table: pd.DataFrame, exclude: Sequence[str]) -> dict[str, np.ndarray]:
    """Per block, the unit ids a random control may draw: activated units outside `exclude`."""
    keep = (table["type"] != "not_activated") & ~table["unit_id"].isin(set(exclude))
    return {block: rows["unit_id"].to_numpy() for block, rows in
            table[keep].groupby("block", sort=False)}


def controls(table: pd.DataFrame, units: Sequence[str], draws: int,
             seed: int = 0) -> list[Condition]:
    """`draws` random selections of the same number of units per block as `units`, from the
    same blocks, not-activated units and `units` themselves excluded (seeded)."""
    pool = control_pool(table, units)
    sizes = Condition("", "", tuple(units)).by_block()
    for block, chosen in sizes.items():
        have = len(pool.get(block, ()))
        if have < len(chosen):
            raise ChromaError(f"random controls need {len(chosen)} other activated units in "
                              f"{block}, it has {have}; select fewer units there")
    rng = np.random.default_rng(seed)
    out = []
    for d in range(draws):
        drawn = [u for block, chosen in sizes.items()
                 for u in rng.choice(pool[block], len(chosen), replace=False)]
        out.append(Condition(f"control-{d:02d}", "control", tuple(drawn)))
    return out


def doses(units: Sequence[str], fractions: Sequence[float] = DOSES,
          seed: int = 0) -> list[Condition]:
    """Nested subsets of `units`: the first ceil(f x n) of one seeded shuffle, per fraction
    that silences fewer units than the whole selection and more than any smaller fraction."""
    order = np.random.default_rng(seed).permutation(len(units))
    out, sizes = [], {len(units)}
    for f in sorted(fractions):
        k = max(1, math.ceil(f * len(units)))
        if k in sizes:  # the whole selection, or a smaller dose's units again
            continue
        sizes.add(k)
        out.append(Condition(f"dose-{round(100 * f):02d}", "dose",
                             tuple(units[i] for i in sorted(order[:k])), f))
    return out


def single_controls(table: pd.DataFrame, units: Sequence[str], draws: int,
                    seed: int = 0) -> list[Condition]:
    """For `--each`: per block of `units`, `draws` random single units of that block (shared by
    every unit of the block), not-activated units and `units` excluded."""
    pool = control_pool(table, units)
    rng = np.random.default_rng(seed)
    out = []
    for block in Condition("", "", tuple(units)).by_block():
        if len(pool.get(block, ())) < draws:
            raise ChromaError(f"--each with {draws} control draws needs {draws} other "
                              f"activated units in {block}; it has {len(pool.get(block, ()))}")
        for d, unit_id in enumerate(rng.choice(pool[block], draws, replace=False)):
            out.append(Condition(f"control-{block}-{d:02d}", "control", (str(unit_id),)))
    return out
