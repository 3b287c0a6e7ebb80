"""float16 overflow of the stored max and mean (CPU path): finite values beyond 65,504 are stored
as +-65,504 with one warning per block and run naming the largest; nan and inf stay as they are.
The same on a GPU is in test_gpu.py."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from interp.extract import extract, reduce_batch
from interp.hooks import gather, split_blocks
from interp.models import load_model
from interp.store import open_store
from tests.planted_loud import SETTINGS, handmade, stored_float16, unit


def overflow_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "interp.hooks" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_values_beyond_float16_are_clipped_with_one_warning_per_block(caplog, dtype):
    rec, infos = handmade(dtype=dtype)
    with caplog.at_level(logging.WARNING, logger="interp.hooks"):
        out = split_blocks(gather(rec, list(infos)), infos)
        again = split_blocks(gather(rec, list(infos)), infos)  # the next batch: no new warning
    for name, (mx, yx, mean) in out.items():
        r = rec.reductions[name]
        assert mx.dtype == mean.dtype == np.float16 and yx.dtype == np.uint8
        np.testing.assert_array_equal(mx, stored_float16(r.max.float().numpy()), err_msg=name)
        np.testing.assert_array_equal(mean, stored_float16(r.mean.numpy()), err_msg=name)
        for a, b in zip(out[name], again[name], strict=True):
            np.testing.assert_array_equal(a, b)
    mx, _, mean = out["hot"]
    assert (mx[:, 0] == 65504).all() and (mx[:, 1] == -65504).all() and (mx[:, 4] == 65504).all()
    assert np.isnan(mx[:, 2]).all() and np.isnan(mean[:, 2]).all()  # nan is not hidden
    assert np.isposinf(mx[:, 3]).all() and np.isneginf(mean[:, 3]).all()  # nor is inf
    assert (mean[:, 0] == 65504).all() and (mean[:, 1] == -65504).all()
    assert np.isfinite(out["calm"][0]).all()
    messages = overflow_warnings(caplog)
    assert len(messages) == 1, messages
    # 6 images x (max of units 0, 1, 4 + mean of units 0, 1) beyond the range, in units 0, 1, 4
    largest = "1.5e+06" if dtype == torch.float32 else "1.499e+06"  # 1.5e6 in bfloat16
    assert messages[0].startswith(f"hot: 30 max/mean values (3 units, in a batch of 6 images; "
                                  f"largest {largest}) exceed float16's 65,504 and were stored "
                                  "as 65,504"), messages[0]
    caplog.clear()
    rec.overflow_warned.clear()  # a new run (a new recorder) warns again
    with caplog.at_level(logging.WARNING, logger="interp.hooks"):
        split_blocks(gather(rec, list(infos)), infos)
    assert len(overflow_warnings(caplog)) == 1


def test_plain_float16_tuples_pass_through_unchanged():
    """bench/host.py hands split_blocks the GPU's dtypes as plain tuples: nothing to convert."""
    rec, infos = handmade()
    mx = torch.tensor(stored_float16(torch.cat([r.max for r in rec.reductions.values()], 1)))
    mean = torch.tensor(stored_float16(torch.cat([r.mean for r in rec.reductions.values()], 1)))
    index = torch.cat([r.argmax for r in rec.reductions.values()], 1)
    out = split_blocks((mx, index, mean), infos)
    assert np.shares_memory(out["hot"][0], mx.numpy())  # no conversion, no copy
    np.testing.assert_array_equal(out["hot"][2], mean.numpy()[:, 4:])


@pytest.mark.slow
def test_extraction_stores_65504_not_inf(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="interp.hooks"):
        extract(tmp_path, SETTINGS, ["stroop"], samples_per_combo=1, limit=32, batch_size=8,
                workers=0)  # 4 batches, one warning
    messages = overflow_warnings(caplog)
    assert len(messages) == 1, messages
    assert messages[0].startswith("loud: 32 max/mean values (2 units, in a batch of 8 images; "
                                  "largest 1.1e+06)"), messages
    g = open_store(tmp_path)["stroop"]
    mx, mean = g["loud"]["max"][:], g["loud"]["mean"][:]
    for kind in (mx, mean):
        assert (kind[:, unit("big")] == 65504).all() and (kind[:, unit("negative")] == -65504).all()
        assert np.isnan(kind[:, unit("nan")]).all() and np.isposinf(kind[:, unit("inf")]).all()
    quiet = g["quiet"]["max"][:]
    np.testing.assert_array_equal(mx[:, unit("plain")], quiet[:, 1])  # green, in range
    assert np.isfinite(quiet).all() and np.isfinite(g["quiet"]["mean"][:]).all()


def test_reduce_batch_clips_too(caplog):
    loaded = load_model(**SETTINGS)
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING, logger="interp.hooks"):
        out = reduce_batch(loaded, images)
    assert len(overflow_warnings(caplog)) == 1
    assert (out["loud"][0][:, unit("big")] == 65504).all()
