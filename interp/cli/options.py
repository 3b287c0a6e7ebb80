"""Every option of the command line, spelled once (DESIGN.md's common options among them).

Options default to None ("not given"): the step then uses its own default, which the help text
quotes from the step's signature (`interp.api.step_defaults`), so no default is written twice.
Those quotes are worked out only when help is printed (`Lazy`): reading a signature imports the
step (torch, matplotlib), which a command that only parses its options should not pay for.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interp.errors import UsageError
from stimuli import SET_NAMES

#: option -> how help texts say its default, worked out when help is printed
Defaults = Callable[[], dict[str, str]]


class Lazy:
    """Help text computed when argparse prints it (argparse formats `%(name)s` from the
    action's attributes with str())."""

    def __init__(self, text: Callable[[], str]) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text()


def csv_list(text: str) -> list[str]:
    """Parse `a,b,c` into a list, dropping empty items."""
    return [item.strip() for item in text.split(",") if item.strip()]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def dtype_name(text: str) -> str:
    """One of the forward pass's dtypes (`interp.inputs.DTYPES`), checked when given."""
    from interp.inputs import DTYPES

    if text not in DTYPES:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(DTYPES)}, got {text}")
    return text


def _dtype_names() -> str:
    from interp.inputs import DTYPES

    return ", ".join(DTYPES)


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return value


#: dest -> (flag, add_argument keywords); `help` is completed with the default.
OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "model": ("--model", {"help": "open_clip ResNet (RN50, RN101, RN50x4, ...) or "
                          "package.module:factory"}),
    "pretrained": ("--pretrained", {"help": "open_clip pretrained tag, 'none' (untrained "
                                    "control) or a checkpoint path"}),
    "seed": ("--seed", {"type": int, "help": "seed of the untrained control"}),
    "layers": ("--layers", {"type": csv_list, "metavar": "A,B,...",
                            "help": "hook points (dotted module names)"}),
    "device": ("--device", {"help": "cpu, cuda or cuda:K"}),
    "sets": ("--sets", {"type": csv_list, "metavar": "A,B,...",
                        "help": f"stimulus sets among {', '.join(SET_NAMES)}"}),
    "samples_per_combo": ("--samples-per-combo", {"type": positive_int, "metavar": "N",
                                                  "help": "samples per label combination "
                                                  "(paper: 500)"}),
    "natural_dir": ("--natural-dir", {"type": Path, "metavar": "DIR",
                                      "help": "folder of photos for the natural set"}),
    "limit": ("--limit", {"type": positive_int, "metavar": "N",
                          "help": "only the first N images of each set (quick runs)"}),
    "image_size": ("--image-size", {"type": positive_int, "metavar": "PX",
                                    "help": "side of the square images (the model's input size)"}),
    "stimulus_seed": ("--stimulus-seed", {"type": int, "metavar": "N",
                                          "help": "seed of the per-image variation"}),
    "batch_size": ("--batch-size", {"type": positive_int, "metavar": "N", "help": "images per "
                                    "forward pass"}),
    "dtype": ("--dtype", {"type": dtype_name, "metavar": "DTYPE",
                          "help": "autocast dtype of the forward pass, one of %(dtype_names)s"}),
    "workers": ("--workers", {"type": int, "metavar": "N", "help": "stimulus-rendering "
                              "processes"}),
    "writers": ("--writers", {"type": positive_int, "metavar": "N", "help": "threads compressing "
                              "and writing store chunks, each owning whole chunks"}),
    "compile": ("--compile", {"action": "store_true", "help": "torch.compile the hooked model "
                              "(worth it on GPU)"}),
    "chunk_images": ("--chunk-images", {"type": positive_int, "metavar": "N",
                                        "help": "images per store chunk, a multiple of "
                                        "--batch-size"}),
    "top_n": ("--top-n", {"type": positive_int, "metavar": "N",
                          "help": "images per unit for top-N statistics"}),
    "n_permutations": ("--permutations", {"type": positive_int, "metavar": "N",
                                          "help": "draws of the permutation tests (label "
                                          "shuffles in analyze, sign flips in the probes)"}),
    "csi_gray": ("--csi-gray", {"choices": ("luminance", "opponent"),
                                "help": "grayscale of the CSI re-run: BT.601 luminance of the "
                                "whole image, or opponent-space PCA of the receptive field"}),
    "min_n_eff_fraction": ("--min-n-eff-fraction", {
        "type": fraction, "metavar": "F",
        "help": "a unit is tested when its top-N rests on at least max(8, F x N) effective "
        "images; thinner ones are `untestable` and stay out of the permutation nulls "
        "(0 tests every unit that responds)"}),
    "nf_max_side": ("--nf-size", {"type": positive_int, "metavar": "N",
                                  "help": "largest side of a stored neuron feature, in cells"}),
    "experiments": ("--experiments", {"type": csv_list, "metavar": "1,2,...",
                                      "help": "naming experiments to run"}),
    "cards_per_type": ("--cards-per-type", {"type": int, "metavar": "N",
                                            "help": "render unit cards for the N best units of "
                                            "each type in each block (other units show their "
                                            "NF and numbers; `chromadissect neuron` adds a "
                                            "card later)"}),
    "thumb": ("--thumb", {"type": positive_int, "metavar": "PX",
                          "help": "neuron-feature thumbnail size in the block pages"}),
    # ablate
    "units": ("--units", {"metavar": "SPEC",
                          "help": "units to silence: KEY=VALUE,... over neurons.csv, all of "
                          "which hold (type=color_word; type=any_word,block=layer4.*; "
                          "type=color,term=red), explicit units (layer3.2:417,layer4.0:12) or "
                          "auto (the largest of any_word, color_word, colour)"}),
    "mode": ("--mode", {"choices": ("zero", "mean", "resample"),
                        "help": "how a unit is silenced: 0, its mean activation over the "
                        "set's stored images, or another image's map (interchange)"}),
    "each": ("--each", {"action": "store_true",
                        "help": "silence explicit --units one at a time (each against random "
                        "single units of its block)"}),
    "control_draws": ("--control-draws", {"type": int, "metavar": "N",
                                          "help": "random ablations of as many units per block "
                                          "(p-value floor 1/(N+1))"}),
    "doses": ("--doses", {"type": lambda t: [float(v) for v in csv_list(t)],
                          "metavar": "F,F,...",
                          "help": "fractions of the selection silenced for the "
                          "dose-response"}),
    "ablation_images": ("--ablation-images", {"type": positive_int, "metavar": "N",
                                              "help": "ablate on the first N naming images "
                                              "of each set"}),
    "ablation_seed": ("--ablation-seed", {"type": int, "metavar": "N",
                                          "help": "seed of the control draws, doses and "
                                          "resample donors"}),
    # the model-level probes (daf, tcac)
    "images": ("--images", {"type": Path, "metavar": "DIR",
                            "help": "folder of captioned photos (with --captions)"}),
    "captions": ("--captions", {"type": Path, "metavar": "FILE",
                                "help": "caption file of --images: Flickr8k tokens, CSV "
                                "(image,caption), COCO captions JSON or JSON lines"}),
    "caption_format": ("--caption-format", {"choices": ("auto", "flickr8k", "csv", "coco",
                                                        "jsonl"),
                                            "help": "format of --captions"}),
    "caption": ("--caption", {"choices": ("longest", "first"),
                              "help": "caption standing for an image (the paper: longest)"}),
    "corpus_size": ("--corpus-size", {"type": positive_int, "metavar": "N",
                                      "help": "images of the offline corpus (half shapes, half "
                                      "Stroop), or the first N of --images"}),
    "reference": ("--reference", {"metavar": "NAME",
                                  "help": "reference image encoder: dinov2-vits14/b14/l14/g14, "
                                  "a timm model name, or package.module:factory"}),
    "reference_weights": ("--reference-weights", {"metavar": "PATH|TAG|none",
                                                  "help": "weights of the reference: a timm "
                                                  "tag, a checkpoint, or none (random init)"}),
    "k": ("--k", {"type": positive_int, "metavar": "K", "help": "neighbours per query"}),
    "max_overlap": ("--max-overlap", {"type": int, "metavar": "M",
                                      "help": "a query is a failure when its two top-k sets "
                                      "share at most M images"}),
    "blind_rank": ("--blind-rank", {"type": positive_int, "metavar": "R",
                                    "help": "a CLIP neighbour is CLIP-blind when the reference "
                                    "ranks it beyond R"}),
    "alpha": ("--alpha", {"type": float, "metavar": "Q", "help": "false discovery rate of the "
                          "failure types (Benjamini-Hochberg q)"}),
    "lexicon": ("--lexicon", {"type": Path, "metavar": "FILE",
                              "help": "JSON of extra or replacement categories "
                              '({"category": ["word", ...]})'}),
    "min_word_count": ("--min-word-count", {"type": positive_int, "metavar": "N",
                                            "help": "words of fewer failure captions are not "
                                            "tested (exploratory word table)"}),
    "n_boot": ("--bootstrap", {"type": positive_int, "metavar": "N",
                               "help": "bootstrap resamples of each confidence interval"}),
    "stats_seed": ("--stats-seed", {"type": int, "metavar": "N",
                                    "help": "seed of the permutation tests and bootstraps"}),
    "transforms": ("--transforms", {"type": csv_list, "metavar": "A,B,...",
                                    "help": "image transforms of tcac (identity, the control, "
                                    "always runs): grayscale, rotation, affine, perspective, "
                                    "hflip, inversion, elastic"}),
    "pool_neighbours": ("--pool-neighbours", {"type": positive_int, "metavar": "N",
                                              "help": "nearest captions added to an image's "
                                              "pool per caption of its own"}),
    "top": ("--top", {"type": positive_int, "metavar": "N",
                      "help": "top captions compared before and after a transform"}),
    "show": ("--show", {"type": int, "metavar": "N",
                        "help": "cases with thumbnails for the atlas (daf: failure cases; "
                        "tcac: per transform)"}),
    "tcac_images": ("--tcac-images", {"type": positive_int, "metavar": "N",
                                      "help": "tcac on N images spread evenly over the "
                                      "corpus (pools from their captions): tcac costs 9 "
                                      "encodings an image"}),
}
MODEL_OPTIONS = ("model", "pretrained", "seed", "layers")


#: how help texts say a default of None, per option
NONE_MEANS = {"layers": "every bottleneck block", "limit": "all images", "natural_dir":
              "the bundled crops", "workers": "0 on CPU, 3/5 of the spare cores on GPU",
              "writers": "1 on CPU, 2 per other spare core on GPU (at least 4)", "chunk_images":
              "about 256 images", "sets": "every set the step needs",
              "images": "the offline corpus", "captions": "none", "corpus_size":
              "1000 offline, all of --images", "reference_weights":
              "timm's, or none when the CLIP model is untrained", "lexicon": "the shipped one",
              "transforms": "all", "tcac_images": "all", "units": "none (ablate is skipped)",
              "ablation_images": "all the naming images"}


def show(value: Any, dest: str = "", from_run: bool = True) -> str:
    """A default as help texts and messages say it (`from_run`: a model option left out means
    the run's model)."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        if from_run and dest in MODEL_OPTIONS:
            return "the run's"
        return NONE_MEANS.get(dest, "none")
    return str(value)


def _add(g, dest: str, suffix: Callable[[], str] | None = None) -> None:
    """One option of OPTIONS, defaulting to None; `suffix` is appended to its help when shown."""
    flag, kwargs = OPTIONS[dest]
    kwargs = dict(kwargs)
    if suffix is not None:
        kwargs["help"] += "%(default_text)s"
    action = g.add_argument(flag, dest=dest, default=None, **kwargs)
    if suffix is not None:
        action.default_text = Lazy(suffix)
    if dest == "dtype":
        action.dtype_names = Lazy(_dtype_names)


def _quoted(defaults: Defaults, dest: str) -> Callable[[], str]:
    return lambda: f" (default: {defaults()[dest]})" if dest in defaults() else ""


def add_options(p: argparse.ArgumentParser, dests: list[str], defaults: Defaults,
                title: str | None = None) -> None:
    """Add the options `dests` to `p`, each defaulting to None, its help quoting `defaults`."""
    g = p.add_argument_group(title) if title else p
    for dest in dests:
        _add(g, dest, _quoted(defaults, dest))


def defaults_of(step: str, **overrides: str) -> Defaults:
    """The step's defaults as help texts show them (`overrides` say some otherwise)."""

    @functools.cache
    def defaults() -> dict[str, str]:
        from interp.api import step_defaults

        shown = {k: show(v, k, step != "extract") for k, v in step_defaults(step).items()}
        return {**shown, **overrides}

    return defaults


def add_common(p: argparse.ArgumentParser, *, uses: tuple[str, ...] = (), run_dir: bool = True,
               model_from_run: bool = True, defaults: Defaults | None = None) -> None:
    """The options every subcommand accepts: --run-dir, the model, --device, --verbose,
    --no-progress. Those in neither `uses` nor the model say they are ignored here."""
    if run_dir:
        p.add_argument("--run-dir", type=Path, required=True, metavar="RUN",
                       help="directory holding every output of one run")
    g = p.add_argument_group("model" if "model" in uses else
                             "model (taken from RUN/run.json; a different one is refused)")
    for dest in (*MODEL_OPTIONS, "device"):
        if dest in uses and defaults:
            _add(g, dest, _quoted(defaults, dest))
        elif dest == "device" and "device" not in uses:
            _add(g, dest, lambda: " (ignored by this command)")
        elif dest != "device" and model_from_run and "model" not in uses:
            _add(g, dest, lambda: " (default: the run's)")
        else:
            _add(g, dest)
    add_logging(p)


def add_logging(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="debug logging")
    p.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars (they are off anyway when stderr is not a terminal)")


def given(args: argparse.Namespace, dests) -> dict[str, Any]:
    """The options among `dests` that were given on the command line."""
    return {d: getattr(args, d) for d in dests if getattr(args, d, None) is not None}


def check_run_model(run_dir: Path, args: argparse.Namespace) -> None:
    """Refuse model options that differ from the model RUN/run.json records."""
    from interp.rundir import RunDir

    asked = given(args, MODEL_OPTIONS)
    if not asked:
        return
    recorded = RunDir(run_dir).read().get("model_settings", {})
    for key, value in asked.items():
        if key in recorded and _same(recorded[key]) != _same(value):
            raise UsageError(
                f"{run_dir / 'run.json'} records --{key} {show(recorded[key])}, this command "
                f"asks {show(value)}; leave --{key} out (the run's model is used) or use a new "
                "--run-dir")


def _same(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else str(value)


def check_sets(sets: list[str] | None) -> None:
    unknown = [s for s in sets or () if s not in SET_NAMES]
    if unknown or sets == []:
        raise UsageError(f"--sets: unknown set(s) {', '.join(unknown) or '(none)'}; "
                         f"choose among {', '.join(SET_NAMES)}")


def probe_parser(sub: argparse._SubParsersAction, step: str, corpus: tuple[str, ...],
                 own: tuple[str, ...], **texts: str) -> argparse.ArgumentParser:
    """The parser of a model-level probe (daf, tcac): the common options, then its corpus and
    probe options; `texts` are add_parser's help and description."""
    p = sub.add_parser(step, **texts)
    defaults = defaults_of(step, model="the run's, else RN50",
                           pretrained="the run's, else openai", seed="the run's, else 0")
    add_common(p, uses=(*MODEL_OPTIONS, "device"), defaults=defaults)
    add_options(p, list(corpus), defaults, "corpus")
    add_options(p, list(own), defaults, "probe")
    return p


def run_probe(args: argparse.Namespace, step: str, dests: tuple[str, ...]) -> int:
    """Call `Run.{step}` with the options given among `dests`; print the output folder."""
    from interp.api import Run

    check_run_model(args.run_dir, args)
    print(getattr(Run(args.run_dir), step)(**given(args, (*MODEL_OPTIONS, "device", *dests))))
    return 0
