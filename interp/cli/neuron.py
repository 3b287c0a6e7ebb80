"""`chromadissect neuron RUN LAYER:UNIT`: one unit's card PNG, and its record as JSON on stdout."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from interp.cli.options import add_common, check_run_model
from interp.errors import UsageError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neuron", help="inspect one unit: card PNG + JSON record on stdout",
                       description="Render the unit card (neuron features, top-9 crops, "
                       "colour-label selectivity, numbers, attributions) and print the unit's "
                       "record as JSON. The card also appears on the unit's atlas page. The run "
                       "is RUN or --run-dir.")
    p.add_argument("target", nargs="+", metavar="[RUN] LAYER:UNIT",
                   help="the run directory (unless --run-dir) and a unit, e.g. layer3.2:417")
    p.add_argument("--run-dir", type=Path, default=None, metavar="RUN",
                   help="directory holding every output of one run")
    p.add_argument("--out", type=Path, default=None, metavar="PNG",
                   help="where to write the card (default: RUN/atlas/cards/BLOCK/UNIT.png)")
    add_common(p, run_dir=False)
    p.set_defaults(func=main)


def run_and_unit(args: argparse.Namespace) -> tuple[Path, str]:
    """(run directory, unit id) from `RUN LAYER:UNIT` or `--run-dir RUN LAYER:UNIT`."""
    if args.run_dir is not None and len(args.target) == 1:
        return args.run_dir, args.target[0]
    if args.run_dir is None and len(args.target) == 2:
        return Path(args.target[0]), args.target[1]
    raise UsageError("expected RUN LAYER:UNIT (or --run-dir RUN LAYER:UNIT), e.g. "
                     "`chromadissect neuron runs/demo layer3.2:417`")


def main(args: argparse.Namespace) -> int:
    from interp.api import Run

    run_dir, unit_id = run_and_unit(args)
    check_run_model(run_dir, args)
    record = Run(run_dir).unit(unit_id, card=True, out=args.out)
    print(json.dumps(record, indent=2))
    log.info("card of %s written to %s", unit_id, record["card"])
    return 0
