"""`chromadissect atlas`: layer figures and the static HTML atlas of a run (RUN/atlas/)."""

from __future__ import annotations

import argparse

from interp.cli.options import add_common, add_options, check_run_model, defaults_of, given

OWN = ("cards_per_type", "thumb")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("atlas", help="static HTML atlas RUN/atlas/index.html + layer figures",
                       description="Write RUN/figures/ (CSI, hue, types per block, naming) and "
                       "a static atlas under RUN/atlas/ that opens from file:// with no server: "
                       "index -> block pages -> unit pages.")
    add_common(p)
    add_options(p, list(OWN), defaults_of("atlas"), "atlas")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from interp.api import Run

    check_run_model(args.run_dir, args)
    print(Run(args.run_dir).atlas(**given(args, OWN)).resolve().as_uri())
    return 0
