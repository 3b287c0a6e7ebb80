"""Forward hooks: `trace`, the one way this package hooks a model, and the reduction recorder on
top of it, which reduces each block's output on the device (spatial max, its (y, x), mean) and
hands the reductions over in the store's dtypes (`gather`, `split_blocks`).

The reduction happens inside the hook, on the block's final output: open_clip's Bottleneck ends
with an in-place `out += identity; relu`, so a kept reference to an inner tensor would change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from interp.errors import UsageError

if TYPE_CHECKING:
    from interp.store import BlockInfo
    from interp.writer import BlockArrays


@dataclass
class Reduction:
    """Per image and channel: spatial max, flat index of the max (y * W + x), spatial mean."""

    max: torch.Tensor  # (N, C), the block's dtype
    argmax: torch.Tensor  # (N, C) int64 flat index
    mean: torch.Tensor  # (N, C) float32
    map_shape: tuple[int, int]


def reduce_map(x: torch.Tensor) -> Reduction:
    """Reduce an (N, C, H, W) map over space: one max-with-index pass, one sum pass, no copies.

    adaptive_max_pool2d gives the max and its flat index (ties: the first in row-major (y, x)
    order) about twice as fast on CPU as `max(dim)`; the sum runs over a copy-free view.
    """
    n, c, h, w = x.shape
    values, index = F.adaptive_max_pool2d(x, 1, return_indices=True)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        total = x.permute(0, 2, 3, 1).reshape(n, h * w, c).sum(dim=1, dtype=torch.float32)
    else:
        total = x.reshape(n, c, h * w).sum(dim=2, dtype=torch.float32)
    return Reduction(values.view(n, c), index.view(n, c), total / (h * w), (h, w))


@dataclass
class Recorder:
    """Holds what the hooks saw in the last forward pass: reductions and optional full maps."""

    reductions: dict[str, Reduction] = field(default_factory=dict)
    maps: dict[str, torch.Tensor] = field(default_factory=dict)  # "block:unit" -> (N, H, W)

class _Stop(Exception):
    """Ends a forward pass once every module of a `trace` with `stop=True` has run."""

    def __init__(self, owner: Trace) -> None:
        super().__init__("forward stopped after the last traced module")
        self.owner = owner


@dataclass
class Trace:
    """What `trace` yields: the traced modules by name and, with `keep=True`, each one's last
    output (the tensor itself, so gradients flow through it)."""

    modules: Mapping[str, nn.Module]
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    _ran: set[str] = field(default_factory=set, repr=False)


OnOutput = Callable[[str, torch.Tensor], torch.Tensor | None]


@contextmanager
def trace(modules: Mapping[str, nn.Module], on_output: OnOutput | None = None, *,
          keep: bool = False, stop: bool = False) -> Iterator[Trace]:
    """One forward hook per named module (names as given: the model's dotted paths), removed on
    exit, also on error.

    Each hook unwraps the module's output (a tensor, or the first tensor of a tuple or list) and
    calls `on_output(name, tensor)`; a tensor it returns replaces that output (inside the tuple
    if the module returned one). `stop=True` ends the forward once every traced module has run,
    so a caller needing inner layers does not pay for the rest: use it for one forward per
    `with`, whose body then ends there.
    """
    t = Trace(modules)
    handles = [m.register_forward_hook(_hook(t, name, on_output, keep, stop))
               for name, m in modules.items()]
    try:
        yield t
    except _Stop as err:
        if err.owner is not t:
            raise
    finally:
        for handle in handles:
            handle.remove()


def _hook(t: Trace, name: str, on_output: OnOutput | None, keep: bool, stop: bool):
    def hook(_module: nn.Module, _inputs: tuple, output: object) -> object:
        x = _output_tensor(output, name)
        new = on_output(name, x) if on_output is not None else None
        if keep:
            t.outputs[name] = x if new is None else new
        if stop:
            t._ran.add(name)
            if len(t._ran) == len(t.modules):
                raise _Stop(t)
        return None if new is None else _replace(output, new)

    return hook


def _output_tensor(output: object, name: str) -> torch.Tensor:
    """The tensor a module returned, or the first of its tuple/list; else a UsageError."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise UsageError(f"layer {name!r} returns {type(output).__name__}, not a tensor; "
                     "choose layers that output (N, C, H, W) maps")


def _replace(output: object, new: torch.Tensor) -> object:
    """`output` with its tensor (or its tuple's first tensor) replaced by `new`."""
    if isinstance(output, torch.Tensor):
        return new
    return [new, *output[1:]] if isinstance(output, list) else (new, *output[1:])


@contextmanager
def reduction_hooks(
    blocks: Mapping[str, nn.Module],
    keep_maps: Mapping[str, Sequence[int]] | None = None,
) -> Iterator[Recorder]:
    """Reduce every named block's output as it is computed (a `trace`); detached on exit.

    `keep_maps` maps a block name to unit indices whose full maps are kept as well.
    """
    recorder = Recorder()
    keep_maps = keep_maps or {}
    unknown = set(keep_maps) - set(blocks)
    if unknown:
        raise KeyError(f"unknown blocks for full maps: {sorted(unknown)}")

    def reduce(name: str, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"block {name} outputs shape {tuple(x.shape)}; expected (N, C, H, W)")
        recorder.reductions[name] = reduce_map(x)
        for unit in keep_maps.get(name, ()):
            recorder.maps[f"{name}:{unit}"] = x[:, unit].detach().clone()

    with trace(blocks, reduce):
        yield recorder


# --- from the recorder to the store's arrays ------------------------------------------------

@functools.lru_cache(maxsize=8)
def _unit_widths(shapes: tuple[tuple[int, int], ...], device: torch.device) -> torch.Tensor:
    """Map width of every unit, blocks concatenated: shapes = ((n_units, width), ...)."""
    return torch.cat([torch.full((c,), w, dtype=torch.int64) for c, w in shapes]).to(device)


def gather(recorder: Recorder, blocks: Sequence[str]) -> tuple[torch.Tensor, ...]:
    """All blocks' reductions as three host tensors (max, y/x or flat index, mean), all units.

    On a GPU the conversion to the store's dtypes happens there (less to copy); on a CPU it is
    left to numpy in `split_blocks`: torch's multi-threaded small ops cost more than the data.
    """
    reds = [recorder.reductions[b] for b in blocks]
    mx = torch.cat([r.max for r in reds], dim=1)
    mean = torch.cat([r.mean for r in reds], dim=1)
    index = torch.cat([r.argmax for r in reds], dim=1)
    if index.device.type == "cpu":
        return mx.float(), index, mean
    widths = _unit_widths(tuple((r.max.shape[1], r.map_shape[1]) for r in reds), index.device)
    y = index // widths
    small = all(max(r.map_shape) <= 256 for r in reds)
    yx = torch.stack((y, index - y * widths), dim=-1).to(torch.uint8 if small else torch.int32)
    return tuple(t.to("cpu", non_blocking=True)
                 for t in (mx.to(torch.float16), yx, mean.to(torch.float16)))


def split_blocks(host: tuple[torch.Tensor, ...], infos: dict[str, BlockInfo]) -> BlockArrays:
    """Cut the concatenated unit axis back into blocks, in the store's dtypes."""
    mx, yx, mean = (t.numpy() for t in host)
    mx, mean = mx.astype(np.float16, copy=False), mean.astype(np.float16, copy=False)
    out, start = {}, 0
    for name, info in infos.items():
        end = start + info.n_units
        block_yx = yx[:, start:end]
        if block_yx.ndim == 2:  # flat index from the CPU path
            block_yx = np.stack(np.divmod(block_yx, info.map_shape[1]), axis=-1)
        out[name] = (mx[:, start:end], block_yx.astype(info.argmax_dtype, copy=False),
                     mean[:, start:end])
        start = end
    return out
