"""Captioned image corpora for the model-level probes (DAF, TCAC): a user's folder of photos with
a caption file, or captioned synthetic stimuli (shapes and Stroop images, captions made from
their labels) when no folder is given.

`Corpus.images(size)` renders the images at an encoder's input size (picklable, for DataLoader
workers): photos are centre-cropped and resized, stimuli drawn at that size.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stimuli.captions import read_captions
from stimuli.errors import ChromaError, UsageError

log = logging.getLogger(__name__)

#: Captions per image chosen for the probes: the paper uses the longest one.
CAPTION_CHOICES = ("longest", "first")
#: Size of the offline corpus, half shapes and half Stroop images.
SYNTHETIC_SIZE = 1000
#: Sets of the offline corpus.
SYNTHETIC_SETS = ("shapes", "stroop")
#: Side at which positions in synthetic captions are read (labels are in pixels).
CAPTION_FRAME = 224


@dataclass
class Corpus:
    """Images and their captions; `ids` name each image (a relative path, or `set/index`)."""

    kind: str                     # "folder" or "synthetic"
    ids: list[str]
    captions: list[list[str]]
    source: dict                  # how to rebuild it: folder + caption file, or synthetic spec
    report: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def caption(self, i: int, which: str = "longest") -> str:
        """The caption standing for image i: its longest (ties: the first of them) or first."""
        if which not in CAPTION_CHOICES:
            raise UsageError(f"--caption {which}: choose {' or '.join(CAPTION_CHOICES)}")
        captions = self.captions[i]
        return max(captions, key=len) if which == "longest" else captions[0]

    def chosen_captions(self, which: str = "longest") -> list[str]:
        return [self.caption(i, which) for i in range(len(self))]

    def spec(self) -> dict:
        """JSON-able identity: equal specs <=> the same images and captions."""
        listing = json.dumps([self.ids, self.captions])
        return {"kind": self.kind, **self.source, "n_images": len(self),
                "sha1": hashlib.sha1(listing.encode()).hexdigest()}

    def images(self, image_size: int) -> CorpusImages:
        return CorpusImages(self, image_size)

    def spread(self, n: int) -> Corpus:
        """n of its images spread evenly from the first to the last (all of them if n >= its
        size): a smaller corpus that still covers every part (shapes and Stroop alike)."""
        if n >= len(self):
            return self
        picks = np.unique(np.linspace(0, len(self) - 1, max(int(n), 1)).round().astype(int))
        return Corpus(self.kind, [self.ids[i] for i in picks],
                      [self.captions[i] for i in picks], {**self.source, "spread": int(n)},
                      {**self.report, "n_images": len(picks), "spread_of": len(self)})


class CorpusImages:
    """The corpus's images at one size: `render(i)` gives (size, size, 3) uint8."""

    name = "corpus"

    def __init__(self, corpus: Corpus, image_size: int) -> None:
        self.ids = corpus.ids
        self.image_size = int(image_size)
        self.corpus_spec = corpus.spec()
        self.source = corpus.source
        self._sets: dict | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def spec(self) -> dict:
        return {"name": self.name, "corpus": self.corpus_spec, "image_size": self.image_size}

    def render(self, i: int) -> np.ndarray:
        if not 0 <= int(i) < len(self):
            raise IndexError(f"corpus: index {i} out of range [0, {len(self)})")
        item = self.ids[int(i)]
        if self.source["kind"] == "synthetic":
            set_name, _, index = item.partition("/")
            return self._stimulus_sets()[set_name].render(int(index))
        return _photo(Path(self.source["images"]) / item, self.image_size)

    def _stimulus_sets(self) -> dict:
        if self._sets is None:
            self._sets = _synthetic_sets(self.source, self.image_size)
        return self._sets


def _photo(path: Path, size: int) -> np.ndarray:
    """Centre square crop of a photo, resized to (size, size, 3) uint8."""
    from stimuli.natural import crop_resize, load_rgb

    try:
        img, (width, height) = load_rgb(path, draft_size=size)
    except OSError as err:
        raise ChromaError(f"{path} was readable when the corpus was built but not now ({err}); "
                          "rerun to index the folder again") from err
    short = min(width, height)
    return crop_resize(img, ((height - short) // 2, (width - short) // 2, short),
                       (width, height), size)


# --- a user's folder ------------------------------------------------------------------------

def folder_corpus(images: str | Path, captions: str | Path, caption_format: str = "auto",
                  limit: int | None = None) -> Corpus:
    """The readable images of a folder that have captions, sorted by path; images that cannot
    be read or have no caption, and captions without an image, are skipped and counted."""
    from stimuli.natural import index_folder

    folder = Path(images).expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"--images {images} is not a folder; give the folder of the photos")
    by_name, bad_lines = read_captions(captions, caption_format)
    readable, _sizes, unreadable = index_folder(folder)
    if not readable:
        raise ChromaError(f"--images {folder}: no readable image ({len(unreadable)} files "
                          "skipped); give a folder of jpg/png/webp photos")
    basenames: dict[str, list[str]] = {}
    for rel in readable:
        basenames.setdefault(Path(rel).name, []).append(rel)
    matched: dict[str, list[str]] = {}
    for name, caps in by_name.items():
        rel = name if name in set(readable) else None
        if rel is None and len(basenames.get(Path(name).name, ())) == 1:
            rel = basenames[Path(name).name][0]
        if rel is not None:
            matched.setdefault(rel, []).extend(caps)
    if not matched:
        raise ChromaError(f"--captions {captions} matches no readable image in {folder} "
                          f"({len(by_name)} captioned names, {len(readable)} images, e.g. "
                          f"{next(iter(by_name))!r} vs {readable[0]!r}); check the two belong "
                          "together")
    ids = sorted(matched)[:limit] if limit else sorted(matched)
    report = {"n_images": len(ids), "unreadable_files": len(unreadable),
              "images_without_caption": len(readable) - len(matched),
              "captions_without_image": len(by_name) - len(matched),
              "unreadable_caption_lines": bad_lines, "skipped": unreadable[:100]}
    if limit and len(matched) > limit:
        report["cut_by_limit"] = len(matched) - limit
    source = {"kind": "folder", "images": str(folder), "captions": str(Path(captions).resolve()),
              "caption_format": caption_format}
    _warn_skipped(report)
    return Corpus("folder", ids, [matched[i] for i in ids], source, report)


def _warn_skipped(report: dict) -> None:
    counts = {k: v for k, v in report.items() if k not in ("n_images", "skipped") and v}
    if counts:
        log.warning("corpus: %d images kept; skipped %s", report["n_images"],
                    ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))


# --- the offline corpus -----------------------------------------------------------------------

def synthetic_corpus(size: int = SYNTHETIC_SIZE, seed: int = 0) -> Corpus:
    """About `size` images, half shapes and half Stroop (the first images of each set, which
    cover its label combinations evenly), with three captions each made from their labels."""
    if size < 2:
        raise UsageError(f"--corpus-size must be at least 2, got {size}")
    counts = {"shapes": size - size // 2, "stroop": size // 2}
    source = {"kind": "synthetic", "counts": counts, "seed": int(seed)}
    sets = _synthetic_sets(source, CAPTION_FRAME)
    ids, captions = [], []
    for name, n in counts.items():
        labels = sets[name].labels()
        describe = _shape_captions if name == "shapes" else _stroop_captions
        for i in range(n):
            ids.append(f"{name}/{i}")
            captions.append(describe({k: v[i] for k, v in labels.items()}, sets[name]))
    return Corpus("synthetic", ids, captions, source, {"n_images": len(ids)})


def _synthetic_sets(source: dict, image_size: int) -> dict:
    from stimuli import get_set

    out = {}
    for name, n in source["counts"].items():
        probe = get_set(name, samples_per_combo=1)
        spc = max(1, -(-n // probe.n_combos))
        out[name] = get_set(name, samples_per_combo=spc, image_size=image_size,
                            seed=source["seed"])
    return out


def region(x: float, y: float, size: float) -> str:
    """Where a point lies in a 3 x 3 grid of the image: `top left`, `centre`, `bottom`, ..."""
    cols, rows = ("left", "", "right"), ("top", "", "bottom")
    h, v = cols[min(2, int(3 * x / size))], rows[min(2, int(3 * y / size))]
    return " ".join(p for p in (v, h) if p) or "centre"


def _a(word: str) -> str:
    """`a` or `an` before a word."""
    return ("an " if word[0] in "aeiou" else "a ") + word


def _shape_captions(lab: dict, stim_set) -> list[str]:
    from stimuli.palette import COLOR_TERMS
    from stimuli.shapes import SCALE_RANGE, SHAPE_NAMES

    shape, obj, bg = (SHAPE_NAMES[lab["shape"]], COLOR_TERMS[lab["obj_color"]],
                      COLOR_TERMS[lab["bg_color"]])
    size = "small" if lab["scale"] < sum(SCALE_RANGE) / 2 else "large"
    where = region(lab["x"], lab["y"], stim_set.image_size)
    return [f"a {size} {obj} {shape} on {_a(bg)} background at the {where} of the picture",
            f"{_a(obj)} {shape} on {bg}",
            f"{_a(bg)} picture with a {size} {shape} at the {where}"]


def _stroop_captions(lab: dict, stim_set) -> list[str]:
    from stimuli.palette import COLOR_TERMS

    word = stim_set.words[lab["word"]]
    font, bg = COLOR_TERMS[lab["font_color"]], COLOR_TERMS[lab["bg_color"]]
    where = region(lab["x"], lab["y"], stim_set.image_size)
    return [f"the word {word} written in {font} letters on {_a(bg)} background at the {where}",
            f"{font} text on {bg} that reads {word}",
            f"a sign with the word {word} at the {where}"]
