"""CSI on hand-made arrays and through the gray re-run: same dtype for a and a_gray, negative
activations counted as 0, NaN for units that never fire."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from interp.analysis.csi import csi, gray_activations
from interp.models import LoadedModel

#: Values whose float16 is above the float32 value: the old pairing read them as colour loss.
ROUNDED_UP = np.array([0.7, 1.7, 2.9, 0.33], dtype=np.float32)


def f16(x) -> np.ndarray:
    """As the store holds a: float16 values in a float32 array (topn_value)."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def test_gray_invariant_unit_is_exactly_zero_despite_float16_rounding():
    a, a_gray = f16(ROUNDED_UP)[None], ROUNDED_UP[None]
    assert (a > a_gray).all()  # the store's rounding alone makes a look larger
    assert 1 - a_gray.sum() / a.sum() > 0  # what an unrounded a_gray used to give
    assert csi(a, a_gray)[0] == 0.0


def test_rounding_can_be_turned_off():
    a, a_gray = f16(ROUNDED_UP)[None], ROUNDED_UP[None]
    assert csi(a, a_gray, dtype=None)[0] > 0


def test_negative_activations_count_as_zero_in_both_sums():
    a = np.array([[2.0, -1.0], [1.0, 1.0], [4.0, 0.0]])
    a_gray = np.array([[1.0, -3.0], [-2.0, -2.0], [-1.0, 2.0]])
    np.testing.assert_array_equal(csi(a, a_gray), [0.5, 1.0, 0.5])


def test_units_that_never_fire_are_nan_not_zero():
    a = np.array([[0.0, 0.0], [-1.0, -2.0], [-np.inf, -np.inf], [np.nan, 1.0], [1.0, -np.inf]])
    a_gray = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    out = csi(a, a_gray)
    assert np.isnan(out[:4]).all()
    assert out[4] == 1.0  # a short top-N's -inf padding adds nothing


def test_stays_in_zero_one():
    a = np.array([[1.0, 1.0], [1.0, 1.0]])
    a_gray = np.array([[5.0, 5.0], [0.0, 0.5]])
    np.testing.assert_array_equal(csi(a, a_gray), [0.0, 0.75])


class _TwoUnits(nn.Module):
    """Block `b`: unit 0 a constant 0.7 (ignores colour), unit 1 relu(R - G) (colour only)."""

    def __init__(self) -> None:
        super().__init__()
        self.b = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        const = torch.full_like(x[:, :1], 0.7)
        return self.b(torch.cat([const, torch.relu(x[:, :1] - x[:, 1:2])], dim=1))


def test_gray_rerun_of_a_gray_invariant_unit_gives_exactly_zero():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    images[..., 0] = 255  # red everywhere: the colour unit fires
    images[..., 1] = 0
    model = _TwoUnits().eval()
    loaded = LoadedModel(model="two-units", pretrained="none", seed=0, visual=model,
                         blocks={"b": model.b}, image_size=8, mean=(0, 0, 0), std=(1, 1, 1))
    index = np.array([[0, 2, 4], [1, 3, 5]])
    loc = np.stack([rng.integers(0, 8, (2, 3)), rng.integers(0, 8, (2, 3))], axis=-1)
    with torch.inference_mode():
        maps = model(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).numpy()
    a = f16(maps[index, np.arange(2)[:, None], loc[..., 0], loc[..., 1]])
    a_gray = gray_activations(loaded, lambda i: images[i], {"b": (index, loc)}, batch_size=4)
    assert a_gray["b"].dtype == np.float32
    np.testing.assert_array_equal(a_gray["b"], f16(a_gray["b"]))  # float16 values, as a
    out = csi(a, a_gray["b"])
    assert out[0] == 0.0 and out[1] > 0.9
