"""Images per second per core for each stimulus set, on the extraction's path to the model input.

Usage: .venv/bin/python bench/stimuli.py [--images N] [--image-size PX] [--batch-size B]
Each image goes the way `chromadissect extract` and `naming` take it: the `Images` dataset
(uint8) through a DataLoader (batches of indices spread over the set), then `batch_to_input`.
Two figures: `normalized`, a CPU run's whole path to the input tensor (normalised,
channels-last); `uint8`, up to the DataLoader's batch, the host's share of a GPU run (the GPU
normalises). Single process, one torch thread; the rate is images / CPU seconds of this process,
so other work on a shared machine does not lower it (the wall-clock rate is printed too). Each
set is warmed first by labels(), which also loads the fonts and measures every word once.
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
from torch.utils.data import DataLoader  # noqa: E402

from interp.inputs import Images, batch_to_input  # noqa: E402
from interp.models import load_model  # noqa: E402
from stimuli import get_set  # noqa: E402

SETS = ("shapes", "stroop", "stroop-white", "words", "natural")
CPU = torch.device("cpu")


def rate(s, loaded, n: int, batch_size: int, normalize: bool) -> tuple[float, float]:
    """(images per CPU second, images per wall second) over n images spread over the set, to
    the normalised input (`normalize`) or to the uint8 batch."""
    step = max(1, len(s) // n)
    indices = [(k * step) % len(s) for k in range(n)]
    batches = [indices[k:k + batch_size] for k in range(0, n, batch_size)]
    loader = DataLoader(Images(s), batch_sampler=batches)
    cpu, wall = time.process_time(), time.perf_counter()
    for images, _index in loader:
        if normalize:
            batch_to_input(images, loaded, CPU)
    return n / (time.process_time() - cpu), n / (time.perf_counter() - wall)


def bench_set(name: str, loaded, args: argparse.Namespace) -> dict:
    s = get_set(name, image_size=args.image_size, natural_dir=args.natural_dir)
    start = time.perf_counter()
    s.labels()
    labels_s = time.perf_counter() - start
    out = {"images": len(s), "labels_s": round(labels_s, 3)}
    for normalize in (True, False):
        per_cpu, per_wall = rate(s, loaded, args.images, args.batch_size, normalize)
        key = "normalized" if normalize else "uint8"
        out[f"{key}_img_per_s_per_core"] = round(per_cpu)
        out[f"{key}_img_per_s_wall"] = round(per_wall)
    print(f"{name:13s} {out}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=3000, help="images timed per set and mode")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=64, help="as extract's --batch-size")
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--natural-dir", default=None, help="time a folder of photos for `natural`")
    args = p.parse_args()
    torch.set_num_threads(1)
    # CLIP's normalisation and a ResNet tower's memory format; its forward is not timed
    loaded = load_model("interp.models:tiny_clip", "none")
    results = {name: bench_set(name, loaded, args) for name in args.sets.split(",")}
    print(json.dumps({"image_size": args.image_size, "images_timed": args.images,
                      "batch_size": args.batch_size, "natural_dir": args.natural_dir,
                      "torch_threads": 1, "sets": results}))


if __name__ == "__main__":
    main()
