"""Counter-based random numbers: uniforms that are a pure function of (seed, set, index, stream).

A hash (splitmix64) instead of a per-image generator, so that the parameters of every image of a
set come out of one vectorised call: labels() never renders, and render(i) draws the same values.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def set_id(name: str) -> int:
    """Stable 32-bit id of a set name (CRC-32), the same on every machine."""
    return zlib.crc32(name.encode())


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def uniforms(seed: int, set_name: str, index: np.ndarray, n_streams: int) -> np.ndarray:
    """(len(index), n_streams) float64 uniforms in [0, 1), one independent stream per column."""
    idx = np.asarray(index, dtype=np.uint64).reshape(-1, 1)
    streams = np.arange(n_streams, dtype=np.uint64).reshape(1, -1)
    key = _splitmix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    key = _splitmix(key ^ np.uint64(set_id(set_name)))
    x = _splitmix(_splitmix(key ^ idx) ^ (streams * _GOLDEN))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


_MASK = (1 << 64) - 1


def _splitmix_int(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@lru_cache(maxsize=64)
def _key(seed: int, set_name: str) -> int:
    return _splitmix_int(_splitmix_int(seed & _MASK) ^ set_id(set_name))


def uniforms_one(seed: int, set_name: str, index: int, n_streams: int) -> list[float]:
    """The row uniforms(seed, set_name, [index], n_streams)[0] in plain Python (fast per image)."""
    base = _splitmix_int(_key(seed, set_name) ^ index)
    return [(_splitmix_int(base ^ ((k * 0x9E3779B97F4A7C15) & _MASK)) >> 11) * (1.0 / (1 << 53))
            for k in range(n_streams)]
