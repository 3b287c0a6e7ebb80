"""Options shared by several subcommands, spelled the same everywhere (DESIGN.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

ALL_SETS = ("shapes", "stroop", "stroop-white", "words", "natural")


def csv_list(text: str) -> list[str]:
    """Parse `a,b,c` into a list, dropping empty items."""
    return [item.strip() for item in text.split(",") if item.strip()]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def add_run_dir(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--run-dir", type=Path, required=required, metavar="RUN",
                   help="directory holding every output of one run")


def add_model(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="RN50",
                   help="open_clip ResNet (RN50, RN101, RN50x4, ...) or package.module:factory")
    g.add_argument("--pretrained", default="openai",
                   help="open_clip pretrained tag, 'none' (untrained control) or a checkpoint path")
    g.add_argument("--seed", type=int, default=0, help="seed of the untrained control")
    g.add_argument("--layers", type=csv_list, default=None, metavar="A,B,...",
                   help="hook points (dotted module names); default: every bottleneck block")


def add_sets(p: argparse.ArgumentParser, default: tuple[str, ...]) -> None:
    p.add_argument("--sets", type=csv_list, default=list(default), metavar="A,B,...",
                   help=f"stimulus sets among {', '.join(ALL_SETS)} (default: {','.join(default)})")


def add_data(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("stimuli")
    g.add_argument("--samples-per-combo", type=positive_int, default=500, metavar="N",
                   help="samples per label combination (paper: 500)")
    g.add_argument("--natural-dir", type=Path, default=None, metavar="DIR",
                   help="folder of photos for the natural set (default: bundled crops)")
    g.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="only the first N images of each set (quick runs)")


def add_execution(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("execution")
    g.add_argument("--batch-size", type=positive_int, default=64, metavar="N")
    g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:K")
    g.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="stimulus-rendering processes (default: 0 on CPU, cores - 1 on GPU)")


def add_top_n(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top-n", type=positive_int, default=100, metavar="N",
                   help="images per unit for top-N statistics (default 100)")
