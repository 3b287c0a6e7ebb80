"""`chromadissect ablate` end to end on a planted CLIP whose word reading goes through known
units (tests/planted_reader.py): silencing them removes the written-word answers, against random
controls; silencing as many other units does not; modes, doses, --each, resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from interp import cli
from interp.ablation import forward
from interp.ablation.effects import COSINE
from interp.ablation.forward import ablated_answers
from interp.ablation.selection import Condition
from interp.ablation.step import set_means
from interp.api import Run
from interp.extract import extract
from interp.naming import naming
from interp.naming.answers import open_naming
from interp.rundir import RunDir
from tests import planted_reader as pr

pytestmark = pytest.mark.slow  # builds a real run
LIMIT = 200
MODEL = {"model": "tests.planted_reader:build", "pretrained": "none", "seed": 0,
         "layers": ["units"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("ablation") / "run"
    extract(path, MODEL, ["stroop", "stroop-white"], samples_per_combo=1, limit=LIMIT,
            batch_size=100, workers=0)
    naming(path, [4, 5], samples_per_combo=1, limit=LIMIT, batch_size=100, workers=0)
    pd.DataFrame(pr.neurons_rows()).to_csv(RunDir(path).neurons_csv, index=False)
    return path


def ablate_cli(run, *extra: str) -> int:
    return cli.main(["ablate", "--run-dir", str(run), "--experiments", "4,5", "--batch-size",
                     "100", "--workers", "0", "--no-progress", *extra])


def rows(run, selection: str, mode: str = "zero") -> pd.DataFrame:
    summary = Run(run).ablation_summary()
    mine = summary[(summary["selection"] == selection) & (summary["mode"] == mode)]
    return mine.set_index(["unit", "metric"]) if (mine["unit"] != "").any() else \
        mine.set_index("metric")


@pytest.fixture(scope="module")
def word_units(run):
    assert ablate_cli(run, "--units", "type=color_word", "--control-draws", "20") == 0
    return rows(run, "type=color_word")


def test_silencing_the_word_units_removes_the_written_word_answers(word_units):
    for exp in (4, 5):
        written, font = word_units.loc[f"exp{exp}.written"], word_units.loc[f"exp{exp}.font"]
        assert written["base_pct"] == 100 and written["ablated_pct"] == 0
        assert font["base_pct"] == 0 and font["ablated_pct"] == 100
        assert written["delta"] == -100 and font["delta"] == 100
        for r in (written, font):  # no random ablation of 11 other units comes near
            assert r["draws"] == 20 and r["p"] == pytest.approx(1 / 21) and r["p"] < 0.05
            assert abs(r["control_lo"]) < 5 and abs(r["control_hi"]) < 5
    assert word_units.loc["exp4.written", "n_units"] == 11
    # the embeddings moved: the word, their largest part, is gone
    assert word_units.loc["exp4.cosine", "base_pct"] == 100
    assert word_units.loc["exp4.cosine", "delta"] < -20


def test_dose_response_grows_with_the_share_silenced(word_units):
    doses = word_units.loc["exp5.written", ["dose_10", "dose_25", "dose_50", "delta"]]
    assert list(doses) == sorted(doses, reverse=True) and doses["dose_10"] < 0


def test_as_many_other_units_change_nothing(run, monkeypatch):
    def no_text(*args, **kwargs):
        raise AssertionError("the text tower ran: prompts come from the naming cache")

    monkeypatch.setattr("interp.embeddings.TextTower.encode", no_text)
    others = [u for u in pr.FONT + pr.AREA + pr.FILLER]
    chosen = np.random.default_rng(5).choice(others, len(pr.WORD), replace=False)
    spec = ",".join(pr.unit_ids(sorted(chosen.tolist())))
    assert ablate_cli(run, "--units", spec, "--control-draws", "20", "--doses", "1") == 0
    r = rows(run, spec)
    for metric in ("exp4.written", "exp5.written", "exp4.font", "exp5.font"):
        assert abs(r.loc[metric, "delta"]) < 5 and r.loc[metric, "p"] > 0.05


def test_the_tables_sit_beside_the_unablated_ones(run, word_units):
    folder = RunDir(run).ablation / "type-color_word-zero"
    exp4 = pd.read_csv(folder / "exp4.csv").set_index("color")
    total = exp4.loc["TOTAL"]
    assert total["written_pct"] == 0 and total["base_written_pct"] == 100
    assert total["delta_written_pct"] == -100 and total["delta_font_pct"] == 100
    assert (folder / "effects.png").stat().st_size > 1000
    report = (RunDir(run).ablation / "report.md").read_text()
    assert "## `type=color_word` — zero" in report and "p floor 0.048" in report


def test_no_units_reproduce_the_naming_answers_exactly(run):
    answers = open_naming(RunDir(run), [4, 5], samples_per_combo=1, limit=LIMIT)
    for set_name, template in (("stroop", "The word is written in {} font"),
                               ("stroop-white", "The word is written in {} font")):
        n = answers.size(set_name)
        got = ablated_answers(answers.loaded, answers.sets[set_name], n,
                              [Condition("none", "selection", ())], "zero",
                              {template: answers.text(template)},
                              clean=answers.embeddings(set_name), batch_size=100, workers=0)
        assert np.array_equal(got["none"][template], answers.predict(set_name, template))
        np.testing.assert_allclose(got["none"][COSINE], 1.0, atol=1e-6)


def test_mean_and_resample_silence_the_word_units_too(run):
    means = set_means(RunDir(run), "stroop", ["units"])["units"]
    assert means[pr.WORD].sum() == pytest.approx(1.0, abs=1e-3)  # one word per image
    assert means[pr.DEAD].sum() == 0
    for mode in ("mean", "resample"):
        assert ablate_cli(run, "--units", "type=color_word", "--mode", mode,
                          "--control-draws", "0", "--doses", "1") == 0
        written = rows(run, "type=color_word", mode).loc["exp5.written"]
        # mean: every word unit at ~1/11, so the font wins; resample: another image's word,
        # rarely the image's own (about 1 in 11)
        assert written["ablated_pct"] < (1 if mode == "mean" else 20), written
        assert np.isnan(written["p"]) and written["draws"] == 0


def test_each_unit_alone_against_random_single_units_of_its_block(run):
    spec = ",".join(pr.unit_ids([pr.WORD[0], pr.FILLER[0]]))
    assert ablate_cli(run, "--units", spec, "--each", "--control-draws", "20") == 0
    r = rows(run, spec)
    red, filler = pr.unit_ids([pr.WORD[0], pr.FILLER[0]])
    # the red word unit: the red-word images (about 1 in 11) answer their font instead
    delta = r.loc[(red, "exp5.written"), "delta"]
    assert -15 < delta < -5
    assert r.loc[(filler, "exp5.written"), "delta"] == 0
    assert r.loc[(filler, "exp5.written"), "p"] == 1
    # its controls are 20 random single units of its block: those that are word units too
    # move the answers as much, every other one not at all
    folder = RunDir(run).ablation / "units-0_units-33-zero-each"
    effects = pd.read_csv(folder / "effects.csv")
    ctrl = effects[(effects["kind"] == "control") & (effects["metric"] == "exp5.written")]
    drawn = json.loads((folder / "conditions.json").read_text())
    is_word = np.array([int(drawn[c]["units"][0].split(":")[1]) in pr.WORD
                        for c in ctrl["condition"]])
    assert (ctrl["delta"][~is_word] == 0).all() and (ctrl["delta"][is_word] < 0).all()
    k = int((ctrl["delta"].abs() >= abs(delta) - 1e-9).sum())
    assert r.loc[(red, "exp5.written"), "p"] == pytest.approx((1 + k) / 21, abs=1e-5)


def test_a_rerun_reuses_every_answer(run, word_units, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("forward ran again")

    monkeypatch.setattr(forward, "ablated_answers", fail)
    monkeypatch.setattr("interp.ablation.step.ablated_answers", fail)
    assert ablate_cli(run, "--units", "type=color_word", "--control-draws", "20") == 0
    pd.testing.assert_frame_equal(rows(run, "type=color_word"), word_units, check_dtype=False)
    # fewer experiments find their sets' answers too (each set's cache is its own)
    assert cli.main(["ablate", "--run-dir", str(run), "--experiments", "5", "--units",
                     "type=color_word", "--control-draws", "20", "--no-progress"]) == 0
    assert set(rows(run, "type=color_word").index) == {"exp5.written", "exp5.font",
                                                       "exp5.background", "exp5.cosine"}
    assert ablate_cli(run, "--units", "type=color_word", "--control-draws", "20") == 0


def test_bad_usage_is_one_line_and_exit_2(run, capsys):
    assert ablate_cli(run, "--units", "type=color_word", "--each") == 2
    assert ablate_cli(run, "--units", "colour=red") == 2
    assert ablate_cli(run) == 2
    assert ablate_cli(run, "--units", "auto", "--doses", "0,1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("chromadissect: error:") for line in err)
    assert "--each" in err[0] and "no column 'colour'" in err[1] and "--units" in err[2]
    assert "--doses 0.0,1.0: expected fractions" in err[3]
