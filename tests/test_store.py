"""The activation store: layout, whole-chunk writes, completion marks, third-party readers."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from interp import store
from interp.rundir import RunDir

BLOCKS = {"layer1.0": store.BlockInfo(6, (8, 8)), "layer2.0": store.BlockInfo(4, (4, 4))}


def chunk_data(rng, n: int) -> dict:
    return {
        b: (rng.random((n, i.n_units)).astype(np.float16),
            rng.integers(0, 4, (n, i.n_units, 2)).astype(np.uint8),
            rng.random((n, i.n_units)).astype(np.float16))
        for b, i in BLOCKS.items()
    }


@pytest.fixture
def filled(tmp_path):
    """A store of 10 images in chunks of 4, with chunks 0 and 2 (the short last one) written."""
    root = store.open_store(tmp_path, mode="a")
    labels = {"shape": np.arange(10) % 3, "scale": np.linspace(0, 1, 10)}
    g = store.create_set(root, "shapes", 10, 4, BLOCKS, labels, {"shape": ("a", "b", "c")},
                         {"name": "shapes"})
    rng = np.random.default_rng(0)
    written = {0: chunk_data(rng, 4), 2: chunk_data(rng, 2)}
    for c, data in written.items():
        store.write_chunk(g, c, data)
    return tmp_path, written


def test_marks_only_for_written_chunks(filled):
    run, _ = filled
    g = store.open_store(run)["shapes"]
    assert store.completed_chunks(g).tolist() == [True, False, True]
    assert store.set_is_ready(store.open_store(run), "shapes", 10, 4)
    assert not store.set_is_ready(store.open_store(run), "shapes", 10, 8)


def test_plain_zarr_reads_layout(filled):
    run, written = filled
    root = zarr.open_group(RunDir(run).activations, mode="r")
    b = root["shapes/layer1.0"]
    assert b.attrs["map_shape"] == [8, 8] and b.attrs["n_units"] == 6
    assert b["max"].dtype == np.float16 and b["argmax"].dtype == np.uint8
    assert b["max"].shape == (10, 6) and b["max"].chunks == (4, 6)
    assert b["argmax"].metadata.dimension_names == ("images", "units", "yx")
    np.testing.assert_array_equal(b["max"][0:4], written[0]["layer1.0"][0])
    np.testing.assert_array_equal(b["argmax"][8:10], written[2]["layer1.0"][1])
    np.testing.assert_array_equal(b["mean"][4:8], 0)  # not written: fill value
    lab = root["shapes/labels/shape"]
    assert lab.attrs["names"] == ["a", "b", "c"]
    np.testing.assert_array_equal(lab[:], np.arange(10) % 3)
    assert store.block_names(store.open_store(run), "shapes") == ["layer1.0", "layer2.0"]


def test_xarray_and_dask_read_dimension_names(filled):
    import dask.array as da
    import xarray as xr

    run, written = filled
    path = RunDir(run).activations
    ds = xr.open_zarr(path, group="shapes/layer2.0", consolidated=False)
    assert ds["max"].dims == ("images", "units")
    assert ds["argmax"].dims == ("images", "units", "yx")
    assert ds["max"].attrs["units"].startswith("block output activation")
    np.testing.assert_array_equal(ds["mean"].values[:4], written[0]["layer2.0"][2])
    labels = xr.open_dataset(path, group="shapes/labels", engine="zarr", consolidated=False)
    assert labels["scale"].dims == ("images",)
    lazy = da.from_zarr(zarr.open_array(path, path="shapes/layer1.0/max", mode="r"))
    assert float(lazy[:4].max().compute()) == float(written[0]["layer1.0"][0].max())


def test_written_chunks_exist_even_when_all_zero(tmp_path):
    root = store.open_store(tmp_path, mode="a")
    g = store.create_set(root, "s", 4, 4, BLOCKS, {"k": np.zeros(4)}, {}, {})
    zeros = {b: tuple(np.zeros_like(a) for a in arrs)
             for b, arrs in chunk_data(np.random.default_rng(0), 4).items()}
    store.write_chunk(g, 0, zeros)
    assert (RunDir(tmp_path).activations / "s/layer1.0/max/c/0/0").is_file()
    assert (RunDir(tmp_path).activations / "s/complete/c/0").is_file()


def test_open_missing_store_says_what_to_run(tmp_path):
    from interp.errors import ChromaError

    with pytest.raises(ChromaError, match="chromadissect extract"):
        store.open_store(tmp_path)


def _zarr_written_twin(tmp_path, name: str, shape, chunks, dtype, values, chunk: int):
    """The same array written by zarr itself; returns (ours, zarr's) chunk file bytes."""
    root = zarr.open_group(tmp_path / name, mode="a")
    arrays = [store._array(root, kind, shape, chunks, dtype, ("images", "units", "yx")[:len(shape)],
                           "u") for kind in ("direct", "zarr")]
    writer = store.ChunkFile.for_array(arrays[0])
    assert writer is not None
    writer.put(chunk, values)
    arrays[1][chunk * chunks[0]:chunk * chunks[0] + len(values)] = values
    key = arrays[0].metadata.encode_chunk_key((chunk,) + (0,) * (len(shape) - 1))
    return [(tmp_path / name / a.path / key).read_bytes() for a in arrays], arrays


@pytest.mark.parametrize("dtype,shape,chunks", [
    (np.float16, (10, 7), (4, 7)),
    (np.uint8, (10, 7, 2), (4, 7, 2)),
])
@pytest.mark.parametrize("chunk,n", [(0, 4), (2, 2)])  # a whole chunk and the short edge one
def test_direct_chunk_files_are_zarrs_own_bytes(tmp_path, dtype, shape, chunks, chunk, n):
    rng = np.random.default_rng(1)
    values = (rng.random((n, *shape[1:])) * 50).astype(dtype)
    (ours, theirs), arrays = _zarr_written_twin(tmp_path, "z", shape, chunks, dtype, values, chunk)
    assert ours == theirs
    start = chunk * chunks[0]
    np.testing.assert_array_equal(arrays[0][start:start + n], values)


def test_other_codecs_are_written_through_zarr(tmp_path):
    root = zarr.open_group(tmp_path, mode="a")
    arr = root.create_array("x", shape=(8, 3), chunks=(4, 3), dtype=np.float32, fill_value=0,
                            compressors=zarr.codecs.ZstdCodec(level=1))
    assert store.ChunkFile.for_array(arr) is None
    put = store._chunk_writer(arr)
    put(1, np.ones((4, 3), np.float32))
    np.testing.assert_array_equal(arr[4:], 1)
