"""A planted CLIP-like model for TCAC whose captions are ranked by colour alone.

`colour_reader()` (usable as `--model tests.planted_tcac:colour_reader --layers probe`): RGB in
[0, 1] (mean 0, std 1), 32 px. The image embedding is the square root of the fraction of pixels
nearest each of the 11 palette colours (so a small shape still counts), then HASH_DIMS zeros;
the text embedding is the bag of colour words of the caption, then its other words hashed into
HASH_DIMS dims at weight OTHER_WEIGHT. So image-text
cosine rewards captions naming the image's colours, and grayscale must reshuffle the top captions.
`TOKENIZED` counts every text the tokenizer sees (each caption must be encoded once).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

import torch
from torch import nn

from stimuli.palette import COLOR_TERMS, PALETTE

HASH_DIMS = 16
OTHER_WEIGHT = 0.05
CONTEXT = 32
TOKENIZED: Counter = Counter()


def word_id(word: str) -> int:
    """1..11 for colour terms (gray = grey), 12.. for other words hashed; 0 is padding."""
    word = "grey" if word == "gray" else word
    if word in COLOR_TERMS:
        return 1 + COLOR_TERMS.index(word)
    return 1 + len(COLOR_TERMS) + zlib.crc32(word.encode()) % HASH_DIMS


def tokenize(texts: list[str]) -> torch.Tensor:
    """(N, CONTEXT) word ids, zero-padded."""
    out = torch.zeros(len(texts), CONTEXT, dtype=torch.long)
    for i, text in enumerate(texts):
        TOKENIZED[text] += 1
        ids = [word_id(w) for w in re.findall(r"[a-z]+", text.lower())][:CONTEXT]
        out[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


class ColourVisual(nn.Module):
    """sqrt(palette fraction) image embedding; `probe` (identity 1x1 conv) is the hook point."""

    def __init__(self) -> None:
        super().__init__()
        self.probe = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.probe.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        self.register_buffer("palette", torch.tensor(PALETTE, dtype=torch.float32) / 255.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.probe(x).permute(0, 2, 3, 1).reshape(len(x), -1, 3)      # (N, HW, 3)
        dist = ((x.unsqueeze(2) - self.palette) ** 2).sum(-1)              # (N, HW, 11)
        hist = nn.functional.one_hot(dist.argmin(-1), len(COLOR_TERMS)).float().mean(1)
        return torch.cat([hist.sqrt(), hist.new_zeros(len(x), HASH_DIMS)], dim=1)


class ColourReader(nn.Module):
    """visual + encode_image + encode_text + tokenizer: a CLIP that reads colour only."""

    image_size = 32
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.visual = ColourVisual()
        self.tokenizer = tokenize

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        bag = nn.functional.one_hot(tokens, 1 + len(COLOR_TERMS) + HASH_DIMS).float().sum(1)
        bag = bag[:, 1:]
        bag[:, len(COLOR_TERMS):] *= OTHER_WEIGHT
        return bag


def colour_reader() -> nn.Module:
    return ColourReader()


class Flat(nn.Module):
    """A CLIP-like module without `visual`: encode_image, encode_text and tokenizer on itself;
    `inner.probe` is its hook point."""

    image_size = 32
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.inner = ColourVisual()
        self.tokenizer = tokenize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return ColourReader.encode_text(self, tokens)


def flat_reader() -> nn.Module:
    return Flat()
