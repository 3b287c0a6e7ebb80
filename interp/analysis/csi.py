"""Colour selectivity index (Rafegas & Vanrell 2018): CSI = 1 - sum a_gray / sum a, in [0, 1].

a: a unit's top-N activations on natural images; a_gray: its response at the same map location
to the grayscale version of the same image, paired image by image, both in the store's float16
and with negative activations counted as 0. The gray re-run renders each distinct image once and
runs it once with every block hooked, gathering all (unit, image) pairs that need it: the cost
is the number of distinct images, not units x N.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from interp.analysis.geometry import Field
from interp.analysis.hue import OPPONENT
from interp.hooks import trace
from interp.inputs import autocast, to_input
from interp.progress import bar
from interp.store import VALUE_DTYPE

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma weights


def csi(a: np.ndarray, a_gray: np.ndarray, dtype: np.dtype | None = VALUE_DTYPE) -> np.ndarray:
    """Per unit (rows) CSI = 1 - sum max(a_gray, 0) / sum max(a, 0) from paired (units, N)
    activations, clipped to [0, 1]; NaN where sum max(a, 0) <= 0 (never activated).

    Both are first rounded to `dtype` (the store's float16; None: as given): a comes from the
    store, and an a_gray kept at higher precision would differ from it by rounding alone
    (about 2e-4), which the clip at 0 turns into a positive bias on gray-invariant units; rounded
    alike, a unit that ignores colour gives exactly 0. Negative activations count as 0, as in
    the NF and Eq. 1 (max(a, 0) weights); padding (-inf) of a short top-N counts as 0 too.
    """
    a, a_gray = (_nonnegative(x, dtype) for x in (a, a_gray))
    total = a.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = 1 - a_gray.sum(axis=1) / total
    return np.where(total > 0, np.clip(value, 0, 1), np.nan)


def _nonnegative(x: np.ndarray, dtype: np.dtype | None) -> np.ndarray:
    """max(x, 0) as float64, after rounding x to `dtype` (NaN stays NaN)."""
    x = np.asarray(x)
    if dtype is not None:
        with np.errstate(over="ignore"):
            x = x.astype(dtype)
    return np.maximum(x.astype(np.float64), 0)


def luminance_gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> the same size uint8 with R = G = B = BT.601 luma."""
    y = np.rint(image.astype(np.float64) @ LUMA).clip(0, 255).astype(np.uint8)
    return np.repeat(y[..., None], 3, axis=-1)


def opponent_pca_gray(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Gray only the box: project its opponent colours on their first principal component
    (eigenvalues sorted, sign making it increase with intensity O1), keep the box's mean
    intensity; pixels outside the box are untouched."""
    out = image.copy()
    h, w = image.shape[:2]
    y0, y1, x0, x1 = max(box[0], 0), min(box[1], h), max(box[2], 0), min(box[3], w)
    region = image[y0:y1, x0:x1].reshape(-1, 3).astype(np.float64)
    if region.shape[0] < 2:
        return out
    opp = region @ OPPONENT.T
    centred = opp - opp.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred)
    pc = vectors[:, np.argsort(values)[::-1][0]]
    if pc[0] < 0:
        pc = -pc
    intensity = opp[:, 0].mean() + centred @ pc  # along O1 when the PC is pure intensity
    gray = np.clip(intensity / np.sqrt(3), 0, 255)
    out[y0:y1, x0:x1] = np.rint(gray).astype(np.uint8).reshape(y1 - y0, x1 - x0, 1)
    return out


def _read_at(loaded, x: torch.Tensor, at: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Per block, its output at the (image, unit, y, x) index tensors `at[block]`, from one
    forward of `x` stopped after the last of these blocks; float16 values, as the store's."""
    got = {}

    def read(name: str, out: torch.Tensor) -> None:
        got[name] = out[at[name]].float().cpu().numpy().astype(VALUE_DTYPE)

    with trace({b: loaded.blocks[b] for b in at}, read, stop=True):
        loaded.visual(x)
    return got


def gray_activations(loaded, render: Callable[[int], np.ndarray],
                     pairs: dict[str, tuple[np.ndarray, np.ndarray]], batch_size: int = 32,
                     gray: Callable[[np.ndarray], np.ndarray] = luminance_gray,
                     dtype: str = "float32") -> dict[str, np.ndarray]:
    """a_gray (units, N) per block, for top-N images (units, N) and their argmax (units, N, 2).

    `pairs[block] = (topn_index, topn_loc)`; `loaded` is a LoadedModel (visual, blocks, mean,
    std, device). Each distinct image across all blocks is rendered and run exactly once, in
    the extraction's `dtype` so that a and a_gray come from the same arithmetic, and stored
    rounded to the store's float16 as a is (float32 arrays holding float16 values).
    """
    out = {b: np.zeros(idx.shape, dtype=np.float32) for b, (idx, _) in pairs.items()}
    images = np.unique(np.concatenate([idx.ravel() for idx, _ in pairs.values()]))
    by_image = {b: np.argsort(idx.ravel(), kind="stable") for b, (idx, _) in pairs.items()}
    device = loaded.device
    with torch.inference_mode(), autocast(device, dtype):
        for start in bar(range(0, len(images), batch_size), desc="CSI gray re-run",
                          unit="batch"):
            batch = images[start:start + batch_size]
            at, where = {}, {}
            for b, (idx, loc) in pairs.items():
                flat_idx, order = idx.ravel(), by_image[b]
                ordered = flat_idx[order]
                lo = np.searchsorted(ordered, batch[0], side="left")
                hi = np.searchsorted(ordered, batch[-1], side="right")
                sel = order[lo:hi]
                where[b] = sel
                y, x = loc.reshape(-1, 2)[sel].astype(np.int64).T
                at[b] = tuple(torch.as_tensor(v, device=device) for v in (
                    np.searchsorted(batch, flat_idx[sel]), sel // idx.shape[1], y, x))
            arr = np.stack([gray(render(int(i))) for i in batch])
            got = _read_at(loaded, to_input(arr, loaded), at)
            for b, sel in where.items():
                out[b].ravel()[sel] = got[b]
    return out


def opponent_gray_activations(loaded, render: Callable[[int], np.ndarray], block: str,
                              topn_index: np.ndarray, topn_loc: np.ndarray, field: Field,
                              batch_size: int = 32, dtype: str = "float32") -> np.ndarray:
    """a_gray (units, N) of one block with only each receptive field grayed by opponent PCA:
    one forward per distinct (image, location), shared by the units that need it; float16
    values as the store's a."""
    n = topn_index.shape[1]
    keys = np.stack([topn_index.ravel(), topn_loc[..., 0].ravel().astype(np.int64),
                     topn_loc[..., 1].ravel().astype(np.int64)], axis=1)
    distinct, which = np.unique(keys, axis=0, return_inverse=True)
    which = which.ravel()
    out = np.zeros(topn_index.size, dtype=np.float32)
    units = np.arange(topn_index.size) // n
    device = loaded.device
    with torch.inference_mode(), autocast(device, dtype):
        for start in bar(range(0, len(distinct), batch_size), desc=f"CSI opponent {block}",
                          unit="batch"):
            rows = distinct[start:start + batch_size]
            sel = np.flatnonzero((which >= start) & (which < start + len(rows)))
            at = {block: tuple(torch.as_tensor(v, device=device) for v in (
                which[sel] - start, units[sel], keys[sel, 1], keys[sel, 2]))}
            arr = np.stack([opponent_pca_gray(render(int(i)), field.box(int(y), int(x)))
                            for i, y, x in rows])
            out[sel] = _read_at(loaded, to_input(arr, loaded), at)[block]
    return out.reshape(topn_index.shape)
