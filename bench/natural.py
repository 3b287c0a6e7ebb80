"""Natural images per second per core from a folder of ImageNet-sized JPEGs, old path and new.

Usage: .venv/bin/python bench/natural.py [--files N] [--rounds R] [--keep DIR] [--natural-dir DIR]
Makes (unless --natural-dir) a folder of N JPEGs like ImageNet's validation photos: 500 x 375
(three in four), 375 x 500 or 500 x 333, quality 90, cut from the colour photos and grey textures
bundled with scikit-image at seeded positions and scales, flipped, tinted, sharpened as a
camera does and with sensor noise, so they hold fine detail (decoding costs more per byte of
entropy) rather than flat colours; their mean size and bits per pixel are printed. Then the
`natural` set of that folder goes the way `extract` takes it (`Images` through a DataLoader, in
batches, to the uint8 batch: the host's share of a GPU run) in one process with one torch
thread, by the render before the JPEG fast path (`PillowPath`: Pillow for every file) and by
the set's own (`render_file`), in interleaved rounds. The rate is images / CPU seconds of this
process (the median round; the best too), so other work on a shared machine lowers it less than
wall-clock time would, but still lowers it: the 1-minute load average before and after is
printed. Also printed: indexing the folder (files/s), and how far each path's pixels are from
each other and from a reference (the whole photo decoded, its exact crop resized by Pillow's
Lanczos). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# bench/ holds a stimuli.py: keep it off the import path so `stimuli` is the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from interp.inputs import Images  # noqa: E402
from stimuli.natural import NaturalSet, bundled_dir, crop_resize, load_rgb  # noqa: E402

COLOUR = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "motorcycle_right.png", "retina.jpg", "hubble_deep_field.jpg", "ihc.png", "color.png")
GREY = ("camera.png", "grass.png", "gravel.png", "brick.png", "coins.png", "moon.png",
        "clock_motion.png")
SHAPES = ((500, 375), (375, 500), (500, 333))


def make_folder(folder: Path, n: int, seed: int = 0) -> dict:
    """n ImageNet-like JPEGs in folder (000000.jpg ...); returns their mean size."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    colour = [np.asarray(Image.open(bundled_dir() / p).convert("RGB")) for p in COLOUR]
    grey = [np.asarray(Image.open(bundled_dir() / p).convert("L")) for p in GREY]
    nbytes = []
    for k in range(n):
        if rng.random() < 0.8:
            src = colour[rng.integers(len(colour))]
        else:  # a grey texture, tinted
            g = grey[rng.integers(len(grey))].astype(np.float32)[..., None]
            src = np.clip(g * rng.uniform(0.6, 1.2, 3), 0, 255).astype(np.uint8)
        w, h = SHAPES[rng.choice(3, p=(0.75, 0.125, 0.125))]
        sh, sw = src.shape[:2]
        scale = rng.uniform(0.5, 1.0) * min(sw / w, sh / h)
        x0, y0 = rng.uniform(0, sw - w * scale), rng.uniform(0, sh - h * scale)
        img = Image.fromarray(src).resize((w, h), Image.Resampling.BICUBIC,
                                          box=(x0, y0, x0 + w * scale, y0 + h * scale))
        img = img.filter(ImageFilter.UnsharpMask(radius=1.5, percent=200, threshold=2))
        a = np.asarray(img).astype(np.float32)
        if rng.random() < 0.5:
            a = a[:, ::-1]
        a = a * rng.uniform(0.85, 1.15, 3) + rng.uniform(-15, 15)
        a += rng.normal(0, 5, (h, w, 1)) + rng.normal(0, 2.5, (h, w, 3))  # luma + chroma noise
        path = folder / f"{k:06d}.jpg"
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, quality=90)
        nbytes.append(path.stat().st_size)
    return {"files": n, "mean_kib": round(float(np.mean(nbytes)) / 1024, 1),
            "bits_per_pixel": round(float(np.mean(nbytes)) * 8 / (500 * 375), 2)}


class PillowPath(NaturalSet):
    """The folder set as rendered before the JPEG fast path (commit e1e0006's `_render`): the
    labels of each index computed alone, every file by Pillow (`load_rgb`, `crop_resize`)."""

    def _render(self, i: int) -> np.ndarray:
        lab = {k: int(v[0]) for k, v in self._labels(np.array([i])).items()}
        width, height = self.sizes[lab["source"]]
        path = self.root / self.sources[lab["source"]]
        img, _ = load_rgb(path, self._draft_size(lab["crop_size"], min(width, height)))
        crop = (lab["crop_y0"], lab["crop_x0"], lab["crop_size"])
        return crop_resize(img, crop, (width, height), self.image_size)


def round_rate(s, batch_size: int) -> tuple[float, float]:
    """(images per CPU second, per wall second) over the whole set, to the uint8 batch."""
    n = len(s)
    batches = [list(range(k, min(n, k + batch_size))) for k in range(0, n, batch_size)]
    loader = DataLoader(Images(s), batch_sampler=batches)
    cpu, wall = time.process_time(), time.perf_counter()
    for _images, _index in loader:
        pass
    return n / (time.process_time() - cpu), n / (time.perf_counter() - wall)


def reference(s, i: int) -> np.ndarray:
    """Image i of the folder set the slow careful way: whole decode, exact crop, Lanczos."""
    lab = {k: int(v[i]) for k, v in s.labels().items()}
    y0, x0, side = lab["crop_y0"], lab["crop_x0"], lab["crop_size"]
    with Image.open(s.root / s.sources[lab["source"]]) as img:
        img = img.convert("RGB")
    return np.asarray(img.resize((s.image_size, s.image_size), Image.Resampling.LANCZOS,
                                 box=(x0, y0, x0 + side, y0 + side)))


def pixel_report(old, new, n: int) -> dict:
    """Mean and largest |difference| of the two paths' images and of each to the reference."""
    diff, largest, changed, to_ref = [], 0, 0, {"old": [], "new": []}
    for i in range(min(n, len(new))):
        a, b = old.render(i).astype(int), new.render(i).astype(int)
        ref = reference(new, i).astype(int)
        d = np.abs(a - b)
        diff.append(d.mean())
        largest = max(largest, int(d.max()))
        changed += int((d > 1).sum())
        to_ref["old"].append(np.abs(a - ref).mean())
        to_ref["new"].append(np.abs(b - ref).mean())
    values = len(diff) * new.image_size ** 2 * 3
    return {"images": len(diff), "old_vs_new_mean_abs": round(float(np.mean(diff)), 4),
            "old_vs_new_max_abs": largest,
            "old_vs_new_share_above_1": round(changed / values, 5),
            "old_vs_lanczos_mean_abs": round(float(np.mean(to_ref["old"])), 3),
            "new_vs_lanczos_mean_abs": round(float(np.mean(to_ref["new"])), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=500, help="JPEGs made for the folder")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per path (interleaved)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=64, help="as extract's --batch-size")
    p.add_argument("--compare", type=int, default=100, help="images whose pixels are compared")
    p.add_argument("--keep", default=None, help="make the folder here (kept) instead of a temp")
    p.add_argument("--natural-dir", default=None, help="time this folder instead of making one")
    args = p.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="natural-bench-") as tmp:
        if args.natural_dir:
            folder, made = Path(args.natural_dir), None
        else:
            folder = Path(args.keep or tmp)
            start = time.perf_counter()
            made = make_folder(folder, args.files)
            made["make_s"] = round(time.perf_counter() - start, 1)
            print(f"made {folder}: {made}", flush=True)
        start = time.process_time()
        new = NaturalSet(natural_dir=folder, image_size=args.image_size)
        index_rate = len(new) / (time.process_time() - start)
        old = PillowPath(natural_dir=folder, image_size=args.image_size)
        rates: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
        round_rate(new, args.batch_size)  # warm: page cache, torchvision's import
        for _ in range(args.rounds):
            for name, s in (("old", old), ("new", new)):
                rates[name].append(round_rate(s, args.batch_size))
                print(f"{name}: {rates[name][-1][0]:.0f} img/s/core", flush=True)
        pixels = pixel_report(old, new, args.compare)
    out = {"folder": made if made else str(folder), "images": len(new),
           "image_size": args.image_size, "batch_size": args.batch_size, "torch_threads": 1,
           "rounds": args.rounds, "index_files_per_s_per_core": round(index_rate),
           "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    for name in ("old", "new"):
        out[f"{name}_img_per_s_per_core"] = round(statistics.median(r[0] for r in rates[name]))
        out[f"{name}_img_per_s_per_core_best"] = round(max(r[0] for r in rates[name]))
        out[f"{name}_img_per_s_wall"] = round(statistics.median(r[1] for r in rates[name]))
    out["speedup"] = round(out["new_img_per_s_per_core"] / out["old_img_per_s_per_core"], 2)
    out["pixels"] = pixels
    print(json.dumps(out))


if __name__ == "__main__":
    main()
