"""`chromadissect ablate`: silence units inside the image tower, rerun naming, weigh each effect
against random ablations of equal size -> RUN/ablation/."""

from __future__ import annotations

import argparse

from interp.cli.options import (
    MODEL_OPTIONS,
    add_common,
    add_options,
    check_run_model,
    defaults_of,
    given,
)

DATA = ("experiments", "samples_per_combo", "limit", "batch_size", "dtype", "workers")
OWN = ("units", "mode", "each", "control_draws", "doses", "ablation_images", "ablation_seed")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablate", help="silence units, rerun naming, effects against random "
                       "controls",
                       description="Silence the chosen units inside the image tower (zero, "
                       "mean or resample) and rerun the naming experiments on the run's "
                       "naming images; each effect is weighed against random ablations of as "
                       "many units per block, with a p-value, and a dose-response -> "
                       "RUN/ablation/ (summary.csv, report.md, figures). The model is the "
                       "run's own (RUN/run.json).")
    naming = "the run's naming"
    defaults = defaults_of("ablate", samples_per_combo=f"{naming}, else 500", limit=naming,
                           dtype=f"{naming}, else float32", units="none; required here")
    add_common(p, uses=(*MODEL_OPTIONS, "device"), defaults=defaults)
    add_options(p, list(OWN), defaults, "what to silence")
    add_options(p, list(DATA), defaults, "naming images")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from interp.api import Run

    check_run_model(args.run_dir, args)
    print(Run(args.run_dir).ablate(**given(args, (*MODEL_OPTIONS, "device", *DATA, *OWN))))
    return 0
