"""`chromadissect daf`: CLIP vs a reference image encoder on a captioned corpus -> RUN/daf/."""

from __future__ import annotations

import argparse

from interp.cli.options import (
    MODEL_OPTIONS,
    add_common,
    add_options,
    check_run_model,
    defaults_of,
    given,
)

CORPUS = ("images", "captions", "caption_format", "caption", "corpus_size", "stimulus_seed")
OWN = ("reference", "reference_weights", "k", "max_overlap", "blind_rank", "alpha", "lexicon",
       "min_word_count", "n_permutations", "n_boot", "stats_seed", "show", "batch_size", "dtype",
       "workers")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("daf", help="CLIP vs a reference encoder: neighbour disagreements and "
                       "failure types (second paper)",
                       description="Discrepancy Analysis Framework (Ranjan, Wen and Bhat): exact "
                       "top-k neighbours of each image under CLIP and under a reference encoder "
                       "(DINOv2), the queries where they disagree, and which caption categories "
                       "(colour, position, number, ...) those disagreements are about, by "
                       "permutation tests -> RUN/daf/. Without --images, an offline corpus of "
                       "captioned shapes and Stroop images.")
    defaults = defaults_of("daf", model="the run's, else RN50",
                           pretrained="the run's, else openai", seed="the run's, else 0")
    add_common(p, uses=(*MODEL_OPTIONS, "device"), defaults=defaults)
    add_options(p, list(CORPUS), defaults, "corpus")
    add_options(p, list(OWN), defaults, "probe")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from interp.api import Run

    check_run_model(args.run_dir, args)
    print(Run(args.run_dir).daf(**given(args, (*MODEL_OPTIONS, "device", *CORPUS, *OWN))))
    return 0
