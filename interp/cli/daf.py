"""`chromadissect daf`: CLIP vs a reference image encoder on a captioned corpus -> RUN/daf/."""

from __future__ import annotations

import argparse

from interp.cli.options import probe_parser, run_probe

CORPUS = ("images", "captions", "caption_format", "caption", "corpus_size", "stimulus_seed")
OWN = ("reference", "reference_weights", "k", "max_overlap", "blind_rank", "alpha", "lexicon",
       "min_word_count", "n_permutations", "n_boot", "stats_seed", "show", "batch_size", "dtype",
       "workers")


def register(sub: argparse._SubParsersAction) -> None:
    p = probe_parser(sub, "daf", CORPUS, OWN,
                     help="CLIP vs a reference encoder: neighbour disagreements and "
                       "failure types (second paper)",
                       description="Discrepancy Analysis Framework (Ranjan, Wen and Bhat): exact "
                       "top-k neighbours of each image under CLIP and under a reference encoder "
                       "(DINOv2), the queries where they disagree, and which caption categories "
                       "(colour, position, number, ...) those disagreements are about, by "
                       "permutation tests -> RUN/daf/. Without --images, an offline corpus of "
                       "captioned shapes and Stroop images.")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return run_probe(args, "daf", (*CORPUS, *OWN))
