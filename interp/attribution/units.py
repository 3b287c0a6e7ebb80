"""Attribution maps of units: `BLOCK:UNIT` on its top images, receptive field outlined."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interp.attribution.maps import (
    BlockOutput,
    overlay_png,
    unit_attributions,
    without_inplace,
)
from interp.errors import ChromaError
from interp.inputs import baseline, render_inputs
from interp.models import LoadedModel, unit_counts
from interp.progress import bar
from interp.rundir import RunDir
from interp.units import model_unit

log = logging.getLogger(__name__)
#: Most inputs per integrated-gradients forward/backward: bounds memory (RN50 at 224 px: ~2 GB).
IG_MAX_BATCH = 16


@dataclass(frozen=True)
class Method:
    """How maps are computed: captum methods, integrated-gradients steps, baseline, batch."""

    methods: tuple[str, ...]
    steps: int = 32
    baseline: str = "black"
    batch_size: int = 64

    @property
    def ig_batch(self) -> int:
        return min(self.batch_size, IG_MAX_BATCH)


def top_images(run: RunDir, set_name: str, block: str, unit: int, k: int) -> list[int]:
    """The unit's top-k images: analysis.zarr's top-N, else ranked from the store's max array."""
    from interp import store

    path = run.analysis / set_name / block / "topn_index"
    if path.exists():
        from interp.analysis.runio import open_analysis

        return [int(i) for i in open_analysis(run.path)[set_name][block]["topn_index"][unit, :k]]
    try:
        group = store.open_store(run.path)[set_name]
        values = group[block]["max"][:, unit].astype(np.float32)
    except (ChromaError, KeyError):
        raise ChromaError(f"no activations of {block} on {set_name} in {run.path}; run "
                          "`chromadissect extract` (and `analyze`) first, or pass --images"
                          ) from None
    chunk = int(group.attrs.get("chunk_images", len(values)))
    complete = np.repeat(store.completed_chunks(group), chunk)[:len(values)]
    values[~complete] = -np.inf
    order = np.lexsort((np.arange(len(values)), -values))  # activation descending, ties by index
    return [int(i) for i in order[:k]]


def attribute_units(run: RunDir, stim, units: list[str], loaded: LoadedModel, how: Method,
                    images: list[int] | None, top_k: int, out: Path) -> dict[str, list[dict]]:
    """Unit attributions on top images (or `images`), with the receptive field outlined."""
    from interp.analysis.rf import block_field

    visual = without_inplace(loaded.visual)
    entries: dict[str, list[dict]] = {}
    for text in bar(units, desc="unit attributions", unit="unit"):
        block, unit = model_unit(text, unit_counts(loaded))
        index = images or top_images(run, stim.name, block, unit, top_k)
        field, _how = block_field(visual, block, loaded.image_size, loaded.map_shapes[block][1:])
        folder = out / "units" / f"{block}_{unit}"
        folder.mkdir(parents=True, exist_ok=True)
        model = BlockOutput(visual, block)
        for start in range(0, len(index), how.batch_size):
            batch = index[start:start + how.batch_size]
            pixels, x = render_inputs(stim, batch, loaded)
            maps, where = unit_attributions(model, x, unit, baseline(x, loaded, how.baseline),
                                            how.methods, how.steps, how.ig_batch)
            if not any(attr.any() for attr in maps.values()):
                log.warning("%s is silent on images %s: their maps are blank", text, batch)
            for method, attr in maps.items():
                for j, i in enumerate(batch):
                    y0, y1, x0, x1 = (int(v) for v in field.box(*where[j]))
                    name = f"{method}_{stim.name}_{i}.png"
                    overlay_png(folder / name, pixels[j], attr[j], (y0, y1, x0, x1),
                                scale=max(1, 224 // loaded.image_size))
                    entries.setdefault(text, []).append({
                        "method": method, "image": f"units/{folder.name}/{name}",
                        "set": stim.name, "index": i, "location": [int(v) for v in where[j]],
                        "box": [y0, y1, x0, x1]})
    return entries

