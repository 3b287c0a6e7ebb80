"""Per-block steps of `analyze`, each streaming the activation store and writing analysis.zarr.

A step marks itself done in the block group's attrs (`done`) only after its arrays are written,
so a killed analysis redoes at most the step it was in.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import zarr

from interp.analysis import hue as hue_mod
from interp.analysis.features import cell_factor, neuron_features
from interp.analysis.geometry import Field
from interp.analysis.selectivity import MULTIMODAL, select_all
from interp.analysis.topn import TopN
from interp.progress import bar as progress_bar
from stimuli.palette import COLOR_TERMS

READ_BYTES = 64 << 20  # read the store in slabs of about this size (whole chunks)
STROOP_KINDS = ("word", "font", "bg", "color")


def is_done(group: zarr.Group, step: str) -> bool:
    return step in group.attrs.get("done", [])


def mark_done(group: zarr.Group, step: str) -> None:
    group.attrs["done"] = sorted({*group.attrs.get("done", []), step})


def unmark(group: zarr.Group, step: str) -> None:
    group.attrs["done"] = [s for s in group.attrs.get("done", []) if s != step]


def write(group: zarr.Group, name: str, values: np.ndarray, dims: tuple[str, ...]) -> None:
    """(Re)write one whole array, chunked along its first axis."""
    values = np.asarray(values)
    first = max(1, min(values.shape[0], max(1, (16 << 20) // max(1, values[:1].nbytes))))
    arr = group.create_array(name, shape=values.shape, dtype=values.dtype,
                             chunks=(first, *values.shape[1:]), dimension_names=dims,
                             overwrite=True, fill_value=0)
    arr[...] = values


def slabs(arr: zarr.Array) -> Iterator[tuple[int, np.ndarray]]:
    """(start, rows) over the images axis, whole store chunks at a time, about READ_BYTES each."""
    chunk = arr.chunks[0]
    row_bytes = int(np.prod(arr.shape[1:])) * 4
    step = chunk * max(1, READ_BYTES // max(1, chunk * row_bytes))
    for start in range(0, arr.shape[0], step):
        yield start, arr[start:start + step]


def topn_step(store_block: zarr.Group, out: zarr.Group, n: int) -> None:
    """Top-N images per unit (streamed), their argmax locations, the max per unit and the mean
    over the set of the per-image max."""
    mx = store_block["max"]
    top = TopN(mx.shape[1], n)
    total = np.zeros(mx.shape[1])
    with progress_bar(total=mx.shape[0], desc=f"top-{n} {store_block.path}", unit="img",
                      leave=False) as bar:
        for start, rows in slabs(mx):
            top.update(rows, start)
            total += np.nansum(rows, axis=0, dtype=np.float64)
            bar.update(len(rows))
    loc = gather_locations(store_block["argmax"], top.index)
    write(out, "topn_index", top.index, ("units", "rank"))
    write(out, "topn_value", top.value, ("units", "rank"))
    write(out, "topn_loc", loc, ("units", "rank", "yx"))
    write(out, "max", top.value[:, 0], ("units",))
    write(out, "mean_max", total / max(1, mx.shape[0]), ("units",))  # for the any-word rule
    mark_done(out, "topn")


def gather_locations(argmax: zarr.Array, index: np.ndarray) -> np.ndarray:
    """(units, N, 2) int16 (y, x) of the argmax for each unit's top-N images, read slab by slab
    and only where a top-N image lies."""
    n_units, n = index.shape
    flat = index.ravel()
    units = np.repeat(np.arange(n_units), n)
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    loc = np.zeros((flat.size, 2), dtype=np.int16)
    chunk = argmax.chunks[0]
    step = chunk * max(1, READ_BYTES // max(1, chunk * n_units * 2 * argmax.dtype.itemsize))
    for start in range(0, argmax.shape[0], step):
        lo, hi = np.searchsorted(ordered, [start, start + step])
        if lo == hi:
            continue
        rows = argmax[start:start + step]
        sel = order[lo:hi]
        loc[sel] = rows[flat[sel] - start, units[sel]]
    return loc.reshape(n_units, n, 2)


def nf_step(out: zarr.Group, stim, field: Field, max_side: int, desc: str,
            with_hue: bool = True) -> None:
    """Neuron features of one block and set, plus (`with_hue`) their dominant hue and colour
    term, which the table takes from the natural NFs (the Stroop ones when natural is absent)."""
    nf = neuron_features(stim.render, out["topn_index"][:], out["topn_value"][:],
                         out["topn_loc"][:], field, max_side, desc=desc)
    write(out, "nf", nf, ("units", "y", "x", "rgb"))
    out.attrs.update({"nf_cell": cell_factor(field.size, max_side)})
    if not with_hue:
        mark_done(out, "nf")
        return
    hues = hue_mod.dominant_hues(nf)
    terms = [hue_mod.nearest_color_term(u) for u in nf]
    codes = np.array([COLOR_TERMS.index(t) if t else -1 for t in terms], dtype=np.int8)
    write(out, "hue_deg", hues, ("units",))
    write(out, "nf_color_term", codes, ("units",))  # index into COLOR_TERMS, -1: none
    mark_done(out, "nf")


def stroop_kinds(labels: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Code arrays of the Stroop label kinds; "color" = colour present (font or background)."""
    font, bg = labels["font_color"], labels["bg_color"]
    return {"word": [labels["word"]], "font": [font], "bg": [bg], "color": [font, bg]}


def selectivity_step(stroop: zarr.Group, blocks: list[str], kinds: dict[str, list[np.ndarray]],
                     n_permutations: int, seed: int, min_n_eff_fraction: float) -> None:
    """Eq. 1 of every Stroop label kind for every block, the multimodal conjunction, and the
    permutation nulls over all testable units (one pass: each shuffle serves every block and
    kind)."""
    tops = {b: (stroop[b]["topn_index"][:], stroop[b]["topn_value"][:]) for b in blocks}
    result, null = select_all(tops, kinds, len(COLOR_TERMS), n_permutations, seed,
                              min_n_eff_fraction)
    for block, r in result.items():
        sel = stroop[block].require_group("selectivity")
        write(sel, "n_eff", r.n_eff, ("units",))
        for kind, s in r.kinds.items():
            g = sel.require_group(kind)
            for name in ("best", "f", "chance", "stat"):
                write(g, name, getattr(s, name), ("units",))
        g = sel.require_group(MULTIMODAL)
        write(g, "term", r.conjunction.term, ("units",))
        write(g, "stat", r.conjunction.stat, ("units",))
        write(g, "f", r.conjunction.f, ("units", "kind"))
        write(g, "chance", r.conjunction.chance, ("units", "kind"))
    for name, values in null.items():
        write(stroop.require_group(f"selectivity_null/{name}"), "null_max", values,
              ("permutations",))
    mark_done(stroop, "selectivity")


def csi_histogram(values: np.ndarray, n_bins: int = 10) -> list[int]:
    """Counts of units per CSI bin over [0, 1] (NaN, i.e. never activated, left out)."""
    v = np.asarray(values, dtype=np.float64)
    return np.histogram(v[np.isfinite(v)], bins=n_bins, range=(0, 1))[0].tolist()
