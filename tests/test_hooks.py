"""The hook primitive `trace` on a small hand-made net, and the hook reductions against a direct
computation on the full maps of the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from interp.errors import UsageError
from interp.extract import reduce_batch, unit_maps
from interp.hooks import reduce_map, reduction_hooks, trace
from interp.inputs import to_input


def flat_to_yx(index: torch.Tensor, width: int, dtype: torch.dtype) -> torch.Tensor:
    """Flat spatial index (N, C) -> (N, C, 2) (y, x) in `dtype`, written out for the tests."""
    return torch.stack((index // width, index % width), dim=-1).to(dtype)


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


# --- trace --------------------------------------------------------------------------------------

class Counter(nn.Module):
    """x + 1, counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x + 1


class Pair(nn.Module):
    """Returns a tuple, as modules with extras do: (2x, sum of x)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x * 2, x.sum()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.pair = Counter(), Pair()
        self.inner = nn.Sequential(Counter(), Counter())
        self.last = Counter()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, extra = self.pair(self.first(x))
        return self.last(self.inner(y)), extra


def named(net: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in net.named_modules() if name}


def test_trace_names_are_dotted_module_paths(tiny_loaded):
    net, seen = Net(), []
    with trace(named(net), lambda name, _x: seen.append(name)):
        net(torch.zeros(2))
    assert seen == ["first", "pair", "inner.0", "inner.1", "inner", "last"]  # as each ends
    seen.clear()
    with trace(tiny_loaded.blocks, lambda name, _x: seen.append(name)), torch.inference_mode():
        tiny_loaded.visual(torch.zeros(1, 3, 64, 64))
    assert seen == list(tiny_loaded.blocks)
    assert all(tiny_loaded.visual.get_submodule(n) is m for n, m in tiny_loaded.blocks.items())


def test_trace_removes_its_hooks_on_exit_and_on_error():
    net = Net()
    with trace(named(net)):
        assert all(len(m._forward_hooks) == 1 for m in named(net).values())
    assert all(len(m._forward_hooks) == 0 for m in named(net).values())
    with pytest.raises(RuntimeError, match="boom"), trace(named(net)):
        raise RuntimeError("boom")
    assert all(len(m._forward_hooks) == 0 for m in named(net).values())


def test_trace_stop_ends_the_forward_after_the_last_traced_module():
    net, after = Net(), []
    modules = {"inner.0": net.inner[0], "first": net.first}  # not in forward order
    with trace(modules, keep=True, stop=True) as t:
        net(torch.zeros(2))
        after.append("the forward returned")
    assert after == []  # the stop ends the body of the `with`, not the program
    assert (net.first.calls, net.inner[0].calls, net.inner[1].calls, net.last.calls) == (1, 1, 0, 0)
    assert torch.equal(t.outputs["inner.0"], torch.full((2,), 3.0))
    assert all(len(m._forward_hooks) == 0 for m in modules.values())


def test_a_stop_belongs_to_its_own_trace():
    net, seen = Net(), []
    with trace({"last": net.last}, lambda name, _x: seen.append(name)):
        with trace({"first": net.first}, stop=True):
            net(torch.zeros(2))
        net(torch.zeros(2))  # the outer trace is still attached
    assert seen == ["last"] and net.first.calls == 2


def test_trace_unwraps_a_tuple_and_puts_the_replacement_back():
    net, got = Net(), {}

    def zero(name: str, x: torch.Tensor) -> torch.Tensor:
        got[name] = x
        return torch.zeros_like(x)

    x = torch.arange(3.0)
    with trace({"pair": net.pair}, zero, keep=True) as t:
        out, extra = net(x)
    assert torch.equal(got["pair"], (x + 1) * 2)  # the tensor, not the tuple
    assert torch.equal(t.outputs["pair"], torch.zeros(3))  # kept: the replacement
    assert torch.equal(out, torch.full((3,), 3.0))  # the next modules saw the zeros
    assert torch.equal(extra, (x + 1).sum())  # the rest of the tuple is untouched


def test_a_returned_tensor_replaces_the_output_of_the_model():
    net = Net()
    with trace({"last": net.last}, lambda _name, x: -x):
        out, _ = net(torch.zeros(2))
    assert torch.equal(out, torch.full((2,), -5.0))
    assert torch.equal(net(torch.zeros(2))[0], torch.full((2,), 5.0))  # removed again


def test_trace_refuses_a_module_without_a_tensor_output():
    class Dict(nn.Module):
        def forward(self, x):
            return {"x": x}

    with pytest.raises(UsageError, match="'odd' returns dict"), trace({"odd": Dict()}) as t:
        t.modules["odd"](torch.zeros(1))
