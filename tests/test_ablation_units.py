"""Ablation's pure parts on hand-made inputs: selections over a neurons table, controls and
doses, effects against controls, the silencing modes, and the hooked forward on the tiny CLIP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from interp.ablation.effects import COSINE, against_controls, measure, metrics
from interp.ablation.forward import Ablations, donor_indices
from interp.ablation.modes import MODES, silence
from interp.ablation.selection import Condition, auto_type, controls, doses, select, slug
from interp.errors import ChromaError, UsageError
from interp.hooks import trace
from stimuli.palette import color_index


@pytest.fixture
def table() -> pd.DataFrame:
    rows = []
    types = {"a": ["color_word"] * 2 + ["any_word"] * 3 + ["not_activated"] * 2
             + ["unassigned"] * 5,
             "layer4.0": ["color_word"] + ["color_chromatic"] * 2 + ["color_achromatic"]
             + ["unassigned"] * 6}
    for block, kinds in types.items():
        for u, kind in enumerate(kinds):
            rows.append({"unit_id": f"{block}:{u}", "block": block, "unit": u, "type": kind,
                         "color_term": "red" if u % 2 else "blue", "csi": u / 10})
    return pd.DataFrame(rows)


def test_selections_hold_every_filter(table):
    assert select(table, "type=color_word") == ["a:0", "a:1", "layer4.0:0"]
    assert select(table, "type=color_word,block=layer4.*") == ["layer4.0:0"]
    assert select(table, "type=color_word,term=red") == ["a:1"]
    assert select(table, "type=color") == ["layer4.0:1", "layer4.0:2", "layer4.0:3"]
    assert select(table, "type=color_*,block=a") == ["a:0", "a:1"]
    assert select(table, "unit=1,block=a") == ["a:1"]
    assert select(table, "layer4.0:3,a:2") == ["layer4.0:3", "a:2"]
    assert select(table, ["a:2", "a:2"]) == ["a:2"]


def test_bad_selections_say_what_to_do(table):
    with pytest.raises(UsageError, match="no column 'colour'"):
        select(table, "colour=red")
    with pytest.raises(UsageError, match="KEY=VALUE"):
        select(table, "color_word")
    with pytest.raises(UsageError, match="no such unit"):
        select(table, "a:99")
    with pytest.raises(ChromaError, match="selects no unit.*color_word 3"):
        select(table, "type=color_multimodal")


def test_auto_is_the_largest_of_any_word_color_word_and_colour(table):
    assert auto_type(table) == "any_word"  # 3 any_word, 3 color_word, 3 colour: the first
    assert select(table, "auto") == ["a:2", "a:3", "a:4"]
    table.loc[table["type"] == "unassigned", "type"] = "color_chromatic"
    assert auto_type(table) == "color"
    with pytest.raises(ChromaError, match="no any_word"):
        auto_type(table.assign(type="unassigned"))


def test_controls_draw_as_many_other_activated_units_per_block(table):
    chosen = ["a:0", "a:1", "layer4.0:0"]
    draws = controls(table, chosen, 30, seed=1)
    assert len(draws) == 30 and len({d.units for d in draws}) > 20
    dead = set(table["unit_id"][table["type"] == "not_activated"])
    for d in draws:
        blocks = d.by_block()
        assert {b: len(u) for b, u in blocks.items()} == {"a": 2, "layer4.0": 1}
        assert not set(d.units) & (set(chosen) | dead)
    assert controls(table, chosen, 30, seed=1) == draws  # seeded
    with pytest.raises(ChromaError, match="other activated units in a"):
        controls(table, [f"a:{u}" for u in range(9)], 1)


def test_doses_are_nested_subsets_of_the_selection():
    units = [f"b:{u}" for u in range(20)]
    d = doses(units, (0.1, 0.25, 0.5, 1.0), seed=3)
    assert [c.fraction for c in d] == [0.1, 0.25, 0.5]
    assert [len(c.units) for c in d] == [2, 5, 10]
    assert set(d[0].units) < set(d[1].units) < set(d[2].units) < set(units)
    assert [len(c.units) for c in doses(units[:3])] == [1, 2]  # 10% and 25% of 3: once
    assert doses(units[:1]) == []


def test_slugs_are_folder_names():
    assert slug("type=any_word,block=layer4.*") == "type-any_word_block-layer4.x"
    assert len(slug(",".join(f"layer4.2:{u}" for u in range(40)))) <= 60


def test_p_value_counts_controls_at_least_as_large():
    assert against_controls(-30.0, [1, -2, 0.5, 3]).p == pytest.approx(1 / 5)
    vs = against_controls(2.0, [1, -2, 0.5, 3])  # |-2| and 3 reach |2|
    assert vs.p == pytest.approx(3 / 5) and vs.draws == 4 and vs.mean == pytest.approx(0.625)
    assert vs.lo == pytest.approx(np.percentile([1, -2, 0.5, 3], 2.5))
    assert against_controls(0.0, [0, 0]).p == 1.0
    assert np.isnan(against_controls(1.0, []).p)


def test_measure_counts_answers_per_role():
    n = color_index
    stroop = {"word": np.array([n("red"), n("blue"), n("green"), n("red")]),
              "font_color": np.array([n("blue"), n("red"), n("red"), n("green")]),
              "bg_color": np.array([n("white")] * 4)}
    answers = np.array([n("red"), n("red"), n("green"), n("white")])
    cosine = np.array([1.0, 0.5, 1.0, 0.5])
    got = measure([4], lambda s, t: cosine if t == COSINE else answers, {"stroop-white": stroop})
    assert got == {"exp4.font": 25.0, "exp4.written": 50.0, "exp4.cosine": 75.0}
    shapes = {"bg_color": np.array([n("red"), n("blue")]), "obj_color": np.array([n("blue"),
                                                                                 n("red")])}
    got = measure([2], lambda s, t: np.array([n("red")] * 2), {"shapes": shapes})
    assert got["exp2.object.object"] == 50.0 and got["exp2.background.background"] == 50.0
    assert [m.name for m in metrics([1])] == ["exp1.background", "exp1.object", "exp1.cosine"]


def test_modes_replace_only_the_chosen_channels():
    x = torch.arange(2 * 4 * 3 * 3, dtype=torch.float32).view(2, 4, 3, 3)
    units = torch.tensor([1, 3])
    zero = silence(x, units, "zero")
    assert (zero[:, [1, 3]] == 0).all() and torch.equal(zero[:, [0, 2]], x[:, [0, 2]])
    mean = silence(x, units, "mean", fill=torch.tensor([5.0, -1.0]))
    assert (mean[:, 1] == 5).all() and (mean[:, 3] == -1).all()
    donor = torch.randn(2, 2, 3, 3)
    moved = silence(x, units, "resample", donor=donor)
    assert torch.equal(moved[:, [1, 3]], donor) and torch.equal(moved[:, [0, 2]], x[:, [0, 2]])
    assert torch.equal(x, torch.arange(72, dtype=torch.float32).view(2, 4, 3, 3))  # untouched
    assert MODES == ("zero", "mean", "resample")


def test_donors_are_other_images():
    d = donor_indices(50, seed=0)
    assert (d != np.arange(50)).all() and len(set(d)) > 25


def _block_output(loaded, x, silencer=None):
    """The last hooked block's output as the rest of the forward sees it, and the embedding."""
    block = list(loaded.blocks)[-1]
    modules = {block: loaded.blocks[block]}
    with torch.no_grad(), trace(modules, silencer), trace(modules, keep=True) as seen:
        emb = loaded.clip.encode_image(x)
    return seen.outputs[block], emb


@pytest.mark.parametrize("mode", MODES)
def test_ablated_forward_changes_the_hooked_units_and_nothing_else(tiny_loaded, mode):
    loaded = tiny_loaded
    block = list(loaded.blocks)[-1]
    x = torch.rand(4, 3, loaded.image_size, loaded.image_size)
    clean, clean_emb = _block_output(loaded, x)
    units = sorted(clean.mean(dim=(0, 2, 3)).argsort()[-2:].tolist())  # the most active
    fill = {block: np.arange(clean.shape[1], dtype=np.float32) / 7}
    plan = Ablations(loaded, [Condition("c", "selection", tuple(f"{block}:{u}" for u in units)),
                              Condition("none", "selection", ())], mode, fill)
    donors_x = x.roll(1, 0)
    maps = plan.donor_maps(donors_x, "float32") if mode == "resample" else {}
    out, emb = _block_output(loaded, x, plan.silencer("c", maps))
    keep = [u for u in range(clean.shape[1]) if u not in units]
    assert torch.equal(out[:, keep], clean[:, keep])
    expected = {"zero": torch.zeros_like(clean[:, units]),
                "mean": torch.tensor(fill[block][units]).view(1, -1, 1, 1).expand_as(
                    clean[:, units]),
                "resample": clean.roll(1, 0)[:, units]}[mode]
    torch.testing.assert_close(out[:, units], expected, rtol=0, atol=0)
    assert not torch.equal(emb, clean_emb)
    _, same = _block_output(loaded, x, plan.silencer("none", maps))
    assert torch.equal(same, clean_emb)  # no units: the forward is the clean one, bit for bit
