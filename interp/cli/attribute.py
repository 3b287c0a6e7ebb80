"""`chromadissect attribute`: captum attribution maps for units and naming decisions."""

from __future__ import annotations

import argparse

from interp.cli.options import (
    MODEL_OPTIONS,
    add_common,
    add_options,
    check_run_model,
    csv_list,
    defaults_of,
    given,
    positive_int,
)

DATA = ("samples_per_combo", "natural_dir", "limit", "batch_size", "dtype", "workers")
OWN = ("units", "top_k", "experiment", "template", "errors", "images", "methods", "steps",
       "baseline")


def register(subparsers: argparse._SubParsersAction) -> None:
    from interp.attribution.maps import NAMING_METHODS, UNIT_METHODS
    from interp.naming.experiments import EXPERIMENTS

    p = subparsers.add_parser(
        "attribute", help="captum attribution maps for units and naming decisions",
        description="Attribution maps (captum) under RUN/attributions/: for units LAYER:UNIT on "
        "their top images, and for naming decisions of an experiment (its first errors or "
        "chosen --images). The model is the run's own (RUN/run.json).")
    naming = "the run's naming of the experiment"
    defaults = defaults_of("attribute", sets="natural; units use the first",
                           samples_per_combo=f"{naming}, else 500", limit=naming,
                           dtype=f"{naming}, else float32")
    add_common(p, uses=(*MODEL_OPTIONS, "device"), defaults=defaults)
    add_options(p, ["sets"], defaults)
    add_options(p, list(DATA), defaults, "images")
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
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from interp.api import Run

    check_run_model(args.run_dir, args)
    options = given(args, (*MODEL_OPTIONS, "device", *DATA, *OWN))
    if args.sets:
        options["set_name"] = args.sets[0]
    print(Run(args.run_dir).attribute(**options))
    return 0
