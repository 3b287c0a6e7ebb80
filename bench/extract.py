"""Extraction speed: (a) bare forward, (b) full extraction, (c) activation caching; JSON last line.

Same network, batch, dtype and device for all three. Modes are interleaved over --repeats rounds
(order rotated each round) and each figure is the median, so a shared machine's noise hits all
three alike. Throughput is steady state: timing starts once the first batch has been computed.

    .venv/bin/python bench/extract.py --model RN50 --batch-size 16 --batches 4 --repeats 3
    .venv/bin/python bench/extract.py --store RUN --set shapes     # store size, paper scale
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
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
from interp.extract import _Loop, batches_of, probe_blocks  # noqa: E402
from interp.hooks import Recorder, reduce_map, reduction_hooks, trace  # noqa: E402
from interp.inputs import autocast, host_threads, to_input, uses_channels_last  # noqa: E402
from interp.models import load_model, resolve_device  # noqa: E402
from interp.rundir import RunDir  # noqa: E402
from interp.writer import ChunkWriter  # noqa: E402
from stimuli import get_set  # noqa: E402


class PeakRSS:
    """Peak resident memory of this process above its level at start (sampled every 5 ms)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak, self._stop = device, 0, threading.Event()

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def __enter__(self) -> PeakRSS:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        self._base = self._rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss() - self._base)

    def __exit__(self, *_exc) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
            return
        self._stop.set()
        self._thread.join()


def cpu_seconds(children: bool = False) -> float:
    """CPU time of this process (or of its reaped children: the DataLoader workers)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_forward(visual, x: torch.Tensor, batches: int, device, dtype: str
                 ) -> tuple[float, float]:
    """Images per wall second and per CPU second of the plain forward on one fixed batch."""
    with torch.inference_mode(), autocast(device, dtype):
        visual(x)
        sync(device)
        start, cpu = time.perf_counter(), cpu_seconds()
        for _ in range(batches):
            visual(x)
        sync(device)
    n = batches * len(x)
    return n / (time.perf_counter() - start), n / (cpu_seconds() - cpu)


class SteadyTimer:
    """Wraps a loader: the clock starts when the first batch has been computed."""

    def __init__(self, loader, device) -> None:
        self.loader, self.device, self.start, self.images = loader, device, None, 0

    def __iter__(self):
        for i, (images, index) in enumerate(self.loader):
            if i == 1:
                sync(self.device)
                self.start, self.cpu = time.perf_counter(), cpu_seconds()
            if i >= 1:
                self.images += len(index)
            yield images, index


def pipeline(loaded, fn, recorder, infos, s, args, device, workdir: Path
             ) -> tuple[float, float]:
    """Images per wall / CPU second of the pipeline (render in workers, forward, reduce, write).

    CPU time counts the rendering workers too (all their batches, the first one included).
    """
    root = store.open_store(workdir, mode="a")
    n = (args.batches + 1) * args.batch_size
    chunk = 2 * args.batch_size
    g = store.create_set(root, "bench", n, chunk, infos, {"i": torch.arange(n).numpy()}, {}, {})
    loader = RenderedBatches(s, list(batches_of(range(-(-n // chunk)), chunk, args.batch_size, n)),
                             args.workers, pin=device.type == "cuda")
    timer = SteadyTimer(loader, device)
    writer = ChunkWriter(store.ChunkStore(g).write, threads=args.writers)
    loop = _Loop(fn, recorder, loaded, infos, device, args.dtype)

    class NoBar:
        def update(self, _n): ...

    workers_cpu = cpu_seconds(children=True)
    loop.run(timer, writer, n, chunk, NoBar())
    writer.close()
    loader.close()
    sync(device)
    wall = time.perf_counter() - timer.start
    cpu = cpu_seconds() - timer.cpu + cpu_seconds(children=True) - workers_cpu
    return timer.images / wall, timer.images / cpu


def caching_forward(visual, blocks: dict, recorder):
    """The activation-caching way: keep every block's full map, reduce after the forward."""
    def fn(x):
        with trace(blocks, keep=True) as t:
            out = visual(x)
        fn.held = max(fn.held, sum(full.nbytes for full in t.outputs.values()))
        for name, full in t.outputs.items():
            recorder.reductions[name] = reduce_map(full)
        return out

    fn.held = 0
    return fn


PAPER_IMAGES, RN50_UNITS = 935_000, 15_104


def store_size(run_dir: Path, set_name: str) -> dict:
    """Bytes per image per unit of a finished store, raw and on disk, scaled to the paper's run."""
    g = store.open_store(run_dir)[set_name]
    raw, disk = {"max": 0, "mean": 0, "argmax": 0}, {"max": 0, "mean": 0, "argmax": 0}
    for block in g.attrs["blocks"]:
        for kind in raw:
            arr = g[block][kind]
            raw[kind] += arr.nbytes
            files = (RunDir(run_dir).activations / arr.path / "c").rglob("*")
            disk[kind] += sum(f.stat().st_size for f in files if f.is_file())
    cells = g.attrs["n_images"] * sum(g[b].attrs["n_units"] for b in g.attrs["blocks"])
    per_cell = sum(disk.values()) / cells
    return {
        "set": set_name, "images": g.attrs["n_images"], "units": cells // g.attrs["n_images"],
        "bytes_per_image_unit_raw": sum(raw.values()) / cells,
        "bytes_per_image_unit_disk": round(per_cell, 3),
        "disk_over_raw": {k: round(disk[k] / raw[k], 3) for k in raw},
        "paper_scale_gb_raw": round(PAPER_IMAGES * RN50_UNITS * sum(raw.values()) / cells / 1e9, 1),
        "paper_scale_gb_disk": round(PAPER_IMAGES * RN50_UNITS * per_cell / 1e9, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="RN50")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--batches", type=int, default=4, help="timed batches per mode and round")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader rendering workers (default: as extract: 0 on CPU)")
    p.add_argument("--writers", type=int, default=None,
                   help="chunk-writer threads (default: as extract: 1 on CPU)")
    p.add_argument("--set", default="shapes", help="stimulus set rendered by (b) and (c)")
    p.add_argument("--compile", action="store_true", help="torch.compile all three modes")
    p.add_argument("--store", type=Path, default=None, metavar="RUN",
                   help="instead: size of RUN/activations.zarr (set --set), scaled to the paper")
    args = p.parse_args()
    if args.store:
        print(json.dumps(store_size(args.store, args.set)))
        return

    device = resolve_device(args.device)
    args.workers, args.writers = host_threads(device, 1, args.workers, args.writers)
    loaded = load_model(args.model, "none", device=device)
    s = get_set(args.set, samples_per_combo=1, image_size=loaded.image_size)
    x = to_input(np.stack([s.render(i) for i in range(args.batch_size)]), loaded)
    extract_fmt = "channels_last" if uses_channels_last(device) else "contiguous"
    formats = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    infos = probe_blocks(loaded, device)

    # (a) is timed in both plain forms, interleaved like the rest; the faster one counts.
    modes = ["a_contiguous", "a_channels_last", "b_extract", "c_caching"]
    rates: dict[str, list[float]] = {k: [] for k in modes}
    cpu_rates: dict[str, list[float]] = {k: [] for k in modes}
    peaks: dict[str, int] = dict.fromkeys(modes, 0)
    # Bytes the hooks keep per batch: (b) the reductions (max, flat index, mean as computed)
    held = dict.fromkeys(modes, 0)
    held["b_extract"] = args.batch_size * sum(i.n_units for i in infos.values()) * (4 + 8 + 4)
    bare_fn = torch.compile(loaded.visual) if args.compile else loaded.visual
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        for rnd in range(args.repeats):
            order = modes[rnd % 4:] + modes[:rnd % 4]
            for mode in order:
                with PeakRSS(device) as peak:
                    if mode.startswith("a_"):
                        fmt = formats[mode[2:]]
                        loaded.visual.to(memory_format=fmt)
                        rate, cpu_rate = bare_forward(bare_fn, x.contiguous(memory_format=fmt),
                                                      args.batches, device, args.dtype)
                    elif mode == "b_extract":
                        with reduction_hooks(loaded.blocks) as rec:
                            loaded.visual.to(memory_format=formats[extract_fmt])
                            fn = torch.compile(loaded.visual) if args.compile else loaded.visual
                            rate, cpu_rate = pipeline(loaded, fn, rec, infos, s, args, device,
                                                      Path(tmp) / f"b{rnd}")
                    else:
                        rec = Recorder()
                        loaded.visual.to(memory_format=formats[extract_fmt])
                        fn = caching_forward(loaded.visual, loaded.blocks, rec)
                        rate, cpu_rate = pipeline(loaded, fn, rec, infos, s, args, device,
                                                  Path(tmp) / f"c{rnd}")
                        held["c_caching"] = fn.held
                rates[mode].append(rate)
                cpu_rates[mode].append(cpu_rate)
                peaks[mode] = max(peaks[mode], peak.peak)
                print(f"round {rnd}: {mode:16s} {rate:8.2f} img/s {cpu_rate:8.2f} img/cpu-s "
                      f"peak +{peak.peak / 2**20:.0f} MiB", flush=True)

    med = {k: statistics.median(v) for k, v in rates.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu_rates.items()}
    plain = max(("a_contiguous", "a_channels_last"), key=med.get)
    for table in (rates, cpu_rates, med, cpu_med, peaks, held):
        table["a_bare"] = table[plain]

    def per_round(num: str, den: str) -> float:
        """Median over rounds of the ratio within a round (robust to load drifting over time)."""
        ratios = [x / y for x, y in zip(rates[num], rates[den], strict=True)]
        return round(statistics.median(ratios), 4)

    result = {
        "model": args.model, "device": str(device), "dtype": args.dtype,
        "batch_size": args.batch_size, "batches": args.batches, "repeats": args.repeats,
        "image_size": loaded.image_size, "blocks": len(loaded.blocks),
        "units": sum(i.n_units for i in infos.values()), "threads": torch.get_num_threads(),
        "workers": args.workers, "writers": args.writers, "compile": args.compile,
        "bare_forward_form": plain[2:], "extract_form": extract_fmt,
        "img_s": {k: round(v, 3) for k, v in med.items()},
        "img_s_rounds": {k: [round(r, 3) for r in v] for k, v in rates.items()},
        "img_per_cpu_s": {k: round(v, 3) for k, v in cpu_med.items()},
        "b_over_a": round(med["b_extract"] / med["a_bare"], 4),
        "b_over_c": round(med["b_extract"] / med["c_caching"], 4),
        "b_over_a_per_round": per_round("b_extract", "a_bare"),
        "b_over_c_per_round": per_round("b_extract", "c_caching"),
        "b_over_a_cpu": round(cpu_med["b_extract"] / cpu_med["a_bare"], 4),
        "b_over_c_cpu": round(cpu_med["b_extract"] / cpu_med["c_caching"], 4),
        "peak_mib": {k: round(v / 2**20, 1) for k, v in peaks.items()},
        "peak_memory": "CUDA max allocated" if device.type == "cuda" else "main-process RSS",
        "held_by_hooks_mib": {k: round(v / 2**20, 1) for k, v in held.items()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
