"""`chromadissect attribute`: captum attribution maps for units (`LAYER:UNIT` on its top images)
and for naming decisions (predicted vs correct prompt), as PNG overlays under RUN/attributions/
listed in RUN/attributions/index.json (format in docs/architecture.md)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from interp.attribution.maps import (
    NAMING_METHODS,
    UNIT_METHODS,
    BlockOutput,
    SimilarityGap,
    naming_attributions,
    overlay_png,
    unit_attributions,
    without_inplace,
)
from interp.cli.options import (
    add_data,
    add_execution,
    add_model,
    add_run_dir,
    add_sets,
    csv_list,
    positive_int,
)
from interp.errors import ChromaError, UsageError
from interp.models import LoadedModel, load_model
from interp.naming.experiments import EXPERIMENTS, errors
from interp.naming.report import template_slug
from interp.naming.step import Naming, model_settings, open_naming
from interp.rundir import RunDir, write_json_atomic

log = logging.getLogger(__name__)
#: Most inputs per integrated-gradients forward/backward: bounds memory (RN50 at 224 px: ~2 GB).
IG_MAX_BATCH = 16
NOT_GIVEN = object()  # --limit left out (None means "no limit")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "attribute", help="captum attribution maps for units and naming decisions",
        description="Attribution maps (captum) under RUN/attributions/: for units LAYER:UNIT on "
        "their top images, and for naming decisions of an experiment (its first errors or "
        "chosen --images).")
    add_run_dir(p)
    add_model(p)
    p.set_defaults(model=None, pretrained=None, seed=None)
    add_sets(p, default=("natural",))
    add_data(p)
    add_execution(p)
    # not given: the settings of the run's last `naming` (see naming_options)
    p.set_defaults(samples_per_combo=None, limit=NOT_GIVEN, dtype=None)
    g = p.add_argument_group("what to attribute")
    g.add_argument("--units", type=csv_list, default=[], metavar="LAYER:UNIT,...",
                   help="units, e.g. layer3.2:417 (top images of the first of --sets)")
    g.add_argument("--top-k", type=positive_int, default=8, metavar="K",
                   help="top images per unit (default 8)")
    g.add_argument("--experiment", type=int, choices=sorted(EXPERIMENTS), default=None,
                   help="naming experiment whose decisions to explain")
    g.add_argument("--template", default=None,
                   help="prompt template of the experiment (default: its first)")
    g.add_argument("--errors", type=positive_int, default=8, metavar="N",
                   help="explain the experiment's first N errors (default 8)")
    g.add_argument("--images", type=csv_list, default=None, metavar="I,J,...",
                   help="explain these image indices instead of top images / errors")
    g.add_argument("--methods", type=csv_list, default=None, metavar="A,B",
                   help=f"units: {','.join(UNIT_METHODS)}; naming: {','.join(NAMING_METHODS)} "
                   "(default: all)")
    g.add_argument("--steps", type=positive_int, default=32,
                   help="integrated-gradients steps (default 32)")
    g.add_argument("--baseline", choices=("black", "mean"), default="black",
                   help="integrated-gradients baseline image (default black)")
    p.set_defaults(func=run_command)


def parse_unit(text: str, loaded: LoadedModel) -> tuple[str, int]:
    """`layer3.2:417` -> ("layer3.2", 417), checked against the model's blocks."""
    block, _, unit = text.rpartition(":")
    if not block or not unit.isdigit():
        raise UsageError(f"--units {text}: expected LAYER:UNIT, e.g. layer3.2:417")
    if block not in loaded.map_shapes:
        raise UsageError(f"--units {text}: unknown block {block!r}; blocks: "
                         f"{', '.join(loaded.map_shapes)}")
    if int(unit) >= loaded.map_shapes[block][0]:
        raise UsageError(f"--units {text}: {block} has {loaded.map_shapes[block][0]} units")
    return block, int(unit)


def parse_images(items: list[str] | None, n: int) -> list[int] | None:
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


def methods_for(args: argparse.Namespace, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The --methods that apply here (units or naming); unknown names are refused."""
    unknown = set(args.methods or ()) - set(UNIT_METHODS) - set(NAMING_METHODS)
    if unknown:
        raise UsageError(f"--methods: unknown {', '.join(sorted(unknown))}; choose among "
                         f"{', '.join(sorted({*UNIT_METHODS, *NAMING_METHODS}))}")
    chosen = tuple(m for m in (args.methods or allowed) if m in allowed)
    if not chosen:
        raise UsageError(f"--methods {','.join(args.methods)}: choose among {','.join(allowed)}")
    return chosen


def ig_batch(args: argparse.Namespace) -> int:
    return min(args.batch_size, IG_MAX_BATCH)


def baseline_like(images: torch.Tensor, loaded: LoadedModel, kind: str) -> torch.Tensor:
    """Normalised baseline: a black image, or the mean colour (zeros after normalisation)."""
    if kind == "mean":
        return torch.zeros_like(images)
    mean = torch.tensor(loaded.mean, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(loaded.std, device=images.device).view(1, 3, 1, 1)
    return (-mean / std).expand_as(images).contiguous()


def to_input(stim_set, index: list[int], loaded: LoadedModel) -> tuple[np.ndarray, torch.Tensor]:
    """Rendered uint8 images (N, H, W, 3) and their normalised tensor on the model's device."""
    from stimuli.dataset import normalize

    pixels = np.stack([stim_set.render(i) for i in index])
    chw = torch.from_numpy(pixels.transpose(0, 3, 1, 2).copy()).to(loaded.device)
    return pixels, normalize(chw, loaded.mean, loaded.std)


# --- units ------------------------------------------------------------------------------------

def unit_set(run: RunDir, args: argparse.Namespace, loaded: LoadedModel):
    """The stimulus set of unit top images: as the run extracted it, else from the options."""
    from interp.analysis.runio import load_set
    from stimuli import get_set

    name = args.sets[0]
    if name in run.read().get("stimuli", {}):
        return load_set(run.path, name)
    if args.images is None:
        raise ChromaError(f"{run.path} has no extracted set {name!r}; run `chromadissect extract "
                          f"--sets {name}` first, or name images with --images")
    return get_set(name, samples_per_combo=args.samples_per_combo, image_size=loaded.image_size,
                   limit=args.limit, natural_dir=args.natural_dir)


def top_images(run: RunDir, set_name: str, block: str, unit: int, k: int) -> list[int]:
    """The unit's top-k images: analysis.zarr's top-N, else ranked from the store's max array."""
    from interp import store

    path = run.path / "analysis.zarr" / set_name / block / "topn_index"
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


def attribute_units(run: RunDir, args: argparse.Namespace, loaded: LoadedModel,
                    out: Path) -> dict[str, list[dict]]:
    """Unit attributions on top images (or --images), with the receptive field outlined."""
    from interp.analysis.rf import block_field

    stim = unit_set(run, args, loaded)
    chosen = parse_images(args.images, len(stim))
    methods = methods_for(args, UNIT_METHODS)
    visual = without_inplace(loaded.visual)
    entries: dict[str, list[dict]] = {}
    for text in tqdm(args.units, desc="unit attributions", unit="unit"):
        block, unit = parse_unit(text, loaded)
        index = chosen or top_images(run, stim.name, block, unit, args.top_k)
        field, _how = block_field(visual, block, loaded.image_size, loaded.map_shapes[block][1:])
        folder = out / "units" / f"{block}_{unit}"
        folder.mkdir(parents=True, exist_ok=True)
        model = BlockOutput(visual, block)
        for start in range(0, len(index), args.batch_size):
            batch = index[start:start + args.batch_size]
            pixels, x = to_input(stim, batch, loaded)
            maps, where = unit_attributions(model, x, unit, baseline_like(x, loaded, args.baseline),
                                            methods, args.steps, ig_batch(args))
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


# --- naming decisions -------------------------------------------------------------------------

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


def attribute_naming(run: RunDir, args: argparse.Namespace, loaded: LoadedModel,
                     out: Path) -> list[dict]:
    """Why the predicted prompt beat the correct one, per image, as overlays."""
    number = args.experiment
    exp = EXPERIMENTS[number]
    template = args.template or exp.templates[0]
    if template not in exp.templates:
        raise UsageError(f"--template {template!r} is not one of experiment {number}'s: "
                         + "; ".join(exp.templates))
    naming = open_naming(args, run, [number], loaded)
    chosen = parse_images(args.images, naming.size(exp.set_name))
    index, pred, contrast = decisions(naming, number, template, chosen, args.errors)
    if not index:
        log.info("experiment %d, '%s': no errors to explain", number, template)
        return []
    methods = methods_for(args, NAMING_METHODS)
    visual = without_inplace(loaded.visual)
    gap = SimilarityGap(visual, naming.text(template).to(loaded.device))
    last = visual.get_submodule(list(loaded.blocks)[-1])
    folder = out / "naming" / f"exp{number}_{template_slug(template)}"
    folder.mkdir(parents=True, exist_ok=True)
    labels = naming.labels(exp.set_name)
    entries = []
    stim = naming.sets[exp.set_name]
    for start in tqdm(range(0, len(index), args.batch_size), desc="naming attributions"):
        batch = index[start:start + args.batch_size]
        pixels, x = to_input(stim, batch, loaded)
        maps = naming_attributions(gap, last, x, pred[start:start + len(batch)],
                                   contrast[start:start + len(batch)],
                                   baseline_like(x, loaded, args.baseline), methods, args.steps,
                                   ig_batch(args))
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


def write_index(out: Path, units: dict[str, list[dict]], naming: list[dict]) -> Path:
    """Merge new entries into RUN/attributions/index.json (same image path = replaced)."""
    path = out / "index.json"
    index = json.loads(path.read_text()) if path.exists() else {"units": {}, "naming": []}
    for unit, items in units.items():
        images = {e["image"] for e in items}
        old = [e for e in index["units"].get(unit, []) if e["image"] not in images]
        index["units"][unit] = old + items
    images = {e["image"] for e in naming}
    index["naming"] = [e for e in index["naming"] if e["image"] not in images] + naming
    write_json_atomic(path, index)
    return path


def naming_options(args: argparse.Namespace, run: RunDir) -> None:
    """Fill --samples-per-combo, --limit, --dtype when not given: from the run's `naming` of the
    experiment (so the answers of its table are the ones explained), else the usual defaults."""
    recorded = run.read().get("naming", {}).get(f"exp{args.experiment}", {})
    if args.experiment is not None and not recorded and args.limit is NOT_GIVEN:
        raise UsageError(f"experiment {args.experiment} has not been run in {run.path}: run "
                         f"`chromadissect naming --experiments {args.experiment}` first, or give "
                         "--limit (and --samples-per-combo) for the images to encode here")
    defaults = {"samples_per_combo": 500, "limit": None, "dtype": "float32"}
    for key, default in defaults.items():
        if getattr(args, key) in (None, NOT_GIVEN):
            setattr(args, key, recorded.get(key, default))


def run_command(args: argparse.Namespace) -> int:
    if not args.units and args.experiment is None:
        raise UsageError("nothing to attribute: give --units LAYER:UNIT,... and/or --experiment N")
    methods_for(args, (*UNIT_METHODS, *NAMING_METHODS))  # bad names fail before any loading
    run = RunDir(args.run_dir)
    naming_options(args, run)
    out = run.path / "attributions"
    with run.lock():
        loaded = load_model(**model_settings(args, run), device=args.device)
        units = attribute_units(run, args, loaded, out) if args.units else {}
        naming = [] if args.experiment is None else attribute_naming(run, args, loaded, out)
        path = write_index(out, units, naming)
    log.info("%d unit and %d naming attribution images; index: %s",
             sum(len(v) for v in units.values()), len(naming), path)
    return 0
