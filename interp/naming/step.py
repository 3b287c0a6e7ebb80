"""`chromadissect naming`: zero-shot colour naming experiments 1-5 (paper §2-3) into RUN/naming/.

Definitions and table bookkeeping live in naming_tables.py, embeddings in naming_embed.py,
files in naming_report.py; this module wires them to a model and a run directory.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import zarr

from interp.cli.options import add_data, add_execution, add_model, add_run_dir, csv_list
from interp.errors import UsageError
from interp.models import LoadedModel, load_model
from interp.naming import published
from interp.naming.embeddings import EmbeddingCache, image_embeddings, require_text_tower
from interp.naming.experiments import EXPERIMENTS, Experiment, Variant, confusion, experiment_table
from interp.naming.report import (
    confusion_figure,
    experiment_markdown,
    table_stem,
    template_slug,
    write_csv,
)
from interp.rundir import RunDir

log = logging.getLogger(__name__)
DEFAULT_MODEL = {"model": "RN50", "pretrained": "openai", "seed": 0}
PREDICT_ROWS = 65536  # embeddings read per block when predicting (256 MB at 1024 floats)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("naming", help="zero-shot colour naming experiments 1-5",
                              description="Zero-shot colour naming (paper experiments 1-5): "
                              "tables and confusion matrices under RUN/naming/.")
    add_run_dir(p)
    add_model(p)
    # None = not given: the run's recorded model wins, else RN50/openai
    p.set_defaults(model=None, pretrained=None, seed=None)
    add_data(p)
    add_execution(p)
    p.add_argument("--experiments", type=csv_list, default=["1", "2", "3", "4", "5"],
                   metavar="1,2,...", help="which experiments to run (default: all five)")
    p.set_defaults(func=run_command)


def parse_experiments(items: list[str]) -> list[int]:
    """`["1", "3"]` -> [1, 3], refusing anything but 1-5."""
    try:
        numbers = sorted({int(i) for i in items})
    except ValueError:
        numbers = []
    if not numbers or any(n not in EXPERIMENTS for n in numbers):
        raise UsageError(f"--experiments {','.join(items)}: expected numbers among 1,2,3,4,5")
    return numbers


def model_settings(args: argparse.Namespace, run: RunDir) -> dict:
    """The run's recorded model, else the options, else RN50/openai; explicit options must agree."""
    keys = (*DEFAULT_MODEL, "layers")  # layers: the run's hook points, for unit attributions
    recorded = {k: v for k, v in run.read().get("model_settings", {}).items()
                if k in keys and v is not None}
    given = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    settings = {**DEFAULT_MODEL, **recorded, **given}
    run.check_settings("model_settings", settings)
    return settings


@dataclass
class Naming:
    """Answers of one model on the stimulus sets, one template at a time (memoised)."""

    loaded: LoadedModel
    sets: dict[str, object]  # whole sets (no --limit): the cache spans them
    cache: EmbeddingCache
    limit: int | None = None
    batch_size: int = 64
    dtype: str = "float32"
    workers: int | None = None
    _images: dict[str, zarr.Array] = field(default_factory=dict)
    _texts: dict[str, torch.Tensor] = field(default_factory=dict)
    _answers: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def size(self, set_name: str) -> int:
        """Number of images used from the set: all, or the first --limit."""
        n = len(self.sets[set_name])
        return n if self.limit is None else min(n, self.limit)

    def labels(self, set_name: str) -> dict[str, np.ndarray]:
        """The set's labels, cut to the images used."""
        n = self.size(set_name)
        return {kind: values[:n] for kind, values in self.sets[set_name].labels().items()}

    def embeddings(self, set_name: str) -> zarr.Array:
        """The set's cached image embeddings (rows beyond size() may be unset)."""
        if set_name not in self._images:
            self._images[set_name] = image_embeddings(
                self.loaded, self.sets[set_name], self.size(set_name), self.cache,
                batch_size=self.batch_size, dtype=self.dtype, workers=self.workers)
        return self._images[set_name]

    def similarities(self, set_name: str, template: str, index: list[int]) -> torch.Tensor:
        """(len(index), 11) cosine similarity of these images with each colour prompt."""
        rows = self.embeddings(set_name).get_orthogonal_selection((np.asarray(index), slice(None)))
        return torch.from_numpy(rows) @ self.text(template).T

    def text(self, template: str) -> torch.Tensor:
        """(11, D) unit-norm prompt embeddings of a template, on the CPU (memoised)."""
        if template not in self._texts:
            self._texts[template] = self.cache.prompts(self.loaded, template, self.dtype)
        return self._texts[template]

    def predict(self, set_name: str, template: str) -> np.ndarray:
        """Palette index of the best-matching prompt, per image used; read in blocks of rows."""
        key = (set_name, template)
        if key not in self._answers:
            emb, n, text = self.embeddings(set_name), self.size(set_name), self.text(template)
            answers = np.empty(n, dtype=np.int64)
            for a in range(0, n, PREDICT_ROWS):
                block = torch.from_numpy(emb[a:min(a + PREDICT_ROWS, n)])
                answers[a:a + len(block)] = (block @ text.T).argmax(dim=1).numpy()
            self._answers[key] = answers
        return self._answers[key]


def open_naming(args: argparse.Namespace, run: RunDir, numbers: list[int],
                loaded: LoadedModel | None = None) -> Naming:
    """The run's model (loaded here unless given) and the sets the chosen experiments need."""
    from stimuli import get_set

    if loaded is None:
        loaded = load_model(**model_settings(args, run), device=args.device)
    require_text_tower(loaded)
    names = sorted({EXPERIMENTS[n].set_name for n in numbers})
    seed = run.read().get("seeds", {}).get("stimuli", 0)
    sets = {name: get_set(name, samples_per_combo=args.samples_per_combo,
                          image_size=loaded.image_size, seed=seed) for name in names}
    cache = EmbeddingCache(run.path / "naming" / "embeddings.zarr")
    return Naming(loaded, sets, cache, args.limit, args.batch_size, args.dtype, args.workers)


def write_experiment(out: Path, number: int, naming: Naming, show_published: bool) -> list[Path]:
    """Per variant of one experiment: table (CSV + Markdown) and one confusion figure per
    template; returns the CSV paths."""
    exp = EXPERIMENTS[number]
    return [write_variant(out, exp, variant, naming, show_published) for variant in exp.variants]


def write_variant(out: Path, exp: Experiment, variant: Variant, naming: Naming,
                  show_published: bool) -> Path:
    """`exp{N}{suffix}.csv/.md` and `confusion_exp{N}{suffix}_{template}.png` of one variant;
    the paper's figures only beside the variant they match."""
    labels = naming.labels(exp.set_name)
    rows = experiment_table(exp, naming.predict, labels, variant)
    if show_published and variant.published:
        for row in rows:
            row.update(published.published_values(exp.number, row))
    stem = table_stem(exp, variant)
    write_csv(out / f"{stem}.csv", rows)
    model = f"{naming.loaded.model} ({naming.loaded.pretrained})"
    (out / f"{stem}.md").write_text(
        experiment_markdown(exp, rows, model, show_published, variant))
    keep = exp.select(labels, variant)
    images = variant.name if len(exp.variants) > 1 else ""
    for template in exp.templates:
        target = exp.targets[template]
        matrix = confusion(labels[target][keep], naming.predict(exp.set_name, template)[keep])
        confusion_figure(out / f"confusion_{stem}_{template_slug(template)}.png", matrix,
                         exp.number, template, target, images)
    return out / f"{stem}.csv"


def run_command(args: argparse.Namespace) -> int:
    numbers = parse_experiments(args.experiments)
    run = RunDir(args.run_dir)
    with run.lock():
        naming = open_naming(args, run, numbers)
        # per experiment, what `attribute --experiment` reuses so it explains these very answers
        settings = {"samples_per_combo": args.samples_per_combo, "limit": args.limit,
                    "dtype": args.dtype}
        run.update({"naming": {f"exp{n}": settings for n in numbers}})
        out = run.path / "naming"
        out.mkdir(parents=True, exist_ok=True)
        show = published.applies(naming.loaded.model, naming.loaded.pretrained)
        for number in numbers:
            paths = write_experiment(out, number, naming, show)
            log.info("experiment %d: %s (+ .md, confusion figures)", number,
                     ", ".join(p.name for p in paths))
    log.info("naming results in %s", out)
    return 0
