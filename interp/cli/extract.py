"""`chromadissect extract`: stimuli -> hooked model -> RUN/activations.zarr (resumable)."""

from __future__ import annotations

import argparse

from interp.cli.options import (
    MODEL_OPTIONS,
    add_common,
    add_options,
    check_sets,
    defaults_of,
    given,
)

OWN = ("sets", "samples_per_combo", "natural_dir", "limit", "stimulus_seed", "batch_size", "dtype",
       "workers", "writers", "compile", "chunk_images")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="hooks -> RUN/activations.zarr (resumable)",
                       description="Run the stimulus sets through the model with hooks on every "
                       "block and store per image and unit the spatial max, its (y, x) and the "
                       "mean in RUN/activations.zarr. Rerun the same command to resume.")
    defaults = defaults_of("extract")
    add_common(p, uses=(*MODEL_OPTIONS, "device"), model_from_run=False, defaults=defaults)
    add_options(p, list(OWN), defaults, "extraction")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from interp.api import Run

    check_sets(args.sets)
    print(Run(args.run_dir).extract(**given(args, (*MODEL_OPTIONS, "device", *OWN))))
    return 0
