"""Model inputs: every path an image takes to the model gives the same tensor, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.errors import UsageError
from interp.inputs import (
    Images,
    baseline,
    batch_to_input,
    normalize_hwc,
    render_inputs,
    to_input,
)
from stimuli import get_set


@pytest.fixture(scope="module")
def shapes():
    return get_set("shapes", samples_per_combo=1, image_size=64, limit=4)


def reference(hwc: torch.Tensor, loaded) -> torch.Tensor:
    """(x / 255 - mean) / std in float32, written out here, as (N, 3, H, W)."""
    mean = torch.tensor(loaded.mean, dtype=torch.float32)
    std = torch.tensor(loaded.std, dtype=torch.float32)
    return ((hwc.to(torch.float32) / 255 - mean) / std).permute(0, 3, 1, 2)


def test_inputs_match_bitwise_whatever_the_path(tiny_loaded, shapes):
    """Extraction and naming (`Images` through DataLoader workers), reduce_batch and CSI (numpy
    NHWC), torch NCHW callers and attribution all feed the model one tensor."""
    hwc = torch.from_numpy(np.stack([shapes.render(i) for i in range(4)]))
    loader = torch.utils.data.DataLoader(Images(shapes), batch_size=2, num_workers=2)
    batches = list(loader)
    assert [index.tolist() for _, index in batches] == [[0, 1], [2, 3]]
    pixels, attribution = render_inputs(shapes, range(4), tiny_loaded)
    paths = {
        "loader": torch.cat([batch_to_input(images, tiny_loaded, torch.device("cpu"))
                             for images, _ in batches]),
        "numpy": to_input(hwc.numpy(), tiny_loaded),
        "nchw": to_input(hwc.permute(0, 3, 1, 2).contiguous(), tiny_loaded),
        "attribution": attribution,
    }
    np.testing.assert_array_equal(pixels, hwc.numpy())
    expected = reference(hwc, tiny_loaded)
    for name, x in paths.items():
        assert torch.equal(x, expected), name
        assert x.is_contiguous(memory_format=torch.channels_last), name  # the extraction's form


def test_one_image_normalises_as_in_a_batch(tiny_loaded, shapes):
    hwc = torch.from_numpy(np.stack([shapes.render(i) for i in range(4)]))
    alone = torch.stack([normalize_hwc(image, tiny_loaded.mean, tiny_loaded.std) for image in hwc])
    assert torch.equal(alone, normalize_hwc(hwc, tiny_loaded.mean, tiny_loaded.std))


def test_baselines_are_a_normalised_black_image_or_the_mean(tiny_loaded, shapes):
    _, x = render_inputs(shapes, [0, 1], tiny_loaded)
    black = baseline(x, tiny_loaded, "black")
    assert torch.equal(black, to_input(np.zeros((2, 64, 64, 3), np.uint8), tiny_loaded))
    assert black.is_contiguous(memory_format=torch.channels_last) and black.dtype == x.dtype
    assert torch.equal(baseline(x, tiny_loaded, "mean"), torch.zeros_like(x))
    with pytest.raises(UsageError, match="black or mean"):
        baseline(x, tiny_loaded, "white")


@pytest.mark.parametrize("images", [np.zeros((2, 3, 8, 8), np.uint8),
                                    torch.zeros(2, 8, 8, 3, dtype=torch.uint8),
                                    np.zeros((2, 8, 8, 3), np.float32)])
def test_to_input_refuses_other_layouts(tiny_loaded, images):
    with pytest.raises(ValueError, match="expected uint8 images"):
        to_input(images, tiny_loaded)


def test_batch_to_input_refuses_float_images(tiny_loaded):
    with pytest.raises(ValueError, match="expected uint8 images"):
        batch_to_input(torch.zeros(2, 8, 8, 3), tiny_loaded, torch.device("cpu"))
