"""The `chromadissect` console script: one parser, one subcommand per module.

Each module in COMMANDS defines `register(subparsers)`, which adds its subparser and sets
`func` (called with the parsed namespace, returning an exit code or None). Only the module of the
chosen subcommand is imported, so a quick command (or a quick error) does not pay for the imports
of all the others.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from interp.errors import ChromaError, UsageError

#: subcommand -> module that registers it, in the order `--help` lists them.
COMMANDS = {
    "run": "interp.cli.run",
    "stimuli": "interp.cli.stimuli",
    "extract": "interp.extract",
    "analyze": "interp.analysis.analyze",
    "naming": "interp.naming.step",
    "attribute": "interp.attribution.step",
    "atlas": "interp.cli.atlas",
    "neuron": "interp.cli.neuron",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit code 2."""

    def error(self, message: str) -> None:  # noqa: D102
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _chosen_modules(argv: list[str]) -> list[str]:
    """The module of the subcommand named in argv, or all of them (for --help and bad usage)."""
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    return [COMMANDS[chosen]] if chosen in COMMANDS else list(COMMANDS.values())


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chromadissect",
        description="Dissect how CLIP's ResNet visual encoder represents colour, neuron by neuron.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    modules = list(COMMANDS.values()) if argv is None else _chosen_modules(argv)
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else argv
        args = build_parser(argv).parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s",
        )
        return int(args.func(args) or 0)
    except ChromaError as err:
        print(f"chromadissect: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("chromadissect: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
