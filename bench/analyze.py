"""Benchmark of `analyze`'s streaming parts: top-N and colour-label selectivity (Eq. 1 with its
permutation test) over synthetic RN50-sized stores (16 blocks, 15,104 units) of 50,000 and
150,000 images, written by this script in the real store layout and deleted afterwards.

Each size is measured in a fresh process (peak RSS = its ru_maxrss); wall and CPU seconds (CPU
time is the fairer figure on a shared machine). Last line: one JSON object.
    .venv/bin/python bench/analyze.py [--sizes 50000,150000] [--permutations 1000] [--top-n 100]

`--selectivity-only`: the permutation test alone, today's rules against the format-1 rules
(`reference_select`: four kinds, each with its own bincounts, no conjunction, every unit in the
null) on the same synthetic top-N of 15,104 units, in alternating rounds; prints the cost ratio.
    .venv/bin/python bench/analyze.py --selectivity-only [--permutations 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RN50_BLOCKS = {f"layer{layer}.{i}": (256 * 2 ** (layer - 1), 56 // 2 ** (layer - 1))
               for layer, n in ((1, 3), (2, 4), (3, 6), (4, 3)) for i in range(n)}
CHUNK = 256


def write_store(path: Path, n_images: int, seed: int = 0) -> float:
    """A synthetic `stroop` set: Stroop-like labels, ReLU'd Gaussian maxima; returns seconds."""
    import zarr

    from interp import store
    from interp.rundir import RunDir

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    word = rng.integers(0, 11, n_images)
    font = (word + rng.integers(1, 11, n_images)) % 11
    bg = (font + rng.integers(1, 11, n_images)) % 11  # != font; may equal word: fine here
    infos = {b: store.BlockInfo(u, (s, s)) for b, (u, s) in RN50_BLOCKS.items()}
    root = zarr.open_group(RunDir(path).activations, mode="w")
    g = store.create_set(root, "stroop", n_images, CHUNK, infos,
                         {"word": word, "font_color": font, "bg_color": bg}, {}, {"synthetic": 1})
    for block, (units, _) in RN50_BLOCKS.items():
        arr = g[block]["max"]
        for lo in range(0, n_images, CHUNK * 8):
            rows = min(CHUNK * 8, n_images - lo)
            data = rng.standard_normal((rows, units), dtype=np.float32)
            arr[lo:lo + rows] = np.maximum(data, 0).astype(np.float16)
    return time.perf_counter() - start


def measure(path: Path, top_n: int, permutations: int) -> dict:
    """Top-N of every block streamed from the store, then Eq. 1 + shuffles over all blocks."""
    import zarr

    from interp.analysis.selectivity import select_all
    from interp.analysis.steps import slabs, stroop_kinds
    from interp.analysis.topn import TopN
    from interp.rundir import RunDir

    g = zarr.open_group(RunDir(path).activations, mode="r")["stroop"]
    start, cpu = time.perf_counter(), time.process_time()
    tops = {}
    for block in RN50_BLOCKS:
        arr = g[block]["max"]
        top = TopN(arr.shape[1], top_n)
        for lo, rows in slabs(arr):
            top.update(rows, lo)
        tops[block] = (top.index, top.value)
    t_topn, c_topn = time.perf_counter() - start, time.process_time() - cpu
    labels = {k: g["labels"][k][:] for k in ("word", "font_color", "bg_color")}
    start, cpu = time.perf_counter(), time.process_time()
    select_all(tops, stroop_kinds(labels), 11, permutations)
    t_sel, c_sel = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"topn_s": round(t_topn, 2), "topn_cpu_s": round(c_topn, 2),
            "selectivity_s": round(t_sel, 2), "selectivity_cpu_s": round(c_sel, 2),
            "peak_rss_gib": round(peak, 3)}


def reference_select(tops, kinds, n_labels: int, n_permutations: int, seed: int = 0) -> dict:
    """The format-1 permutation test (before issue 9), kept to time against: per shuffle, each
    kind's Eq. 1 from its own bincounts and the max over all units of its best label's z."""
    from interp.analysis.selectivity import _Block, base_rates, z_scores

    blocks = [_Block(i, v, n_labels) for i, v in tops.values()]
    chance = {k: base_rates(c, n_labels) for k, c in kinds.items()}
    null = {k: np.full(n_permutations, -np.inf) for k in kinds}
    rng = np.random.default_rng(seed)
    n_images = next(iter(kinds.values()))[0].size
    for p in range(n_permutations):
        perm = rng.permutation(n_images)
        for blk in blocks:
            rows = perm[blk.index.ravel()]
            for kind, codes in kinds.items():
                z = z_scores(blk.fractions(codes, rows), chance[kind], blk.n_eff)
                null[kind][p] = max(null[kind][p], z.max(initial=-np.inf))
    return null


def selectivity_only(top_n: int, permutations: int, rounds: int, n_images: int = 495_000
                     ) -> dict:
    """CPU seconds of today's test and of the format-1 reference, alternating, same inputs."""
    from interp.analysis.selectivity import select_all
    from interp.analysis.steps import stroop_kinds

    rng = np.random.default_rng(0)
    word = rng.integers(0, 11, n_images)
    font = (word + rng.integers(1, 11, n_images)) % 11
    bg = (font + rng.integers(1, 11, n_images)) % 11
    kinds = stroop_kinds({"word": word, "font_color": font, "bg_color": bg})
    tops = {}
    for block, (units, _) in RN50_BLOCKS.items():
        index = rng.integers(0, n_images, (units, top_n))
        value = np.sort(np.abs(rng.standard_normal((units, top_n))) + 1, axis=1)[:, ::-1]
        tops[block] = (index, value.copy())
    cpu = {"current": [], "reference": []}
    for _ in range(rounds):
        for name in ("reference", "current"):
            start = time.process_time()
            if name == "current":
                select_all(tops, kinds, 11, permutations, 0, 0.25)
            else:
                reference_select(tops, kinds, 11, permutations)
            cpu[name].append(round(time.process_time() - start, 2))
            print(name, cpu[name][-1], "CPU s", flush=True)
    med = {k: float(np.median(v)) for k, v in cpu.items()}
    return {"units": sum(u for u, _ in RN50_BLOCKS.values()), "top_n": top_n,
            "permutations": permutations, "cpu_s": cpu,
            "ratio_current_over_reference": round(med["current"] / med["reference"], 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="50000,150000")
    p.add_argument("--top-n", type=int, default=100)
    p.add_argument("--permutations", type=int, default=1000)
    p.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--selectivity-only", action="store_true")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    if args.selectivity_only:
        print(json.dumps(selectivity_only(args.top_n, args.permutations, args.rounds)))
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.top_n, args.permutations)))
        return
    results = {"units": sum(u for u, _ in RN50_BLOCKS.values()), "blocks": len(RN50_BLOCKS),
               "top_n": args.top_n, "permutations": args.permutations, "sizes": {}}
    for n in (int(s) for s in args.sizes.split(",")):
        tmp = Path(tempfile.mkdtemp(prefix="bench-analyze-"))
        try:
            write_s = write_store(tmp, n)
            out = subprocess.run([sys.executable, __file__, "--measure", str(tmp), "--top-n",
                                  str(args.top_n), "--permutations", str(args.permutations)],
                                 check=True, capture_output=True, text=True).stdout
            results["sizes"][n] = {"write_store_s": round(write_s, 1),
                                   **json.loads(out.strip().splitlines()[-1])}
            print(f"{n} images: {results['sizes'][n]}", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
