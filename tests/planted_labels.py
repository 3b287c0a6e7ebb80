"""A planted model whose units respond to chosen label groups of real Stroop images.

`build()` (usable as `--model tests.planted_labels:build`) looks each input up by its exact
pixels among the Stroop and words images of `SPEC` and answers with planted responses; any other
image (natural crops, grayscale copies) gets untuned pseudo-random responses from a hash of its
pixels. One hooked block, `units`, a 2 x 2 map (a 16 px average pool keeps a real receptive field
for the analysis; it moves responses by at most 1e-6, the dead unit's not at all).

Each planted unit's top-N is exactly its "high" set: N Stroop images with responses in [2, 2.05]
(n_eff close to N), drawn so that a known share carries the planted label; every other image
responds in [1, 1.5], like the untuned units everywhere. See PLANTS for the units and their
expected type, colour term and modality.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from stimuli import get_set
from stimuli.palette import COLOR_TERMS

SPEC = {"samples_per_combo": 2, "image_size": 32, "seed": 0}
TOP_N = 100
N_UNTUNED = 3000


@dataclass(frozen=True)
class Plant:
    """A planted unit: shares of its top-N per (kind, colour), the rest drawn from images that
    carry none of those colours in any kind; the expected classification."""

    name: str
    shares: tuple[tuple[str, str, float], ...]  # (kind: word|font_color|bg_color, colour, share)
    type: str
    term: str = ""
    modality: str = ""


PLANTS = (
    *(Plant(f"font_{c}", (("font_color", c, 0.35),), t, c, "font")
      for c, t in (("red", "color_chromatic"), ("blue", "color_chromatic"),
                   ("black", "color_achromatic"), ("yellow", "color_chromatic"))),
    *(Plant(f"bg_{c}", (("bg_color", c, 0.35),), t, c, "bg")
      for c, t in (("green", "color_chromatic"), ("white", "color_achromatic"),
                   ("purple", "color_chromatic"), ("grey", "color_achromatic"))),
    *(Plant(f"word_{c}", (("word", c, 0.35),), "color_word", c)
      for c in ("red", "orange", "pink", "brown")),
    *(Plant(f"multimodal_{c}", tuple((k, c, 0.25) for k in ("word", "font_color", "bg_color")),
            "color_multimodal", c) for c in ("green", "blue")),
    Plant("both_orange", (("font_color", "orange", 0.3), ("bg_color", "orange", 0.3)),
          "color_chromatic", "orange", "both"),
)
SPECIAL = ("any_word", "dead", "thin")  # after the plants; then N_UNTUNED untuned units
N_UNITS = len(PLANTS) + len(SPECIAL) + N_UNTUNED


def unit(name: str) -> int:
    names = [p.name for p in PLANTS] + list(SPECIAL)
    return names.index(name)


def image_key(chw_uint8: np.ndarray) -> bytes:
    return np.ascontiguousarray(chw_uint8).tobytes()


def untuned(key: bytes, n: int) -> np.ndarray:
    """n responses in [1, 1.5] from a hash of the image: the same image, the same answer."""
    rng = np.random.default_rng(zlib.crc32(key))
    return rng.uniform(1.0, 1.5, n).astype(np.float32)


def high_set(labels: dict[str, np.ndarray], plant: Plant, rng: np.random.Generator) -> np.ndarray:
    """TOP_N image indices: round(share x N) with each planted label, the rest with none."""
    codes = {k: labels[k] for k in ("word", "font_color", "bg_color")}
    colours = {COLOR_TERMS.index(c) for _, c, _ in plant.shares}
    free = ~np.logical_or.reduce([np.isin(v, list(colours)) for v in codes.values()])
    chosen = []
    for kind, colour, share in plant.shares:
        pool = np.flatnonzero(codes[kind] == COLOR_TERMS.index(colour))
        chosen.append(rng.choice(pool, round(share * TOP_N), replace=False))
    rest = TOP_N - sum(len(c) for c in chosen)
    chosen.append(rng.choice(np.flatnonzero(free), rest, replace=False))
    return np.concatenate(chosen)


def responses(labels: dict[str, np.ndarray], keys: list[bytes], seed: int = 0) -> np.ndarray:
    """(Stroop images, N_UNITS) planted responses."""
    rng = np.random.default_rng(seed)
    out = np.stack([untuned(k, N_UNITS) for k in keys])
    for u, plant in enumerate(PLANTS):
        out[high_set(labels, plant, rng), u] = rng.uniform(2.0, 2.05, TOP_N)
    out[:, unit("any_word")] = rng.uniform(2.0, 2.2, len(keys))
    out[:, unit("dead")] = 0.0
    thin = np.zeros(len(keys), np.float32)
    thin[rng.choice(len(keys), 4, replace=False)] = 2.0  # 4 images: n_eff = 4, untestable
    out[:, unit("thin")] = thin
    return out


def _keys(name: str) -> list[bytes]:
    s = get_set(name, **SPEC)
    return [image_key(s.render(i).transpose(2, 0, 1)) for i in range(len(s))]


@lru_cache(maxsize=1)
def tables() -> tuple[dict[bytes, int], np.ndarray, set[bytes]]:
    """Stroop image key -> row of planted responses, and the keys of the words images."""
    keys = _keys("stroop")
    labels = get_set("stroop", **SPEC).labels()
    return {k: i for i, k in enumerate(keys)}, responses(labels, keys), set(_keys("words"))


class LabelTuned(nn.Module):
    """The planted network; `units` is the hooked block."""

    image_size = SPEC["image_size"]
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(16)
        self.units = nn.Identity()
        self.hits = 0  # Stroop images recognised, for the tests

    def _lookup(self, x: torch.Tensor) -> torch.Tensor:
        index, table, words = tables()
        pixels = (x.detach().float() * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        rows = []
        for img in pixels:
            key = image_key(img)
            if key in index:
                self.hits += 1
                rows.append(table[index[key]])
                continue
            row = untuned(key, N_UNITS)
            if key in words:  # any rendered word drives the any-word unit
                row[unit("any_word")] = 2.1
            row[unit("dead")] = 0.0
            row[unit("thin")] = 0.0
            rows.append(row)
        return torch.from_numpy(np.stack(rows)).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        planted = self._lookup(x)[:, :, None, None]
        trace = self.pool(x.mean(dim=1, keepdim=True))  # (N, 1, h, w): a real field
        alive = torch.ones(N_UNITS, dtype=x.dtype, device=x.device)
        alive[unit("dead")] = 0.0  # dead: exactly 0 everywhere
        return self.units(planted + 1e-6 * trace * alive[:, None, None]).mean(dim=(2, 3))


def build() -> nn.Module:
    return LabelTuned().eval()
