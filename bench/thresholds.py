"""Effective thresholds of the unit-type tests: the 95% points of the max-statistic nulls and the
f they imply, for untuned units on Stroop-like labels, and what thin units do to them.

Untuned units: top-N = N random images with flat weights (n_eff close to N). Thin units: only
`--thin-n-eff` positive weights. For each min_n_eff_fraction, the null's 95% point per family
(word; colour = font, bg, colour present; multimodal conjunction) and the f of one label kind at
chance 1/11 that reaches it at n_eff = N: f = chance + z * sqrt(chance (1 - chance) / N).
    .venv/bin/python bench/thresholds.py [--units 15104] [--top-n 100] [--permutations 200]
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interp.analysis.selectivity import MULTIMODAL, family_null, select_all  # noqa: E402
from interp.analysis.steps import stroop_kinds  # noqa: E402
from interp.analysis.types import COLOR_KINDS  # noqa: E402


def stroop_labels(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Word, font, background: pairwise different, uniformly drawn (as the Stroop set)."""
    word = rng.integers(0, 11, n)
    font = (word + rng.integers(1, 11, n)) % 11
    bg = (word + rng.integers(1, 11, n)) % 11
    clash = bg == font
    while clash.any():
        bg[clash] = (word[clash] + rng.integers(1, 11, clash.sum())) % 11
        clash = bg == font
    return {"word": word, "font_color": font, "bg_color": bg}


def tops(units: int, thin: int, top_n: int, thin_n_eff: int, n_images: int,
         rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One block of untuned units, the last `thin` of them with only `thin_n_eff` positive."""
    index = np.stack([rng.choice(n_images, top_n, replace=False) for _ in range(units)])
    value = np.sort(rng.uniform(1, 2, (units, top_n)), axis=1)[:, ::-1].copy()
    value[units - thin:, thin_n_eff:] = 0
    return {"b": (index, value)}


def effective_f(z: float, n: int, chance: float = 1 / 11) -> float:
    return float(chance + z * np.sqrt(chance * (1 - chance) / n))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=15104)
    p.add_argument("--thin", type=int, default=300, help="thin units among them")
    p.add_argument("--thin-n-eff", type=int, default=4)
    p.add_argument("--top-n", type=int, default=100)
    p.add_argument("--images", type=int, default=49500)
    p.add_argument("--permutations", type=int, default=200)
    p.add_argument("--fractions", default="0,0.5")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    kinds = stroop_kinds(stroop_labels(args.images, rng))
    results = {"units": args.units, "thin": args.thin, "thin_n_eff": args.thin_n_eff,
               "top_n": args.top_n, "permutations": args.permutations, "by_fraction": {}}
    for thin in (0, args.thin):
        block = tops(args.units, thin, args.top_n, args.thin_n_eff, args.images,
                     np.random.default_rng(1))
        for frac in (float(f) for f in args.fractions.split(",")):
            start = time.perf_counter()
            _, null = select_all(block, kinds, 11, args.permutations, 0, frac)
            fams = {"word": null["word"], "color": family_null(null, COLOR_KINDS),
                    "multimodal": null[MULTIMODAL]}
            q = {k: round(float(np.quantile(v, 0.95)), 3) for k, v in fams.items()}
            f = {k: round(effective_f(z, args.top_n), 3) for k, z in q.items()}
            key = f"thin={thin} min_n_eff_fraction={frac}"
            results["by_fraction"][key] = {"z95": q, "f_at_n_eff_N": f,
                                           "s": round(time.perf_counter() - start, 1)}
            print(key, results["by_fraction"][key], flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
