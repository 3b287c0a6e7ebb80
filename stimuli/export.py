"""Look at a stimulus set outside a model: a labelled preview grid, or every image as PNG with
labels.csv (byte-identical across runs)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from stimuli.base import StimulusSet
from stimuli.errors import ChromaError
from stimuli.fonts import get_font, text_fonts

#: Label kinds left out of preview captions (long or not telling).
_CAPTION_SKIP = {"source", "crop_y0", "crop_x0", "crop_size"}


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
        for i in tqdm(range(len(s)), desc=f"exporting {s.name}", unit="img", disable=None):
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
