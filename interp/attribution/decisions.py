"""Attribution maps of naming decisions: why the predicted prompt beat the contrasted one."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from interp.attribution.maps import (
    SimilarityGap,
    naming_attributions,
    overlay_png,
    without_inplace,
)
from interp.attribution.units import Method
from interp.errors import UsageError
from interp.inputs import baseline, render_inputs
from interp.naming.answers import Naming
from interp.naming.experiments import EXPERIMENTS, errors
from interp.naming.report import template_slug
from interp.progress import bar

log = logging.getLogger(__name__)


def check_template(number: int, template: str | None) -> str:
    """The experiment's template to explain: the given one (which must be one of its own) or
    its first."""
    exp = EXPERIMENTS[number]
    template = template or exp.templates[0]
    if template not in exp.templates:
        raise UsageError(f"--template {template!r} is not one of experiment {number}'s: "
                         + "; ".join(exp.templates))
    return template


def decisions(naming: Naming, number: int, template: str, chosen: list[int] | None,
              n_errors: int) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Images to explain and, per image, the predicted and the contrasted colour: the correct
    one, or for a correctly answered image the runner-up."""
    exp = EXPERIMENTS[number]
    labels = naming.labels(exp.set_name)
    pred = naming.predict(exp.set_name, template)
    index = chosen if chosen is not None else \
        errors(exp, template, pred, labels)[:n_errors].tolist()
    if not index:
        return [], pred[:0], pred[:0]
    correct = labels[exp.targets[template]][index]
    sim = naming.similarities(exp.set_name, template, index)
    runner_up = sim.argsort(dim=1, descending=True)[:, 1].numpy()
    contrast = np.where(pred[index] == correct, runner_up, correct)
    return index, pred[index], contrast


def attribute_naming(naming: Naming, number: int, template: str, how: Method,
                     images: list[int] | None, n_errors: int, out: Path) -> list[dict]:
    """Why the predicted prompt beat the correct one, per image, as overlays."""
    exp, loaded = EXPERIMENTS[number], naming.loaded
    index, pred, contrast = decisions(naming, number, template, images, n_errors)
    if not index:
        log.info("experiment %d, '%s': no errors to explain", number, template)
        return []
    visual = without_inplace(loaded.visual)
    gap = SimilarityGap(visual, naming.text(template).to(loaded.device))
    last = visual.get_submodule(list(loaded.blocks)[-1])
    folder = out / "naming" / f"exp{number}_{template_slug(template)}"
    folder.mkdir(parents=True, exist_ok=True)
    labels = naming.labels(exp.set_name)
    entries = []
    stim = naming.sets[exp.set_name]
    for start in bar(range(0, len(index), how.batch_size), desc="naming attributions"):
        batch = index[start:start + how.batch_size]
        pixels, x = render_inputs(stim, batch, loaded)
        maps = naming_attributions(gap, last, x, pred[start:start + len(batch)],
                                   contrast[start:start + len(batch)],
                                   baseline(x, loaded, how.baseline), how.methods,
                                   how.steps, how.ig_batch)
        for method, attr in maps.items():
            for j, i in enumerate(map(int, batch)):
                name = f"{method}_{i}.png"
                overlay_png(folder / name, pixels[j], attr[j],
                            scale=max(1, 224 // loaded.image_size))
                entries.append({
                    "experiment": number, "template": template, "index": i, "method": method,
                    "image": f"naming/{folder.name}/{name}", "set": exp.set_name,
                    "predicted": int(pred[start + j]), "contrast": int(contrast[start + j]),
                    "correct": int(labels[exp.targets[template]][i])})
    return entries
