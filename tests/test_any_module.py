"""Any module runs: user-like custom modules (tests/oddmodules.py) through `extract` and `analyze`.

A Conv3d with a 5-D buffer (channels-last for its 4-D weights only), a `.view()` of the input
(falls back to NCHW-contiguous), and an adaptive-pooled 2 x 2 hook point (field at the real input
size, clipped to the image).
"""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import torch
import zarr

from interp.analysis.analyze import Settings, analyze
from interp.analysis.runio import load_set, open_analysis
from interp.extract import extract, reduce_batch
from interp.inputs import _FORMATS, model_format
from interp.models import load_model
from interp.rundir import RunDir

pytestmark = pytest.mark.slow  # builds real runs: `make test` runs it, `-m "not slow"` skips it

SETTINGS = Settings(top_n=8, n_permutations=20)
LAYERS = {"volume": ["features"], "flatten": ["features"], "grid": ["features", "grid"]}
SETS = ["natural", "stroop", "words"]
N = 24


def _load(name: str):
    return load_model(f"tests.oddmodules:{name}", "none", layers=LAYERS[name])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> its run directory, extracted and analysed once per test module."""
    made = {}

    def get(name: str):
        if name not in made:
            path = tmp_path_factory.mktemp(name) / "run"
            extract(path, {"model": f"tests.oddmodules:{name}", "pretrained": "none", "seed": 0,
                           "layers": LAYERS[name]}, SETS, samples_per_combo=1, limit=N,
                    batch_size=12, workers=0)
            analyze(path, SETTINGS)
            made[name] = path
        return made[name]

    return get


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_extract_and_analyze_finish(runs, name):
    path = runs(name)
    with open(RunDir(path).neurons_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    blocks = {r["block"] for r in rows}
    assert blocks == set(LAYERS[name])
    assert len(rows) == 8 * len(LAYERS[name])  # 8 channels per hook point


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_stored_maxima_equal_a_plain_nchw_forward(runs, name):
    """Whatever the memory format, the store holds what the module computes."""
    path = runs(name)
    loaded = _load(name)  # never converted: runs NCHW-contiguous
    stroop = load_set(path, "stroop")
    images = np.stack([stroop.render(i) for i in range(4)])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    outs = {}
    hooks = [loaded.blocks[b].register_forward_hook(
        lambda _m, _i, out, b=b: outs.__setitem__(b, out)) for b in loaded.blocks]
    with torch.inference_mode():
        loaded.visual(x.contiguous())
    for h in hooks:
        h.remove()
    g = zarr.open_group(RunDir(path).activations, mode="r")["stroop"]
    for block, out in outs.items():
        stored = g[block]["max"][:4].astype(np.float32)
        np.testing.assert_allclose(stored, out.amax(dim=(2, 3)).numpy(), rtol=2e-3, atol=1e-3)


def test_volume_runs_channels_last_for_its_4d_weights_only():
    loaded = _load("volume")
    assert model_format(loaded, torch.device("cpu")) == torch.channels_last
    visual = loaded.visual
    conv2d = visual.features[0].weight
    assert conv2d.is_contiguous(memory_format=torch.channels_last) and not conv2d.is_contiguous()
    assert visual.volume.weight.dim() == 5 and visual.volume.weight.is_contiguous()
    assert visual.gain.dim() == 5 and visual.gain.is_contiguous()


def test_view_of_the_input_falls_back_to_nchw(caplog):
    loaded = _load("flatten")
    with caplog.at_level(logging.INFO, logger="interp.inputs"):
        assert model_format(loaded, torch.device("cpu")) == torch.contiguous_format
    lines = [r.getMessage() for r in caplog.records if "channels-last" in r.getMessage()]
    assert len(lines) == 1 and "Flatten" in lines[0] and "NCHW" in lines[0]
    assert all(p.is_contiguous() for p in loaded.visual.parameters())
    images = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    out = reduce_batch(loaded, images)  # no second try, no error
    assert out["features"][0].shape == (2, 8)
    assert len([r for r in caplog.records if "channels-last" in r.getMessage()]) == 1


@pytest.mark.parametrize("model", ["interp.models:tiny_clip", "torchvision.models:resnet18"])
def test_resnet_towers_keep_the_fast_path(model):
    """Known towers: channels-last with no trial forward, the same numbers as `Module.to`."""
    loaded = load_model(model, "none", seed=0)
    calls = []
    handle = loaded.visual.register_forward_pre_hook(lambda *_: calls.append(1))
    assert model_format(loaded, torch.device("cpu")) == torch.channels_last
    handle.remove()
    assert calls == []
    size = 64  # fully convolutional up to the hooked blocks: small images are enough
    images = np.random.default_rng(0).integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    new = reduce_batch(loaded, images)
    old_loaded = load_model(model, "none", seed=0)
    old_loaded.visual.to(memory_format=torch.channels_last)  # what prepare() did before
    _FORMATS[old_loaded.visual] = torch.channels_last  # skip the decision: already converted
    old = reduce_batch(old_loaded, images)
    for block in new:
        for a, b in zip(new[block], old[block], strict=True):
            np.testing.assert_array_equal(a, b)


def test_grid_field_is_the_clipped_quadrant(runs):
    """2 x 2 after adaptive pooling: each position's box is its quadrant plus the 3x3 margin."""
    g = open_analysis(runs("grid"))["grid"]
    assert g.attrs["field"] == {"scale": [15, 15], "offset": [0, 0], "size": [17, 17]}
    assert g.attrs["rf_size"] == [17, 17]
