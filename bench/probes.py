"""The probes' speed: image embeddings against the bare image-tower forward, and exact
neighbour search at corpus sizes.

Usage: .venv/bin/python bench/probes.py [--model RN50] [--images 64] [--batch-size 16]
       [--rounds 3] [--search 8000,100000] [--dim 1024]
Embedding = what `daf` runs per encoder: render the corpus images (shapes and Stroop), prepare
inputs, the tower, write the cache (`ImageEncoder.embed`, from an empty cache); bare = inputs
+ tower on one pre-rendered batch repeated for as many images. Rounds interleave the two and
the median ratio is given, in wall and in CPU time (robust on a shared machine).
Search = `compare` (both spaces, k = 10, with cross ranks) and `nearest` (one space) on random
unit vectors. Goal: embedding ratio >= 0.9; search at 8k in seconds. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.naming import Clock  # noqa: E402
from interp.embeddings import EmbeddingCache  # noqa: E402
from interp.models import load_model  # noqa: E402
from interp.probes.encoders import ImageEncoder, clip_encoder, load_reference  # noqa: E402
from interp.probes.neighbours import compare, nearest  # noqa: E402
from stimuli.corpus import synthetic_corpus  # noqa: E402


def bare(encoder: ImageEncoder, corpus, n: int, batch_size: int) -> tuple[float, float]:
    images = corpus.images(encoder.image_size)
    batch = torch.from_numpy(np.stack([images.render(i) for i in range(batch_size)]))
    clock = Clock()
    for _ in range(-(-n // batch_size)):
        encoder.encode(batch)
    return clock.read()


def embedding(encoder: ImageEncoder, corpus, batch_size: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        encoder.embed(corpus, EmbeddingCache(Path(tmp) / "cache.zarr"), batch_size=batch_size,
                      workers=0)
        return clock.read()


def embedding_ratios(encoder: ImageEncoder, corpus, batch_size: int, rounds: int) -> dict:
    bare(encoder, corpus, batch_size, batch_size)  # warm up
    wall, cpu = [], []
    for _ in range(rounds):
        b = bare(encoder, corpus, len(corpus), batch_size)
        e = embedding(encoder, corpus, batch_size)
        wall.append(b[0] / e[0])
        cpu.append(b[1] / e[1])
    n = len(corpus)
    return {"images": n, "bare_img_s": round(n / b[0], 2), "embed_img_s": round(n / e[0], 2),
            "ratio_wall": round(statistics.median(wall), 3),
            "ratio_cpu": round(statistics.median(cpu), 3)}


def search_times(n: int, dim: int) -> dict:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, dim)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    start = time.perf_counter()
    nearest(a, 10)
    one = time.perf_counter() - start
    out = {"n": n, "dim": dim, "nearest_s": round(one, 2)}
    b = a[:, ::-1].copy()
    rows = min(n, 20_000 if n <= 20_000 else 2048)  # beyond 20k: 2,048 queries, scaled to all
    start = time.perf_counter()
    compare(a, b, 10, queries=range(rows))
    out["compare_s"] = round((time.perf_counter() - start) * n / rows, 2)
    out["compare_queries_timed"] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="RN50")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--search", default="8000,100000")
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args()
    corpus = synthetic_corpus(args.images)
    result = {"torch_threads": torch.get_num_threads(),
              "clip": embedding_ratios(clip_encoder(load_model(args.model, "none")), corpus,
                                       args.batch_size, args.rounds)}
    print("clip", result["clip"], flush=True)
    if not args.no_reference:
        result["reference"] = embedding_ratios(load_reference(weights="none"), corpus,
                                               args.batch_size, args.rounds)
        print("reference", result["reference"], flush=True)
    result["search"] = [search_times(int(n), args.dim) for n in args.search.split(",") if n]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
