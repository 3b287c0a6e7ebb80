"""`chromadissect run`: the main job, extract -> analyze -> naming -> daf -> tcac -> ablate (with
--units) -> atlas into one run directory.

Every option given reaches every step that takes it (`interp.api.Run.run`); each step skips the
work it finished before, so rerunning `run` resumes.
"""

from __future__ import annotations

import argparse
import functools

from interp.cli import ablate, daf, tcac
from interp.cli.options import MODEL_OPTIONS, OPTIONS, add_common, add_options, csv_list, given

#: options of `run` beyond the common ones, in help order
OWN = tuple(dict.fromkeys((
    "sets", "samples_per_combo", "natural_dir", "limit", "stimulus_seed", "batch_size", "dtype",
    "workers", "writers", "compile", "chunk_images", "top_n", "n_permutations", "csi_gray",
    "min_n_eff_fraction", "nf_max_side", "experiments", *daf.CORPUS, *daf.OWN,
    *tcac.OWN, *ablate.OWN, "cards_per_type", "thumb")))


@functools.cache
def defaults_by_step() -> dict[str, str]:
    """Per option, its default in each step that takes it: `64 (extract), 32 (analyze)`."""
    from interp.api import STEPS, step_defaults
    from interp.cli.options import show

    out: dict[str, dict[str, str]] = {}
    for step in STEPS:
        for dest, value in step_defaults(step).items():
            if dest in OPTIONS:
                out.setdefault(dest, {})[step] = show(value, dest, step != "extract")
    out["sets"] = {"extract": "all five", "analyze": "the extracted ones"}
    return {dest: next(iter(by.values())) if len(set(by.values())) == 1 else
            ", ".join(f"{v} ({step})" for step, v in by.items()) for dest, by in out.items()}


def register(sub: argparse._SubParsersAction) -> None:
    from interp.api import STEPS

    p = sub.add_parser("run", help="the main job: extract, analyze, naming, daf, tcac, ablate, "
                       "atlas (resumable)",
                       description="Run every step into one run directory: extract -> analyze "
                       "-> naming -> daf -> tcac -> ablate (when --units is given) -> atlas, "
                       "each with the options it takes among "
                       "those given. Rerun the same command to resume; finished work is "
                       "skipped. Prints where the atlas is.")
    defaults = defaults_by_step  # worked out when help is printed
    add_common(p, uses=(*MODEL_OPTIONS, "device"), model_from_run=False, defaults=defaults)
    add_options(p, list(OWN), defaults, "options of the steps")
    p.add_argument("--steps", type=csv_list, default=list(STEPS), metavar="A,B,...",
                   help=f"steps to run, in this order (default: {','.join(STEPS)})")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from interp.api import Run
    from interp.cli.options import check_sets

    check_sets(args.sets)
    index = Run(args.run_dir).run(args.steps, **given(args, (*MODEL_OPTIONS, "device", *OWN)))
    if index is not None:
        print(f"atlas: {index.resolve().as_uri()}")
    return 0
