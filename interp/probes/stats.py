"""Tests of the probes' failure types, pure numpy: a sign-flip permutation test of a mean,
Benjamini-Hochberg q-values, bootstrap confidence intervals of a mean."""

from __future__ import annotations

import numpy as np

#: Sign-flip draws and bootstrap resamples processed per block (memory: block x n floats).
_BLOCK = 1024


def sign_flip_p(x: np.ndarray, n_permutations: int, rng: np.random.Generator) -> float:
    """Two-sided p of mean(x) = 0 against random sign flips of the per-query differences x
    (paired effects are symmetric about 0 under the null): (1 + #|flipped mean| >= |mean|) /
    (1 + draws); NaN with no data."""
    x = np.asarray(x, dtype=np.float64)
    return float(sign_flip_p_columns(x.reshape(-1, 1), n_permutations, rng)[0])


def sign_flip_p_columns(x: np.ndarray, n_permutations: int, rng: np.random.Generator
                        ) -> np.ndarray:
    """`sign_flip_p` of every column of x (queries x tests) at once, NaN entries left out of
    their column; the same sign draws serve every column (each column's test stays exact)."""
    x = np.asarray(x, dtype=np.float64)
    present = np.isfinite(x)
    counts = present.sum(axis=0)
    values = np.where(present, x, 0.0)
    observed = np.abs(values.sum(axis=0)) / np.maximum(counts, 1)
    tolerance = 1e-12 * np.maximum(1.0, observed)
    hits = np.zeros(x.shape[1], dtype=np.int64)
    for done in range(0, n_permutations, _BLOCK):
        m = min(_BLOCK, n_permutations - done)
        signs = (rng.integers(0, 2, size=(m, x.shape[0]), dtype=np.int8) * 2 - 1).astype(
            np.float64)
        flipped = np.abs(signs @ values) / np.maximum(counts, 1)
        hits += np.count_nonzero(flipped >= observed - tolerance, axis=0)
    p = (1 + hits) / (1 + n_permutations)
    return np.where(counts > 0, p, np.nan)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """q-values (BH step-up adjusted p) of the finite p; NaN stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if finite.size == 0:
        return q
    order = finite[np.argsort(p[finite], kind="stable")]
    ranked = p[order] * finite.size / np.arange(1, finite.size + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    return q


def bootstrap_ci(x: np.ndarray, n_boot: int, rng: np.random.Generator,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(x); (NaN, NaN) with no data."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan")
    means = []
    for done in range(0, n_boot, _BLOCK):
        m = min(_BLOCK, n_boot - done)
        means.append(x[rng.integers(0, x.size, size=(m, x.size))].mean(axis=1))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.concatenate(means), [tail, 100 - tail])
    return float(low), float(high)
