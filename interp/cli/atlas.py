"""`chromadissect atlas`: layer figures and the static HTML atlas of a run (RUN/atlas/)."""

from __future__ import annotations

import argparse
import logging

from interp.cli.options import add_run_dir, positive_int
from interp.errors import ChromaError

log = logging.getLogger(__name__)


def add_atlas_options(p: argparse.ArgumentParser) -> None:
    """Options of the atlas, shared with `chromadissect run`."""
    g = p.add_argument_group("atlas")
    g.add_argument("--cards-per-type", type=int, default=1, metavar="N",
                   help="render unit cards for the N best units of each type in each block "
                   "(default 1; other units show their NF and numbers, and "
                   "`chromadissect neuron` adds a card later)")
    g.add_argument("--thumb", type=positive_int, default=40, metavar="PX",
                   help="neuron-feature thumbnail size in the block pages (default 40)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("atlas", help="static HTML atlas RUN/atlas/index.html + layer figures",
                       description="Write RUN/figures/ (CSI, hue, types per block, naming) and "
                       "a static atlas under RUN/atlas/ that opens from file:// with no server: "
                       "index -> block pages -> unit pages.")
    add_run_dir(p)
    add_atlas_options(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from interp.rundir import RunDir
    from viz.atlas import build_atlas

    if not (args.run_dir / "neurons.csv").exists():  # checked before the lock creates the dir
        raise ChromaError(f"{args.run_dir / 'neurons.csv'} not found; run `chromadissect analyze "
                          f"--run-dir {args.run_dir}` first (or `chromadissect run`)")
    with RunDir(args.run_dir).lock():
        index = build_atlas(args.run_dir, cards_per_type=args.cards_per_type, thumb=args.thumb)
    print(index.resolve().as_uri())
    return 0
