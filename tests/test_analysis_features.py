"""Crops clipped and padded at the border, and neuron features as weighted means of valid pixels."""

import numpy as np

from interp.analysis.features import neuron_features, padded_crop
from interp.analysis.geometry import Axis, Field


def _image(value):
    return np.full((8, 8, 3), value, dtype=np.uint8)


def test_padded_crop_marks_padding():
    img = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    crop, valid = padded_crop(img, (-2, 3, 6, 11))
    assert crop.shape == (5, 5, 3)
    assert valid.sum() == 3 * 2 and valid[2:, :2].all()
    np.testing.assert_allclose(crop[2:, :2], img[0:3, 6:8] / 255, rtol=1e-6)
    assert np.isnan(crop[~valid]).all()


def test_neuron_feature_is_activation_weighted_mean_of_valid_pixels():
    images = {0: _image(255), 1: _image(0), 2: _image(51)}
    field = Field(Axis(1, -1, 3), Axis(1, -1, 3))  # 3x3 box centred on the position
    index = np.array([[0, 1], [2, 0]])
    value = np.array([[3.0, 1.0], [1.0, 1.0]])
    loc = np.array([[[0, 0], [4, 4]], [[4, 4], [7, 7]]])
    nf = neuron_features(images.__getitem__, index, value, loc, field)
    # unit 0: image 0 (w=3) at the corner covers only the lower-right 2x2 of the box
    assert np.isclose(nf[0, 0, 0, 0], 0.0)  # only image 1 (black) covers the padded corner
    np.testing.assert_allclose(nf[0, 1, 1], 3 / 4)  # (3 * 1 + 1 * 0) / 4
    # unit 1: image 2 everywhere (0.2), image 0 (w=1) valid only in the upper-left 2x2
    np.testing.assert_allclose(nf[1, 0, 0], 0.6)
    np.testing.assert_allclose(nf[1, 2, 2], 0.2)
    # no crop covers a pixel -> NaN, never 0
    lone = neuron_features(images.__getitem__, np.array([[0]]), np.array([[1.0]]),
                           np.array([[[0, 0]]]), field)
    assert np.isnan(lone[0, 0]).all() and np.isfinite(lone[0, 1:, 1:]).all()


def test_large_fields_average_cells_of_valid_pixels_only():
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    img[:, :4] = 255
    field = Field(Axis(1, -2, 8), Axis(1, -2, 8))
    nf = neuron_features(lambda i: img, np.array([[0]]), np.array([[2.0]]),
                         np.array([[[0, 0]]]), field, max_side=2)
    assert nf.shape == (1, 2, 2, 3)
    # left cells: 2 padding columns + 2 white columns -> mean of valid = 1.0; right: 2 of 4 white
    np.testing.assert_allclose(nf[0, :, 0, 0], 1.0)
    np.testing.assert_allclose(nf[0, :, 1, 0], 0.5)


def test_nf_never_stretched():
    grey = _image(100)
    field = Field(Axis(1, 0, 2), Axis(1, 0, 2))
    nf = neuron_features(lambda i: grey, np.array([[0, 1]]), np.array([[5.0, 1.0]]),
                         np.array([[[1, 1], [2, 2]]]), field)
    np.testing.assert_allclose(nf, 100 / 255, rtol=1e-6)


def test_crops_and_cards_need_no_torch():
    """Readers of stored fields (crops, the atlas's card processes) import no torch."""
    import subprocess
    import sys

    code = "import sys, interp.analysis.features, viz.card; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
