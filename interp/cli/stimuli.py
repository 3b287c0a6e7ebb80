"""`chromadissect stimuli NAME`: describe a set, draw a labelled preview grid, or export PNGs."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from interp.cli.options import add_common, add_options, check_run_model, given, positive_int, show
from interp.errors import UsageError
from stimuli import SET_NAMES, get_set

log = logging.getLogger(__name__)


#: option -> get_set's keyword argument
SET_OPTIONS = {"samples_per_combo": "samples_per_combo", "image_size": "image_size",
               "stimulus_seed": "seed", "limit": "limit", "natural_dir": "natural_dir"}


def set_defaults() -> dict[str, str]:
    """get_set's defaults, as help texts show them."""
    from interp.api import keyword_defaults

    found = keyword_defaults(get_set)
    return {option: show(found[arg], option) for option, arg in SET_OPTIONS.items()}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stimuli", help="preview or export a stimulus set",
                              description="Describe a stimulus set; --preview draws a labelled "
                              "grid, --export writes every image as PNG plus labels.csv. With "
                              "--run-dir, the set exactly as that run extracted it.")
    p.add_argument("name", metavar="NAME", help=f"one of {', '.join(SET_NAMES)}")
    p.add_argument("--preview", type=Path, metavar="FILE.png", help="write a labelled grid")
    p.add_argument("--count", type=positive_int, default=24, metavar="N",
                   help="tiles in the preview grid (default 24)")
    p.add_argument("--export", type=Path, metavar="DIR", help="write PNGs and labels.csv")
    p.add_argument("--run-dir", type=Path, default=None, metavar="RUN",
                   help="use the set as this run extracted it (its spec in RUN/run.json)")
    add_common(p, run_dir=False)
    add_options(p, list(SET_OPTIONS), set_defaults, "stimuli")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from interp.analysis.runio import load_set
    from stimuli.export import export, preview

    if args.name not in SET_NAMES:
        raise UsageError(f"unknown stimulus set {args.name!r}; choose from {', '.join(SET_NAMES)}")
    if args.run_dir:
        check_run_model(args.run_dir, args)
        s = load_set(args.run_dir, args.name)
    else:
        options = given(args, SET_OPTIONS)
        s = get_set(args.name, **{SET_OPTIONS[k]: v for k, v in options.items()})
    if args.preview:
        preview(s, args.preview, args.count)
        log.info("wrote a %d-tile preview of %s to %s", min(args.count, len(s)), s.name,
                 args.preview)
    if args.export:
        export(s, args.export)
        log.info("exported %d images of %s with labels.csv to %s", len(s), s.name, args.export)
    if not (args.preview or args.export):
        print(json.dumps({"spec": s.spec(), "images": len(s), "combinations": s.n_combos,
                          "labels": sorted(s.labels()), "report": s.report()}, indent=1))
    return 0
