"""A planted model whose block outputs lie beyond float16's range, for the store's overflow guard.

`build()` (usable as `--model tests.planted_loud:build --layers quiet,loud`) takes RGB in [0, 1]
(mean 0, std 1) at 32 px. Hook points: `quiet`, the image itself (3 units, in [0, 1]); `loud`,
units by index (see LOUD_UNITS): `big` = red * 1e6 + 1e5 (max and mean above 65,504 in every
image), `negative` = -big, `nan` and `inf` everywhere, `plain` = green (in range).
Elementwise only, so autocast leaves it in float32 and every device computes the same values.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

LOUD_UNITS = ("big", "negative", "nan", "inf", "plain")
GAIN, OFFSET = 1e6, 1e5


class Quiet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1.0


class Loud(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        big = x[:, :1] * GAIN + OFFSET
        return torch.cat([big, -big, torch.full_like(big, float("nan")),
                          torch.full_like(big, float("inf")), x[:, 1:2]], dim=1)


class Planted(nn.Module):
    image_size = 32
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.quiet, self.loud = Quiet(), Loud()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.loud(self.quiet(x)).mean(dim=(2, 3))


def build() -> nn.Module:
    return Planted().eval()


def unit(name: str) -> int:
    return LOUD_UNITS.index(name)


SETTINGS = {"model": "tests.planted_loud:build", "pretrained": "none", "seed": 0,
            "layers": ["quiet", "loud"]}


# --- hand-made reductions, as the hooks give them --------------------------------------------

def handmade(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, n: int = 6,
             seed: int = 0):
    """(Recorder, infos) of two blocks: `calm` (4 units, 7 x 9 maps) in float16's range, and
    `hot` (6 units, 3 x 5 maps) with max/mean beyond it either way, nan, inf and plain values.
    `dtype` is the max's (the block's: float32, or bfloat16/float16 under autocast)."""
    from interp.hooks import Recorder, Reduction
    from interp.store import BlockInfo

    g = torch.Generator().manual_seed(seed)
    scale = 1 + torch.arange(n, dtype=torch.float32).view(n, 1) / 10
    calm_max = torch.randn(n, 4, generator=g) * 3
    hot_max = torch.tensor([1e6, -2e5, float("nan"), float("inf"), 7e4, 2.5]) * scale
    hot_mean = torch.tensor([2e5, -1e5, float("nan"), -float("inf"), 1.0, 0.5]) * scale
    reductions = {
        "calm": Reduction(calm_max, torch.randint(0, 63, (n, 4), generator=g),
                          calm_max / 4, (7, 9)),
        "hot": Reduction(hot_max, torch.randint(0, 15, (n, 6), generator=g), hot_mean, (3, 5)),
    }
    rec = Recorder()
    for name, r in reductions.items():
        rec.reductions[name] = Reduction(r.max.to(dtype).to(device), r.argmax.to(device),
                                         r.mean.to(device), r.map_shape)
    infos = {name: BlockInfo(r.max.shape[1], r.map_shape) for name, r in reductions.items()}
    return rec, infos


def stored_float16(values) -> np.ndarray:
    """What the store should hold for float32 `values`: finite ones beyond float16's range as
    +-65,504, inf and nan as they are, the rest rounded to float16."""
    v = np.asarray(values, dtype=np.float32)
    return np.where(np.isinf(v), v, np.clip(v, -65504, 65504)).astype(np.float16)
