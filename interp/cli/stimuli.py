"""`chromadissect stimuli NAME`: describe a set, draw a labelled preview grid, or export PNGs."""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from interp.cli.options import add_data, add_run_dir, positive_int
from interp.errors import ChromaError, UsageError
from stimuli import SET_NAMES, StimulusSet, get_set
from stimuli.fonts import get_font, text_fonts

log = logging.getLogger(__name__)

#: Label kinds left out of preview captions (long or not telling).
_CAPTION_SKIP = {"source", "crop_y0", "crop_x0", "crop_size"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stimuli", help="preview or export a stimulus set",
                              description="Describe a stimulus set; --preview draws a labelled "
                              "grid, --export writes every image as PNG plus labels.csv.")
    p.add_argument("name", metavar="NAME", help=f"one of {', '.join(SET_NAMES)}")
    p.add_argument("--preview", type=Path, metavar="FILE.png", help="write a labelled grid")
    p.add_argument("--count", type=positive_int, default=24, metavar="N",
                   help="tiles in the preview grid (default 24)")
    p.add_argument("--export", type=Path, metavar="DIR", help="write PNGs and labels.csv")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-image variation")
    p.add_argument("--image-size", type=positive_int, default=224, metavar="PX",
                   help="side of the square images (the model's input size, default 224)")
    add_data(p)
    add_run_dir(p, required=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.name not in SET_NAMES:
        raise UsageError(f"unknown stimulus set {args.name!r}; choose from {', '.join(SET_NAMES)}")
    s = run_set(args.run_dir, args.name) if args.run_dir else get_set(
        args.name, samples_per_combo=args.samples_per_combo, image_size=args.image_size,
        seed=args.seed, limit=args.limit, natural_dir=args.natural_dir)
    if args.preview:
        preview(s, args.preview, args.count)
        log.info("wrote a %d-tile preview of %s to %s", min(args.count, len(s)), s.name,
                 args.preview)
    if args.export:
        export(s, args.export)
        log.info("exported %d images of %s with labels.csv to %s", len(s), s.name, args.export)
    if not (args.preview or args.export):
        print(json.dumps({"spec": s.spec(), "images": len(s), "combinations": s.n_combos,
                          "labels": sorted(s.labels()), "report": s.report()}, indent=1))
    return 0


def run_set(run_dir: Path, name: str) -> StimulusSet:
    """The set exactly as a run extracted it (its spec in RUN/run.json)."""
    from interp.rundir import RunDir

    spec = RunDir(run_dir).read().get("stimuli", {}).get(name)
    if spec is None:
        raise ChromaError(f"{run_dir} has no stimulus set {name!r} in run.json; extract it first "
                          "or leave out --run-dir")
    return get_set(name, samples_per_combo=spec["samples_per_combo"],
                   image_size=spec["image_size"], seed=spec["seed"], limit=spec["limit"],
                   natural_dir=spec.get("natural_dir"))


def caption(s: StimulusSet, labels: dict[str, np.ndarray], i: int) -> list[str]:
    """Short lines naming the labels of image i (categorical names, rounded numbers)."""
    parts = []
    for kind, values in labels.items():
        if kind in _CAPTION_SKIP:
            continue
        names = s.label_names.get(kind)
        value = names[values[i]] if names else f"{float(values[i]):g}"
        parts.append(f"{kind}={value}")
    if "source" in labels:
        parts.insert(0, Path(s.label_names["source"][labels["source"][i]]).name)
    lines, line = [], ""
    for part in parts:
        if line and len(line) + len(part) >= 34:
            lines.append(line)
            line = ""
        line = f"{line} {part}".strip()
    return [*lines, line]


def preview_indices(n_images: int, count: int) -> np.ndarray:
    """count indices spread over the set by a golden-ratio sequence (no stride aliasing with
    the combination order), sorted."""
    golden = (np.arange(min(count, n_images)) * 0.6180339887498949) % 1.0
    return np.unique((golden * n_images).astype(np.int64))


def preview(s: StimulusSet, path: Path, count: int) -> None:
    """A grid of tiles with their labels written under each one."""
    indices = preview_indices(len(s), count)
    labels = s.labels()
    tile, pad, line_h = s.image_size, 6, 13
    captions = [[f"#{i}", *caption(s, labels, int(i))] for i in indices]
    text_h = line_h * max(len(c) for c in captions) + pad
    cols = int(np.ceil(np.sqrt(len(indices))))
    rows = int(np.ceil(len(indices) / cols))
    grid = Image.new("RGB", (cols * (tile + pad) + pad, rows * (tile + text_h + pad) + pad),
                     (235, 235, 235))
    draw = ImageDraw.Draw(grid)
    font = get_font(font_index_named("DejaVuSans"), 11)
    for k, (i, lines) in enumerate(zip(indices, captions, strict=True)):
        x = pad + (k % cols) * (tile + pad)
        y = pad + (k // cols) * (tile + text_h + pad)
        grid.paste(Image.fromarray(s.render(int(i))), (x, y))
        for j, line in enumerate(lines):
            draw.text((x, y + tile + 2 + j * line_h), line, fill=(0, 0, 0), font=font)
    _save_png(grid, path)


def font_index_named(stem: str) -> int:
    return [p.stem for p in text_fonts()].index(stem)


def export(s: StimulusSet, folder: Path) -> None:
    """Every image as folder/NNNNNN.png and folder/labels.csv (byte-identical across runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = s.labels()
    width = max(6, len(str(len(s) - 1)))
    kinds = list(labels)
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["index", "file", *kinds])
        for i in tqdm(range(len(s)), desc=f"exporting {s.name}", unit="img"):
            name = f"{i:0{width}d}.png"
            _save_png(Image.fromarray(s.render(i)), folder / name)
            writer.writerow([i, name, *(_cell(s, kind, labels[kind][i]) for kind in kinds)])


def _cell(s: StimulusSet, kind: str, value: np.generic) -> str:
    names = s.label_names.get(kind)
    if names:
        return names[int(value)]
    return str(int(value)) if np.issubdtype(type(value), np.integer) else f"{float(value):.6g}"


def _save_png(img: Image.Image, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, format="PNG")
    except OSError as err:
        raise ChromaError(f"cannot write {path}: {err.strerror or err}; choose a writable path"
                          ) from err
