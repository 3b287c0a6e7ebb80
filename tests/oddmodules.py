"""Small custom modules written the way a user might, for `--model tests.oddmodules:FACTORY`.

Each takes RGB in [0, 1] (mean 0, std 1) at 32 px and ends in a global mean, like a classifier:
`volume`: a Conv3d over (colour, y, x) and a 5-D buffer (not channels-last convertible);
`flatten`: a shared filter bank per colour channel via `.view()` (breaks on channels-last input);
`grid`: an AdaptiveAvgPool2d((2, 2)) hook point (a map that does not grow with its input).
"""

from __future__ import annotations

import torch
from torch import nn


class _Small(nn.Module):
    image_size = 32
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)


class Volume(_Small):
    """Conv3d across the colour axis of the image seen as a volume; hook point `features`."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("gain", torch.linspace(0.5, 1.5, 3).view(1, 1, 3, 1, 1))
        self.volume = nn.Conv3d(1, 4, (3, 3, 3), padding=(0, 1, 1))  # (N, 4, 1, H, W)
        self.features = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.volume(x.unsqueeze(1) * self.gain).squeeze(2)
        return self.features(v).mean(dim=(2, 3))


class Flatten(_Small):
    """One grayscale filter bank shared by the three colour channels; hook point `features`."""

    def __init__(self) -> None:
        super().__init__()
        self.bank = nn.Conv2d(1, 2, 3, padding=1)
        self.features = nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        per_channel = self.bank(x.view(n * c, 1, h, w))  # .view needs NCHW-contiguous memory
        return self.features(per_channel.reshape(n, c * 2, h, w)).mean(dim=(2, 3))


class Grid(_Small):
    """Conv features pooled to a fixed 2 x 2 grid; hook points `features` and `grid`."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.grid = nn.AdaptiveAvgPool2d((2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.grid(self.features(x)).flatten(1)


def volume() -> nn.Module:
    return Volume().eval()


def flatten() -> nn.Module:
    return Flatten().eval()


def grid() -> nn.Module:
    return Grid().eval()
