"""Images per second of zero-shot naming against the bare image-tower forward pass.

Usage: .venv/bin/python bench/naming.py [--model RN50] [--pretrained none] [--images 256]
       [--batch-size 64] [--device cpu] [--dtype float32] [--workers N]
Naming = experiments 3 and 5 on the stroop set from scratch: rendering (DataLoader workers),
normalisation, image tower, embedding cache writes, the 5 templates' text encoding, predictions,
tables and confusion figures; `encode_only_ratio` leaves out the fixed costs after encoding
(`fixed_costs_s`: text tower, tables, figures), which do not grow with the number of images.
Bare = normalisation + image tower on one pre-rendered batch, repeated for as many images,
measured before and after naming and averaged (the load of a shared machine drifts).
Goal: ratio >= 0.9. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from interp.models import load_model  # noqa: E402
from interp.naming import Naming, write_experiment  # noqa: E402
from interp.naming_embed import EmbeddingCache, autocast  # noqa: E402
from stimuli import get_set  # noqa: E402
from stimuli.dataset import normalize  # noqa: E402


@torch.no_grad()
def bare_rate(loaded, stim, n_images: int, batch_size: int, dtype: str) -> float:
    """Images/s of normalise + image tower on one pre-rendered batch, repeated."""
    pixels = torch.stack([torch.from_numpy(stim.render(i).transpose(2, 0, 1).copy())
                          for i in range(batch_size)]).to(loaded.device)
    run = lambda: loaded.visual(normalize(pixels, loaded.mean, loaded.std))
    with autocast(loaded.device, dtype):
        run()  # warm-up
        _sync(loaded.device)
        start = time.perf_counter()
        for _ in range(-(-n_images // batch_size)):
            run()
        _sync(loaded.device)
    return -(-n_images // batch_size) * batch_size / (time.perf_counter() - start)


def naming_times(loaded, stim, n_images: int, batch_size: int, dtype: str,
                 workers: int | None) -> tuple[float, float]:
    """Seconds of experiments 3 and 5 end to end on n_images with an empty cache: (encoding the
    images, everything after: text encoding, predictions, tables, figures)."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        naming = Naming(loaded, {"stroop": stim}, EmbeddingCache(Path(tmp) / "emb.zarr"),
                        limit=n_images, batch_size=batch_size, dtype=dtype, workers=workers)
        naming.image_embeddings("stroop")
        _sync(loaded.device)
        encoded = time.perf_counter()
        for number in (3, 5):
            write_experiment(Path(tmp), number, naming, show_published=False)
        return encoded - start, time.perf_counter() - encoded


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
    before = bare_rate(loaded, stim, args.images, args.batch_size, args.dtype)
    encode_s, rest_s = naming_times(loaded, stim, args.images, args.batch_size, args.dtype,
                                    args.workers)
    after = bare_rate(loaded, stim, args.images, args.batch_size, args.dtype)
    bare = (before + after) / 2
    named = args.images / (encode_s + rest_s)
    result = {
        "bench": "naming", "model": args.model, "pretrained": args.pretrained,
        "device": str(loaded.device), "dtype": args.dtype, "images": args.images,
        "batch_size": args.batch_size, "workers": args.workers,
        "bare_img_per_s": round(bare, 2),
        "bare_before_after": [round(before, 2), round(after, 2)],
        "naming_img_per_s": round(named, 2),
        "ratio": round(named / bare, 3), "goal": 0.9,
        "encode_only_ratio": round(args.images / encode_s / bare, 3),
        "fixed_costs_s": round(rest_s, 2),
        "cpu_count": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
