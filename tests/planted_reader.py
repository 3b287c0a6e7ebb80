"""A planted CLIP-like model whose reading of written words goes through known units.

`build()` (usable as `--model tests.planted_reader:build --layers units`): RGB in [0, 1] (mean 0,
std 1), 32 px. The hooked block `units` is a (N, N_UNITS, 2, 2) map:

- WORD units (11): unit k is 1 when the image's written word is colour k (the Stroop images of
  `SPEC` are recognised by their exact pixels), else 0;
- FONT units (11): the same for the font colour;
- AREA units (11): per 16 px quadrant, the fraction of pixels nearest each palette colour (a real
  computation on any image: on shapes, the background covers most of it);
- FILLER units: pseudo-random in [0, 1] per image (a hash of its pixels), with small weights;
- DEAD units: always 0 (not activated).

The image embedding is the spatial mean of the map through fixed weights: WORD_WEIGHT e_k for
word unit k, FONT_WEIGHT e_k for font unit k, e_k for area unit k, small random vectors for the
filler units. A prompt's embedding is e_k for the colour word k it contains (read from
open_clip's tokens). So the model reads
the written word (Stroop: "% written word" near 100), silencing the word units hands the answer
to the font colour, and silencing other units changes nothing that matters.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from stimuli import get_set
from stimuli.palette import COLOR_TERMS, PALETTE

SPEC = {"samples_per_combo": 1, "image_size": 32, "seed": 0}
N_COLORS = len(COLOR_TERMS)
N_FILLER, N_DEAD = 30, 2
WORD = list(range(N_COLORS))
FONT = list(range(N_COLORS, 2 * N_COLORS))
AREA = list(range(2 * N_COLORS, 3 * N_COLORS))
FILLER = list(range(3 * N_COLORS, 3 * N_COLORS + N_FILLER))
DEAD = list(range(FILLER[-1] + 1, FILLER[-1] + 1 + N_DEAD))
N_UNITS = DEAD[-1] + 1
WORD_WEIGHT, FONT_WEIGHT, FILLER_WEIGHT = 3.0, 2.0, 0.05
EXTRA_DIMS = 8
MAPS: dict[bytes, torch.Tensor] = {}  # image key -> its planted map (a pure function of pixels)


def unit_ids(units: list[int]) -> list[str]:
    return [f"units:{u}" for u in units]


def image_key(hwc_uint8: np.ndarray) -> bytes:
    return np.ascontiguousarray(hwc_uint8).tobytes()


@lru_cache(maxsize=1)
def table() -> dict[bytes, tuple[int, int]]:
    """Stroop image key (both Stroop sets) -> (word, font colour)."""
    out = {}
    for name in ("stroop", "stroop-white"):
        s = get_set(name, **SPEC)
        labels = s.labels()
        for i in range(len(s)):
            out[image_key(s.render(i))] = (int(labels["word"][i]), int(labels["font_color"][i]))
    return out


def neurons_rows() -> list[dict]:
    """neurons.csv rows of the plant: the types the units were built to have."""
    kinds = {**dict.fromkeys(WORD, "color_word"), **dict.fromkeys(FONT, "color_chromatic"),
             **dict.fromkeys(AREA, "color_chromatic"), **dict.fromkeys(FILLER, "unassigned"),
             **dict.fromkeys(DEAD, "not_activated")}
    return [{"unit_id": f"units:{u}", "block": "units", "unit": u, "type": kinds[u],
             "color_term": COLOR_TERMS[u % N_COLORS] if u < 3 * N_COLORS else ""}
            for u in range(N_UNITS)]


class Units(nn.Module):
    """The planted map; `forward` takes the normalised image."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("palette", torch.tensor(PALETTE, dtype=torch.float32) / 255.0)
        self.hits = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = (x.detach().float() * 255).round().clamp(0, 255).to(torch.uint8)
        keys = [image_key(img) for img in pixels.permute(0, 2, 3, 1).cpu().numpy()]
        missing = [i for i, k in enumerate(keys) if k not in MAPS]
        if missing:
            for i, m in zip(missing, self._maps(x[missing], [keys[i] for i in missing]),
                            strict=True):
                MAPS[keys[i]] = m
        self.hits += sum(k in table() for k in keys)
        return torch.stack([MAPS[k] for k in keys]).to(x.device, x.dtype)

    def _maps(self, x: torch.Tensor, keys: list[bytes]) -> torch.Tensor:
        """The planted (N, N_UNITS, 2, 2) maps of images not seen before."""
        out = torch.zeros(len(x), N_UNITS, 2, 2)
        found = table()
        for i, key in enumerate(keys):
            if key in found:
                word, font = found[key]
                out[i, WORD[word]] = 1.0
                out[i, FONT[font]] = 1.0
            rng = np.random.default_rng(zlib.crc32(key))
            out[i, FILLER] = torch.from_numpy(rng.uniform(0, 1, N_FILLER).astype(np.float32)
                                              )[:, None, None]
        dist = ((x.float().permute(0, 2, 3, 1).unsqueeze(3) - self.palette) ** 2).sum(-1)
        nearest = nn.functional.one_hot(dist.argmin(-1), N_COLORS).float()  # (N, H, W, 11)
        out[:, AREA] = nn.functional.avg_pool2d(nearest.permute(0, 3, 1, 2), x.shape[-1] // 2)
        return out


class Visual(nn.Module):
    output_dim = N_COLORS + EXTRA_DIMS  # as open_clip's towers say it

    def __init__(self) -> None:
        super().__init__()
        self.units = Units()
        weights = torch.zeros(N_UNITS, N_COLORS + EXTRA_DIMS)
        for k in range(N_COLORS):
            weights[WORD[k], k] = WORD_WEIGHT
            weights[FONT[k], k] = FONT_WEIGHT
            weights[AREA[k], k] = 1.0
        rng = torch.Generator().manual_seed(0)
        filler = torch.randn(N_FILLER, N_COLORS + EXTRA_DIMS, generator=rng)
        weights[FILLER] = FILLER_WEIGHT * filler / filler.norm(dim=1, keepdim=True)
        self.register_buffer("weights", weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.units(x).mean(dim=(2, 3)) @ self.weights


@lru_cache(maxsize=1)
def colour_tokens() -> torch.Tensor:
    """open_clip's token id of each colour term (the loader gives a CLIP its tokenizer)."""
    import open_clip

    tok = open_clip.SimpleTokenizer()
    ids = [tok.encode(term) for term in COLOR_TERMS]
    assert all(len(i) == 1 for i in ids), ids
    return torch.tensor([i[0] for i in ids])


class Reader(nn.Module):
    """visual + encode_image + encode_text (of open_clip's tokens)."""

    image_size = SPEC["image_size"]
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.visual = Visual()

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """e_k for the colour word k a prompt holds (zeros in the extra dims)."""
        bag = (tokens[:, :, None] == colour_tokens().to(tokens.device)).any(1).float()
        return torch.cat([bag, bag.new_zeros(len(bag), EXTRA_DIMS)], dim=1)


def build() -> nn.Module:
    return Reader().eval()
