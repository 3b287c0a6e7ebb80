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
from tqdm import tqdm

from interp.analysis.rf import Field

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


def _cell_sums(crop: np.ndarray, valid: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of valid pixel values and count of valid pixels per f x f cell."""
    h, w = valid.shape
    ch, cw = math.ceil(h / f), math.ceil(w / f)
    values = np.zeros((ch * f, cw * f, 3), dtype=np.float32)
    counts = np.zeros((ch * f, cw * f), dtype=np.float32)
    values[:h, :w] = np.where(valid[..., None], crop, 0)
    counts[:h, :w] = valid
    return (values.reshape(ch, f, cw, f, 3).sum(axis=(1, 3)),
            counts.reshape(ch, f, cw, f).sum(axis=(1, 3)))


def neuron_features(render: Callable[[int], np.ndarray], topn_index: np.ndarray,
                    topn_value: np.ndarray, topn_loc: np.ndarray, field: Field,
                    max_side: int = MAX_SIDE, desc: str = "NF", images_per_step: int = 16
                    ) -> np.ndarray:
    """NFs (units, h, w, 3) float32 of one block, NaN where no crop had a valid pixel.

    Each distinct image is rendered once and each distinct location in it cropped once, whatever
    the number of units that share them; a sparse (units x crops) weight matrix then adds the
    crops' cell sums and valid counts into every unit at once.
    """
    n_units, n = topn_index.shape
    f = cell_factor(field.size, max_side)
    shape = nf_shape(field.size, max_side)
    cells = shape[0] * shape[1]
    acc = np.zeros((n_units, cells * 4), dtype=np.float32)  # RGB sums, then valid counts
    w = np.clip(np.asarray(topn_value, dtype=np.float32), 0, None).ravel()
    images = topn_index.ravel()
    units = np.repeat(np.arange(n_units), n)
    locs = topn_loc.reshape(-1, 2).astype(np.int64)
    order = np.argsort(images, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(images[order])) + 1)
    with tqdm(total=len(groups), desc=desc, unit="img", leave=False, disable=None) as bar:
        for first in range(0, len(groups), images_per_step):
            step = groups[first:first + images_per_step]
            acc += _step_sums(render, step, images, units, locs, w, field, f, n_units)
            bar.update(len(step))
    weight = acc[:, cells * 3:].reshape(n_units, *shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        nf = acc[:, :cells * 3].reshape(n_units, *shape, 3) / weight[..., None]
    return np.where(weight[..., None] > 0, nf, np.nan).astype(np.float32)


def _step_sums(render, groups, images, units, locs, w, field: Field, f: int,
               n_units: int) -> np.ndarray:
    """(units, cells * 4) weighted cell sums and valid counts of the pairs of a few images."""
    rows, cols, data, crops = [], [], [], []
    for group in groups:
        image = render(int(images[group[0]]))
        loc_keys, loc_of = np.unique(locs[group], axis=0, return_inverse=True)
        for y, x in loc_keys:
            values, counts = _cell_sums(*padded_crop(image, field.box(int(y), int(x))), f)
            crops.append(np.concatenate([values.ravel(), counts.ravel()]))
        rows.append(units[group])
        cols.append(len(crops) - len(loc_keys) + loc_of.ravel())
        data.append(w[group])
    weights = sparse.csr_matrix((np.concatenate(data), (np.concatenate(rows),
                                                        np.concatenate(cols))),
                                shape=(n_units, len(crops)), dtype=np.float32)
    return np.asarray(weights @ np.stack(crops))


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
