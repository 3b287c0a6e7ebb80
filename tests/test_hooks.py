"""Hook reductions against a direct computation on the full maps of the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.extract import reduce_batch, unit_maps
from interp.hooks import flat_to_yx, reduce_map, reduction_hooks
from interp.inputs import to_input


def full_maps(loaded, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Every block's full output map, cloned inside a plain hook."""
    maps, handles = {}, []
    for name, module in loaded.blocks.items():
        def keep(_m, _i, out, name=name):
            maps[name] = out.detach().clone().float().numpy()
        handles.append(module.register_forward_hook(keep))
    try:
        with torch.inference_mode():
            loaded.visual(x)
    finally:
        for h in handles:
            h.remove()
    return maps


def direct(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spatial max, (y, x) of the first max in row-major order, mean, with numpy."""
    n, c, h, w = m.shape
    flat = m.reshape(n, c, h * w)
    idx = flat.argmax(axis=2)
    return flat.max(axis=2), np.stack([idx // w, idx % w], axis=-1), flat.mean(axis=2)


def check_against_direct(loaded, x: torch.Tensor, channels_last: bool) -> None:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    loaded.visual.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    try:
        maps = full_maps(loaded, x)
        with reduction_hooks(loaded.blocks) as rec, torch.inference_mode():
            loaded.visual(x)
    finally:
        loaded.visual.to(memory_format=torch.contiguous_format)
    for name, m in maps.items():
        r = rec.reductions[name]
        mx, yx, mean = direct(m)
        assert r.map_shape == m.shape[2:]
        np.testing.assert_array_equal(r.max.numpy(), mx)
        np.testing.assert_array_equal(flat_to_yx(r.argmax, m.shape[3], torch.int64).numpy(), yx)
        np.testing.assert_allclose(r.mean.numpy(), mean, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("channels_last", [False, True])
def test_reductions_equal_direct_computation(tiny_loaded, channels_last):
    torch.manual_seed(1)
    x = torch.randn(5, 3, 64, 64)
    check_against_direct(tiny_loaded, x, channels_last)


def test_ties_go_to_first_position_in_both_layouts():
    m = torch.zeros(2, 3, 4, 5)
    m[0, 0, 1, 2] = m[0, 0, 3, 0] = 7.0  # tie: (1, 2) comes first
    m[1, 2, 2, 4] = 1.0
    for x in (m, m.contiguous(memory_format=torch.channels_last)):
        r = reduce_map(x)
        yx = flat_to_yx(r.argmax, 5, torch.int64)
        assert yx[0, 0].tolist() == [1, 2]
        assert yx[0, 1].tolist() == [0, 0]  # all zero: first position
        assert yx[1, 2].tolist() == [2, 4]
        assert r.mean[1, 2].item() == pytest.approx(1 / 20)


def test_hooks_removed_after_error(tiny_loaded):
    blocks = tiny_loaded.blocks
    with pytest.raises(RuntimeError), reduction_hooks(blocks):
        assert all(len(m._forward_hooks) == 1 for m in blocks.values())
        tiny_loaded.visual(torch.zeros(1, 3, 7))  # wrong shape: the forward fails
    assert all(len(m._forward_hooks) == 0 for m in blocks.values())


def test_reduce_batch_and_unit_maps_match_full_maps(tiny_loaded):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 64, 64, 3), dtype=np.uint8)
    out = reduce_batch(tiny_loaded, images)  # puts the model in the extraction's memory format
    maps = full_maps(tiny_loaded, to_input(images, tiny_loaded))
    assert list(out) == list(tiny_loaded.blocks)
    for name, (mx, yx, mean) in out.items():
        dmx, dyx, dmean = direct(maps[name])
        assert mx.dtype == np.float16 and mean.dtype == np.float16 and yx.dtype == np.uint8
        np.testing.assert_array_equal(mx, dmx.astype(np.float16))
        np.testing.assert_array_equal(yx, dyx)
        np.testing.assert_allclose(mean.astype(np.float32), dmean, rtol=2e-3, atol=1e-4)
    block = list(tiny_loaded.blocks)[2]
    got = unit_maps(tiny_loaded, images, [f"{block}:3"])
    np.testing.assert_array_equal(got[f"{block}:3"], maps[block][:, 3])
    tiny_loaded.visual.to(memory_format=torch.contiguous_format)
