"""`chromadissect naming`: zero-shot colour naming experiments 1-5 (paper §2-3) -> RUN/naming/."""

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

OWN = ("experiments", "samples_per_combo", "limit", "batch_size", "dtype", "workers")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("naming", help="zero-shot colour naming experiments 1-5",
                       description="Zero-shot colour naming (paper experiments 1-5): tables and "
                       "confusion matrices under RUN/naming/. The model is the run's own "
                       "(RUN/run.json), else --model (default RN50/openai).")
    defaults = defaults_of("naming", model="the run's, else RN50",
                           pretrained="the run's, else openai", seed="the run's, else 0")
    add_common(p, uses=(*MODEL_OPTIONS, "device"), defaults=defaults)
    add_options(p, list(OWN), defaults, "naming")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from interp.api import Run

    check_run_model(args.run_dir, args)
    print(Run(args.run_dir).naming(**given(args, (*MODEL_OPTIONS, "device", *OWN))))
    return 0
