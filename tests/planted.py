"""A planted model whose units have known behaviour, and planted activation arrays.

`build()` returns a real nn.Module (usable as `--model tests.planted:build`) taking RGB in [0, 1]
(mean 0, std 1) with two hooked blocks: `units` (full resolution) and `pooled` (4x4 average of
`units`, so the same behaviour at a coarser map). Units, by index (see UNITS):
red / blue: pure chromatic detectors (Gaussian in RGB around the palette colour);
black: achromatic detector; dead: always 0; edge: luminance gradient magnitude, independent of
colour; noise_a / noise_b: a pseudo-random number per image (a hash of its pixels), untuned.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from stimuli.palette import COLOR_RGB, COLOR_TERMS

UNITS = ("red", "blue", "black", "dead", "edge", "noise_a", "noise_b")
LUMA = (0.299, 0.587, 0.114)
SIGMA = 0.15  # RGB distance scale of the colour detectors: other palette colours give < 1e-2


class PlantedUnits(nn.Module):
    """Per-pixel planted units on an RGB image in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        colours = torch.tensor([COLOR_RGB[c] for c in ("red", "blue", "black")]) / 255.0
        self.register_buffer("colours", colours.view(3, 3, 1, 1))
        sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 4
        self.register_buffer("sobel", torch.stack([sobel, sobel.T]).unsqueeze(1))
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dist2 = ((x.unsqueeze(1) - self.colours.unsqueeze(0)) ** 2).sum(2)  # (N, 3, H, W)
        detectors = torch.exp(-dist2 / (2 * SIGMA**2))
        luma = (x * self.luma).sum(1, keepdim=True)
        grad = nn.functional.conv2d(nn.functional.pad(luma, (1, 1, 1, 1), mode="replicate"),
                                    self.sobel)
        edge = grad.pow(2).sum(1, keepdim=True).sqrt()
        # a per-image constant from a hash of every pixel: detached, so it adds nothing to any
        # receptive field (it has no spatial structure to find)
        total = x.detach().sum(dim=(1, 2, 3), dtype=torch.float64).view(-1, 1, 1, 1)
        noise = torch.cat([torch.frac(torch.sin(total * k) * 43758.5453).abs()
                           for k in (12.9898, 78.233)], 1).to(x.dtype)
        dead = torch.zeros_like(edge)
        noise = noise.expand(-1, -1, *edge.shape[-2:])
        return torch.cat([detectors, dead, edge, noise], dim=1)


class Planted(nn.Module):
    """The planted network: `units` then `pooled` (4x4 average pool)."""

    image_size = 32
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.units = PlantedUnits()
        self.pooled = nn.AvgPool2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pooled(self.units(x)).mean(dim=(2, 3))


def build() -> nn.Module:
    return Planted().eval()


def unit(name: str) -> int:
    return UNITS.index(name)


# --- planted activation arrays for selectivity and classification --------------------------

def stroop_labels(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random Stroop-like labels: word, font and background colours, pairwise different."""
    rng = np.random.default_rng(seed)
    k = len(COLOR_TERMS)
    word = rng.integers(0, k, n)
    font = (word + rng.integers(1, k, n)) % k
    bg = np.array([rng.choice([c for c in range(k) if c not in (w, f)])
                   for w, f in zip(word, font, strict=True)])
    return {"word": word, "font_color": font, "bg_color": bg}


PLANTED_COLUMNS = ("color_word_red", "multimodal_green", "color_blue_font", "color_black_bg",
                   "random", "random2", "any_word", "dead")


def planted_activations(labels: dict[str, np.ndarray], seed: int = 1) -> np.ndarray:
    """(images, units) Stroop activations with planted behaviour per PLANTED_COLUMNS."""
    rng = np.random.default_rng(seed)
    n = labels["word"].size
    red, green, blue, black = (COLOR_TERMS.index(c) for c in ("red", "green", "blue", "black"))
    base = rng.uniform(0, 0.5, (n, len(PLANTED_COLUMNS)))
    word, font, bg = labels["word"], labels["font_color"], labels["bg_color"]
    base[:, 0] += 2.0 * (word == red)
    base[:, 1] += 2.0 * ((word == green) | (font == green) | (bg == green))
    base[:, 2] += 2.0 * (font == blue)
    base[:, 3] += 2.0 * (bg == black)
    base[:, 6] += 2.0  # any word: driven by every rendered word alike
    base[:, 7] = 0.0
    return base
