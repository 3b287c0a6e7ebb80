"""Opponent-space hue of neuron features, hue histograms against the corpus, nearest colour term.

Opponent space (Rafegas & Vanrell): O1 = (R+G+B)/sqrt3 (intensity), O2 = (R-G)/sqrt2,
O3 = (R+G-2B)/sqrt6; hue = atan2(O3, O2) in degrees [0, 360), chroma = |(O2, O3)|.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2lab

from stimuli.palette import COLOR_TERMS, PALETTE

OPPONENT = np.array([
    [1 / np.sqrt(3), 1 / np.sqrt(3), 1 / np.sqrt(3)],
    [1 / np.sqrt(2), -1 / np.sqrt(2), 0.0],
    [1 / np.sqrt(6), 1 / np.sqrt(6), -2 / np.sqrt(6)],
])
CHROMA_THRESHOLD = 0.05  # RGB in [0, 1]: below this a pixel counts as achromatic (grey-ish)
PALETTE_LAB = rgb2lab(PALETTE[None].astype(np.float64) / 255)[0]


def to_opponent(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB in [0, 1] -> (..., 3) opponent (O1, O2, O3)."""
    return np.asarray(rgb, dtype=np.float64) @ OPPONENT.T


def hue_chroma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hue in degrees [0, 360) and chroma of (..., 3) RGB in [0, 1]."""
    opp = to_opponent(rgb)
    hue = np.degrees(np.arctan2(opp[..., 2], opp[..., 1])) % 360
    return hue, np.hypot(opp[..., 1], opp[..., 2])


def dominant_hue(nf: np.ndarray, chroma_threshold: float = CHROMA_THRESHOLD,
                 bin_deg: float = 10.0, window_deg: float = 30.0) -> float:
    """Dominant hue of an NF (h, w, 3), NaN = padding: NaN when no pixel is chromatic enough.

    The peak of the chroma-weighted hue histogram, refined to the chroma-weighted circular mean
    of the pixels within `window_deg` of it (a plain mean would cancel opposite hues).
    """
    pixels = np.asarray(nf, dtype=np.float64).reshape(-1, 3)
    pixels = pixels[np.isfinite(pixels).all(axis=1)]
    hue, chroma = hue_chroma(pixels)
    keep = chroma >= chroma_threshold
    if not keep.any():
        return float("nan")
    hue, chroma = hue[keep], chroma[keep]
    counts, edges = np.histogram(hue, bins=int(360 / bin_deg), range=(0, 360), weights=chroma)
    peak = (edges[counts.argmax()] + bin_deg / 2)
    near = np.abs((hue - peak + 180) % 360 - 180) <= window_deg
    rad = np.radians(hue[near])
    mean = np.arctan2((chroma[near] * np.sin(rad)).sum(), (chroma[near] * np.cos(rad)).sum())
    return float(np.degrees(mean) % 360)


def hue_histogram(hues: np.ndarray, n_bins: int = 12,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """Normalised histogram (sums to 1) of hues in degrees over `n_bins` equal bins; NaN dropped."""
    hues = np.asarray(hues, dtype=np.float64).ravel()
    ok = np.isfinite(hues)
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()[ok]
    counts, _ = np.histogram(hues[ok], bins=n_bins, range=(0, 360), weights=w)
    total = counts.sum()
    return counts / total if total > 0 else counts.astype(np.float64)


class CorpusHue:
    """Streaming hue histogram of every chromatic pixel of a corpus (achromatic ones ignored)."""

    def __init__(self, n_bins: int = 12, chroma_threshold: float = CHROMA_THRESHOLD) -> None:
        self.counts = np.zeros(n_bins)
        self.chroma_threshold = chroma_threshold

    def add(self, image_uint8: np.ndarray) -> None:
        hue, chroma = hue_chroma(image_uint8.reshape(-1, 3) / 255.0)
        hue = hue[chroma >= self.chroma_threshold]
        self.counts += np.histogram(hue, bins=self.counts.size, range=(0, 360))[0]

    def histogram(self) -> np.ndarray:
        total = self.counts.sum()
        return self.counts / total if total > 0 else self.counts


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two histograms; NaN when either is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


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
