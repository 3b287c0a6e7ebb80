"""Model inputs: every path an image takes to the model gives the same tensor, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.errors import UsageError
from interp.inputs import Images, baseline, batch_to_input, render_inputs, to_input
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
    """Extraction (normalised in workers, or uint8 to the device, as naming does), reduce_batch
    and CSI (numpy NHWC), torch NCHW callers and attribution all feed the model one tensor."""
    cpu = torch.device("cpu")
    hwc = torch.from_numpy(np.stack([shapes.render(i) for i in range(4)]))
    normalised = Images(shapes, tiny_loaded.mean, tiny_loaded.std, normalize=True)
    uint8 = Images(shapes, tiny_loaded.mean, tiny_loaded.std, normalize=False)
    pixels, attribution = render_inputs(shapes, range(4), tiny_loaded)
    paths = {
        "workers": batch_to_input(torch.stack([normalised[i][0] for i in range(4)]),
                                  tiny_loaded, cpu),
        "device": batch_to_input(torch.stack([uint8[i][0] for i in range(4)]), tiny_loaded, cpu),
        "numpy": to_input(hwc.numpy(), tiny_loaded),
        "nchw": to_input(hwc.permute(0, 3, 1, 2).contiguous(), tiny_loaded),
        "attribution": attribution,
    }
    np.testing.assert_array_equal(pixels, hwc.numpy())
    expected = reference(hwc, tiny_loaded)
    for name, x in paths.items():
        assert torch.equal(x, expected), name
        assert x.is_contiguous(memory_format=torch.channels_last), name  # the extraction's form


def test_images_in_worker_processes_give_the_same_batches(tiny_loaded, shapes):
    ds = Images(shapes, tiny_loaded.mean, tiny_loaded.std, normalize=True)
    batches = list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2))
    assert [index.tolist() for _, index in batches] == [[0, 1], [2, 3]]
    hwc = torch.from_numpy(np.stack([shapes.render(i) for i in range(4)]))
    assert torch.equal(torch.cat([images for images, _ in batches]),
                       reference(hwc, tiny_loaded).permute(0, 2, 3, 1))


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
