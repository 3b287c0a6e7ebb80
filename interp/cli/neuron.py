"""`chromadissect neuron RUN LAYER:UNIT`: one unit's card PNG, and its record as JSON on stdout."""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np

from interp.errors import ChromaError
from stimuli.palette import COLOR_TERMS

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neuron", help="inspect one unit: card PNG + JSON record on stdout",
                       description="Render the unit card (neuron features, top-9 crops, "
                       "colour-label selectivity, numbers, attributions) and print the unit's "
                       "record as JSON. The card also appears on the unit's atlas page.")
    p.add_argument("run", type=Path, metavar="RUN", help="run directory")
    p.add_argument("unit_id", metavar="LAYER:UNIT", help="e.g. layer3.2:417")
    p.add_argument("--out", type=Path, default=None, metavar="PNG",
                   help="where to write the card (default: RUN/atlas/cards/BLOCK/UNIT.png)")
    p.set_defaults(func=main)


def unit_record(data) -> dict:
    """The JSON-able record of a card: neurons.csv row, Eq. 1 vectors, top-9 image indices."""
    record = {k: (None if isinstance(v, float) and math.isnan(v) else v)
              for k, v in data.record.items()}
    record["label_fractions"] = {kind: dict(zip(COLOR_TERMS, np.round(f, 4).tolist(), strict=True))
                                 for kind, f in data.fractions.items()}
    record["top9"] = {s: [int(c[2]) for c in crops] for s, crops in data.crops.items()}
    return record


def main(args: argparse.Namespace) -> int:
    from viz import atlas, card, rundata

    if not args.run.is_dir():
        raise ChromaError(f"run directory {args.run} not found; give the directory of a run")
    units = rundata.load_units(args.run)
    record = rundata.find_unit(units, args.unit_id)
    data = card.card_data(args.run, record)
    out = card.save_card(data, args.out or atlas.card_path(args.run, record["block"],
                                                           record["unit"]))
    if args.out is None:
        atlas.refresh_unit_page(args.run, record, units)
    result = unit_record(data) | {"card": str(out),
                                  "attributions": [str(e["path"]) for e in
                                                   rundata.unit_attributions(args.run,
                                                                             record["unit_id"])]}
    print(json.dumps(result, indent=2))
    log.info("card of %s written to %s", record["unit_id"], out)
    return 0
