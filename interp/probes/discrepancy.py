"""DAF's analysis over neighbour sets and captions, pure numpy: failure queries, CLIP-blind pairs,
and failure types by lexicon category (and, exploratory, by word) with permutation tests.

A failure query is one whose top-k neighbours under CLIP and under the reference share at most
`max_overlap` images. For a category, a failure query's effect is the mean mismatch of the
category's words between its caption and its CLIP-only neighbours' captions, minus the same for
its reference-only neighbours: positive when CLIP groups images that differ in that category.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from interp.probes.lexicon import Lexicon, tokens
from interp.probes.neighbours import Comparison
from interp.probes.stats import benjamini_hochberg, bootstrap_ci, sign_flip_p_columns


@dataclass
class Split:
    """One query's neighbours: CLIP-only, reference-only and shared (positions in each list)."""

    clip_only: list[int]       # positions j in comparison.a.index[q]
    reference_only: list[int]  # positions j in comparison.b.index[q]
    shared: list[int]          # image indices in both


def overlaps(cmp: Comparison) -> np.ndarray:
    """|CLIP top-k ∩ reference top-k| per query."""
    a, b = cmp.a.index, cmp.b.index
    return (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)


def chance_overlap(k: int, n: int) -> float:
    """Expected overlap of two random k-sets among the n − 1 other images: k² / (n − 1)."""
    return k * k / (n - 1)


def split(cmp: Comparison, q: int) -> Split:
    a, b = cmp.a.index[q], cmp.b.index[q]
    in_b, in_a = set(b.tolist()), set(a.tolist())
    return Split([j for j, i in enumerate(a) if i not in in_b],
                 [j for j, i in enumerate(b) if i not in in_a],
                 [int(i) for i in a if i in in_b])


def mismatch(x: frozenset, y: frozenset) -> float:
    """1 − Jaccard similarity of two non-empty word sets."""
    return 1.0 - len(x & y) / len(x | y)


def _side_mismatch(query: frozenset, words: list[frozenset]) -> float:
    """Mean mismatch with the neighbours that have a word of the category (NaN if none)."""
    scores = [mismatch(query, w) for w in words if w]
    return float(np.mean(scores)) if scores else float("nan")


def category_effects(cmp: Comparison, captions: list[str], queries: np.ndarray,
                     lexicon: Lexicon) -> np.ndarray:
    """(queries, categories) effects, NaN where the query's caption, or all neighbours on one
    side, have no word of the category (left out of that category's statistic)."""
    words = [lexicon.words(c) for c in captions]
    out = np.full((len(queries), len(lexicon.names)), np.nan)
    for row, q in enumerate(queries):
        s = split(cmp, int(q))
        clip_nb = [int(cmp.a.index[q, j]) for j in s.clip_only]
        ref_nb = [int(cmp.b.index[q, j]) for j in s.reference_only]
        for col, name in enumerate(lexicon.names):
            mine = words[q][name]
            if mine:
                out[row, col] = (_side_mismatch(mine, [words[i][name] for i in clip_nb])
                                 - _side_mismatch(mine, [words[i][name] for i in ref_nb]))
    return out


#: Words that carry no content on their own: left out as unigrams and as all-stop bigrams.
STOP_WORDS = frozenset(("a", "an", "the", "of", "on", "in", "at", "to", "with", "and", "or", "is",
                        "are", "its", "it", "this", "that", "by", "for", "from", "as"))


def ngrams(caption: str) -> set[str]:
    """Unigrams and bigrams of a caption, less those made of stop words only."""
    t = tokens(caption)
    grams = {(w,) for w in t} | set(zip(t, t[1:], strict=False))
    return {" ".join(g) for g in grams if not all(w in STOP_WORDS for w in g)}


def word_effects(cmp: Comparison, captions: list[str], queries: np.ndarray,
                 min_count: int) -> tuple[list[str], np.ndarray]:
    """Per word of at least `min_count` failure queries' captions: for each such query, the
    share of CLIP-only neighbours whose caption lacks it minus the same for reference-only."""
    grams = [ngrams(c) for c in captions]
    counts = Counter(g for q in queries for g in grams[q])
    vocab = sorted(w for w, n in counts.items() if n >= min_count)
    column = {w: i for i, w in enumerate(vocab)}
    out = np.full((len(queries), len(vocab)), np.nan)
    for row, q in enumerate(queries):
        s = split(cmp, int(q))
        clip_nb = [grams[int(cmp.a.index[q, j])] for j in s.clip_only]
        ref_nb = [grams[int(cmp.b.index[q, j])] for j in s.reference_only]
        if not clip_nb or not ref_nb:
            continue
        for w in grams[q] & column.keys():
            lost_clip = np.mean([w not in g for g in clip_nb])
            lost_ref = np.mean([w not in g for g in ref_nb])
            out[row, column[w]] = lost_clip - lost_ref
    return vocab, out


def column_tests(effects: np.ndarray, names: list[str], *, n_permutations: int, n_boot: int,
                 seed: int | np.random.Generator) -> list[dict]:
    """Per column (NaN: left out of it): queries, mean effect, bootstrap CI, sign-flip p and
    BH q across columns."""
    rng = np.random.default_rng(seed)
    p = sign_flip_p_columns(effects, n_permutations, rng)
    q = benjamini_hochberg(p)
    rows = []
    for col, name in enumerate(names):
        x = effects[:, col][np.isfinite(effects[:, col])]
        low, high = bootstrap_ci(x, n_boot, rng)
        rows.append({"name": name, "n_queries": int(x.size),
                     "effect": float(x.mean()) if x.size else float("nan"),
                     "ci_low": low, "ci_high": high, "p": float(p[col]), "q": float(q[col])})
    return rows


def blind_pairs(cmp: Comparison, blind_rank: int) -> list[tuple[int, int, int]]:
    """(query, neighbour, position) of CLIP neighbours the reference ranks beyond `blind_rank`,
    each unordered pair once (at its first query)."""
    seen: set[tuple[int, int]] = set()
    out = []
    for q, j in zip(*np.nonzero(cmp.a_rank_in_b > blind_rank), strict=True):
        i = int(cmp.a.index[q, j])
        key = (min(int(q), i), max(int(q), i))
        if key not in seen:
            seen.add(key)
            out.append((int(q), i, int(j)))
    return out


def examples(cmp: Comparison, captions: list[str], queries: np.ndarray, effects: np.ndarray,
             lexicon: Lexicon, col: int, n: int = 3) -> list[dict]:
    """Triplets of the category's largest effects: the query's caption, its CLIP-only neighbour
    that mismatches most, its reference-only neighbour that mismatches least."""
    name = lexicon.names[col]
    order = [r for r in np.argsort(-np.nan_to_num(effects[:, col], nan=-np.inf), kind="stable")
             if np.isfinite(effects[r, col]) and effects[r, col] > 0][:n]
    out = []
    for r in order:
        q = int(queries[r])
        mine = lexicon.words(captions[q])[name]
        s = split(cmp, q)
        clip = _scored(mine, [int(cmp.a.index[q, j]) for j in s.clip_only], captions, lexicon,
                       name)
        ref = _scored(mine, [int(cmp.b.index[q, j]) for j in s.reference_only], captions,
                      lexicon, name)
        out.append({"query": q, "caption": captions[q], "effect": float(effects[r, col]),
                    "clip_neighbour": max(clip)[1], "reference_neighbour": min(ref)[1]})
    return out


def _scored(mine: frozenset, ids: list[int], captions: list[str], lexicon: Lexicon,
            name: str) -> list[tuple[float, int]]:
    """(mismatch with the query's words, image) of the neighbours having words of `name`."""
    return [(mismatch(mine, w), i) for i in ids if (w := lexicon.words(captions[i])[name])]
