"""`chromadissect extract`: stimuli -> hooked model -> `RUN/activations.zarr`, resumable.

Batches never straddle a chunk (so a resumed chunk is computed from the same batches, bit for
bit); each process (torchrun rank) owns whole chunks; writer threads write them, each whole chunks.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch

from interp import distributed, progress, store
from interp.batches import RenderedBatches
from interp.errors import UsageError
from interp.hooks import Recorder, gather, reduction_hooks, split_blocks
from interp.inputs import autocast, batch_to_input, host_threads, prepare, to_input
from interp.models import unit_counts
from interp.rundir import MODEL_KEYS, RunDir
from interp.units import model_unit
from interp.writer import BlockArrays, ChunkAssembler, ChunkWriter
from stimuli import SET_NAMES

log = logging.getLogger(__name__)

CHUNK_TARGET_IMAGES = 256
DEFAULT_SETS = SET_NAMES  # every set


# --- running a batch through the hooked model -------------------------------------------------

def probe_blocks(loaded, device: torch.device) -> dict[str, store.BlockInfo]:
    """Units and map shape of every hooked block, from one blank image."""
    blank = torch.zeros(1, loaded.image_size, loaded.image_size, 3, dtype=torch.uint8)
    with reduction_hooks(loaded.blocks) as rec, torch.inference_mode():
        loaded.visual(batch_to_input(blank, loaded, device))
        return {b: store.BlockInfo(rec.reductions[b].max.shape[1], rec.reductions[b].map_shape)
                for b in loaded.blocks}


def reduce_batch(loaded, images_uint8, dtype: str = "float32") -> BlockArrays:
    """Per block (max float16, argmax (y, x), mean float16) of a batch, exactly as the store has it.

    For analyses that re-run modified images (e.g. grayscale); `loaded` from `load_model`.
    Uses the extraction's memory format, so an image in the store gives the stored numbers.
    """
    device = loaded.device
    x = to_input(images_uint8, loaded)
    infos = {}
    with reduction_hooks(loaded.blocks) as rec, torch.inference_mode(), autocast(device, dtype):
        prepare(loaded, device)(x)
        for b in loaded.blocks:
            r = rec.reductions[b]
            infos[b] = store.BlockInfo(r.max.shape[1], r.map_shape)
        return split_blocks(gather(rec, list(loaded.blocks)), infos)


def unit_maps(loaded, images_uint8, units: Sequence[str], dtype: str = "float32"
              ) -> dict[str, np.ndarray]:
    """Full activation maps (N, H, W) float32 of a few units named `block:unit`."""
    keep: dict[str, list[int]] = {}
    counts = unit_counts(loaded)
    for uid in units:
        block, unit = model_unit(uid, counts)
        keep.setdefault(block, []).append(unit)
    device = loaded.device
    x = to_input(images_uint8, loaded)
    with reduction_hooks(loaded.blocks, keep) as rec, torch.inference_mode(), \
            autocast(device, dtype):
        prepare(loaded, device)(x)
        return {uid: rec.maps[uid].float().cpu().numpy() for uid in units}


# --- planning: which images each process computes ---------------------------------------------

def chunk_size_for(batch_size: int, chunk_images: int | None = None) -> int:
    """Images per store chunk: a multiple of the batch size, about CHUNK_TARGET_IMAGES."""
    if chunk_images is None:
        return batch_size * max(1, round(CHUNK_TARGET_IMAGES / batch_size))
    if chunk_images % batch_size:
        raise UsageError(f"--chunk-images {chunk_images} is not a multiple of --batch-size "
                         f"{batch_size}; choose a multiple")
    return chunk_images


def batches_of(chunks: Sequence[int], chunk_images: int, batch_size: int, n_images: int
               ) -> Iterator[list[int]]:
    """Image indices of each batch of these chunks; batches never straddle a chunk."""
    for chunk in chunks:
        end = min((chunk + 1) * chunk_images, n_images)
        for start in range(chunk * chunk_images, end, batch_size):
            yield list(range(start, min(start + batch_size, end)))


def my_chunks(pending: np.ndarray, d: distributed.Dist) -> list[int]:
    """This rank's share of the pending chunks: contiguous, disjoint ranges."""
    bounds = np.linspace(0, len(pending), d.world + 1).round().astype(int)
    return [int(c) for c in pending[bounds[d.rank]:bounds[d.rank + 1]]]


# --- the command ------------------------------------------------------------------------------

def versions() -> dict:
    """Versions of everything that can change the numbers."""
    import open_clip
    import zarr

    from interp import version

    return {"chromadissect": version(), "torch": torch.__version__,
            "open_clip": open_clip.__version__, "zarr": zarr.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def model_kwargs(settings: dict) -> dict:
    """`load_model` keyword arguments with the defaults filled in, as run.json records them."""
    from interp.models import DEFAULT_MODEL

    given = {k: v for k, v in settings.items() if v is not None}
    unknown = set(given) - set(MODEL_KEYS)
    if unknown:
        raise UsageError(f"unknown model setting(s) {sorted(unknown)}; use {', '.join(MODEL_KEYS)}")
    return {**DEFAULT_MODEL, **given}


def _record_settings(run: RunDir, loaded, model_settings: dict, stim: dict, dtype: str,
                     batch_size: int, chunk: int, seed: int) -> None:
    """Refuse a run directory holding other settings; record ours (rank 0, under the lock)."""
    run.check_settings("model", loaded.describe())
    run.check_settings("model_settings", model_settings)
    run.check_settings("stimuli", {name: s.spec() for name, s in stim.items()})
    run.check_settings("extract", {"dtype": dtype, "sets": {
        name: {"batch_size": batch_size, "chunk_images": chunk, "n_images": len(s)}
        for name, s in stim.items()}})
    reports = {name: s.report() for name, s in stim.items() if s.report()}
    run.update({"seeds": {"model": loaded.seed, "stimuli": seed}, "versions": versions(),
                "stimuli_report": reports, "stimuli": provenance(stim)})


def provenance(stim: dict) -> dict:
    """Where each set's images come from (the natural set: bundled photos + caveat, or a folder),
    merged into run.json's `stimuli.NAME`: a record, not a setting, so resumes never compare it."""
    return {name: s.provenance() for name, s in stim.items() if hasattr(s, "provenance")}


def _open_set(root, d: distributed.Dist, name: str, s, chunk: int, infos):
    """Rank 0 creates the set's arrays unless they are ready; every rank then opens them."""
    n = len(s)
    error = None
    if d.is_main and not store.set_is_ready(root, name, n, chunk):
        if name in root and root[name].attrs.get("ready"):
            error = UsageError(f"{name} in the store has other sizes than this command's; "
                               "use a new --run-dir")
        else:
            store.create_set(root, name, n, chunk, infos, s.labels(), s.label_names, s.spec())
    distributed.share_outcome(d, error)
    return root[name]


class _Loop:
    """Runs the batches of one set through the hooked model and hands whole chunks to the writer."""

    def __init__(self, fn, recorder: Recorder, loaded, infos, device, dtype: str) -> None:
        self.fn, self.recorder, self.loaded = fn, recorder, loaded
        self.infos, self.device, self.dtype = infos, device, dtype
        self.blocks = list(infos)

    def forward(self, images: torch.Tensor):
        """Forward one batch; returns its reductions on the way to the host (copy in flight:
        `split_blocks` waits for it)."""
        with torch.inference_mode(), autocast(self.device, self.dtype):
            self.fn(batch_to_input(images, self.loaded, self.device))
            return gather(self.recorder, self.blocks)

    def run(self, loader, writer: ChunkWriter, n: int, chunk: int, bar) -> int:
        """Every batch of the loader; the host side of batch k runs while batch k+1 computes.
        A batch's images are used until the next is taken (`RenderedBatches` keeps two)."""
        assembler, pending, done = None, None, 0
        for images, index in loader:
            current = (self.forward(images), int(index[0]), len(index))
            if pending is not None:
                assembler = self._collect(pending, assembler, writer, n, chunk)
            pending = current
            done += len(index)
            bar.update(len(index))
        if pending is not None:
            self._collect(pending, assembler, writer, n, chunk)
        return done

    def _collect(self, pending, assembler, writer, n, chunk):
        host, first, _count = pending
        c = first // chunk
        if assembler is None or assembler.chunk != c:
            assembler = ChunkAssembler(c, min(chunk, n - c * chunk))
        if assembler.add(split_blocks(host, self.infos)):
            writer.submit(c, assembler.arrays())
            return None
        return assembler


def _extract_set(loop: _Loop, g, d, s, name: str, chunk: int, batch_size: int,
                 threads: tuple[int, int], store_root: Path) -> dict:
    n = len(s)
    pending = np.flatnonzero(~store.completed_chunks(g))
    mine = my_chunks(pending, d)
    left = int(sum(min(chunk, n - c * chunk) for c in pending))
    log.info("%s: %d images, %d of %d chunks to do -> %s/%s", name, n, len(pending),
             -(-n // chunk), store_root, name)
    start = time.perf_counter()
    if mine:
        workers, writers = threads
        loader = RenderedBatches(s, list(batches_of(mine, chunk, batch_size, n)), workers,
                                 pin=loop.device.type == "cuda")
        chunks = store.ChunkStore(g)
        writer = ChunkWriter(chunks.write, threads=writers)
        bar = progress.bar(total=n, initial=n - left, unit="img", desc=f"extract {name}",
                           hide=not d.is_main)
        try:
            loop.run(loader, writer, n, chunk, bar)
            writer.close()  # raises if a write failed
        except BaseException:
            writer.abort()  # the chunks already queued are whole: let them land
            raise
        finally:
            bar.close()
            loader.close()
    distributed.barrier(d)
    seconds = time.perf_counter() - start
    return {"images": left, "seconds": round(seconds, 3),
            "images_per_s": round(left / seconds, 2) if left else None, "processes": d.world}


def extract(run_dir: str | os.PathLike, model_settings: dict | None = None,
            sets: Sequence[str] = DEFAULT_SETS,
            *, samples_per_combo: int = 500, limit: int | None = None,
            natural_dir: str | os.PathLike | None = None, batch_size: int = 64,
            device: str = "cpu", dtype: str = "float32", workers: int | None = None,
            writers: int | None = None, compile: bool = False, chunk_images: int | None = None,
            stimulus_seed: int = 0) -> Path:
    """Extract the reductions of every hooked block for `sets` into RUN/activations.zarr.

    `model_settings`: keyword arguments of `load_model` (model, pretrained, seed, layers).
    Resumable: completed chunks are skipped. Works as one process or under torchrun.
    `workers` render stimuli, `writers` compress and write chunks (defaults: `host_threads`).
    """
    from interp.models import load_model, resolve_device
    from stimuli import get_set

    dev = resolve_device(device)
    d, dev = distributed.init(dev)
    try:
        run = RunDir(run_dir)
        model_settings = model_kwargs(model_settings or {})
        chunk = chunk_size_for(batch_size, chunk_images)
        threads = host_threads(dev, d.world, workers, writers)
        with ExitStack() as stack:
            # the lock first: a second writer is refused before minutes of model loading
            on_main(d, lambda: stack.enter_context(run.lock()))
            loaded = load_model(**model_settings, device=dev)
            stim = {name: get_set(name, samples_per_combo=samples_per_combo,
                                  image_size=loaded.image_size, seed=stimulus_seed, limit=limit,
                                  natural_dir=natural_dir) for name in sets}
            on_main(d, lambda: _record_settings(run, loaded, model_settings, stim, dtype,
                                                batch_size, chunk, stimulus_seed))
            _extract_all(run, loaded, stim, d, dev, dtype, batch_size, chunk, threads, compile)
        return run.activations
    finally:
        distributed.finish(d)


def on_main(d: distributed.Dist, step) -> None:
    """Run `step` on rank 0 only; if it fails, every rank raises its error (none waits forever)."""
    error = None
    if d.is_main:
        try:
            step()
        except Exception as err:
            error = err
    distributed.share_outcome(d, error)


def _extract_all(run: RunDir, loaded, stim: dict, d, dev, dtype, batch_size, chunk, threads,
                 compile) -> None:
    infos = probe_blocks(loaded, dev)
    root = None
    if d.is_main:
        root = store.open_store(run.path, mode="a")
        root.attrs.update({"format": store.FORMAT})
    distributed.barrier(d)
    root = store.open_store(run.path, mode="r+")
    with reduction_hooks(loaded.blocks) as recorder:
        fn = prepare(loaded, dev, compile)
        loop = _Loop(fn, recorder, loaded, infos, dev, dtype)
        for name, s in stim.items():
            g = _open_set(root, d, name, s, chunk, infos)
            timing = _extract_set(loop, g, d, s, name, chunk, batch_size, threads, run.activations)
            if d.is_main:
                run.update({"timings": {"extract": {name: timing}}})
    if d.is_main:
        log.info("activations of %s are in %s", ", ".join(stim), run.activations)
