"""How a unit is silenced at its block's output: zero, its mean activation, or another image's
map (resample, an interchange intervention). `Silencer` is the `on_output` of a `trace`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

MODES = ("zero", "mean", "resample")


def silence(x: torch.Tensor, units: torch.Tensor, mode: str, fill: torch.Tensor | None = None,
            donor: torch.Tensor | None = None) -> torch.Tensor:
    """(N, C, H, W) block output with channels `units` replaced, out of place: by 0 (zero), by
    `fill[k]` everywhere (mean; `fill` is (len(units),)), or by `donor[:, k]` (resample; `donor`
    is (N, len(units), H, W), the maps of other images)."""
    if mode == "zero":
        return x.index_fill(1, units, 0)
    if mode == "mean":
        source = fill.to(x.dtype).view(1, -1, 1, 1).expand(len(x), -1, *x.shape[2:])
    elif mode == "resample":
        source = donor.to(x.dtype)
    else:
        raise ValueError(f"unknown ablation mode {mode!r}; choose among {', '.join(MODES)}")
    return x.index_copy(1, units, source.contiguous())


@dataclass
class Silencer:
    """`on_output` silencing units per block: `units[block]` channel indices (on the device),
    `fill[block]` their mean activations (mean mode), `donor[block]` their maps in the donor
    images of the current batch (resample mode, set per batch)."""

    mode: str
    units: Mapping[str, torch.Tensor]
    fill: Mapping[str, torch.Tensor] = field(default_factory=dict)
    donor: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor | None:
        units = self.units.get(name)
        if units is None or not len(units):
            return None
        return silence(x, units, self.mode, self.fill.get(name), self.donor.get(name))
