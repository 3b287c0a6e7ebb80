"""Forward hooks: `trace`, the one way this package hooks a model, and the reduction recorder on
top of it, which reduces each block's output on the device (spatial max, its (y, x), mean) and
hands the reductions over in the store's dtypes (`gather`, `split_blocks`: float16, finite values
beyond its range stored as +-65,504 with one warning per block and run).

The reduction happens inside the hook, on the block's final output: open_clip's Bottleneck ends
with an in-place `out += identity; relu`, so a kept reference to an inner tensor would change.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from interp.errors import UsageError

log = logging.getLogger(__name__)

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
    #: blocks whose float16 overflow was warned about (once per block and recorder: per run)
    overflow_warned: set[str] = field(default_factory=set)

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

#: the largest float16, and so the largest value the store's max and mean can hold
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65,504


class Gathered(tuple):
    """`gather`'s result: (max, y/x or flat index, mean) on their way to the host, and
    `warned`, the recorder's blocks already warned about (one float16-overflow warning per block
    and recorder, so per extraction run). From a GPU also `overflow`, (2, units) float32: per
    unit, how many finite max/mean values of the batch lay beyond float16's range and the
    largest magnitude among them; and `ready`, a CUDA event after the copies, which
    `split_blocks` waits for."""

    overflow: torch.Tensor | None = None
    ready: torch.cuda.Event | None = None
    warned: set[str] | None = None


@functools.lru_cache(maxsize=8)
def _unit_widths(shapes: tuple[tuple[int, int], ...], device: torch.device) -> torch.Tensor:
    """Map width of every unit, blocks concatenated: shapes = ((n_units, width), ...)."""
    return torch.cat([torch.full((c,), w, dtype=torch.int64) for c, w in shapes]).to(device)


def _float16_on_device(x: torch.Tensor) -> torch.Tensor:
    """float16 with finite values beyond its range clipped to +-65,504 (inf and nan kept).

    Clamped in float32: a bfloat16 bound of 65,504 rounds to 65,536, which is inf in float16.
    """
    x = x.float()
    return torch.where(x.isinf(), x, x.clamp(-FLOAT16_MAX, FLOAT16_MAX)).to(torch.float16)


def _overflow_on_device(*values: torch.Tensor) -> torch.Tensor:
    """(2, units) float32: per unit, how many finite values of `values` (each (N, units)) lie
    beyond float16's range, and their largest magnitude (0 where none does)."""
    v = torch.cat([t.float() for t in values])
    magnitude = torch.where(v.isfinite(), v.abs(), 0.0)
    over = torch.where(magnitude > FLOAT16_MAX, magnitude, 0.0)
    return torch.stack(((over > 0).sum(dim=0, dtype=torch.float32), over.amax(dim=0)))


def gather(recorder: Recorder, blocks: Sequence[str]) -> Gathered:
    """All blocks' reductions as three host tensors (max, y/x or flat index, mean), all units.

    On a GPU the conversion to the store's dtypes happens there (less to copy: float16 max and
    mean, finite values beyond its range clipped, with per-unit overflow counts beside them for
    `split_blocks` to warn about); on a CPU it is left to numpy in `split_blocks`: torch's
    multi-threaded small ops cost more than the data. The copies from a GPU are asynchronous
    (pinned): `split_blocks` waits for them.
    """
    reds = [recorder.reductions[b] for b in blocks]
    mx = torch.cat([r.max for r in reds], dim=1)
    mean = torch.cat([r.mean for r in reds], dim=1)
    index = torch.cat([r.argmax for r in reds], dim=1)
    if index.device.type == "cpu":
        host = Gathered((mx.float(), index, mean))
        host.warned = recorder.overflow_warned
        return host
    widths = _unit_widths(tuple((r.max.shape[1], r.map_shape[1]) for r in reds), index.device)
    y = index // widths
    small = all(max(r.map_shape) <= 256 for r in reds)
    yx = torch.stack((y, index - y * widths), dim=-1).to(torch.uint8 if small else torch.int32)
    overflow = _overflow_on_device(mx, mean)
    host = Gathered(t.to("cpu", non_blocking=True)
                    for t in (_float16_on_device(mx), yx, _float16_on_device(mean)))
    host.overflow = overflow.to("cpu", non_blocking=True)
    host.warned = recorder.overflow_warned
    if index.device.type == "cuda":
        host.ready = torch.cuda.Event()
        host.ready.record()
    return host


def _float16_on_host(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """float16 of a float32 (N, units) array with finite values beyond its range clipped to
    +-65,504 (inf and nan kept), and the (2, units) overflow per unit as `_overflow_on_device`
    gives it, None where there is none (the common case: one comparison pass)."""
    if values.dtype == np.float16:
        return values, None
    magnitude = np.abs(values)
    over = magnitude > FLOAT16_MAX  # nan compares False
    if not over.any():
        return values.astype(np.float16), None
    over &= np.isfinite(values)
    clipped = np.where(over, np.copysign(FLOAT16_MAX, values), values).astype(np.float16)
    return clipped, np.stack((over.sum(axis=0), np.where(over, magnitude, 0).max(axis=0)))


def _warn_overflow(overflow: list[np.ndarray], infos: dict[str, BlockInfo], warned: set[str],
                   images: int) -> None:
    """One warning per block (not yet in `warned`) with max or mean values beyond float16's
    range; `overflow`: (2, units) arrays of counts and largest magnitudes in a batch of `images`,
    added up."""
    stacked = np.stack(overflow).astype(np.float64)
    counts, peaks = stacked[:, 0].sum(axis=0), stacked[:, 1].max(axis=0)
    start = 0
    for name, info in infos.items():
        count, peak = counts[start:start + info.n_units], peaks[start:start + info.n_units]
        start += info.n_units
        if name in warned or not count.any():
            continue
        warned.add(name)
        log.warning(
            "%s: %d max/mean values (%d units, in a batch of %d images; largest %.4g) exceed "
            "float16's 65,504 and were stored as 65,504 (negative ones as -65,504): the float16 "
            "store holds nothing larger, so a stored 65,504 means at least that; later ones in "
            "this block are clipped without another warning (to store them exactly, scale the "
            "model's outputs down or hook other --layers)",
            name, int(count.sum()), int((count > 0).sum()), images, float(peak.max()))


def split_blocks(host: tuple[torch.Tensor, ...], infos: dict[str, BlockInfo]) -> BlockArrays:
    """Cut the concatenated unit axis back into blocks, in the store's dtypes.

    Finite values beyond float16's range are stored as +-65,504 (inf and nan as they are), with
    one warning per block naming the largest (per `Gathered.warned`; a plain tuple of float32
    tensors warns at each call; one of float16 tensors is taken as it is).
    """
    ready = getattr(host, "ready", None)
    if ready is not None:
        ready.synchronize()  # the asynchronous copies from the GPU have landed
    overflow = getattr(host, "overflow", None)
    overflow = [] if overflow is None else [overflow.numpy()]
    mx, yx, mean = (t.numpy() for t in host)
    (mx, over_mx), (mean, over_mean) = _float16_on_host(mx), _float16_on_host(mean)
    overflow += [o for o in (over_mx, over_mean) if o is not None]
    if any(o[0].any() for o in overflow):
        warned = getattr(host, "warned", None)
        _warn_overflow(overflow, infos, set() if warned is None else warned, len(mx))
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
