"""`chromadissect tcac`: CLIP's caption ranks under image transforms, against an identity
control -> RUN/tcac/."""

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

CORPUS = ("images", "captions", "caption_format", "corpus_size", "stimulus_seed")
OWN = ("transforms", "pool_neighbours", "top", "lexicon", "n_permutations", "n_boot",
       "stats_seed", "batch_size", "dtype", "workers")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tcac", help="caption ranks under image transforms, against an identity "
                       "control (second paper)",
                       description="Transformative Caption Analysis for CLIP (Ranjan, Wen and "
                       "Bhat): per image, a pool of ~50 captions (its own and their nearest by "
                       "CLIP text embedding) ranked by image-text similarity before and after "
                       "each transform; delta = top captions lost, per transform with bootstrap "
                       "CIs against the identity control, and the caption categories that lose "
                       "or gain -> RUN/tcac/. Without --images, the offline captioned stimuli.")
    defaults = defaults_of("tcac", model="the run's, else RN50",
                           pretrained="the run's, else openai", seed="the run's, else 0")
    add_common(p, uses=(*MODEL_OPTIONS, "device"), defaults=defaults)
    add_options(p, list(CORPUS), defaults, "corpus")
    add_options(p, list(OWN), defaults, "probe")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from interp.api import Run

    check_run_model(args.run_dir, args)
    print(Run(args.run_dir).tcac(**given(args, (*MODEL_OPTIONS, "device", *CORPUS, *OWN))))
    return 0
