"""Receptive fields: the input box of a unit at map position (y, x) of a block.

Exact composition of kernels, strides, paddings, dilations and pools for ResNet-style modules
(open_clip ModifiedResNet with its 3-conv stem and anti-aliased AvgPool downsampling, torchvision
ResNets): children are walked in registration order, residual blocks (those with a `downsample`
attribute) take the union of their main path and shortcut. Anything else is measured by
gradients on a positive copy of the model. Per axis, a map position i covers input pixels
[scale * i + offset, scale * i + offset + size), possibly beyond the image border. A map that
does not grow with its input (behind adaptive or global pooling) is measured at the real input
size, its boxes clipped by the image: a 1 x 1 map covers the whole image (scale 0).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from interp.analysis.geometry import IDENTITY, Axis, Field
from interp.errors import ChromaError
from interp.hooks import trace

_SHAPE_PRESERVING = (nn.BatchNorm2d, nn.ReLU, nn.Identity, nn.GELU, nn.SiLU, nn.GroupNorm,
                     nn.Dropout, nn.LeakyReLU, nn.Sigmoid, nn.Tanh)


class UnsupportedModule(Exception):
    """A module whose geometry the exact composition does not know."""


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _window(m: nn.Module) -> tuple[tuple, tuple, tuple, tuple]:
    """(kernel, stride, padding, dilation) pairs of a conv or pool module."""
    if isinstance(m, nn.Conv2d) and not isinstance(m.padding, str):
        return _pair(m.kernel_size), _pair(m.stride), _pair(m.padding), _pair(m.dilation)
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) and not getattr(m, "ceil_mode", False):
        stride = m.stride if m.stride is not None else m.kernel_size
        dilation = getattr(m, "dilation", 1)
        return _pair(m.kernel_size), _pair(stride), _pair(m.padding), _pair(dilation)
    raise UnsupportedModule(type(m).__name__)


def _compose(field: Field, module: nn.Module, target: nn.Module) -> tuple[Field, bool]:
    """Field after `module` (True when `target` was reached inside it)."""
    if module is target:
        return _compose_inner(field, module, None)[0], True
    return _compose_inner(field, module, target)


def _compose_inner(field: Field, module: nn.Module, target) -> tuple[Field, bool]:
    if isinstance(module, _SHAPE_PRESERVING):
        return field, False
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return field.then(*_window(module)), False
    if hasattr(module, "downsample"):  # a residual block: main path and shortcut, unioned
        main = field
        for child in module.children():
            if child is module.downsample:
                continue
            main, found = _compose(main, child, target)
            if found:
                raise UnsupportedModule("hook point inside a residual block")
        short = field if module.downsample is None else _compose(field, module.downsample, None)[0]
        return main.union(short), False
    children = list(module.children())
    if not children:
        raise UnsupportedModule(type(module).__name__)
    for child in children:
        field, found = _compose(field, child, target)
        if found:
            return field, True
    return field, False


def exact_field(visual: nn.Module, block: str) -> Field:
    """Exact geometry of `block` (a dotted module name) by composition; raises UnsupportedModule."""
    target = visual.get_submodule(block)
    field = IDENTITY
    for child in visual.children():
        field, found = _compose(field, child, target)
        if found:
            return field
    raise UnsupportedModule(f"{block} not reached walking the children of the model")


def _positive_copy(visual: nn.Module) -> nn.Module:
    """A float64 copy where every path is positive: weights |w| normalised, no bias, BN identity,
    max-pools turned into average pools so gradients reach every pixel of the window."""
    net = copy.deepcopy(visual).double().eval()
    for name, m in list(net.named_modules()):
        if isinstance(m, nn.MaxPool2d):
            parent, _, leaf = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, leaf,
                    nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    t = getattr(m, attr, None)
                    if t is not None:
                        t.fill_(0.0 if attr in ("bias", "running_mean") else 1.0)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                w = m.weight.abs() + 1e-3
                m.weight.copy_(w / w.sum(dim=tuple(range(1, w.dim())), keepdim=True))
                if m.bias is not None:
                    m.bias.zero_()
    return net


def gradient_support(visual: nn.Module, block: str, image_hw: tuple[int, int],
                     y: int, x: int, positive: bool = True) -> torch.Tensor:
    """(H, W) bool: input pixels with a non-zero gradient of the sum over channels of `block`'s
    output at (y, x), on a positive copy of the model (no cancellations) by default."""
    net = _positive_copy(visual) if positive else copy.deepcopy(visual).double().eval()
    return _support(*_block_output(net, block, image_hw), y, x)


def _block_output(net: nn.Module, block: str, image_hw: tuple[int, int]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(input image requiring grad, `block`'s output (1, C, h, w)): one forward, stopped there."""
    # positive, varied input: no cancellations, and no degenerate point of a custom module
    gen = torch.Generator().manual_seed(0)
    image = (0.5 + 0.5 * torch.rand(1, 3, *image_hw, generator=gen, dtype=torch.float64))
    image.requires_grad_(True)
    return image, _run_to(net, block, image)


def _run_to(net: nn.Module, block: str, image: torch.Tensor, tensors: dict | None = None
            ) -> torch.Tensor:
    """`block`'s output for `image`: a forward of `net` stopped there (with `tensors` in place
    of its parameters and buffers, if given)."""
    with trace({block: net.get_submodule(block)}, keep=True, stop=True) as t:
        if tensors is None:
            net(image)
        else:
            torch.func.functional_call(net, tensors, (image,), strict=False)
    return t.outputs[block]


def _support(image: torch.Tensor, out: torch.Tensor, y: int, x: int) -> torch.Tensor:
    """(H, W) bool: pixels of `image` with a non-zero gradient of out[0, :, y, x].sum()."""
    target = out[0, :, y, x].sum()
    grad = None
    if target.requires_grad:  # else the map does not depend on the image at all
        grad = torch.autograd.grad(target, image, retain_graph=True, allow_unused=True)[0]
    if grad is None:
        return torch.zeros(image.shape[-2:], dtype=torch.bool)
    return ((grad[0] != 0) | grad[0].isnan()).any(dim=0)


def _bounds(mask: torch.Tensor, block: str = "") -> tuple[int, int, int, int]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if ys.numel() == 0:
        raise ChromaError(f"no input pixel reaches {block or 'the block'}; cannot measure its "
                          "receptive field")
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def measured_field(visual: nn.Module, block: str, image_size: int, map_shape: tuple[int, int],
                   max_doublings: int = 4) -> Field:
    """Geometry measured from gradient supports of two map positions per axis, on an input grown
    until the field of the central position is not clipped by the border.

    A map that does not grow with its input (adaptive or global pooling: `map_shape`, the map
    at `image_size`, stays the same at twice the size) has no field beyond the image; it is
    measured at `image_size` by `fixed_map_field`, as is a module refusing a larger input.
    """
    net = _positive_copy(visual)
    grown = _map_hw(net, block, 2 * image_size)
    if grown is None or grown == tuple(map_shape):
        return fixed_map_field(net, block, image_size)
    size = image_size
    for _ in range(max_doublings + 1):
        image, out = _block_output(net, block, (size, size))
        h, w = out.shape[-2:]
        cy, cx = h // 2, w // 2
        a = _bounds(_support(image, out, cy, cx), block)
        inside = a[0] > 0 and a[2] > 0 and a[1] < size and a[3] < size
        if inside and cy + 1 < h and cx + 1 < w:
            b = _bounds(_support(image, out, cy + 1, cx + 1), block)
            ys, xs = b[0] - a[0], b[2] - a[2]
            return Field(Axis(ys, a[0] - ys * cy, a[1] - a[0]),
                         Axis(xs, a[2] - xs * cx, a[3] - a[2]))
        size *= 2
    raise ChromaError(f"receptive field of {block} exceeds a {size // 2}-pixel input; "
                      "cannot measure")


def _map_hw(net: nn.Module, block: str, size: int) -> tuple[int, int] | None:
    """(h, w) of `block`'s map for a size x size input, on meta tensors (no arithmetic) where
    the module allows it; None if the module refuses that input size."""
    image = torch.zeros(1, 3, size, size, dtype=torch.float64)
    try:
        tensors = {**dict(net.named_parameters()), **dict(net.named_buffers())}
        meta = {k: torch.empty_like(v, device="meta") for k, v in tensors.items()}
        return tuple(_run_to(net, block, image.to("meta"), meta).shape[-2:])
    except Exception:  # noqa: BLE001 - some modules cannot run on meta tensors
        pass
    try:
        with torch.no_grad():
            return tuple(_run_to(net, block, image).shape[-2:])
    except Exception:  # noqa: BLE001 - a module may accept its own input size only
        return None


MAX_FIXED_POSITIONS = 8  # map positions measured per axis of a map that does not grow


def fixed_map_field(net: nn.Module, block: str, image_size: int) -> Field:
    """Field of a map that does not grow with its input, at the real input size: per axis the
    smallest regular grid of boxes holding the gradient support of every measured position.

    The supports are clipped by the image, so are the boxes: a 2 x 2 grid gets its quadrants
    (plus the convolutions' margin), a 1 x 1 map (global pooling) the whole image. `net` is a
    positive copy (`_positive_copy`).
    """
    image, out = _block_output(net, block, (image_size, image_size))
    h, w = out.shape[-2:]
    ys, xs = _positions(h), _positions(w)
    along_y = [_bounds(_support(image, out, y, w // 2), block)[:2] for y in ys]
    along_x = [_bounds(_support(image, out, h // 2, x), block)[2:] for x in xs]
    return Field(_grid_axis(ys, along_y), _grid_axis(xs, along_x))


def _positions(n: int) -> list[int]:
    """Up to MAX_FIXED_POSITIONS map positions spread over 0 .. n - 1, both ends included."""
    k = min(n, MAX_FIXED_POSITIONS)
    return sorted({round(i * (n - 1) / max(k - 1, 1)) for i in range(k)})


def _grid_axis(positions: list[int], spans: list[tuple[int, int]]) -> Axis:
    """Smallest Axis whose interval at each position holds that position's [start, end)."""
    scale = 0
    if len(positions) > 1:  # the step between the centres of the first and last support
        (s0, e0), (s1, e1) = spans[0], spans[-1]
        scale = round((s1 + e1 - s0 - e0) / 2 / (positions[-1] - positions[0]))
    offset = min(s - scale * p for p, (s, _e) in zip(positions, spans, strict=True))
    end = max(e - scale * p for p, (_s, e) in zip(positions, spans, strict=True))
    return Axis(scale, offset, end - offset)


def block_field(visual: nn.Module, block: str, image_size: int,
                map_shape: tuple[int, int]) -> tuple[Field, str]:
    """Exact geometry when the architecture is known, else measured; and which method it was."""
    try:
        return exact_field(visual, block), "exact"
    except UnsupportedModule:
        return measured_field(visual, block, image_size, map_shape), "gradient"

