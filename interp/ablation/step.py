"""The ablate step: silence chosen units inside the image tower, rerun the naming experiments on
the run's own naming images, and weigh each effect against random ablations of equal size.

The unablated answers come from the naming cache (RUN/naming/embeddings.zarr), the prompt
embeddings too: only the image tower runs, once per condition and image. Each condition's
answers are kept (RUN/ablation/answers/), so a rerun or a larger report costs no forward twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from interp.ablation import report
from interp.ablation.effects import COSINE, measure
from interp.ablation.forward import ablated_answers
from interp.ablation.modes import MODES
from interp.ablation.selection import (
    DOSES,
    Condition,
    auto_type,
    controls,
    describe,
    doses,
    is_explicit,
    select,
    single_controls,
    slug,
)
from interp.embeddings import cache_key
from interp.errors import ChromaError, UsageError
from interp.models import load_model
from interp.naming.answers import FROM_NAMING, Naming, naming_settings, open_naming, run_model
from interp.naming.experiments import EXPERIMENTS
from interp.naming.step import parse_experiments
from interp.rundir import RunDir

log = logging.getLogger(__name__)
MEAN_ROWS = 65536  # store rows read at a time for the mean activations


@dataclass(frozen=True)
class Design:
    """What one ablate call measures: the selection, its conditions, how units are silenced."""

    selection: str  # as the user typed it
    units: tuple[str, ...]
    mode: str
    each: bool
    conditions: tuple[Condition, ...]

    @property
    def folder(self) -> str:
        return f"{slug(self.selection)}-{self.mode}" + ("-each" if self.each else "")


def read_neurons(run: RunDir) -> pd.DataFrame:
    """RUN/neurons.csv, or a ChromaError saying to run analyze."""
    if not run.neurons_csv.exists():
        raise ChromaError(f"{run.neurons_csv} not found; run `chromadissect analyze --run-dir "
                          f"{run.path}` first (ablate selects units from its types)")
    return pd.read_csv(run.neurons_csv)


def design(table: pd.DataFrame, spec: str | Sequence[str], mode: str, each: bool, draws: int,
           fractions: Sequence[float], seed: int) -> Design:
    """The conditions: the selection (or each unit alone), its random controls, its doses."""
    if mode not in MODES:
        raise UsageError(f"--mode {mode}: choose among {', '.join(MODES)}")
    if draws < 0:
        raise UsageError(f"--control-draws {draws}: expected 0 or more")
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise UsageError(f"--doses {','.join(map(str, fractions))}: expected fractions in "
                         "(0, 1], e.g. 0.1,0.25,0.5,1")
    if each and not is_explicit(spec):
        raise UsageError("--each silences explicit units one at a time; give --units "
                         "layer3.2:417,layer4.0:12")
    units = tuple(select(table, spec))
    if each:
        conds = [Condition(f"unit {u}", "unit", (u,)) for u in units]
        conds += single_controls(table, units, draws, seed)
    else:
        conds = [Condition("selection", "selection", units),
                 *controls(table, units, draws, seed), *doses(units, fractions, seed)]
    name = describe(spec)
    if name == "auto":  # named by what it chose, so its results sit beside that selection's
        name = f"type={auto_type(table)}"
        log.info("--units auto: %s, the largest of any_word, color_word and colour", name)
    return Design(name, units, mode, each, tuple(conds))


def set_means(run: RunDir, set_name: str, blocks: Sequence[str]) -> dict[str, np.ndarray]:
    """Per block, every unit's mean activation over the set's stored images (the spatial means
    in RUN/activations.zarr: no forward needed)."""
    from interp.store import completed_chunks, open_store

    root = open_store(run.path)
    if set_name not in root or not completed_chunks(root[set_name]).all():
        raise ChromaError(f"--mode mean needs {set_name!r} fully extracted in {run.activations}; "
                          f"run `chromadissect extract --run-dir {run.path} --sets {set_name}`")
    out = {}
    for block in blocks:
        arr = root[set_name][block]["mean"]
        total = np.zeros(arr.shape[1])
        for a in range(0, arr.shape[0], MEAN_ROWS):
            total += arr[a:a + MEAN_ROWS].astype(np.float64).sum(axis=0)
        out[block] = (total / arr.shape[0]).astype(np.float32)
    return out


def _templates(numbers: Sequence[int]) -> dict[str, list[str]]:
    """Per stimulus set, the prompts the chosen experiments ask of it."""
    out: dict[str, list[str]] = {}
    for n in numbers:
        exp = EXPERIMENTS[n]
        out.setdefault(exp.set_name, [])
        out[exp.set_name] += [t for t in exp.templates if t not in out[exp.set_name]]
    return out


class AnswerStore:
    """RUN/ablation/answers/{key}.npz: one condition's answers on one set, per prompt."""

    def __init__(self, folder: Path, identity: dict) -> None:
        self.folder, self.identity = folder, identity

    def path(self, cond: Condition, mode: str, stim_set, n: int) -> Path:
        """The file of a condition's answers on the first n images of `stim_set` (its spec,
        not the other sets', so a call with more experiments finds them)."""
        key = cache_key({"units": sorted(cond.units), "mode": mode, "set": stim_set.spec(),
                         "n": n}, self.identity)
        return self.folder / f"{key}.npz"

    def load(self, path: Path, templates: Sequence[str]) -> dict[str, np.ndarray] | None:
        if not path.exists():
            return None
        with np.load(path) as data:
            stored = {t: data[f"t{i}"] for i, t in enumerate(data["templates"].tolist())}
        return stored if set(templates) <= set(stored) else None

    def save(self, path: Path, answers: dict[str, np.ndarray]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
        np.savez(tmp, templates=np.array(list(answers)),
                 **{f"t{i}": a for i, a in enumerate(answers.values())})
        os.replace(tmp, path)


def condition_answers(run: RunDir, naming: Naming, plan: Design, numbers: Sequence[int],
                      sizes: dict[str, int], *,
                      batch_size: int, dtype: str, workers: int | None,
                      seed: int) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """condition -> set -> prompt -> answers, from RUN/ablation/answers where kept, else from
    the ablated forwards (every missing condition of a set in one pass over its images)."""
    loaded = naming.loaded
    store = AnswerStore(run.ablation / "answers", {**loaded.describe(), "dtype": dtype,
                                                   "seed": seed})
    out: dict[str, dict] = {c.name: {} for c in plan.conditions}
    for set_name, templates in _templates(numbers).items():
        n, todo, stim = sizes[set_name], [], naming.sets[set_name]
        for cond in plan.conditions:
            found = store.load(store.path(cond, plan.mode, stim, n), [*templates, COSINE])
            if found is None:
                todo.append(cond)
            else:
                out[cond.name][set_name] = found
        if not todo:
            continue
        log.info("ablating %s: %d conditions x %d images", set_name, len(todo), n)
        blocks = sorted({b for c in todo for b in c.by_block()})
        fill = set_means(run, set_name, blocks) if plan.mode == "mean" else None
        texts = {t: naming.text(t) for t in templates}
        found = ablated_answers(loaded, stim, n, todo, plan.mode, texts,
                                fill=fill, clean=naming.embeddings(set_name),
                                batch_size=batch_size, dtype=dtype, workers=workers, seed=seed)
        for cond in todo:
            store.save(store.path(cond, plan.mode, stim, n), found[cond.name])
            out[cond.name][set_name] = found[cond.name]
    return out


def ablate(run_dir: str | os.PathLike, units: str | Sequence[str] | None = None, *,
           mode: str = "zero", experiments: Sequence[int | str] = (1, 2, 3, 4, 5),
           each: bool = False, control_draws: int = 20, doses: Sequence[float] = DOSES,
           ablation_images: int | None = None, ablation_seed: int = 0,
           model: dict | None = None, samples_per_combo: int | None = None,
           limit: int | None | str = FROM_NAMING, batch_size: int = 64, device: str = "cpu",
           dtype: str | None = None, workers: int | None = None) -> Path:
    """Silence `units` (a neurons.csv selection such as `type=color_word`, explicit units, or
    `auto`) and rerun naming `experiments` on the run's naming images (the first
    `ablation_images` of each set, if given); returns RUN/ablation/report.md.

    Controls: `control_draws` random selections of as many units per block from the same
    blocks; doses: the effect with `doses` fractions of the selection silenced.
    """
    if units is None or (not isinstance(units, str) and not list(units)):
        raise UsageError("nothing to ablate: give --units (e.g. type=color_word, "
                         "layer3.2:417 or auto)")
    numbers = parse_experiments(experiments)
    run = RunDir(run_dir)
    plan = design(read_neurons(run), units, mode, each, control_draws, doses, ablation_seed)
    data = _naming_data(run, numbers, samples_per_combo, limit, dtype)
    with run.lock():
        loaded = load_model(**run_model(run, model), device=device)
        naming = open_naming(run, numbers, loaded=loaded, batch_size=batch_size,
                             workers=workers, **data)
        sizes = {s: min(naming.size(s), ablation_images or naming.size(s))
                 for s in {EXPERIMENTS[n].set_name for n in numbers}}
        answers = condition_answers(run, naming, plan, numbers, sizes, batch_size=batch_size,
                                    dtype=data["dtype"], workers=workers, seed=ablation_seed)
        labels = {s: {k: v[:n] for k, v in naming.labels(s).items()} for s, n in sizes.items()}
        base = {s: {**{t: naming.predict(s, t)[:n] for t in ts}, COSINE: np.ones(n)}
                for s, ts in _templates(numbers).items() for n in [sizes[s]]}
        measured = {name: measure(numbers, lambda s, t, a=a: a[s][t], labels)
                    for name, a in answers.items()}
        path = report.write(run, plan, numbers, measure(numbers, lambda s, t: base[s][t], labels),
                            measured, base, answers, labels, sizes)
        run.update({"ablation": {plan.folder: {
            "units": describe(units), "selection": plan.selection, "mode": mode, "each": each,
            "experiments": numbers, "control_draws": control_draws, "doses": list(doses),
            "images": sizes,
            "seed": ablation_seed, **data}}})
    log.info("ablation of %s (%d units, %s): %s", plan.selection, len(plan.units), mode, path)
    return path


def _naming_data(run: RunDir, numbers: list[int], samples_per_combo, limit, dtype) -> dict:
    """samples_per_combo, limit, dtype of the naming images: as given, else the run's naming
    of these experiments (which must agree), else the usual defaults."""
    settings = [naming_settings(run, n, samples_per_combo, limit, dtype) for n in numbers]
    if any(s != settings[0] for s in settings):
        raise UsageError(f"experiments {','.join(map(str, numbers))} were named with different "
                         "settings; ablate them separately, or give --limit and "
                         "--samples-per-combo")
    return settings[0]
