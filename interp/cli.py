"""The `chromadissect` console script: one parser, one subcommand per module.

Each module in COMMAND_MODULES defines `register(subparsers)`, which adds its subparser and sets
`func` (called with the parsed namespace, returning an exit code or None).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from interp.errors import ChromaError, UsageError

COMMAND_MODULES = [
    "stimuli.cli",
    "interp.analysis.analyze",
    "interp.extract",
    "interp.naming",
    "interp.attribute",
    "interp.atlas_cmd",
    "interp.neuron",
    "interp.run",
]


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit code 2."""

    def error(self, message: str) -> None:  # noqa: D102
        raise UsageError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chromadissect",
        description="Dissect how CLIP's ResNet visual encoder represents colour, neuron by neuron.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
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
