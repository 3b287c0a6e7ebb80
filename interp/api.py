"""The notebook facade: one `Run` per run directory, with every step and the readers of results.

    from interp.api import Run
    r = Run("runs/demo")
    r.extract(model="RN50", pretrained="none", samples_per_combo=2, limit=32)
    r.analyze(top_n=8); r.naming(limit=32); r.atlas()
    r.units()                    # neurons.csv as a DataFrame

Each step is the library function the command line calls (`chromadissect STEP` is a thin layer
over these methods); options left out take the step's own default. This is the one library
module that may import viz.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from interp.errors import ChromaError, UsageError
from interp.rundir import MODEL_KEYS, RunDir

log = logging.getLogger(__name__)

#: The steps of the main job, in order.
STEPS = ("extract", "analyze", "naming", "daf", "tcac", "ablate", "atlas")


def keyword_defaults(fn: Callable, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Keyword parameters of `fn` and their defaults, less `skip` (what a step takes)."""
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def step_defaults(step: str) -> dict[str, Any]:
    """Every option a step takes and its default (None for the model options of steps that
    read the model from RUN/run.json): the one source the command line's help quotes."""
    from interp.models import DEFAULT_MODEL

    if step == "extract":
        from interp.extract import extract
        return {**DEFAULT_MODEL, **keyword_defaults(extract, ("run_dir", "model_settings"))}
    if step == "analyze":
        from interp.analysis.analyze import Settings, analyze
        settings = {f.name: f.default for f in fields(Settings) if f.name != "thresholds"}
        return {**settings, **keyword_defaults(analyze, ("run_dir", "settings"))}
    if step == "naming":
        from interp.naming import naming
        return {**dict.fromkeys(MODEL_KEYS), **keyword_defaults(naming, ("run_dir", "model"))}
    if step == "daf":
        from interp.probes.daf import daf
        return {**dict.fromkeys(MODEL_KEYS), **keyword_defaults(daf, ("run_dir", "model"))}
    if step == "tcac":
        from interp.probes.tcac import tcac
        return {**dict.fromkeys(MODEL_KEYS), **keyword_defaults(tcac, ("run_dir", "model"))}
    if step == "ablate":
        from interp.ablation import ablate
        return {**dict.fromkeys(MODEL_KEYS), **keyword_defaults(ablate, ("run_dir", "model"))}
    if step == "atlas":
        from viz.atlas import build_atlas
        return keyword_defaults(build_atlas, ("run",))
    if step == "attribute":
        from interp.attribution import attribute
        return {**dict.fromkeys(MODEL_KEYS), **keyword_defaults(attribute, ("run_dir", "model"))}
    raise UsageError(f"unknown step {step!r}; steps are {','.join(STEPS)}")


def _given(options: dict) -> dict:
    return {k: v for k, v in options.items() if v is not None}


def _split_model(options: dict) -> tuple[dict, dict]:
    """(model settings, the other options), each without the options left out (None)."""
    options = _given(options)
    return ({k: options.pop(k) for k in MODEL_KEYS if k in options}, options)


def _check_options(step: str, options: dict) -> None:
    unknown = set(options) - set(step_defaults(step))
    if unknown:
        raise UsageError(f"{step}: unknown option(s) {', '.join(sorted(unknown))}; it takes "
                         f"{', '.join(sorted(step_defaults(step)))}")


class Run:
    """One run directory: its steps (extract, analyze, naming, daf, tcac, ablate, atlas,
    attribute, run) and its results (units, activations, unit, card, naming_table, daf_types,
    daf_failures, tcac_summary, ablation_summary, info)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.dir = RunDir(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # --- steps ----------------------------------------------------------------------------

    def extract(self, **options) -> Path:
        """Hooks -> RUN/activations.zarr; options: `step_defaults("extract")` (model,
        pretrained, seed, layers, sets, samples_per_combo, limit, batch_size, device, ...)."""
        from interp.extract import extract

        _check_options("extract", options)
        model, rest = _split_model(options)
        return extract(self.path, model, **rest)

    def analyze(self, **options) -> Path:
        """Every index of every unit -> RUN/neurons.csv; options: `step_defaults("analyze")`
        (top_n, n_permutations, csi_gray, nf_max_side, min_n_eff_fraction, sets, ...)."""
        from interp.analysis.analyze import Settings, analyze

        _check_options("analyze", options)
        options = _given(options)
        names = {f.name for f in fields(Settings)}
        settings = Settings(**{k: options.pop(k) for k in list(options) if k in names})
        return analyze(self.path, settings, **options)

    def naming(self, **options) -> Path:
        """Zero-shot naming experiments -> RUN/naming/; options: `step_defaults("naming")`
        (experiments, samples_per_combo, limit, batch_size, device, dtype, workers)."""
        from interp.naming import naming

        _check_options("naming", options)
        model, rest = _split_model(options)
        return naming(self.path, model=model, **rest)

    def daf(self, **options) -> Path:
        """CLIP vs a reference encoder on a captioned corpus -> RUN/daf/; options:
        `step_defaults("daf")` (images, captions, reference, reference_weights, k, ...)."""
        from interp.probes.daf import daf

        _check_options("daf", options)
        model, rest = _split_model(options)
        return daf(self.path, model=model, **rest)

    def tcac(self, **options) -> Path:
        """CLIP's caption ranks under image transforms -> RUN/tcac/; options:
        `step_defaults("tcac")` (images, captions, transforms, pool_neighbours, top, ...)."""
        from interp.probes.tcac import tcac

        _check_options("tcac", options)
        model, rest = _split_model(options)
        return tcac(self.path, model=model, **rest)

    def ablate(self, units=None, **options) -> Path:
        """Silence `units` (`type=color_word`, `layer3.2:417,...` or `auto`), rerun naming,
        weigh the effects against random controls -> RUN/ablation/report.md; options:
        `step_defaults("ablate")` (mode, experiments, each, control_draws, doses, ...)."""
        from interp.ablation import ablate

        _check_options("ablate", {"units": units, **options})
        model, rest = _split_model(options)
        return ablate(self.path, units, model=model, **rest)

    def atlas(self, **options) -> Path:
        """Figures and the static HTML atlas; returns RUN/atlas/index.html."""
        # checked before the lock creates the dir, and before viz's imports (seconds)
        if not self.dir.neurons_csv.exists():
            raise ChromaError(f"{self.dir.neurons_csv} not found; run `chromadissect "
                              f"analyze --run-dir {self.path}` first (or `chromadissect run`)")
        from viz.atlas import build_atlas

        _check_options("atlas", options)
        with self.dir.lock():
            return build_atlas(self.path, **_given(options))

    def attribute(self, units: Sequence[str] = (), **options) -> Path:
        """Captum maps of units and naming decisions; options: `step_defaults("attribute")`."""
        from interp.attribution import attribute

        _check_options("attribute", {"units": units, **options})
        model, rest = _split_model(options)
        return attribute(self.path, units, model=model, **rest)

    def run(self, steps: Sequence[str] = STEPS, **options) -> Path | None:
        """The main job: each chosen step in order, with the options it takes among `options`
        (an option no step takes is refused); returns the atlas index, if written."""
        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            raise UsageError(f"unknown step {unknown[0]!r}; steps are {','.join(STEPS)}")
        chosen = [s for s in STEPS if s in steps]
        options = _given(options)
        taken = {k for s in STEPS for k in step_defaults(s)}
        if set(options) - taken:
            raise UsageError(f"option(s) {', '.join(sorted(set(options) - taken))} are taken "
                             f"by none of the steps {','.join(STEPS)}")
        timings = {}
        with self.dir.lock():
            for i, name in enumerate(chosen):
                mine = {k: v for k, v in options.items() if k in step_defaults(name)}
                log.info("== step %d/%d: %s %s", i + 1, len(chosen), name,
                         " ".join(f"{k}={v}" for k, v in mine.items()))
                start = time.perf_counter()
                self._step(name, mine)
                timings[name] = round(time.perf_counter() - start, 1)
                log.info("== %s done in %.1f s", name, timings[name])
            self.dir.update({"timings": {"run": timings}})
        index = self.dir.atlas_index
        return index if index.exists() else None

    def _step(self, name: str, options: dict) -> None:
        """One step; ablate only with `units`; a model without a text tower skips naming,
        tcac and ablate (with a warning)."""
        if name == "ablate" and not options.get("units"):
            log.info("ablate skipped: no units to silence (give --units, e.g. auto)")
            return
        try:
            getattr(self, name)(**options)
        except ChromaError as err:
            if name not in ("naming", "tcac", "ablate") or "text tower" not in str(err):
                raise
            log.warning("%s skipped: %s", name, err)

    # --- results --------------------------------------------------------------------------

    def info(self) -> dict:
        """RUN/run.json: model, weights, stimulus specs, seeds, versions, timings."""
        return self.dir.read()

    def units(self):
        """RUN/neurons.csv as a pandas DataFrame indexed by unit id (`layer3.2:417`)."""
        import pandas as pd

        path = self.dir.neurons_csv
        if not path.exists():
            raise ChromaError(f"{path} not found; run the analyze step first")
        return pd.read_csv(path, keep_default_na=True).set_index("unit_id", drop=False)

    def activations(self, set_name: str, blocks: Sequence[str] | None = None):
        """One set's stored reductions as a lazy (dask-backed) xarray Dataset: per block
        `max_BLOCK`, `mean_BLOCK` (image, unit) and `argmax_BLOCK` (image, unit, yx), with the
        set's labels as image coordinates (names for categorical kinds)."""
        from interp.store import to_xarray

        return to_xarray(self.path, set_name, blocks)

    def unit(self, unit_id: str, *, card: bool = False,
             out: str | os.PathLike | None = None) -> dict:
        """One unit's record: its neurons.csv row, colour-label fractions, top-9 images and
        attribution images (what `chromadissect neuron` prints); with `card`, also render its
        card PNG (to `out`, default where its atlas page shows it) and give its path."""
        from viz import atlas, rundata
        from viz import card as cards

        if not self.path.is_dir():
            raise ChromaError(f"run directory {self.path} not found; give the directory of a run")
        units = rundata.load_units(self.path)
        record = rundata.find_unit(units, unit_id)
        data = cards.card_data(self.path, record)
        result = unit_record(data)
        if card:
            path = cards.save_card(data, Path(out) if out else
                                   atlas.card_path(self.path, record["block"], record["unit"]))
            if out is None:
                atlas.refresh_unit_page(self.path, record, units)
            result["card"] = str(path)
        result["attributions"] = [str(e["path"]) for e in
                                  rundata.unit_attributions(self.path, record["unit_id"])]
        return result

    def card(self, unit_id: str, out: str | os.PathLike | None = None) -> Path:
        """Render the unit's card PNG (default: where its atlas page shows it); returns it."""
        return Path(self.unit(unit_id, card=True, out=out)["card"])

    def naming_table(self, experiment: int, variant: str = ""):
        """One naming experiment's table (RUN/naming/exp{N}{_variant}.csv) as a DataFrame."""
        import pandas as pd

        stem = f"exp{int(experiment)}" + (f"_{variant}" if variant else "")
        path = self.dir.naming / f"{stem}.csv"
        if not path.exists():
            raise ChromaError(f"{path} not found; run the naming step (experiment {experiment})")
        return pd.read_csv(path)


    def daf_types(self):
        """RUN/daf/failure_types.csv as a DataFrame: per category, effect, CI, p, q."""
        import pandas as pd

        return pd.read_csv(self._result(self.dir.daf / "failure_types.csv", "daf"))

    def daf_failures(self) -> list[dict]:
        """RUN/daf/failures.jsonl: each failure query with its CLIP-only and reference-only
        neighbours (captions, cosines, ranks in the other space)."""
        import json

        path = self._result(self.dir.daf / "failures.jsonl", "daf")
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def ablation_summary(self):
        """RUN/ablation/summary.csv as a DataFrame: per selection, mode, unit and metric, the
        effect, its random-control range and p-value, the doses."""
        path = self._result(self.dir.ablation / "summary.csv", "ablate")
        from interp.ablation.report import read_summary

        return read_summary(path)

    def tcac_summary(self):
        """RUN/tcac/summary.csv as a DataFrame: per transform, mean delta with its CI."""
        import pandas as pd

        return pd.read_csv(self._result(self.dir.tcac / "summary.csv", "tcac"))

    def _result(self, path: Path, step: str) -> Path:
        if not path.exists():
            raise ChromaError(f"{path} not found; run the {step} step first "
                              f"(`chromadissect {step} --run-dir {self.path}`)")
        return path


def unit_record(data) -> dict:
    """The JSON-able record of a card: neurons.csv row, Eq. 1 vectors, top-9 image indices."""
    import math

    import numpy as np

    from stimuli.palette import COLOR_TERMS

    record = {k: (None if isinstance(v, float) and math.isnan(v) else v)
              for k, v in data.record.items()}
    record["label_fractions"] = {kind: dict(zip(COLOR_TERMS, np.round(f, 4).tolist(), strict=True))
                                 for kind, f in data.fractions.items()}
    record["top9"] = {s: [int(c[2]) for c in crops] for s, crops in data.crops.items()}
    return record
