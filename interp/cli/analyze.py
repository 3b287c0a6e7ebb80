"""`chromadissect analyze`: every index of every unit -> RUN/analysis.zarr and RUN/neurons.csv."""

from __future__ import annotations

import argparse

from interp.cli.options import (
    add_common,
    add_options,
    check_run_model,
    check_sets,
    defaults_of,
    given,
)

OWN = ("sets", "top_n", "n_permutations", "csi_gray", "min_n_eff_fraction", "nf_max_side",
       "batch_size")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="top-N, NF, CSI, hue, colour-label selectivity, types "
                       "-> RUN/neurons.csv",
                       description="Analyse every unit of the run's activation store: top-N "
                       "images, receptive-field crops and neuron features, colour selectivity "
                       "index, hue, colour-label selectivity (Eq. 1) with permutation tests and "
                       "unit types. Writes RUN/analysis.zarr and RUN/neurons.csv; resumable. "
                       "The model is the run's own (RUN/run.json).")
    defaults = defaults_of("analyze", sets="every analysed set in the store")
    add_common(p, uses=("device",), defaults=defaults)
    add_options(p, list(OWN), defaults, "analysis")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from interp.api import Run

    check_sets(args.sets)
    check_run_model(args.run_dir, args)
    print(Run(args.run_dir).analyze(**given(args, (*OWN, "device"))))
    return 0
