"""The attribute step: captum attribution maps for units (`BLOCK:UNIT` on its top images) and
for naming decisions (predicted vs correct prompt), as PNG overlays under RUN/attributions/
listed in RUN/attributions/index.json (format in docs/formats.md)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from interp.attribution.decisions import attribute_naming, check_template
from interp.attribution.maps import NAMING_METHODS, UNIT_METHODS
from interp.attribution.units import Method, attribute_units
from interp.errors import ChromaError, UsageError
from interp.models import load_model
from interp.naming.answers import FROM_NAMING, naming_settings, open_naming, run_model
from interp.naming.experiments import EXPERIMENTS
from interp.rundir import RunDir, write_json_atomic

log = logging.getLogger(__name__)


def parse_images(items: Sequence[int | str] | None, n: int) -> list[int] | None:
    """Image indices given by the user, checked against the set's size."""
    if items is None:
        return None
    try:
        index = [int(i) for i in items]
    except ValueError:
        raise UsageError("--images: expected image indices, e.g. 0,17,42") from None
    bad = [i for i in index if not 0 <= i < n]
    if bad:
        raise UsageError(f"--images {bad[0]}: out of range, the set has {n} images")
    return index


def methods_for(methods: Sequence[str] | None, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The methods that apply here (units or naming); unknown names are refused."""
    unknown = set(methods or ()) - set(UNIT_METHODS) - set(NAMING_METHODS)
    if unknown:
        raise UsageError(f"--methods: unknown {', '.join(sorted(unknown))}; choose among "
                         f"{', '.join(sorted({*UNIT_METHODS, *NAMING_METHODS}))}")
    chosen = tuple(m for m in (methods or allowed) if m in allowed)
    if not chosen:
        raise UsageError(f"--methods {','.join(methods)}: choose among {','.join(allowed)}")
    return chosen


def unit_set(run: RunDir, name: str, loaded, images, samples_per_combo: int, limit,
             natural_dir):
    """The stimulus set of unit top images: as the run extracted it, else from the options."""
    from interp.analysis.runio import load_set
    from stimuli import get_set

    if name in run.read().get("stimuli", {}):
        return load_set(run.path, name)
    if images is None:
        raise ChromaError(f"{run.path} has no extracted set {name!r}; run `chromadissect extract "
                          f"--sets {name}` first, or name images with --images")
    return get_set(name, samples_per_combo=samples_per_combo, image_size=loaded.image_size,
                   limit=limit, natural_dir=natural_dir)


def write_index(run: RunDir, units: dict[str, list[dict]], naming: list[dict]) -> Path:
    """Merge new entries into RUN/attributions/index.json (same image path = replaced)."""
    path = run.attributions_index
    index = json.loads(path.read_text()) if path.exists() else {"units": {}, "naming": []}
    for unit, items in units.items():
        images = {e["image"] for e in items}
        old = [e for e in index["units"].get(unit, []) if e["image"] not in images]
        index["units"][unit] = old + items
    images = {e["image"] for e in naming}
    index["naming"] = [e for e in index["naming"] if e["image"] not in images] + naming
    write_json_atomic(path, index)
    return path


def attribute(run_dir: str | os.PathLike, units: Sequence[str] = (), *,
              experiment: int | None = None, template: str | None = None, errors: int = 8,
              images: Sequence[int] | None = None, top_k: int = 8, set_name: str = "natural",
              methods: Sequence[str] | None = None, steps: int = 32, baseline: str = "black",
              model: dict | None = None, samples_per_combo: int | None = None,
              limit: int | None | str = FROM_NAMING, natural_dir: str | os.PathLike | None = None,
              batch_size: int = 64, device: str = "cpu", dtype: str | None = None,
              workers: int | None = None) -> Path:
    """Attribution maps of `units` (on their top-k images of `set_name`, or `images`) and of the
    naming decisions of `experiment` (its first `errors` errors, or `images`); returns the path
    of RUN/attributions/index.json.

    samples_per_combo, limit and dtype default to those of the run's naming of the experiment,
    so its table's answers are the ones explained.
    """
    if not units and experiment is None:
        raise UsageError("nothing to attribute: give --units LAYER:UNIT,... and/or --experiment N")
    methods_for(methods, (*UNIT_METHODS, *NAMING_METHODS))  # bad names fail before any loading
    if experiment is not None:
        template = check_template(experiment, template)
    run = RunDir(run_dir)
    data = naming_settings(run, experiment, samples_per_combo, limit, dtype)
    out = run.attributions
    with run.lock():
        loaded = load_model(**run_model(run, model), device=device)
        found, decided = {}, []
        if units:
            stim = unit_set(run, set_name, loaded, images, data["samples_per_combo"],
                            data["limit"], natural_dir)
            how = Method(methods_for(methods, UNIT_METHODS), steps, baseline, batch_size)
            found = attribute_units(run, stim, list(units), loaded, how,
                                    parse_images(images, len(stim)), top_k, out)
        if experiment is not None:
            answers = open_naming(run, [experiment], loaded=loaded, batch_size=batch_size,
                                  workers=workers, **data)
            chosen = parse_images(images, answers.size(EXPERIMENTS[experiment].set_name))
            how = Method(methods_for(methods, NAMING_METHODS), steps, baseline, batch_size)
            decided = attribute_naming(answers, experiment, template, how, chosen, errors, out)
        path = write_index(run, found, decided)
    log.info("%d unit and %d naming attribution images; index: %s",
             sum(len(v) for v in found.values()), len(decided), path)
    return path
