"""TCAC's statistics and files under RUN/tcac/: summary.csv, {transform}.jsonl, failure_types.csv,
summary.png, report.md and thumbs/ for the atlas (docs/tcac.md describes each column)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interp.probes.discrepancy import column_tests
from interp.probes.output import write_jsonl, write_table, write_thumbs
from interp.probes.stats import bootstrap_ci

#: Images with the largest Δ written per transform (the paper inspects 100).
INSPECT = 100
#: q below which a category shift counts as significant in the report.
ALPHA = 0.05
#: (transform, category) shifts the paper leads one to expect.
EXPECTED = {("grayscale", "colour"), ("inversion", "colour"), ("hflip", "position"),
            ("hflip", "text")}


@dataclass
class Study:
    """Everything the files are made from: the corpus, pools' rankings, settings."""

    corpus: object
    texts: list[str]
    own: list[list[int]]
    k: np.ndarray              # top captions compared per image: min(top, pool size)
    original: object           # Ranking of the untransformed images
    rankings: dict             # transform -> Ranking
    lexicon: object
    n_boot: int
    n_permutations: int
    stats_seed: int
    record: dict
    images: object             # the corpus's images at CLIP's size (`render(i)`)
    transformed: Callable      # transform name -> those images under it
    show: int                  # cases per transform with thumbnails for the atlas


def rng(seed: int, *names: str) -> np.random.Generator:
    """A generator per (seed, names): the same draws whichever transforms run."""
    words = [int.from_bytes(hashlib.sha256(n.encode()).digest()[:4], "little") for n in names]
    return np.random.default_rng([int(seed), *words])


def own_best(study: Study, ranking) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the rank before and after of its own caption ranked best before."""
    best = [int(np.argmin(r)) for r in study.original.own_ranks]
    before = np.array([r[b] for r, b in zip(study.original.own_ranks, best, strict=True)])
    after = np.array([r[b] for r, b in zip(ranking.own_ranks, best, strict=True)])
    return before, after


def summary_rows(study: Study) -> list[dict]:
    """One row per transform: mean Δ and CI, its paired difference from identity, own captions."""
    control = study.rankings["identity"].delta
    rows = []
    for name, ranking in study.rankings.items():
        d = ranking.delta.astype(np.float64)
        low, high = bootstrap_ci(d, study.n_boot, rng(study.stats_seed, "delta", name))
        diff = d - control
        dlow, dhigh = bootstrap_ci(diff, study.n_boot, rng(study.stats_seed, "diff", name))
        before, after = own_best(study, ranking)
        leaves = (before <= study.k) & (after > study.k)
        rows.append({"transform": name, "n_images": len(d), "mean_delta": d.mean(),
                     "ci_low": low, "ci_high": high, "mean_top": float(study.k.mean()),
                     "diff_identity": diff.mean(), "diff_ci_low": dlow, "diff_ci_high": dhigh,
                     "own_best_leaves_top": leaves.mean(),
                     "own_best_rank_before": before.mean(), "own_best_rank_after": after.mean()})
    return rows


def entry_matrix(study: Study) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Lexicon entries as columns: captions' (U, E) and images' own (N, E) bool matrices and
    each category's columns."""
    columns, cats = {}, {}
    for name, words in study.lexicon.categories.items():
        cats[name] = np.array([columns.setdefault((name, w), len(columns)) for w in words])
    caps = np.zeros((len(study.texts), len(columns)), dtype=bool)
    for u, text in enumerate(study.texts):
        for name, found in study.lexicon.words(text).items():
            caps[u, [columns[name, w] for w in found]] = True
    own = np.stack([caps[o].any(axis=0) for o in study.own])
    return caps, own, cats


def top_shares(order: np.ndarray, k: np.ndarray, caps: np.ndarray, own: np.ndarray,
               cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the share of its top-k captions that (a) agree with its own captions on the
    category (they have words of it, each one found in the image's own captions), (b) have any
    word of the category."""
    width = int(k.max())
    top = order[:, :width]
    keep = np.arange(width)[None, :] < k[:, None]
    words = caps[np.maximum(top, 0)][:, :, cols]                    # (N, k, E_c)
    present = words.any(axis=2) & keep
    agree = present & ~(words & ~own[:, None, cols]).any(axis=2)
    return agree.sum(axis=1) / k, present.sum(axis=1) / k


def category_rows(study: Study) -> list[dict]:
    """Per transform and category: the mean change of the agreeing share of the top captions
    (images whose own captions have a word of the category), sign-flip p, BH q within the
    transform, bootstrap CI; the expected shifts flagged."""
    caps, own, cats = entry_matrix(study)
    names = list(cats)
    start = [top_shares(study.original.order, study.k, caps, own, cols) for cols in cats.values()]
    has = np.stack([own[:, cols].any(axis=1) for cols in cats.values()], axis=1)
    rows = []
    for name, ranking in study.rankings.items():
        now = [top_shares(ranking.order, study.k, caps, own, cols) for cols in cats.values()]
        agree = np.stack([a1 - a0 for (a0, _), (a1, _) in zip(start, now, strict=True)], axis=1)
        tests = column_tests(np.where(has, agree, np.nan), names,
                             n_permutations=study.n_permutations, n_boot=study.n_boot,
                             seed=rng(study.stats_seed, "category", name))
        for col, test in enumerate(tests):
            rows.append({"transform": name, "category": test["name"],
                         "n_images": test["n_queries"],
                         **{c: test[c] for c in ("effect", "ci_low", "ci_high", "p", "q")},
                         "expected": (name, test["name"]) in EXPECTED,
                         "presence_effect": float((now[col][1] - start[col][1]).mean())})
    return rows


def cases(study: Study, name: str) -> list[dict]:
    """The INSPECT images with the largest Δ under a transform (ties: corpus order)."""
    ranking, orig = study.rankings[name], study.original
    pick = np.lexsort((np.arange(len(ranking.delta)), -ranking.delta))[:INSPECT]
    out = []
    for i in pick.tolist():
        k = int(study.k[i])
        out.append({"image": study.corpus.ids[i], "index": i, "delta": int(ranking.delta[i]),
                    "top": k, "before": _top(study, orig, i, k),
                    "after": _top(study, ranking, i, k),
                    "own_captions": [study.texts[u] for u in study.own[i]],
                    "own_ranks_before": orig.own_ranks[i],
                    "own_ranks_after": ranking.own_ranks[i]})
    return out


def _top(study: Study, ranking, i: int, k: int) -> list[dict]:
    return [{"caption": study.texts[int(u)], "similarity": round(float(s), 6)}
            for u, s in zip(ranking.order[i, :k], ranking.sims[i, :k], strict=True)]


# --- files --------------------------------------------------------------------------------

def summary_figure(path: Path, rows: list[dict]) -> None:
    """Mean Δ per transform with its 95% bootstrap CI (identity, the control, first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["transform"] for r in rows]
    mean = np.array([r["mean_delta"] for r in rows])
    err = np.array([[m - r["ci_low"], r["ci_high"] - m] for m, r in zip(mean, rows,
                                                                        strict=True)]).T
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(rows), 3.2))
    ax.bar(names, mean, yerr=err, capsize=3, color=["0.6"] + ["C0"] * (len(rows) - 1))
    ax.set_ylabel("mean Δ (top captions changed)")
    ax.set_title("TCAC: caption ranking change per transform (95% CI)", fontsize=9)
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)


def _fmt(value: object) -> object:
    """Floats to 6 significant digits for the report, rounding noise as 0, NaN as a dash."""
    if isinstance(value, (float, np.floating)):
        return "—" if math.isnan(value) else f"{0.0 if abs(value) < 1e-12 else float(value):.6g}"
    return value


def _table(rows: list[dict], cols: list[str]) -> list[str]:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(_fmt(r[c])) for c in cols) + " |")
    return lines


def report_markdown(study: Study, summary: list[dict], categories: list[dict]) -> str:
    """Settings, transforms, the summary table, significant category shifts, how to rerun."""
    rec = study.record
    s = rec["settings"]
    lines = ["# TCAC: transformative caption analysis", "",
             f"Model: {rec['models']['clip']['model']} ({rec['models']['clip']['weights']}); "
             f"corpus: {rec['corpus']['kind']}, {len(study.corpus)} images"
             + (f" (spread over {rec['corpus']['report']['spread_of']})"
                if "spread_of" in rec["corpus"]["report"] else "")
             + f", {len(study.texts)} distinct captions.", "",
             f"Pool: each image's captions and each one's {s['pool_neighbours']} nearest "
             f"captions by CLIP text cosine (mean pool size "
             f"{float((study.original.order >= 0).sum(axis=1).mean()):.1f}); top = {s['top']}; "
             f"Δ = top − |top before ∩ top after|. Seeds: transforms {rec['seeds']['transforms']}, "
             f"statistics {rec['seeds']['stats']} ({s['n_boot']} bootstrap resamples, "
             f"{s['n_permutations']} sign flips).", "", "## Transforms (torchvision v2, p = 1)", ""]
    from interp.probes.tcac import TRANSFORM_PARAMS

    lines += [f"- `{n}`: {TRANSFORM_PARAMS[n][0]} {json.dumps(TRANSFORM_PARAMS[n][1])}"
              for n in study.rankings]
    lines += ["", "## Summary", ""]
    lines += _table(summary, ["transform", "n_images", "mean_delta", "ci_low", "ci_high",
                              "diff_identity", "diff_ci_low", "diff_ci_high",
                              "own_best_leaves_top"])
    sig = [r for r in categories if r["transform"] != "identity" and r["q"] < ALPHA]
    lines += ["", f"## Category shifts with q < {ALPHA}", "",
              "effect: change in the share of the top captions agreeing with the image's own "
              "captions on the category (negative: the category loses rank).", ""]
    lines += _table(sig, ["transform", "category", "n_images", "effect", "ci_low", "ci_high",
                          "q", "expected"]) if sig else ["None."]
    lines += ["", "## Rerun", "", "```python", "from interp.probes.tcac import tcac",
              f"tcac(RUN_DIR, transforms={list(study.rankings)!r}, "
              f"pool_neighbours={s['pool_neighbours']}, top={s['top']}, "
              f"stimulus_seed={rec['seeds']['transforms']}, stats_seed={rec['seeds']['stats']})",
              "```", "Embeddings are cached in RUN/probes/embeddings.zarr: a rerun reuses them.",
              ""]
    return "\n".join(lines)


def write_all(out: Path, study: Study) -> dict[str, Path]:
    """Every TCAC file under `out`, and thumbnails of the `show` cases per transform the atlas
    shows; returns name -> path."""
    summary, categories = summary_rows(study), category_rows(study)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"summary": out / "summary.csv", "failure_types": out / "failure_types.csv",
             "figure": out / "summary.png", "report": out / "report.md"}
    write_table(paths["summary"], summary, digits=6)
    write_table(paths["failure_types"], categories, digits=6)
    for name in study.rankings:
        paths[name] = out / f"{name}.jsonl"
        found = cases(study, name)
        write_jsonl(paths[name], found)
        if name != "identity":
            shown = {c["index"] for c in found[:study.show]}
            write_thumbs(out / "thumbs", study.images, shown)
            write_thumbs(out / "thumbs", study.transformed(name), shown, prefix=f"{name}-")
    summary_figure(paths["figure"], summary)
    paths["report"].write_text(report_markdown(study, summary, categories))
    return paths
