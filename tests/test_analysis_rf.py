"""Receptive fields: exact composition against gradient measurement, and gradient support."""

import numpy as np
import open_clip
import pytest
import torch
import torchvision

from interp.analysis.rf import (
    Axis,
    Field,
    block_field,
    exact_field,
    gradient_support,
    measured_field,
)
from interp.errors import ChromaError
from interp.models import tiny_clip


def _map_shape(visual, block, size):
    shapes = {}
    handle = visual.get_submodule(block).register_forward_hook(
        lambda _m, _i, out: shapes.__setitem__("s", tuple(out.shape[-2:])))
    with torch.no_grad():
        visual(torch.zeros(1, 3, size, size))
    handle.remove()
    return shapes["s"]


@pytest.fixture(scope="module")
def tiny_visual():
    return tiny_clip(seed=0).visual


@pytest.mark.slow
@pytest.mark.parametrize("block", ["layer1.0", "layer2.0", "layer3.0", "layer4.0"])
def test_exact_equals_measured_on_tiny_modified_resnet(tiny_visual, block):
    shape = _map_shape(tiny_visual, block, 64)
    assert exact_field(tiny_visual, block) == measured_field(tiny_visual, block, 64, shape)


@pytest.mark.slow
@pytest.mark.parametrize("block", ["layer1.0", "layer2.0"])
def test_exact_equals_measured_on_torchvision_resnet18(block):
    net = torchvision.models.resnet18().eval()
    shape = _map_shape(net, block, 64)
    assert exact_field(net, block) == measured_field(net, block, 64, shape)


@pytest.mark.slow
def test_known_field_sizes():
    rn50 = open_clip.create_model("RN50", pretrained=None).visual
    # stem: 3x3 s2, 3x3, 3x3, avgpool 2 -> layer1.0 adds 3x3 at stride 4: 21 px
    assert exact_field(rn50, "layer1.0") == Field(Axis(4, -9, 21), Axis(4, -9, 21))
    assert exact_field(rn50, "layer4.2").size == (457, 457)
    assert exact_field(torchvision.models.resnet18(), "layer4.1").size == (435, 435)
    assert exact_field(torchvision.models.resnet50(), "layer4.2").size == (427, 427)


@pytest.mark.parametrize("block,pos", [("layer2.0", (3, 4)), ("layer3.0", (0, 3)),
                                       ("layer4.0", (1, 0))])
def test_every_pixel_with_gradient_lies_in_the_box(tiny_visual, block, pos):
    support = gradient_support(tiny_visual, block, (64, 64), *pos, positive=False).numpy()
    assert support.any()
    y0, y1, x0, x1 = exact_field(tiny_visual, block).box(*pos)
    inside = np.zeros_like(support)
    inside[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    assert not (support & ~inside).any()


def test_non_square_fields_are_measured_per_axis():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, (3, 7), stride=(1, 2), padding=(1, 3)),
                              torch.nn.ReLU(), torch.nn.Conv2d(4, 4, (5, 1), padding=(2, 0)))
    field = Field(Axis(1, -3, 7), Axis(2, -3, 7))
    assert exact_field(net, "2") == field
    assert measured_field(net, "2", 32, (32, 16)) == field


def _pooled(grid) -> torch.nn.Module:
    """3x3 conv features, then adaptive average pooling to `grid`: a map that does not grow."""
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(grid)).eval()


def _clipped(box, size):
    y0, y1, x0, x1 = box
    return max(y0, 0), min(y1, size), max(x0, 0), min(x1, size)


@pytest.mark.parametrize("grid,size", [((2, 2), 32), ((7, 3), 30), ((4, 4), 64)])
def test_fields_of_maps_that_do_not_grow_hold_every_support(grid, size):
    net = _pooled(grid)
    field, method = block_field(net, "2", size, grid)
    assert method == "gradient"
    for y in range(grid[0]):
        for x in range(grid[1]):
            support = gradient_support(net, "2", (size, size), y, x).numpy()
            inside = np.zeros_like(support)
            y0, y1, x0, x1 = _clipped(field.box(y, x), size)
            inside[y0:y1, x0:x1] = True
            assert support.any() and not (support & ~inside).any(), (y, x)


def test_two_by_two_grid_gets_its_quadrants_clipped():
    field = measured_field(_pooled((2, 2)), "2", 32, (2, 2))
    assert field == Field(Axis(15, 0, 17), Axis(15, 0, 17))
    assert field.box(0, 0) == (0, 17, 0, 17) and field.box(1, 1) == (15, 32, 15, 32)


def test_global_pooling_is_a_whole_image_field():
    field = measured_field(_pooled(1), "2", 32, (1, 1))
    assert field == Field(Axis(0, 0, 32), Axis(0, 0, 32))
    assert field.box(0, 0) == (0, 32, 0, 32)


def test_a_map_without_input_gradient_is_one_clear_error():
    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(x.detach())

    with pytest.raises(ChromaError, match="no input pixel reaches conv"):
        measured_field(Constant(), "conv", 16, (16, 16))
