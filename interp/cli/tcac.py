"""`chromadissect tcac`: CLIP's caption ranks under image transforms, against an identity
control -> RUN/tcac/."""

from __future__ import annotations

import argparse

from interp.cli.options import probe_parser, run_probe

CORPUS = ("images", "captions", "caption_format", "corpus_size", "stimulus_seed")
OWN = ("transforms", "tcac_images", "pool_neighbours", "top", "show", "lexicon",
       "n_permutations", "n_boot", "stats_seed", "batch_size", "dtype", "workers")


def register(sub: argparse._SubParsersAction) -> None:
    p = probe_parser(sub, "tcac", CORPUS, OWN,
                     help="caption ranks under image transforms, against an identity "
                       "control (second paper)",
                       description="Transformative Caption Analysis for CLIP (Ranjan, Wen and "
                       "Bhat): per image, a pool of ~50 captions (its own and their nearest by "
                       "CLIP text embedding) ranked by image-text similarity before and after "
                       "each transform; delta = top captions lost, per transform with bootstrap "
                       "CIs against the identity control, and the caption categories that lose "
                       "or gain -> RUN/tcac/. Without --images, the offline captioned stimuli.")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return run_probe(args, "tcac", (*CORPUS, *OWN))
