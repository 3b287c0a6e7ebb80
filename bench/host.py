"""The host side of a GPU extraction, without a GPU: sustained img/s and per-stage load on 1, 2, ...
cores; the last line is one JSON object.

    .venv/bin/python bench/host.py                      # stroop, RN50 width, 1 and 2 cores
    .venv/bin/python bench/host.py --set shapes --cores 1,2 --images 8192

Everything but the model is the extraction's own code: `RenderedBatches` (DataLoader workers
rendering into a ring of shared buffers), a stand-in for the copy to the device, `_Loop`'s chunk
assembly and `split_blocks`, and `ChunkWriter` threads writing through `ChunkStore` (compressed,
fsynced, completion marks). The device is a stand-in that returns real reductions of an
untrained RN50 (all 16 blocks, 15,104 units, in `gather`'s CUDA dtypes) computed before the
clock starts, so its own cost is excluded. Each core count runs in a fresh process pinned to
that many cores (`sched_setaffinity`, inherited by the workers); img/s per core = img/s / cores.
Stage loads are CPU seconds per wall second: render (the workers), loop (the main thread:
receive, stand-in, assemble), write (the writer threads); `waits` are the main thread's wall
seconds per wall second waiting for a rendered batch and for room in the writers' queue.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# bench/stimuli.py is named like the stimuli package: keep bench/ off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from interp import store  # noqa: E402
from interp.batches import RenderedBatches  # noqa: E402
from interp.extract import _Loop, batches_of  # noqa: E402
from interp.inputs import host_threads  # noqa: E402
from interp.writer import ChunkWriter  # noqa: E402
from stimuli import get_set  # noqa: E402

REFERENCE_IMAGES = 64


def reference_reductions(set_name: str, model: str, path: Path) -> None:
    """Reductions of REFERENCE_IMAGES images of the set through the untrained model, saved."""
    from interp.extract import probe_blocks, reduce_batch
    from interp.models import load_model

    loaded = load_model(model, "none")
    s = get_set(set_name, samples_per_combo=1, image_size=loaded.image_size)
    step = max(1, len(s) // REFERENCE_IMAGES)
    images = np.stack([s.render(i * step % len(s)) for i in range(REFERENCE_IMAGES)])
    blocks = reduce_batch(loaded, images)
    infos = probe_blocks(loaded, torch.device("cpu"))
    np.savez(path, blocks=json.dumps({b: [i.n_units, list(i.map_shape)] for b, i in infos.items()}),
             **{k: np.concatenate([a[j] for a in blocks.values()], axis=1)
                for j, k in enumerate(("max", "yx", "mean"))})


class StandInDevice(_Loop):
    """`_Loop` with the model replaced: each batch is copied once (the pinned copy a GPU run
    makes) and answered with precomputed reductions; the rest of the loop is the real one."""

    def __init__(self, infos: dict, batches: list[tuple[torch.Tensor, ...]]) -> None:
        self.infos, self.blocks, self.batches, self.calls = infos, list(infos), batches, 0

    def forward(self, images: torch.Tensor):
        torch.empty_like(images).copy_(images)
        host = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        return tuple(t[:len(images)] for t in host)


def stand_in_batches(ref: dict, batch_size: int, count: int = 4) -> list[tuple[torch.Tensor, ...]]:
    """`count` batches whose every unit takes its (max, y/x, mean) from an image of the
    reference drawn for that unit alone: each unit's values are real, and no two rows repeat
    (repeated rows would compress better than a real chunk: this gives about real's ratio)."""
    rng = np.random.default_rng(0)
    n, units = ref["max"].shape
    cols = np.arange(units)
    out = []
    for _ in range(count):
        rows = rng.integers(0, n, (batch_size, units))
        out.append(tuple(torch.from_numpy(np.ascontiguousarray(ref[k][rows, cols]))
                         for k in ("max", "yx", "mean")))
    return out


class TimedWrite:
    """The chunk write, with the CPU time of the threads that ran it summed."""

    def __init__(self, write) -> None:
        self.write, self.cpu, self.lock = write, 0.0, threading.Lock()

    def __call__(self, chunk: int, arrays) -> None:
        start = time.thread_time()
        self.write(chunk, arrays)
        with self.lock:
            self.cpu += time.thread_time() - start


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_config(args: argparse.Namespace) -> dict:
    """Run the pipeline on this process's cores; figures of the timed part (batches after the
    first, whose start pays the workers' start-up)."""
    # the split a GPU extraction would choose on the cores this process was pinned to
    args.workers, args.writers = host_threads(torch.device("cuda"), 1, args.workers, args.writers)
    ref = dict(np.load(args.reference))
    infos = {b: store.BlockInfo(c, tuple(shape))
             for b, (c, shape) in json.loads(str(ref.pop("blocks"))).items()}
    s = get_set(args.set, samples_per_combo=args.samples_per_combo, image_size=224)
    s.labels()  # fonts and word sizes loaded before the workers fork
    n, chunk = args.images, args.batch_size
    with tempfile.TemporaryDirectory(prefix="bench-host-", dir=args.workdir) as tmp:
        root = store.open_store(tmp, mode="a")
        g = store.create_set(root, "bench", n, chunk, infos, {"i": np.arange(n)}, {}, {})
        timed = TimedWrite(store.ChunkStore(g).write)
        writer = _TimedSubmit(timed, threads=args.writers)
        step = max(1, len(s) // n)
        order = [i * step % len(s) for i in range(n)]
        batches = [[order[i] for i in b]
                   for b in batches_of(range(-(-n // chunk)), chunk, args.batch_size, n)]
        loader = RenderedBatches(s, batches, args.workers)
        device = StandInDevice(infos, stand_in_batches(ref, args.batch_size))
        clock = _Clock(loader)
        device.run(clock, writer, n, chunk, _NoBar())
        writer.close()
        wall = time.perf_counter() - clock.start
        loop_cpu = time.thread_time() - clock.thread_cpu
        all_cpu = time.process_time() - clock.process_cpu
        render_cpu = children_cpu() - clock.children_cpu
        disk = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    images = clock.images
    cores = len(os.sched_getaffinity(0))
    write_cpu = timed.cpu * clock.images / n  # the writes of the timed batches
    return {"cores": cores, "workers": args.workers, "writers": args.writers,
            "images": images, "img_s": round(images / wall, 1),
            "img_s_per_core": round(images / wall / cores, 1),
            "img_per_cpu_s": round(images / (all_cpu + render_cpu), 1),
            "load": {"render": round(render_cpu / wall, 2), "loop": round(loop_cpu / wall, 2),
                     "write": round(write_cpu / wall, 2)},
            "waits": {"render": round(clock.render_wait / wall, 2),
                      "write": round(writer.waited / wall, 2)},
            "ms_per_image_cpu": {"render": round(1e3 * render_cpu / images, 3),
                                 "loop": round(1e3 * loop_cpu / images, 3),
                                 "write": round(1e3 * write_cpu / images, 3)},
            "disk_over_raw": round(disk / (n * sum(i.n_units for i in infos.values()) * 6), 3)}


class _Clock:
    """Wraps the batches: the clock starts when the first has arrived; times the waits for the
    next. Yields each batch's positions in the run as its index (the images are spread over
    the set), so `_Loop` finds each batch's chunk."""

    def __init__(self, batches) -> None:
        self.batches, self.images, self.start, self.render_wait = batches, 0, None, 0.0

    def __iter__(self):
        position, it = 0, iter(self.batches)
        for k in itertools.count():
            asked = time.perf_counter()
            try:
                images, _index = next(it)
            except StopIteration:
                return
            if k == 1:
                self.start, self.thread_cpu = time.perf_counter(), time.thread_time()
                self.process_cpu = time.process_time()
                self.children_cpu = children_cpu()
            if k >= 1:
                self.images += len(images)
                self.render_wait += time.perf_counter() - asked
            yield images, torch.arange(position, position + len(images))
            position += len(images)


class _TimedSubmit(ChunkWriter):
    """The writer, with the wall time its producer waited for room in the queue."""

    waited = 0.0

    def submit(self, chunk, arrays) -> None:
        start = time.perf_counter()
        super().submit(chunk, arrays)
        self.waited += time.perf_counter() - start


class _NoBar:
    def update(self, _n: int) -> None: ...


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", default="stroop", help="stimulus set rendered (stroop: the slowest)")
    p.add_argument("--samples-per-combo", type=int, default=50)
    p.add_argument("--images", type=int, default=6144, help="images per core count")
    p.add_argument("--batch-size", type=int, default=256, help="also the chunk size")
    p.add_argument("--cores", default=None, help="core counts, e.g. 1,2 (default 1..all)")
    p.add_argument("--workers", type=int, default=None, help="rendering workers per run")
    p.add_argument("--writers", type=int, default=None, help="writer threads per run")
    p.add_argument("--model", default="RN50", help="whose reduction shapes the stand-in returns")
    p.add_argument("--workdir", default=None, help="where the temporary stores go")
    p.add_argument("--reference", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.reference:  # a child: one core count, on the cores it was given
        print(json.dumps(one_config(args)))
        return
    all_cores = sorted(os.sched_getaffinity(0))
    counts = ([int(c) for c in args.cores.split(",")] if args.cores
              else list(range(1, len(all_cores) + 1)))
    with tempfile.TemporaryDirectory(prefix="bench-host-ref-") as tmp:
        ref = Path(tmp) / "reference.npz"
        reference_reductions(args.set, args.model, ref)
        results = []
        for k in counts:
            cmd = [sys.executable, __file__, "--reference", str(ref), "--set", args.set,
                   "--samples-per-combo", str(args.samples_per_combo), "--images",
                   str(args.images), "--batch-size", str(args.batch_size)]
            for option in ("workers", "writers", "workdir"):
                if getattr(args, option) is not None:
                    cmd += [f"--{option}", str(getattr(args, option))]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                 preexec_fn=lambda k=k: os.sched_setaffinity(0, all_cores[:k]))
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = results[-1]
            print(f"{k} core(s), {r['workers']} workers, {r['writers']} writers: "
                  f"{r['img_s']:8.1f} img/s, "
                  f"{r['img_s_per_core']:7.1f} per core ({r['img_per_cpu_s']:.0f} per CPU-s); "
                  f"load {r['load']}; waits {r['waits']}; "
                  f"CPU ms/image {r['ms_per_image_cpu']}", flush=True)
    base = results[0]["img_s"] / results[0]["cores"]
    for r in results:
        r["per_core_over_first"] = round(r["img_s_per_core"] / base, 3)
    print(json.dumps({"set": args.set, "model": args.model, "batch_size": args.batch_size,
                      "images": args.images, "codec": store.COMPRESSOR.to_dict(),
                      "target_img_s_per_core": 650, "runs": results}))


if __name__ == "__main__":
    main()
