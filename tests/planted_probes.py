"""Planted image encoders for the DAF tests, with known blindness: `gray_pixels` cannot see
colour (it embeds the luminance image, 4 x 4 cells), `rgb_pixels` sees colour and the same
layout. Inputs are x / 255 (mean 0, std 1) at 32 px; `pool` is their hook point."""

from __future__ import annotations

import torch
from torch import nn

LUMA = (0.299, 0.587, 0.114)


class PixelEmbedder(nn.Module):
    """Centred cell means of the image (gray: its luminance only), flattened."""

    image_size = 32
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self, gray: bool) -> None:
        super().__init__()
        self.gray = gray
        self.pool = nn.AdaptiveAvgPool2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gray:
            x = (x * torch.tensor(LUMA, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return (self.pool(x) - 0.5).flatten(1)


def gray_pixels() -> nn.Module:
    return PixelEmbedder(gray=True)


def rgb_pixels() -> nn.Module:
    return PixelEmbedder(gray=False)


GRAY = {"model": "tests.planted_probes:gray_pixels", "pretrained": "none", "seed": 0,
        "layers": ["pool"]}
