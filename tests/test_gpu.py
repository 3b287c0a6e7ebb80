"""The CUDA path against the CPU path, on the tiny model (seconds on a GPU; skipped without CUDA,
see conftest.py): gather's conversion on the device, float32/bfloat16/float16 extraction,
`compile=True`, pinned batches and asynchronous copies, bit-identical resume on the device, and
the float16 overflow guard. `bash bench/gpu.sh` runs them on the lent GPU machine."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch

from interp.api import Run
from interp.extract import _Loop, extract, reduce_batch
from interp.hooks import Recorder, Reduction, gather, split_blocks
from interp.models import load_model
from interp.rundir import RunDir
from interp.store import BlockInfo, open_store
from tests.planted_loud import SETTINGS as LOUD
from tests.planted_loud import handmade, stored_float16, unit

pytestmark = pytest.mark.gpu

TINY = {"model": "interp.models:tiny_clip", "pretrained": "none"}
STROOP = {**TINY, "sets": ["stroop"], "samples_per_combo": 1, "limit": 32, "batch_size": 16,
          "workers": 0}
SHAPES = {**TINY, "sets": ["shapes"], "samples_per_combo": 1, "limit": 64, "batch_size": 8,
          "chunk_images": 16, "workers": 0}  # 4 chunks of 2 batches


def arrays(run_dir, set_name: str) -> dict[str, np.ndarray]:
    g = open_store(run_dir)[set_name]
    out = {"complete": g["complete"][:]}
    for block in g.attrs["blocks"]:
        for kind in ("max", "argmax", "mean"):
            out[f"{block}/{kind}"] = g[block][kind][:]
    return out


def assert_close(got: np.ndarray, want: np.ndarray, tol: float, what: str) -> None:
    """Within `tol` of `want`, relative to each value and to the array's largest magnitude."""
    got, want = got.astype(np.float32), want.astype(np.float32)
    assert np.isfinite(got).all(), what
    scale = float(np.abs(want).max()) or 1.0
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def assert_runs_close(got: dict, want: dict, tol: float, argmax_agree: float | None) -> None:
    """max and mean within `tol`; (y, x) equal for at least `argmax_agree` of the units (near
    ties may flip under other rounding), None: not compared."""
    assert got.keys() == want.keys()
    np.testing.assert_array_equal(got["complete"], want["complete"])
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        if key.endswith("/argmax"):
            if argmax_agree is not None:
                same = (got[key] == want[key]).all(axis=-1).mean()
                assert same >= argmax_agree, f"{key}: (y, x) equal for only {same:.1%}"
        elif key != "complete":
            assert_close(got[key], want[key], tol, key)


@pytest.fixture(scope="module")
def cpu_stroop(tmp_path_factory) -> dict[str, np.ndarray]:
    """The float32 CPU store of the tiny model on 32 Stroop images: the reference."""
    run = tmp_path_factory.mktemp("cpu") / "run"
    Run(run).extract(**STROOP)
    return arrays(run, "stroop")


def overflow_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "interp.hooks" and r.levelno == logging.WARNING]


# --- gather on the device -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_gather_on_the_device_equals_the_cpu_conversion(caplog, dtype):
    cpu_rec, infos = handmade("cpu", dtype)
    gpu_rec, _ = handmade("cuda", dtype)
    host = gather(gpu_rec, list(infos))
    mx, yx, mean = host
    assert mx.dtype == mean.dtype == torch.float16 and yx.dtype == torch.uint8
    assert yx.shape == (6, 10, 2) and host.ready is not None
    assert all(t.device.type == "cpu" and t.is_pinned() for t in (*host, host.overflow))
    with caplog.at_level(logging.WARNING, logger="interp.hooks"):
        gpu = split_blocks(host, infos)
        gpu_messages = overflow_warnings(caplog)
        cpu = split_blocks(gather(cpu_rec, list(infos)), infos)
    for name in infos:
        for kind, a, b in zip(("max", "argmax", "mean"), gpu[name], cpu[name], strict=True):
            assert a.dtype == b.dtype, (name, kind)
            np.testing.assert_array_equal(a, b, err_msg=f"{name}/{kind}")
    hot_max, _, hot_mean = gpu["hot"]
    if dtype != torch.float16:  # float16 blocks hold inf themselves, which stays inf
        np.testing.assert_array_equal(hot_max, stored_float16(cpu_rec.reductions["hot"].max
                                                              .float().numpy()))
        assert (hot_max[:, 4] == 65504).all()  # 7e4: a bfloat16 bound of 65,504 would give inf
    assert (hot_mean[:, 0] == 65504).all() and np.isnan(hot_mean[:, 2]).all()
    messages = overflow_warnings(caplog)
    assert len(gpu_messages) == 1 and gpu_messages[0].startswith("hot: ")
    assert messages == gpu_messages * 2, messages  # the same words from either path


def test_gather_on_the_device_converts_large_maps_to_uint16():
    n, c, shape = 3, 5, (300, 4)  # a side above 256: int32 (y, x) on the device, uint16 stored
    g = torch.Generator().manual_seed(0)
    r = Reduction(torch.rand(n, c, generator=g), torch.randint(0, 1200, (n, c), generator=g),
                  torch.rand(n, c, generator=g), shape)
    infos = {"wide": BlockInfo(c, shape)}
    out = {}
    for device in ("cpu", "cuda"):
        rec = Recorder()
        rec.reductions["wide"] = Reduction(r.max.to(device), r.argmax.to(device),
                                           r.mean.to(device), shape)
        out[device] = split_blocks(gather(rec, ["wide"]), infos)["wide"]
    assert out["cuda"][1].dtype == np.uint16
    for a, b in zip(out["cuda"], out["cpu"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_split_blocks_waits_for_the_asynchronous_copies():
    cpu_rec, infos = handmade("cpu")
    gpu_rec, _ = handmade("cuda")
    slow = torch.randn(4096, 4096, device="cuda")
    for _ in range(20):  # tens of ms of queued work that the reductions then depend on
        slow = torch.tanh(slow @ slow)
    for r in gpu_rec.reductions.values():
        r.max.add_(slow[0, 0] * 0)  # + 0: nan and inf stay as they are
    gpu = split_blocks(gather(gpu_rec, list(infos)), infos)  # no synchronize() by the caller
    cpu = split_blocks(gather(cpu_rec, list(infos)), infos)
    for name in infos:
        for a, b in zip(gpu[name], cpu[name], strict=True):
            np.testing.assert_array_equal(a, b)


def test_reduce_batch_on_the_device_close_to_cpu():
    images = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    cpu = reduce_batch(load_model(**TINY), images)
    gpu = reduce_batch(load_model(**TINY, device="cuda"), images)
    for name, (mx, _yx, mean) in cpu.items():
        assert_close(gpu[name][0], mx, 1e-2, f"{name}/max")
        assert_close(gpu[name][2], mean, 1e-2, f"{name}/mean")


# --- extraction on the device -------------------------------------------------------------------

@pytest.mark.parametrize("dtype, tol", [("float32", 1e-2), ("bfloat16", 1e-1), ("float16", 5e-2)])
def test_extraction_on_the_device_close_to_float32_cpu(tmp_path, cpu_stroop, dtype, tol):
    """float32 runs TF32 convolutions where cuDNN allows; bfloat16/float16 run under autocast."""
    Run(tmp_path).extract(**STROOP, device="cuda", dtype=dtype)
    assert RunDir(tmp_path).read()["extract"]["dtype"] == dtype
    assert_runs_close(arrays(tmp_path, "stroop"), cpu_stroop, tol,
                      0.9 if dtype == "float32" else None)


def test_batches_arrive_pinned_and_copies_land(tmp_path, monkeypatch, cpu_stroop):
    seen, forward = [], _Loop.forward

    def spy(self, images):
        host = forward(self, images)
        seen.append((images.is_pinned(), all(t.is_pinned() for t in host), host.ready is not None))
        return host

    monkeypatch.setattr(_Loop, "forward", spy)
    Run(tmp_path).extract(**{**STROOP, "workers": 2}, device="cuda")  # the ring, page-locked
    assert seen == [(True, True, True)] * 2, seen
    assert_runs_close(arrays(tmp_path, "stroop"), cpu_stroop, 1e-2, 0.9)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_resume_on_the_device_is_bit_identical(tmp_path, dtype):
    options = {**SHAPES, "device": "cuda", "dtype": dtype}
    Run(tmp_path).extract(**options)
    first = arrays(tmp_path, "shapes")
    assert first["complete"].tolist() == [1, 1, 1, 1]
    store = RunDir(tmp_path).activations / "shapes"
    (store / "complete" / "c" / "1").unlink()  # chunk 1: no mark, no data
    for block in open_store(tmp_path)["shapes"].attrs["blocks"]:
        for kind in ("max", "argmax", "mean"):
            shutil.rmtree(store / block / kind / "c" / "1")
    assert arrays(tmp_path, "shapes")["complete"].tolist() == [1, 0, 1, 1]
    Run(tmp_path).extract(**options)
    assert RunDir(tmp_path).read()["timings"]["extract"]["shapes"]["images"] == 16
    second = arrays(tmp_path, "shapes")
    assert second.keys() == first.keys()
    for key in first:
        assert second[key].dtype == first[key].dtype, key
        assert second[key].tobytes() == first[key].tobytes(), key


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_overflow_guard_on_the_device(tmp_path, caplog, dtype):
    options = {"samples_per_combo": 1, "limit": 32, "batch_size": 8, "workers": 0}
    with caplog.at_level(logging.WARNING, logger="interp.hooks"):
        extract(tmp_path / "gpu", LOUD, ["stroop"], **options, device="cuda", dtype=dtype)
    messages = overflow_warnings(caplog)
    assert len(messages) == 1, messages  # 4 batches, one warning
    assert messages[0].startswith("loud: 32 max/mean values (2 units, in a batch of 8 images; "
                                  "largest 1.1e+06)"), messages
    extract(tmp_path / "cpu", LOUD, ["stroop"], **options)
    gpu, cpu = arrays(tmp_path / "gpu", "stroop"), arrays(tmp_path / "cpu", "stroop")
    for kind in ("max", "mean"):
        values = gpu[f"loud/{kind}"]
        assert (values[:, unit("big")] == 65504).all()
        assert (values[:, unit("negative")] == -65504).all()
        assert np.isnan(values[:, unit("nan")]).all()
        assert np.isposinf(values[:, unit("inf")]).all()
        assert_close(values[:, unit("plain")], cpu[f"loud/{kind}"][:, unit("plain")], 1e-3,
                     f"loud/{kind}")


# last: the slowest (compilation), so a time limit on the whole file stops it first

def test_compiled_extraction_close_to_uncompiled(tmp_path):
    options = {**STROOP, "device": "cuda", "dtype": "bfloat16"}
    Run(tmp_path / "eager").extract(**options)
    Run(tmp_path / "compiled").extract(**options, compile=True)
    assert_runs_close(arrays(tmp_path / "compiled", "stroop"), arrays(tmp_path / "eager", "stroop"),
                      5e-2, 0.9)
