"""End to end on the tiny model: resume after kill -9, failed writes, reruns, torchrun = 1 process.

All runs use one thread per process: CPU kernels may round differently with other thread counts,
and bit-identical results are promised for the same execution settings.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from interp import store
from interp.errors import ChromaError
from interp.extract import extract
from interp.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
N, BATCH, CHUNK = 96, 8, 16  # 6 chunks of 2 batches
ARGS = ["--model", "interp.models:tiny_clip", "--pretrained", "none", "--sets", "shapes",
        "--samples-per-combo", "1", "--limit", str(N), "--batch-size", str(BATCH),
        "--chunk-images", str(CHUNK), "--workers", "0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def run_in_process(run_dir: Path, **overrides) -> Path:
    kwargs = dict(samples_per_combo=1, limit=N, batch_size=BATCH, chunk_images=CHUNK, workers=0)
    kwargs.update(overrides)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return extract(run_dir, {"model": "interp.models:tiny_clip", "pretrained": "none"},
                       ["shapes"], **kwargs)
    finally:
        torch.set_num_threads(threads)


def arrays(run_dir: Path) -> dict[str, np.ndarray]:
    g = zarr.open_group(RunDir(run_dir).activations, mode="r")["shapes"]
    out = {"complete": g["complete"][:]}
    for block in g.attrs["blocks"]:
        for kind in ("max", "argmax", "mean"):
            out[f"{block}/{kind}"] = g[block][kind][:]
    return out


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert a[key].dtype == b[key].dtype


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("reference")
    run_in_process(run)
    return run


@pytest.fixture(scope="module")
def reference(reference_run) -> dict[str, np.ndarray]:
    return arrays(reference_run)


@pytest.mark.slow
def test_reference_is_complete_and_readable_by_xarray(reference_run, reference):
    import xarray as xr

    assert reference["complete"].tolist() == [1] * (N // CHUNK)
    assert (reference["layer1.0/max"] > 0).mean() > 0.5
    ds = xr.open_zarr(RunDir(reference_run).activations, group="shapes/layer3.0",
                      consolidated=False)
    assert ds["argmax"].dims == ("images", "units", "yx") and ds.attrs["map_shape"] == [4, 4]
    np.testing.assert_array_equal(ds["max"].values, reference["layer3.0/max"])
    labels = xr.open_zarr(RunDir(reference_run).activations, group="shapes/labels",
                          consolidated=False)
    assert labels["obj_color"].dims == ("images",) and labels.sizes["images"] == N


@pytest.mark.slow
def test_resume_after_kill_9_is_bit_identical(tmp_path, reference):
    cmd = [sys.executable, "-m", "interp.cli", "extract", "--run-dir", str(tmp_path), *ARGS]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marks = RunDir(tmp_path).activations / "shapes/complete/c"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if marks.is_dir() and sum(p.name.isdigit() for p in marks.iterdir()) >= 2:  # not temp files
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = store.completed_chunks(store.open_store(tmp_path)["shapes"])
    assert 2 <= done.sum() < len(done), f"kill came too late or too early: {done}"
    run_in_process(tmp_path)  # the kernel freed the killed run's lock: this one does the rest
    assert_identical(arrays(tmp_path), reference)
    timing = RunDir(tmp_path).read()["timings"]["extract"]["shapes"]
    assert timing["images"] == N - CHUNK * int(done.sum())


@pytest.mark.slow
def test_failed_write_stops_with_clear_error_and_resumes(tmp_path, reference, monkeypatch):
    real_put, calls = store.ChunkFile.put, []

    def failing(self, chunk, values):
        calls.append(chunk)
        if chunk == 2 and self.arr.path.endswith("layer3.0/mean"):
            raise OSError(28, "No space left on device")
        real_put(self, chunk, values)

    monkeypatch.setattr(store.ChunkFile, "put", failing)
    with pytest.raises(ChromaError, match="No space left.*rerun the same command to resume"):
        run_in_process(tmp_path)
    with RunDir(tmp_path).lock():  # released on the error
        pass
    assert 2 in calls
    monkeypatch.setattr(store.ChunkFile, "put", real_put)
    assert store.completed_chunks(store.open_store(tmp_path)["shapes"]).sum() == 2
    run_in_process(tmp_path)
    assert_identical(arrays(tmp_path), reference)


@pytest.mark.slow
def test_rerun_skips_and_other_settings_are_refused(tmp_path, reference):
    run_in_process(tmp_path, limit=2 * CHUNK)
    before = (RunDir(tmp_path).activations / "shapes/layer1.0/max/c/0/0").stat().st_mtime_ns
    run_in_process(tmp_path, limit=2 * CHUNK)
    assert RunDir(tmp_path).read()["timings"]["extract"]["shapes"]["images"] == 0
    assert (RunDir(tmp_path).activations / "shapes/layer1.0/max/c/0/0").stat().st_mtime_ns == before
    with pytest.raises(ChromaError, match=r"stimuli\.shapes\.samples_per_combo \(run has 1"):
        run_in_process(tmp_path, limit=2 * CHUNK, samples_per_combo=2)
    with pytest.raises(ChromaError, match=r"extract\.dtype \(run has 'float32'"):
        run_in_process(tmp_path, limit=2 * CHUNK, dtype="bfloat16")
    np.testing.assert_array_equal(arrays(tmp_path)["layer4.0/max"],
                                  reference["layer4.0/max"][: 2 * CHUNK])


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed next to python")
@pytest.mark.slow
def test_torchrun_two_ranks_equal_one_process(tmp_path, reference):
    torchrun = str(Path(sys.executable).parent / "torchrun")
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "interp.cli", "extract",
           "--run-dir", str(tmp_path), *ARGS]
    result = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_identical(arrays(tmp_path), reference)
    assert RunDir(tmp_path).read()["timings"]["extract"]["shapes"]["processes"] == 2
