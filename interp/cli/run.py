"""`chromadissect run`: the main job, extract → analyze → naming → atlas into one run directory.

Each step is the subcommand of the same name, called with the options it accepts among those
given to `run`; each skips the work it finished before, so rerunning `run` resumes.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from interp.cli.options import (
    add_data,
    add_execution,
    add_model,
    add_run_dir,
    add_sets,
    add_top_n,
    csv_list,
)
from interp.errors import ChromaError

log = logging.getLogger(__name__)

STEPS = ("extract", "analyze", "naming", "atlas")
NOT_FORWARDED = {"help", "run_dir", "steps"}


def register(sub: argparse._SubParsersAction) -> None:
    from interp.cli.atlas import add_atlas_options
    from interp.extract import DEFAULT_SETS

    p = sub.add_parser("run", help="the main job: extract, analyze, naming, atlas (resumable)",
                       description="Run every step into one run directory: extract -> analyze "
                       "-> naming -> atlas. Rerun the same command to resume; finished work is "
                       "skipped. Prints where the atlas is.")
    add_run_dir(p)
    add_model(p)
    add_sets(p, DEFAULT_SETS)
    add_data(p)
    add_execution(p)
    add_top_n(p)
    add_atlas_options(p)
    p.add_argument("--steps", type=csv_list,
                   default=list(STEPS), metavar="A,B,...",
                   help=f"steps to run, in this order (default: {','.join(STEPS)})")
    p.set_defaults(func=main)


def step_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The `run` parser and the parser of every step, as the CLI registers them."""
    from interp.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"], {name: sub.choices[name] for name in STEPS}


def forwarded_argv(step: argparse.ArgumentParser, args: argparse.Namespace,
                   run_parser: argparse.ArgumentParser) -> list[str]:
    """`--option value` for each option of `step` given to `run` with a non-default value."""
    argv = ["--run-dir", str(args.run_dir)]
    for action in step._actions:
        dest = action.dest
        if not action.option_strings or dest in NOT_FORWARDED or not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        if value is None or value == run_parser.get_default(dest):
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:
            argv += [flag] if value else []
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(map(str, value))]
        else:
            argv += [flag, str(value)]
    return argv


def main(args: argparse.Namespace) -> int:
    from interp.rundir import RunDir

    unknown = [s for s in args.steps if s not in STEPS]
    if unknown:
        raise ChromaError(f"unknown step {unknown[0]!r}; steps are {','.join(STEPS)}")
    run_parser, parsers = step_parsers()
    timings = {}
    with RunDir(args.run_dir).lock():
        for i, name in enumerate(s for s in STEPS if s in args.steps):
            argv = forwarded_argv(parsers[name], args, run_parser)
            log.info("== step %d/%d: chromadissect %s %s", i + 1, len(args.steps), name,
                     " ".join(argv))
            start = time.perf_counter()
            run_step(name, parsers[name].parse_args(argv))
            timings[name] = round(time.perf_counter() - start, 1)
            log.info("== %s done in %.1f s", name, timings[name])
        RunDir(args.run_dir).update({"timings": {"run": timings}})
    index = Path(args.run_dir) / "atlas" / "index.html"
    if index.exists():
        print(f"atlas: {index.resolve().as_uri()}")
    return 0


def run_step(name: str, step_args: argparse.Namespace) -> None:
    """One step; a model without a text tower skips naming (with a warning) instead of failing."""
    try:
        step_args.func(step_args)
    except ChromaError as err:
        if name != "naming" or "text tower" not in str(err):
            raise
        log.warning("naming skipped: %s", err)
