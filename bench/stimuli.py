"""Images per second per core for each stimulus set, rendering plus conversion to the tensor.

Usage: .venv/bin/python bench/stimuli.py [--images N] [--image-size PX]
Single process, one torch thread; the rate is images / CPU seconds of this process, so other
work on a shared machine does not lower it (the wall-clock rate is printed too). Each set is
warmed first by labels(), which also loads the fonts and measures every word once.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# This file is named like the package it measures: keep bench/ off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import torch  # noqa: E402

from stimuli import get_set  # noqa: E402
from stimuli.dataset import StimulusDataset  # noqa: E402

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SETS = ("shapes", "stroop", "stroop-white", "words", "natural")


def rate(ds: StimulusDataset, n: int) -> tuple[float, float]:
    """(images per CPU second, images per wall second) over n images spread over the set."""
    step = max(1, len(ds) // n)
    indices = [(k * step) % len(ds) for k in range(n)]
    cpu, wall = time.process_time(), time.perf_counter()
    for i in indices:
        ds[i]
    return n / (time.process_time() - cpu), n / (time.perf_counter() - wall)


def bench_set(name: str, n: int, image_size: int, natural_dir: str | None) -> dict:
    s = get_set(name, image_size=image_size, natural_dir=natural_dir)
    start = time.perf_counter()
    s.labels()
    labels_s = time.perf_counter() - start
    out = {"images": len(s), "labels_s": round(labels_s, 3)}
    for normalize in (True, False):
        ds = StimulusDataset(s, CLIP_MEAN, CLIP_STD, normalize=normalize)
        per_cpu, per_wall = rate(ds, n)
        key = "normalized" if normalize else "uint8"
        out[f"{key}_img_per_s_per_core"] = round(per_cpu)
        out[f"{key}_img_per_s_wall"] = round(per_wall)
    print(f"{name:13s} {out}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=3000, help="images timed per set and mode")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--natural-dir", default=None, help="time a folder of photos for `natural`")
    args = p.parse_args()
    torch.set_num_threads(1)
    results = {name: bench_set(name, args.images, args.image_size, args.natural_dir)
               for name in args.sets.split(",")}
    print(json.dumps({"image_size": args.image_size, "images_timed": args.images,
                      "natural_dir": args.natural_dir,
                      "torch_threads": 1, "sets": results}))


if __name__ == "__main__":
    main()
