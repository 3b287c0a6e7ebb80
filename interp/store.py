"""The activation store `RUN/activations.zarr` (zarr v3): layout, chunk writes, completion marks.

Layout (docs/formats.md): `{set}/labels/{kind}` (images,), `{set}/{block}/max|mean`
(images, units) float16, `{set}/{block}/argmax` (images, units, 2) uint8 (y, x), and
`{set}/complete` (chunks,) uint8: 1 once every array of that chunk of images is durable.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from interp.errors import ChromaError
from interp.rundir import RunDir

FORMAT = "chromadissect-activations/1"
COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
WRITE_CONFIG = {"write_empty_chunks": True}  # a chunk equal to the fill value is still written
VALUE_DTYPE = np.float16


@dataclass(frozen=True)
class BlockInfo:
    """What the store needs to know about one hooked block."""

    n_units: int
    map_shape: tuple[int, int]

    @property
    def argmax_dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if max(self.map_shape) <= 256 else np.uint16)


def open_store(run_dir: str | os.PathLike, mode: str = "r") -> zarr.Group:
    """The run's activation store; read-only by default."""
    path = RunDir(run_dir).activations
    if mode == "r" and not (path / "zarr.json").exists():
        raise ChromaError(f"{path} does not exist; run `chromadissect extract --run-dir {run_dir}`")
    return zarr.open_group(path, mode=mode)


def block_names(group: zarr.Group, set_name: str) -> list[str]:
    """Hooked blocks of a set, in the model's order."""
    return list(group[set_name].attrs["blocks"])


def _array(group: zarr.Group, name: str, shape, chunks, dtype, dims, units: str) -> zarr.Array:
    arr = group.create_array(
        name, shape=shape, chunks=chunks, dtype=dtype, fill_value=0, dimension_names=dims,
        compressors=COMPRESSOR, config=WRITE_CONFIG, overwrite=True,
    )
    arr.attrs["units"] = units
    return arr


def create_set(
    root: zarr.Group,
    set_name: str,
    n_images: int,
    chunk_images: int,
    blocks: Mapping[str, BlockInfo],
    labels: Mapping[str, np.ndarray],
    label_names: Mapping[str, tuple[str, ...]],
    spec: dict,
) -> zarr.Group:
    """(Re)create the arrays of one set; `ready` is set last so a killed creation is redone."""
    g = root.require_group(set_name)
    g.attrs.update({"ready": False})
    lab = g.require_group("labels")
    for kind, values in labels.items():
        values = np.asarray(values)
        arr = lab.create_array(
            kind, shape=values.shape, chunks=(max(1, min(len(values), 1 << 16)),),
            dtype=values.dtype, fill_value=0, dimension_names=("images",),
            compressors=COMPRESSOR, config=WRITE_CONFIG, overwrite=True,
        )
        arr[:] = values
        if kind in label_names:
            arr.attrs["names"] = list(label_names[kind])
    for name, info in blocks.items():
        b = g.require_group(name)
        b.attrs.update({"map_shape": list(info.map_shape), "n_units": info.n_units})
        shape, chunks = (n_images, info.n_units), (chunk_images, info.n_units)
        unit = "block output activation"
        _array(b, "max", shape, chunks, VALUE_DTYPE, ("images", "units"), f"{unit} (spatial max)")
        _array(b, "mean", shape, chunks, VALUE_DTYPE, ("images", "units"), f"{unit} (spatial mean)")
        _array(b, "argmax", (*shape, 2), (*chunks, 2), info.argmax_dtype,
               ("images", "units", "yx"), "position (y, x) of the max in the block's map")
    n_chunks = -(-n_images // chunk_images)
    _array(g, "complete", (n_chunks,), (1,), np.uint8, ("chunks",),
           f"1 when images [i*{chunk_images}, (i+1)*{chunk_images}) are durable")
    g.attrs.update({"blocks": list(blocks), "n_images": n_images, "chunk_images": chunk_images,
                    "spec": spec, "format": FORMAT})
    g.attrs.update({"ready": True})
    return g


def set_is_ready(root: zarr.Group, set_name: str, n_images: int, chunk_images: int) -> bool:
    """True when the set's arrays exist with this size and chunking."""
    if set_name not in root:
        return False
    attrs = root[set_name].attrs
    return bool(attrs.get("ready")) and attrs.get("n_images") == n_images \
        and attrs.get("chunk_images") == chunk_images


def completed_chunks(set_group: zarr.Group) -> np.ndarray:
    """Boolean mask over the set's chunks: True where the completion mark is present."""
    return set_group["complete"][:].astype(bool)


def _fsync_tree(path: Path) -> None:
    """fsync every file under `path` and the directories holding them."""
    if path.is_file():
        _fsync(path)
        _fsync_dir(path.parent)
        return
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            _fsync(Path(dirpath) / name)
        _fsync_dir(Path(dirpath))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse fsync on directories
        _fsync(path)


def _chunk_dir(store_root: Path, arr: zarr.Array, chunk: int) -> Path:
    return store_root / arr.path / "c" / str(chunk)


class ChunkStore:
    """Writes whole chunks of one set: arrays opened once, written and fsynced in parallel."""

    def __init__(self, set_group: zarr.Group, store_root: Path, threads: int = 8) -> None:
        self.root, self.size = Path(store_root), set_group.attrs["chunk_images"]
        self.arrays = {
            (block, kind): set_group[block][kind].with_config(WRITE_CONFIG)
            for block in set_group.attrs["blocks"] for kind in ("max", "argmax", "mean")
        }
        self.mark = set_group["complete"].with_config(WRITE_CONFIG)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="chunk-store")

    def _put(self, arr: zarr.Array, chunk: int, values: np.ndarray) -> None:
        start = chunk * self.size
        arr[start:start + len(values)] = values
        _fsync_tree(_chunk_dir(self.root, arr, chunk))

    def write(self, chunk: int, data: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
              ) -> None:
        """Write one whole chunk of every block, make it durable, then set its completion mark."""
        jobs = [
            self.pool.submit(self._put, self.arrays[block, kind], chunk, values)
            for block, arrays in data.items()
            for kind, values in zip(("max", "argmax", "mean"), arrays, strict=True)
        ]
        for job in jobs:
            job.result()  # re-raises a failed write; the mark is then never set
        self.mark[chunk] = 1
        _fsync_tree(_chunk_dir(self.root, self.mark, chunk))

    def close(self) -> None:
        self.pool.shutdown()


def write_chunk(
    set_group: zarr.Group,
    store_root: Path,
    chunk: int,
    data: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    """Write one whole chunk of every block, make it durable, then set its completion mark."""
    chunks = ChunkStore(set_group, store_root)
    try:
        chunks.write(chunk, data)
    finally:
        chunks.close()


def to_xarray(run_dir: str | os.PathLike, set_name: str, blocks=None):
    """One set as a lazy xarray Dataset over dask arrays: `max_B`/`mean_B` (image, unit) and
    `argmax_B` (image, unit, yx) per block B, labels as `image` coordinates (category names
    where the kind has names). Only completed chunks hold data (`complete` per chunk)."""
    import dask.array as da
    import xarray as xr

    root = open_store(run_dir)
    if set_name not in root:
        raise ChromaError(f"{set_name} is not in {Path(run_dir) / 'activations.zarr'}; extract it "
                          f"first or choose among {', '.join(sorted(root.group_keys()))}")
    g = root[set_name]
    names = block_names(root, set_name)
    unknown = sorted(set(blocks or ()) - set(names))
    if unknown:
        raise ChromaError(f"unknown block(s) {', '.join(unknown)}; blocks: {', '.join(names)}")
    variables = {}
    for block in blocks or names:
        dims = ("image", f"unit_{block}")
        for kind in ("max", "mean"):
            variables[f"{kind}_{block}"] = (dims, da.from_zarr(g[block][kind]))
        variables[f"argmax_{block}"] = ((*dims, "yx"), da.from_zarr(g[block]["argmax"]))
    coords = {}
    for kind, arr in g["labels"].arrays():
        values, names_of = arr[:], arr.attrs.get("names")
        coords[kind] = ("image", np.asarray(names_of, dtype=object)[values] if names_of
                        else values)
    return xr.Dataset(variables, coords=coords,
                      attrs={"set": set_name, "complete": completed_chunks(g).tolist()})
