"""The naming step: zero-shot colour naming experiments 1-5 (paper §2-3) into RUN/naming/.

Definitions and table bookkeeping live in experiments.py, embeddings in embeddings.py, answers in
answers.py, files in report.py; this module writes an experiment's files and runs the step.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from interp.errors import UsageError
from interp.naming import published
from interp.naming.answers import Naming, open_naming
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


def parse_experiments(items: Iterable[int | str]) -> list[int]:
    """`["1", "3"]` or `(1, 3)` -> [1, 3], refusing anything but 1-5."""
    items = list(items)
    try:
        numbers = sorted({int(i) for i in items})
    except ValueError:
        numbers = []
    if not numbers or any(n not in EXPERIMENTS for n in numbers):
        raise UsageError(f"--experiments {','.join(map(str, items))}: expected numbers among "
                         "1,2,3,4,5")
    return numbers


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


def naming(run_dir: str | os.PathLike, experiments: Iterable[int | str] = (1, 2, 3, 4, 5), *,
           model: dict | None = None, samples_per_combo: int = 500, limit: int | None = None,
           batch_size: int = 64, device: str = "cpu", dtype: str = "float32",
           workers: int | None = None) -> Path:
    """Run naming experiments into RUN/naming/ with the run's model; returns that folder.

    `model`: load_model settings (model, pretrained, seed, layers); the run's recorded model
    wins and a different one is refused. Image embeddings are cached, so a rerun is quick.
    """
    numbers = parse_experiments(experiments)
    run = RunDir(run_dir)
    with run.lock():
        answers = open_naming(run, numbers, model=model, samples_per_combo=samples_per_combo,
                              limit=limit, batch_size=batch_size, device=device, dtype=dtype,
                              workers=workers)
        # per experiment, what `attribute --experiment` reuses so it explains these very answers
        settings = {"samples_per_combo": samples_per_combo, "limit": limit, "dtype": dtype}
        run.update({"naming": {f"exp{n}": settings for n in numbers}})
        out = run.naming
        out.mkdir(parents=True, exist_ok=True)
        show = published.applies(answers.loaded.model, answers.loaded.pretrained)
        for number in numbers:
            paths = write_experiment(out, number, answers, show)
            log.info("experiment %d: %s (+ .md, confusion figures)", number,
                     ", ".join(p.name for p in paths))
    log.info("naming results in %s", out)
    return out
