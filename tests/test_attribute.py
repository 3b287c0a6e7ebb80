"""Attribution maps on the tiny CLIP: completeness of integrated gradients, receptive-field
support of unit attributions, and `chromadissect attribute` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import zarr

from interp import cli
from interp.analysis.rf import block_field
from interp.attribution.maps import (
    BlockOutput,
    SimilarityGap,
    argmax_locations,
    naming_attributions,
    unit_attributions,
    without_inplace,
)
from interp.attribution.units import top_images
from interp.models import load_model
from interp.rundir import RunDir

pytestmark = pytest.mark.slow  # builds real runs: `make test` runs it, `-m "not slow"` skips it

TINY = ["--model", "interp.models:tiny_clip", "--pretrained", "none"]


@pytest.fixture(scope="module")
def tiny():
    return load_model("interp.models:tiny_clip", "none")


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(3, 3, 64, 64, generator=gen)


def live_unit(model: BlockOutput, images: torch.Tensor) -> int:
    """A unit that responds to every image (random init leaves many dead)."""
    with torch.no_grad():
        return int(model(images).amax(dim=(2, 3)).min(dim=0).values.argmax())


def test_integrated_gradients_complete_for_a_unit(tiny, images):
    model = BlockOutput(without_inplace(tiny.visual), "layer3.0")
    unit = live_unit(model, images)
    baseline = torch.zeros_like(images)
    maps, where = unit_attributions(model, images, unit, baseline, ("integrated_gradients",),
                                    steps=16)
    with torch.no_grad():
        out, base = model(images), model(baseline)
    expect = torch.stack([out[i, unit, y, x] - base[i, unit, y, x]
                          for i, (y, x) in enumerate(where)])
    total = maps["integrated_gradients"].flatten(1).sum(dim=1)
    assert expect.abs().min() > 1e-4
    torch.testing.assert_close(total, expect, rtol=0.02, atol=1e-6)


def test_integrated_gradients_complete_for_a_naming_decision(tiny, images):
    visual = without_inplace(tiny.visual)
    text = torch.nn.functional.normalize(torch.randn(11, 32, generator=torch.Generator()
                                                     .manual_seed(1)), dim=-1)
    gap = SimilarityGap(visual, text)
    pred, correct = np.array([3, 4, 5]), np.array([0, 1, 2])
    baseline = torch.zeros_like(images)
    maps = naming_attributions(gap, visual.layer4, images, pred, correct, baseline, steps=16)
    with torch.no_grad():
        d, d0 = gap(images), gap(baseline)
    expect = d[range(3), pred, correct] - d0[range(3), pred, correct]
    torch.testing.assert_close(maps["integrated_gradients"].flatten(1).sum(dim=1), expect,
                               rtol=0.02, atol=1e-6)
    cam = maps["grad_cam"]
    assert cam.shape == (3, 1, 64, 64) and (cam >= 0).all()


def test_unit_attribution_is_zero_outside_the_receptive_field(tiny, images):
    visual = without_inplace(tiny.visual)
    block = "layer2.0"
    model = BlockOutput(visual, block)
    unit = live_unit(model, images)
    field, _how = block_field(visual, block, 64, tiny.map_shapes[block][1:])
    maps, where = unit_attributions(model, images, unit, torch.zeros_like(images), steps=16)
    for i, (y, x) in enumerate(where):
        y0, y1, x0, x1 = field.box(int(y), int(x))
        inside = torch.zeros(64, 64, dtype=torch.bool)
        inside[max(y0, 0):y1, max(x0, 0):x1] = True
        assert inside.sum() < 64 * 64 / 2  # the field is a proper part of the image
        for attr in maps.values():
            support = attr[i].abs().sum(dim=0) > 0
            assert support.any() and not support[~inside].any()
        # independent of gradients: changing every pixel outside leaves the response unchanged
        noisy = torch.where(inside, images[i], torch.randn_like(images[i]))
        with torch.no_grad():
            before = model(images[i:i + 1])[0, unit, y, x]
            after = model(noisy[None])[0, unit, y, x]
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)


def test_locations_are_the_units_argmax_and_the_model_is_left_untouched(tiny, images):
    model = BlockOutput(without_inplace(tiny.visual), "layer3.0")
    with torch.no_grad():
        maps = model(images)[:, 7]
    where = argmax_locations(model, images, 7)
    for i, (y, x) in enumerate(where):
        assert maps[i, y, x] == maps[i].max()
    assert all(m.inplace for m in tiny.visual.modules() if isinstance(m, torch.nn.ReLU))


def test_top_images_from_the_store_max_array(tmp_path):
    root = zarr.open_group(str(RunDir(tmp_path).activations), mode="w")
    group = root.create_group("stroop")
    group.attrs["chunk_images"] = 4
    values = np.array([[1, 9], [5, 2], [5, 3], [0, 8], [7, 99], [7, 98]], dtype=np.float16)
    group.create_group("layer1.0").create_array("max", data=values)
    group.create_array("complete", data=np.array([1, 0], dtype=np.uint8))  # images 4-5 not done
    run = RunDir(tmp_path)
    assert top_images(run, "stroop", "layer1.0", 0, 3) == [1, 2, 0]  # ties by index
    assert top_images(run, "stroop", "layer1.0", 1, 2) == [0, 3]


def test_attribute_command_writes_unit_and_naming_heatmaps(tmp_path):
    common = ["--run-dir", str(tmp_path), *TINY, "--samples-per-combo", "1", "--limit", "16",
              "--workers", "0", "--batch-size", "8", "--steps", "8", "--experiment", "4"]
    # chosen images, for a unit and for naming decisions
    code = cli.main(["attribute", *common, "--units", "layer2.0:3", "--sets", "stroop",
                     "--images", "0,5"])
    assert code == 0
    out = RunDir(tmp_path).attributions
    index = json.loads(RunDir(tmp_path).attributions_index.read_text())
    units = index["units"]["layer2.0:3"]
    assert {(e["method"], e["index"]) for e in units} == {
        (m, i) for m in ("integrated_gradients", "guided_backprop") for i in (0, 5)}
    chosen = index["naming"]
    assert {(e["method"], e["index"]) for e in chosen} == {
        (m, i) for m in ("integrated_gradients", "grad_cam") for i in (0, 5)}
    for entry in units + chosen:
        assert (out / entry["image"]).stat().st_size > 0
    for entry in chosen:  # a correct answer is contrasted with the runner-up
        right = entry["predicted"] == entry["correct"]
        assert entry["contrast"] != entry["predicted"]
        assert right or entry["contrast"] == entry["correct"]
    # the first errors of the experiment; the index keeps earlier entries
    assert cli.main(["attribute", *common, "--errors", "2", "--methods", "grad_cam"]) == 0
    index = json.loads(RunDir(tmp_path).attributions_index.read_text())
    errors = [e for e in index["naming"] if e not in chosen]
    assert len(errors) == 2 and {e["method"] for e in errors} == {"grad_cam"}
    for entry in errors:
        assert entry["experiment"] == 4 and entry["predicted"] != entry["correct"]
        assert entry["contrast"] == entry["correct"]
    assert len(index["units"]["layer2.0:3"]) == 4


def test_attribute_usage_errors(tmp_path, capsys):
    base = ["attribute", "--run-dir", str(tmp_path), *TINY]
    assert cli.main(base) == 2
    assert cli.main([*base, "--units", "layer9.9:1", "--images", "0", "--sets", "stroop",
                     "--samples-per-combo", "1"]) == 2
    assert "unknown block" in capsys.readouterr().err
    assert cli.main([*base, "--units", "layer2.0:3", "--sets", "stroop"]) == 1
    assert "--images" in capsys.readouterr().err
    assert cli.main([*base, "--experiment", "4", "--methods", "ig"]) == 2
    assert "unknown ig" in capsys.readouterr().err
    # no naming run recorded and no --limit: refused rather than encoding a whole set
    assert cli.main([*base, "--experiment", "4"]) == 2
    assert "chromadissect naming --experiments 4" in capsys.readouterr().err
