"""Normalisation of a uint8 batch, for `interp.attribution.step` only: every other model input
is prepared by `interp.inputs` (stimuli itself hands out uint8 images)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def _as_tensor(values: Sequence[float], device: torch.device | str | None = None) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32), device=device).view(1, 3, 1, 1)


def normalize(batch_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float],
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, 3, H, W) uint8 -> (x / 255 - mean) / std as dtype, on the batch's device."""
    x = batch_uint8.to(torch.float32).div_(255.0)
    x = x.sub_(_as_tensor(mean, x.device)).div_(_as_tensor(std, x.device))
    return x.to(dtype)
