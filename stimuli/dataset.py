"""torch views of a StimulusSet: a Dataset yielding (tensor, index) and batch normalisation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from stimuli.base import StimulusSet


def _as_tensor(values: Sequence[float], device: torch.device | str | None = None) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32), device=device).view(1, 3, 1, 1)


def normalize(batch_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float],
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, 3, H, W) uint8 -> (x / 255 - mean) / std as dtype, on the batch's device."""
    x = batch_uint8.to(torch.float32).div_(255.0)
    x = x.sub_(_as_tensor(mean, x.device)).div_(_as_tensor(std, x.device))
    return x.to(dtype)


class StimulusDataset(Dataset):
    """ds[i] -> (image tensor (3, H, W), i): normalised float32, or uint8 when normalize=False."""

    def __init__(self, stimulus_set: StimulusSet, mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (1.0, 1.0, 1.0), normalize: bool = True) -> None:
        self.set = stimulus_set
        self.normalize = normalize
        # Folded into one multiply-add per pixel: x * scale + shift == (x / 255 - mean) / std.
        std_arr = np.asarray(std, dtype=np.float32)
        self._scale = (1.0 / (255.0 * std_arr)).reshape(3, 1, 1).astype(np.float32)
        self._shift = (-np.asarray(mean, dtype=np.float32) / std_arr).reshape(3, 1, 1)

    def __len__(self) -> int:
        return len(self.set)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        chw = self.set.render(i).transpose(2, 0, 1)
        if not self.normalize:
            return torch.from_numpy(np.ascontiguousarray(chw)), int(i)
        # numpy, not torch: one thread, no intra-op pool to contend with in loader workers.
        out = np.empty(chw.shape, dtype=np.float32)
        out[...] = chw
        out *= self._scale
        out += self._shift
        return torch.from_numpy(out), int(i)
