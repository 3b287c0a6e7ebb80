"""Images per second of zero-shot naming against the bare image-tower forward pass.

Usage: .venv/bin/python bench/naming.py [--model RN50] [--pretrained none] [--images 256]
       [--batch-size 64] [--device cpu] [--dtype float32] [--workers N]
Naming = experiments 3 and 5 on the stroop set from scratch: rendering (DataLoader workers),
normalisation, image tower, embedding cache writes, the 5 templates' text encoding, predictions,
tables and confusion figures; `encode_only_ratio` leaves out the fixed costs after encoding
(`fixed_costs_s`: text tower, tables, figures), which do not grow with the number of images.
Ratios come as wall-clock ratios and as CPU-time ratios (`cpu_time_*`, this process plus its
DataLoader workers), the latter robust on a shared, loaded machine.
Bare = normalisation + image tower on one pre-rendered batch, repeated for as many images,
measured before and after naming and averaged (the load of a shared machine drifts).
Goal: ratio >= 0.9. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from interp.inputs import autocast, batch_to_input  # noqa: E402
from interp.models import load_model  # noqa: E402
from interp.naming.embeddings import EmbeddingCache  # noqa: E402
from interp.naming.step import Naming, write_experiment  # noqa: E402
from stimuli import get_set  # noqa: E402


class Clock:
    """Wall seconds and CPU seconds (this process and its reaped children, e.g. DataLoader
    workers) since start: CPU time barely moves with the load of a shared machine."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, cpu_seconds() - self.cpu


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@torch.no_grad()
def bare_times(loaded, stim, n_images: int, batch_size: int, dtype: str) -> tuple[float, float]:
    """(wall, CPU) seconds of normalise + image tower on one pre-rendered batch, repeated for
    n_images."""
    pixels = torch.from_numpy(np.stack([stim.render(i) for i in range(batch_size)]))
    pixels = pixels.to(loaded.device)
    run = lambda: loaded.visual(batch_to_input(pixels, loaded, loaded.device))
    with autocast(loaded.device, dtype):
        run()  # warm-up
        _sync(loaded.device)
        clock = Clock()
        for _ in range(-(-n_images // batch_size)):
            run()
        _sync(loaded.device)
        wall, cpu = clock.read()
    scale = n_images / (-(-n_images // batch_size) * batch_size)
    return wall * scale, cpu * scale


def naming_times(loaded, stim, n_images: int, batch_size: int, dtype: str,
                 workers: int | None) -> tuple[tuple[float, float], tuple[float, float]]:
    """(wall, CPU) seconds of experiments 3 and 5 end to end on n_images with an empty cache:
    encoding the images, then everything after (text encoding, predictions, tables, figures)."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        naming = Naming(loaded, {"stroop": stim}, EmbeddingCache(Path(tmp) / "emb.zarr"),
                        limit=n_images, batch_size=batch_size, dtype=dtype, workers=workers)
        naming.embeddings("stroop")
        _sync(loaded.device)
        encoded = clock.read()
        for number in (3, 5):
            write_experiment(Path(tmp), number, naming, show_published=False)
        total = clock.read()
        return encoded, (total[0] - encoded[0], total[1] - encoded[1])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="RN50")
    p.add_argument("--pretrained", default="none")
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--workers", type=int, default=None)
    args = p.parse_args()

    loaded = load_model(args.model, args.pretrained, device=args.device)
    stim = get_set("stroop", image_size=loaded.image_size)
    # bare runs before and after naming, averaged: a shared machine's load drifts
    before = bare_times(loaded, stim, args.images, args.batch_size, args.dtype)
    encode, rest = naming_times(loaded, stim, args.images, args.batch_size, args.dtype,
                                args.workers)
    after = bare_times(loaded, stim, args.images, args.batch_size, args.dtype)
    bare = [(b + a) / 2 for b, a in zip(before, after, strict=True)]  # wall, cpu
    n = args.images
    result = {
        "bench": "naming", "model": args.model, "pretrained": args.pretrained,
        "device": str(loaded.device), "dtype": args.dtype, "images": n,
        "batch_size": args.batch_size, "workers": args.workers,
        "bare_img_per_s": round(n / bare[0], 2),
        "bare_img_per_s_before_after": [round(n / before[0], 2), round(n / after[0], 2)],
        "naming_img_per_s": round(n / (encode[0] + rest[0]), 2),
        "ratio": round(bare[0] / (encode[0] + rest[0]), 3), "goal": 0.9,
        "encode_only_ratio": round(bare[0] / encode[0], 3),
        "cpu_time_ratio": round(bare[1] / (encode[1] + rest[1]), 3),
        "cpu_time_encode_only_ratio": round(bare[1] / encode[1], 3),
        "fixed_costs_s": round(rest[0], 2),
        "cpu_count": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
