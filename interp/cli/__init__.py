"""The `chromadissect` console script: one parser, one subcommand per module of this package.

Each module in COMMANDS defines `register(subparsers)`, which adds its subparser and sets `func`
(called with the parsed namespace, returning an exit code or None) and calls the library (most
often through `interp.api.Run`). Only the module of the chosen subcommand is imported, so a quick
command (or a quick error) does not pay for the imports of all the others. Nothing below this
package sees an `argparse.Namespace`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from interp import version
from interp.errors import ChromaError, UsageError

#: subcommand -> module that registers it, in the order `--help` lists them.
COMMANDS = {name: f"interp.cli.{name}" for name in (
    "run", "stimuli", "extract", "analyze", "naming", "daf", "tcac", "ablate", "attribute",
    "atlas", "neuron")}


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line (printed once, by `main`) and exit code 2."""

    def error(self, message: str) -> None:  # noqa: D102
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _chosen_modules(argv: list[str]) -> list[str]:
    """The module of the subcommand named in argv, or all of them (for --help and bad usage)."""
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    return [COMMANDS[chosen]] if chosen in COMMANDS else list(COMMANDS.values())


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    from interp.cli.options import add_logging

    parser = _Parser(
        prog="chromadissect",
        description="Dissect how CLIP's ResNet visual encoder represents colour, neuron by neuron.",
    )
    parser.add_argument("--version", action="version", version=f"chromadissect {version()}")
    add_logging(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    modules = list(COMMANDS.values()) if argv is None else _chosen_modules(argv)
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def _configure(args: argparse.Namespace) -> None:
    from interp import progress

    verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s",
    )
    progress.set_enabled(not getattr(args, "no_progress", False))


def main(argv: list[str] | None = None) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        argv = sys.argv[1:] if argv is None else argv
        args = build_parser(argv).parse_args(argv)
        _configure(args)
        with logging_redirect_tqdm():
            return int(args.func(args) or 0)
    except ChromaError as err:
        print(f"chromadissect: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("chromadissect: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
