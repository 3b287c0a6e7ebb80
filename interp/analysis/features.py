"""Receptive-field crops and neuron features (NF = activation-weighted mean of the top-N crops).

A crop is the unit's full receptive-field box at its argmax, clipped at the image border and
padded to the full box; padding is NaN (invalid), never treated as image. NFs are raw RGB floats
in [0, 1], never contrast-stretched. Large fields are averaged over f x f pixel cells (f chosen
so the NF side is at most `max_side`), valid pixels only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
from scipy import sparse

from interp.analysis.geometry import Field
from interp.progress import bar as progress_bar

MAX_SIDE = 64  # NF side in cells; keeps NFs of 400-pixel fields small (RN50 layer4: 457 px)


def padded_crop(image: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Box (y0, y1, x0, x1) of an (H, W, 3) uint8 image -> (crop float32 in [0, 1] with NaN
    padding, valid (h, w) bool); the box may extend beyond the border."""
    y0, y1, x0, x1 = box
    h, w = image.shape[:2]
    crop = np.full((y1 - y0, x1 - x0, 3), np.nan, dtype=np.float32)
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if cy0 < cy1 and cx0 < cx1:
        crop[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = image[cy0:cy1, cx0:cx1] / np.float32(255)
    return crop, np.isfinite(crop[..., 0])


def cell_factor(size: tuple[int, int], max_side: int = MAX_SIDE) -> int:
    """Pixels per NF cell side so that the NF side is at most `max_side`."""
    return max(1, math.ceil(max(size) / max_side))


def nf_shape(size: tuple[int, int], max_side: int = MAX_SIDE) -> tuple[int, int]:
    f = cell_factor(size, max_side)
    return math.ceil(size[0] / f), math.ceil(size[1] / f)


def integral_image(image_uint8: np.ndarray) -> np.ndarray:
    """(h + 1, w + 1, 3) int32 summed-area table of a uint8 image (exact; 0 row and column)."""
    h, w = image_uint8.shape[:2]
    ii = np.zeros((h + 1, w + 1, 3), dtype=np.int32)
    np.cumsum(image_uint8, axis=0, dtype=np.int32, out=ii[1:, 1:])
    np.cumsum(ii[1:, 1:], axis=1, out=ii[1:, 1:])
    return ii


def cell_sums(ii: np.ndarray, field: Field, keys: np.ndarray, f: int,
              shape: tuple[int, int]) -> np.ndarray:
    """(crops, h, w, 4) float32: RGB sums (0-255 units) and valid-pixel counts of the f x f
    cells of the field's boxes at map locations `keys` (crops, 2), from an integral_image.
    Pixels outside the image do not count; a few look-ups per cell instead of a copy per crop."""
    h, w = ii.shape[0] - 1, ii.shape[1] - 1

    def grid(axis, at, size, limit):
        return np.clip(axis.scale * at[:, None] + axis.offset
                       + np.minimum(f * np.arange(size + 1), axis.size), 0, limit)

    ys, xs = grid(field.y, keys[:, 0], shape[0], h), grid(field.x, keys[:, 1], shape[1], w)
    g = ii[ys[:, :, None], xs[:, None, :]]
    rgb = g[:, 1:, 1:] - g[:, :-1, 1:] - g[:, 1:, :-1] + g[:, :-1, :-1]
    count = np.diff(ys, axis=1)[:, :, None] * np.diff(xs, axis=1)[:, None, :]
    return np.concatenate([rgb, count[..., None]], axis=-1).astype(np.float32)


def neuron_features(render: Callable[[int], np.ndarray], topn_index: np.ndarray,
                    topn_value: np.ndarray, topn_loc: np.ndarray, field: Field,
                    max_side: int = MAX_SIDE, desc: str = "NF", images_per_step: int = 16,
                    integral: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
    """NFs (units, h, w, 3) float32 of one block, NaN where no crop had a valid pixel.

    Each distinct image is rendered once and each distinct location in it summed once (cells
    from the image's summed-area table), whatever the number of units that share them; a sparse
    (units x crops) weight matrix then adds them into every unit at once, a few images at a
    time. `integral(i)`: image i's integral_image when the caller keeps them (default: from
    `render`).
    """
    integral = integral or (lambda i: integral_image(render(i)))
    n_units, n = topn_index.shape
    f, shape = cell_factor(field.size, max_side), nf_shape(field.size, max_side)
    acc = np.zeros((n_units, shape[0] * shape[1] * 4), dtype=np.float32)
    w = np.clip(np.asarray(topn_value, dtype=np.float32), 0, None).ravel()
    images = topn_index.ravel()
    units = np.repeat(np.arange(n_units), n)
    locs = topn_loc.reshape(-1, 2).astype(np.int64)
    order = np.argsort(images, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(images[order])) + 1)
    with progress_bar(total=len(groups), desc=desc, unit="img", leave=False) as bar:
        for first in range(0, len(groups), images_per_step):
            step = groups[first:first + images_per_step]
            acc += _step_sums(integral, step, images, units, locs, w, field, f, shape, n_units)
            bar.update(len(step))
    acc = acc.reshape(n_units, *shape, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        nf = acc[..., :3] / (np.float32(255) * acc[..., 3:])
    return np.where(acc[..., 3:] > 0, nf, np.float32(np.nan)).astype(np.float32)


def _step_sums(integral, groups, images, units, locs, w, field: Field, f: int,
               shape: tuple[int, int], n_units: int) -> np.ndarray:
    """(units, cells * 4) weighted cell sums and valid counts of the pairs of a few images."""
    rows, cols, crops, start = [], [], [], 0
    for group in groups:
        keys, inv = np.unique(locs[group], axis=0, return_inverse=True)
        crops.append(cell_sums(integral(int(images[group[0]])), field, keys, f, shape))
        rows.append(units[group])
        cols.append(start + inv.ravel())
        start += len(keys)
    weights = sparse.csr_matrix((w[np.concatenate(groups)], (np.concatenate(rows),
                                                           np.concatenate(cols))),
                                shape=(n_units, start), dtype=np.float32)
    return np.asarray(weights @ np.concatenate(crops).reshape(start, -1))


def unit_crops(run_dir: str | os.PathLike, set: str, block: str, unit: int, k: int = 9
               ) -> list[tuple[np.ndarray, np.ndarray, int, dict]]:
    """The unit's k top crops of a set: (crop (h, w, 3) uint8, valid (h, w) bool, image index,
    labels dict, categorical kinds by name), re-rendered from the procedural stimuli; no model."""
    from interp.analysis.runio import load_set, open_analysis
    from interp.store import open_store

    group = open_analysis(run_dir)[set][block]
    field = Field.from_attrs(group.attrs["field"])
    index = group["topn_index"][unit, :k]
    loc = group["topn_loc"][unit, :k]
    stim = load_set(run_dir, set)
    labels = open_store(run_dir)[set]["labels"]
    out = []
    for i, (y, x) in zip(index, loc, strict=True):
        crop, valid = padded_crop(stim.render(int(i)), field.box(int(y), int(x)))
        pixels = np.round(np.nan_to_num(crop) * 255).astype(np.uint8)
        info = {}
        for kind, arr in labels.arrays():
            value = arr[int(i)].item()
            names = arr.attrs.get("names")
            info[kind] = names[value] if names else value
        out.append((pixels, valid, int(i), info))
    return out
