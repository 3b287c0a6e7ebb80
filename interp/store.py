"""The activation store `RUN/activations.zarr` (zarr v3): layout, chunk writes, completion marks.

Layout (docs/formats.md): `{set}/labels/{kind}` (images,), `{set}/{block}/max|mean`
(images, units) float16, `{set}/{block}/argmax` (images, units, 2) uint8 (y, x), and
`{set}/complete` (chunks,) uint8: 1 once every array of that chunk of images is durable.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec
from zarr.codecs.bytes import Endian
from zarr.storage import LocalStore

from interp.errors import ChromaError
from interp.rundir import RunDir

FORMAT = "chromadissect-activations/1"
#: lz4 over bit-shuffled values: 19x faster to write than zstd-3 (0.08 vs 1.5 ms per RN50 image
#: per core), faster to read, for 3% more disk (59.7 vs 57.9 GB at paper scale; docs/formats.md)
COMPRESSOR = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")
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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse fsync on directories
        _fsync(path)


_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


class ChunkFile:
    """Writes whole chunks of one array as files, encoded as zarr itself would encode them.

    zarr's own `arr[a:b] = values` spends most of a chunk write in Python (about 2 ms per array
    here); this encodes with numcodecs' Blosc (the GIL released, so writer threads run in
    parallel), writes the file and fsyncs it. Only for arrays whose codecs are little-endian
    bytes + blosc and whose store is a local folder; `for_array` gives None for any other,
    which then go through zarr. tests/test_store.py checks the files are byte-identical to zarr's.
    """

    def __init__(self, arr: zarr.Array, blosc: numcodecs.Blosc) -> None:
        self.arr, self.root, self.blosc = arr, Path(arr.store.root) / arr.path, blosc
        self.chunk_shape = arr.metadata.chunk_grid.chunk_shape
        self.dtype = arr.dtype

    @classmethod
    def for_array(cls, arr: zarr.Array) -> ChunkFile | None:
        codecs = arr.metadata.codecs
        if sys.byteorder != "little" or len(codecs) != 2:
            return None
        raw, blosc = codecs
        if not (isinstance(arr.store, LocalStore) and isinstance(raw, BytesCodec)
                and raw.endian in (None, Endian.little) and isinstance(blosc, BloscCodec)):
            return None
        return cls(arr, numcodecs.Blosc(
            cname=blosc.cname.value, clevel=blosc.clevel, shuffle=_SHUFFLE[blosc.shuffle.value],
            blocksize=blosc.blocksize, typesize=blosc.typesize))

    def put(self, chunk: int, values: np.ndarray) -> None:
        """Chunk `chunk` along the first axis (whole along the others), durable on return."""
        values = np.asarray(values, dtype=self.dtype)
        if values.shape[1:] != tuple(self.chunk_shape[1:]) or len(values) > self.chunk_shape[0]:
            raise ValueError(f"{self.arr.path}: chunk of shape {values.shape}, expected "
                             f"{tuple(self.chunk_shape)}")
        if len(values) < self.chunk_shape[0]:  # the edge chunk: stored whole, padded with fill
            full = np.full(self.chunk_shape, self.arr.fill_value, dtype=self.dtype)
            full[:len(values)] = values
            values = full
        key = self.arr.metadata.encode_chunk_key((chunk,) + (0,) * (values.ndim - 1))
        path = self.root / key
        new_folders = _missing_folders(path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.blosc.encode(np.ascontiguousarray(values))
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # the file's folder holds its new entry; each folder made above, an entry in its parent
        for folder in [path.parent] + [f.parent for f in new_folders]:
            _fsync_dir(folder)


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


class ChunkStore:
    """Writes whole chunks of one set, every array of a chunk from the calling thread: chunks are
    written in parallel by the writer's threads, each thread owning whole chunks."""

    def __init__(self, set_group: zarr.Group) -> None:
        self.files = {
            (block, kind): _chunk_writer(set_group[block][kind])
            for block in set_group.attrs["blocks"] for kind in ("max", "argmax", "mean")
        }
        self.mark = _chunk_writer(set_group["complete"])

    def write(self, chunk: int, data: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
              ) -> None:
        """Write one whole chunk of every block, make it durable, then set its completion mark."""
        for block, arrays in data.items():
            for kind, values in zip(("max", "argmax", "mean"), arrays, strict=True):
                self.files[block, kind](chunk, values)
        self.mark(chunk, np.ones(1, np.uint8))  # only once every array above is fsynced


def _chunk_writer(arr: zarr.Array):
    """`put(chunk, values)` for one array: the direct file path where it applies, else zarr's
    (fsynced where the store is a local folder)."""
    direct = ChunkFile.for_array(arr)
    if direct is not None:
        return direct.put
    arr = arr.with_config(WRITE_CONFIG)
    size = arr.metadata.chunk_grid.chunk_shape[0]
    local = isinstance(arr.store, LocalStore)

    def put(chunk: int, values: np.ndarray) -> None:
        arr[chunk * size:chunk * size + len(values)] = values
        if local:
            _fsync_tree(Path(arr.store.root) / arr.path / "c" / str(chunk))

    return put


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


def write_chunk(set_group: zarr.Group, chunk: int,
                data: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """Write one whole chunk of every block, make it durable, then set its completion mark."""
    ChunkStore(set_group).write(chunk, data)


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
