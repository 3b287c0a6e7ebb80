"""Opponent-space hue of neuron features, hue histograms against the corpus, nearest colour term,
and the random-crop null of the histogram's Pearson r (NFs averaged from random crops).

Hue bins (hue_bin_edges) are centred on the palette's primaries, so that no palette colour sits on
an edge; one set of edges serves the units, the corpus and the figure.

Opponent space (Rafegas & Vanrell): O1 = (R+G+B)/sqrt3 (intensity), O2 = (R-G)/sqrt2,
O3 = (R+G-2B)/sqrt6; hue = atan2(O3, O2) in degrees [0, 360), chroma = |(O2, O3)|.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from skimage.color import rgb2lab

from interp.analysis.features import integral_image, neuron_features
from stimuli.palette import COLOR_TERMS, IS_ACHROMATIC, PALETTE

OPPONENT = np.array([
    [1 / np.sqrt(3), 1 / np.sqrt(3), 1 / np.sqrt(3)],
    [1 / np.sqrt(2), -1 / np.sqrt(2), 0.0],
    [1 / np.sqrt(6), 1 / np.sqrt(6), -2 / np.sqrt(6)],
])
CHROMA_THRESHOLD = 0.05  # RGB in [0, 1]: below this a pixel counts as achromatic (grey-ish)
RED_HUE = 30.0  # opponent hue of the palette's red: the preferred bin centre
MIN_EDGE_MARGIN_DEG = 3.0  # palette hues at least this far from a bin edge (±1 RGB moves pink 1.9)
PALETTE_LAB = rgb2lab(PALETTE[None].astype(np.float64) / 255)[0]


def to_opponent(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB in [0, 1] -> (..., 3) opponent (O1, O2, O3)."""
    return np.asarray(rgb, dtype=np.float64) @ OPPONENT.T


def hue_chroma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hue in degrees [0, 360) and chroma of (..., 3) RGB in [0, 1]."""
    o2, o3 = _chromatic(rgb)
    return np.degrees(np.arctan2(o3, o2)) % 360, np.hypot(o2, o3)


def _chromatic(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(O2, O3) of (..., 3) RGB, channel by channel (a (n, 3) @ (3, 3) matmul is slow)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (r - g) * OPPONENT[1, 0], (r + g - 2 * b) * OPPONENT[2, 0]


def dominant_hue(nf: np.ndarray, chroma_threshold: float = CHROMA_THRESHOLD,
                 bin_deg: float = 10.0, window_deg: float = 30.0) -> float:
    """Dominant hue of an NF (h, w, 3), NaN = padding: NaN when no pixel is chromatic enough.

    The peak of the chroma-weighted hue histogram, refined to the chroma-weighted circular mean
    of the pixels within `window_deg` of it (a plain mean would cancel opposite hues).
    """
    nf = np.asarray(nf, dtype=np.float64)
    return float(dominant_hues(nf[None], chroma_threshold, bin_deg, window_deg)[0])


def dominant_hues(nfs: np.ndarray, chroma_threshold: float = CHROMA_THRESHOLD,
                  bin_deg: float = 10.0, window_deg: float = 30.0) -> np.ndarray:
    """dominant_hue of every NF of (units, h, w, 3) at once: one pass over all their pixels."""
    n_units = len(nfs)
    pixels = np.asarray(nfs).reshape(n_units, -1, 3)
    o2, o3 = _chromatic(pixels)
    chroma = np.hypot(o2, o3)
    with np.errstate(invalid="ignore"):
        keep = chroma >= chroma_threshold  # NaN padding: False
    unit = np.broadcast_to(np.arange(n_units)[:, None], keep.shape)[keep]
    hue, chroma = np.degrees(np.arctan2(o3[keep], o2[keep])) % 360, chroma[keep]
    n_bins = int(360 / bin_deg)
    bins = np.minimum((hue / bin_deg).astype(np.int64), n_bins - 1)
    counts = np.bincount(unit * n_bins + bins, weights=chroma, minlength=n_units * n_bins)
    peak = counts.reshape(n_units, n_bins).argmax(axis=1) * bin_deg + bin_deg / 2
    near = np.abs((hue - peak[unit] + 180) % 360 - 180) <= window_deg
    rad, c, u = np.radians(hue[near]), chroma[near], unit[near]
    sin = np.bincount(u, weights=c * np.sin(rad), minlength=n_units)
    cos = np.bincount(u, weights=c * np.cos(rad), minlength=n_units)
    out = np.degrees(np.arctan2(sin, cos)) % 360
    return np.where(np.bincount(unit, minlength=n_units) > 0, out, np.nan)


def palette_hues() -> np.ndarray:
    """Opponent hue in degrees of every chromatic palette colour, in COLOR_TERMS order."""
    return hue_chroma(PALETTE[~IS_ACHROMATIC] / 255.0)[0]


def edge_margin(hues: np.ndarray, edges: np.ndarray) -> float:
    """Smallest circular distance in degrees from any of `hues` to any bin edge."""
    hues = np.asarray(hues, dtype=np.float64).ravel()[:, None]
    d = np.abs((hues - np.asarray(edges, dtype=np.float64)[None, :] + 180) % 360 - 180)
    return float(d.min())


def hue_bin_edges(n_bins: int = 12, hues: np.ndarray | None = None) -> np.ndarray:
    """`n_bins` + 1 increasing edges spanning 360 degrees, none on a palette hue.

    Bins of equal width w start at an offset in [0, w); the last one wraps past 360 to the
    first edge. Preferred: bins centred on red (30 degrees), which with 12 bins centres red,
    brown, yellow, green, blue and purple; when that leaves a palette hue within
    MIN_EDGE_MARGIN_DEG of an edge, the offset farthest from every palette hue instead.
    """
    if n_bins < 1:
        raise ValueError(f"hue bins: need at least 1, got {n_bins}")
    hues = palette_hues() if hues is None else np.asarray(hues, dtype=np.float64)
    width = 360 / n_bins
    offset = (RED_HUE - width / 2) % width
    if edge_margin(hues, offset + width * np.arange(n_bins + 1)) < MIN_EDGE_MARGIN_DEG:
        offset = _farthest_offset(hues % width, width)
    return offset + width * np.arange(n_bins + 1)


def _farthest_offset(phases: np.ndarray, width: float) -> float:
    """Offset in [0, width) farthest from every phase: the middle of the largest gap."""
    v = np.sort(phases)
    gaps = np.diff(np.append(v, v[0] + width))
    i = int(gaps.argmax())
    return float((v[i] + gaps[i] / 2) % width)


def as_edges(bins: int | np.ndarray) -> np.ndarray:
    """Bin edges from a number of bins (hue_bin_edges) or edges as given."""
    if np.ndim(bins) == 0:
        return hue_bin_edges(int(bins))
    return np.asarray(bins, dtype=np.float64)


def hue_bin_index(hues: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each hue in degrees under (wrapping) `edges`; -1 for NaN."""
    hues = np.asarray(hues, dtype=np.float64)
    n = len(edges) - 1
    width = (edges[-1] - edges[0]) / n
    ok = np.isfinite(hues)
    pos = (np.where(ok, hues, 0) - edges[0]) % 360
    return np.where(ok, np.minimum((pos // width).astype(np.int64), n - 1), -1)


def bin_centres(edges: np.ndarray) -> np.ndarray:
    """Centre of each bin in degrees [0, 360)."""
    edges = np.asarray(edges, dtype=np.float64)
    return ((edges[:-1] + edges[1:]) / 2) % 360


def hue_histogram(hues: np.ndarray, bins: int | np.ndarray = 12,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """Normalised histogram (sums to 1) of hues in degrees over `bins` (a count: hue_bin_edges,
    or edges); NaN dropped."""
    edges = as_edges(bins)
    index = hue_bin_index(np.asarray(hues).ravel(), edges)
    ok = index >= 0
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()[ok]
    counts = np.bincount(index[ok], weights=w, minlength=len(edges) - 1).astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


class CorpusHue:
    """Streaming hue histogram of every chromatic pixel of a corpus (achromatic ones ignored)."""

    def __init__(self, bins: int | np.ndarray = 12,
                 chroma_threshold: float = CHROMA_THRESHOLD) -> None:
        self.edges = as_edges(bins)
        self.counts = np.zeros(len(self.edges) - 1)
        self.chroma_threshold = chroma_threshold

    def add(self, image_uint8: np.ndarray) -> None:
        hue, chroma = hue_chroma(image_uint8.reshape(-1, 3) / 255.0)
        index = hue_bin_index(hue[chroma >= self.chroma_threshold], self.edges)
        self.counts += np.bincount(index, minlength=self.counts.size)

    def histogram(self) -> np.ndarray:
        total = self.counts.sum()
        return self.counts / total if total > 0 else self.counts


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two histograms; NaN when either is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


# --- random-crop null: NFs of random crops, same N, weights and number of units -------------

NULL_DRAWS = 5  # seeded draws of the null
NULL_SEED = 0
NULL_POOL_IMAGES = 256  # images per draw (at least 2N): bounds the renders and crops per draw
NULL_LOCS_PER_IMAGE = 4  # random map locations per pool image and block


@dataclass(frozen=True)
class NullBlock:
    """One block's colour-selective units as the null needs them."""

    weights: np.ndarray  # (units, N) their own top-N activations: the NF weights of the null
    map_shape: tuple[int, int]
    field: Any  # interp.analysis.geometry.Field of the block


def null_pool(rng: np.random.Generator, n_images: int, n: int,
              pool_images: int = NULL_POOL_IMAGES) -> np.ndarray:
    """Random distinct images (sorted) one draw crops from: all when the corpus is small."""
    size = min(n_images, max(pool_images, 2 * n))
    return np.sort(rng.choice(n_images, size, replace=False))


def null_pairs(rng: np.random.Generator, n_units: int, n: int, pool: np.ndarray,
               map_shape: tuple[int, int], locs_per_image: int = NULL_LOCS_PER_IMAGE
               ) -> tuple[np.ndarray, np.ndarray]:
    """(index (units, n), loc (units, n, 2)): each unit n distinct pool images, each at one of
    that image's `locs_per_image` uniformly random map locations (which bounds the crops)."""
    if n > pool.size:
        raise ValueError(f"null: {n} images per unit from a pool of {pool.size}")
    locs = rng.integers(0, map_shape, size=(pool.size, locs_per_image, 2))
    pos = np.argsort(rng.random((n_units, pool.size)), axis=1)[:, :n]
    which = rng.integers(0, locs_per_image, size=(n_units, n))
    return pool[pos], locs[pos, which]


def null_summary(r: np.ndarray, hists: np.ndarray) -> dict:
    """Mean and min-max interval over the draws of r and of each bin of the null histogram."""
    r = np.asarray(r, dtype=np.float64)
    ok = r[np.isfinite(r)]
    stat = (lambda f: float(f(ok))) if ok.size else (lambda f: float("nan"))
    return {"r": r.tolist(), "mean": stat(np.mean), "lo": stat(np.min), "hi": stat(np.max),
            "interval": f"min-max of {r.size} draws",
            "hist_mean": hists.mean(axis=0).tolist(), "hist_lo": hists.min(axis=0).tolist(),
            "hist_hi": hists.max(axis=0).tolist()}


def random_crop_null(render: Callable[[int], np.ndarray], blocks: list[NullBlock],
                     n_images: int, edges: np.ndarray, corpus: np.ndarray,
                     draws: int = NULL_DRAWS, seed: int = NULL_SEED, max_side: int = 64) -> dict:
    """r of NFs built from random crops against the corpus, over seeded draws (null_summary).

    An NF averages corpus crops, so its hue follows the corpus whatever the unit computes:
    this is the r that averaging alone gives, for the same blocks, units, N and weights.
    """
    n = max((b.weights.shape[1] for b in blocks), default=1)
    rs, hists, counts = [], [], []
    for d in range(draws):
        pool = null_pool(np.random.default_rng([seed, d]), n_images, n)
        tables = _cached(lambda i: integral_image(render(i)))  # pool images serve every block
        hues = []
        for i, b in enumerate(blocks):
            rng = np.random.default_rng([seed, d, i + 1])
            index, loc = null_pairs(rng, len(b.weights), b.weights.shape[1], pool, b.map_shape)
            nf = neuron_features(render, index, b.weights, loc, b.field, max_side,
                                 desc=f"hue null {d + 1}/{draws}", integral=tables)
            hues.extend(dominant_hues(nf))
        hist = hue_histogram(np.array(hues, dtype=np.float64), edges)
        rs.append(pearson_r(hist, corpus))
        hists.append(hist)
        counts.append(int(np.isfinite(hues).sum()))
    hists_arr = np.array(hists).reshape(len(hists), len(edges) - 1)
    return null_summary(np.array(rs), hists_arr) | {"draws": draws, "seed": seed,
                                                     "units": counts}


def null_key(blocks: list[NullBlock], edges: np.ndarray, n_images: int, draws: int, seed: int,
             max_side: int) -> str:
    """Digest of everything the null depends on: a rerun with the same key reuses it."""
    h = hashlib.sha1()
    for b in blocks:
        h.update(np.ascontiguousarray(b.weights, dtype=np.float32).tobytes())
        h.update(repr((tuple(b.map_shape), b.field)).encode())
    h.update(repr((np.round(edges, 6).tolist(), n_images, draws, seed, max_side,
                   NULL_POOL_IMAGES, NULL_LOCS_PER_IMAGE)).encode())
    return h.hexdigest()


def _cached(render: Callable[[int], np.ndarray]) -> Callable[[int], np.ndarray]:
    """`render` remembering what it gave (one draw's pool tables, shared by all blocks)."""
    memo: dict[int, np.ndarray] = {}

    def get(i: int) -> np.ndarray:
        if i not in memo:
            memo[i] = render(i)
        return memo[i]

    return get


def write_histogram_csv(path: Path, edges: np.ndarray, units: np.ndarray, corpus: np.ndarray,
                        null: dict | None) -> Path:
    """The hue figure's table: one row per bin, unit and corpus fractions, null mean/lo/hi."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ("null_mean", "null_lo", "null_hi")
    nan = [float("nan")] * len(units)
    null_cols = [null.get(k.replace("null", "hist"), nan) if null else nan for k in cols]
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(("bin", "lo_deg", "hi_deg", "centre_deg", "unit_fraction",
                      "corpus_fraction", *cols))
        for k, centre in enumerate(bin_centres(edges)):
            values = (units[k], corpus[k], *(c[k] for c in null_cols))
            out.writerow((k, f"{edges[k] % 360:g}", f"{edges[k + 1] % 360:g}", f"{centre:g}",
                          *(f"{v:.6f}" for v in values)))
    return path


def nearest_color_term(nf: np.ndarray, centre_fraction: float = 0.5) -> str:
    """Basic colour term nearest (CIELAB distance) to the mean colour of the NF's centre.

    The centre (the middle `centre_fraction` of each side) is where the unit's argmax lies; the
    surround averages unrelated context towards grey. "" when the centre has no valid pixel.
    """
    nf = np.asarray(nf, dtype=np.float64)
    h, w = nf.shape[:2]
    dy, dx = int(h * (1 - centre_fraction) / 2), int(w * (1 - centre_fraction) / 2)
    centre = nf[dy:h - dy, dx:w - dx].reshape(-1, 3)
    centre = centre[np.isfinite(centre).all(axis=1)]
    if centre.size == 0:
        return ""
    lab = rgb2lab(np.clip(centre.mean(axis=0), 0, 1)[None, None])[0, 0]
    return COLOR_TERMS[int(np.linalg.norm(PALETTE_LAB - lab, axis=1).argmin())]
