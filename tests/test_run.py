"""`chromadissect run`: every given option reaches the steps that take it; the whole job on the
tiny model."""

from __future__ import annotations

import pytest

from interp.api import STEPS, Run
from interp.cli import build_parser, main
from interp.errors import ChromaError, UsageError

TINY = ["--model", "interp.models:tiny_clip", "--pretrained", "none"]


def forwarded(monkeypatch, argv: list[str]) -> dict[str, dict]:
    """The options each step method of Run receives from `chromadissect run argv` (run from a
    fresh temporary directory: the run dir R lands there)."""
    calls: dict[str, dict] = {}
    for step in STEPS:
        monkeypatch.setattr(Run, step, lambda self, _s=step, **kw: calls.__setitem__(_s, kw))
    assert main(["run", "--run-dir", "R", *argv]) == 0
    return calls


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_each_step_gets_every_given_option_it_takes_and_nothing_else(monkeypatch):
    got = forwarded(monkeypatch, [*TINY, "--limit", "7", "--top-n", "5", "--batch-size", "64",
                                  "--cards-per-type", "2", "--dtype", "bfloat16",
                                  "--permutations", "50", "--min-n-eff-fraction", "0.1"])
    model = {"model": "interp.models:tiny_clip", "pretrained": "none"}
    assert got["extract"] == {**model, "limit": 7, "batch_size": 64, "dtype": "bfloat16"}
    # 64 is run's default for extract, not analyze's (32): given, it must still reach analyze
    assert got["analyze"] == {"top_n": 5, "batch_size": 64, "n_permutations": 50,
                              "min_n_eff_fraction": 0.1}
    assert got["naming"] == {**model, "limit": 7, "batch_size": 64, "dtype": "bfloat16"}
    assert got["daf"] == {**model, "batch_size": 64, "dtype": "bfloat16", "n_permutations": 50}
    assert got["tcac"] == got["daf"]
    assert got["atlas"] == {"cards_per_type": 2}
    # ablate runs only when given units to silence
    assert forwarded(monkeypatch, []) == {step: {} for step in STEPS if step != "ablate"}


def test_ablate_gets_its_units_and_the_naming_images(monkeypatch):
    got = forwarded(monkeypatch, ["--units", "type=any_word,block=layer4.*", "--limit", "7",
                                  "--control-draws", "4", "--each", "--doses", "0.5,1",
                                  "--mode", "resample", "--experiments", "4,5"])
    assert got["ablate"] == {"units": "type=any_word,block=layer4.*", "limit": 7,
                             "control_draws": 4, "each": True, "doses": [0.5, 1.0],
                             "mode": "resample", "experiments": ["4", "5"]}
    assert "units" not in got["naming"] and "mode" not in got["extract"]


def test_lists_reach_the_steps_as_lists(monkeypatch):
    got = forwarded(monkeypatch, ["--sets", "stroop,natural", "--layers", "layer1.0,layer4.0",
                                  "--experiments", "4,5"])
    assert got["extract"] == {"layers": ["layer1.0", "layer4.0"], "sets": ["stroop", "natural"]}
    assert got["analyze"] == {"sets": ["stroop", "natural"]}
    assert got["naming"] == {"layers": ["layer1.0", "layer4.0"], "experiments": ["4", "5"]}
    assert got["daf"] == got["tcac"] == {"layers": ["layer1.0", "layer4.0"]}


def test_every_option_of_a_step_is_an_option_of_run():
    from interp.api import step_defaults
    from interp.cli.options import OPTIONS

    run_parser = next(a for a in build_parser()._actions if a.dest == "command").choices["run"]
    dests = {a.dest for a in run_parser._actions}
    for step in STEPS:
        assert {d for d in step_defaults(step) if d in OPTIONS} <= dests, step


def test_unknown_step_or_option_is_one_line_usage_error(tmp_path, capsys):
    assert main(["run", "--run-dir", str(tmp_path), "--steps", "extract,plot"]) == 2
    err = capsys.readouterr().err
    assert "unknown step 'plot'; steps are extract,analyze,naming,daf,tcac,ablate,atlas" in err
    with pytest.raises(UsageError, match="top_k are taken by none of the steps extract"):
        Run(tmp_path).run(["extract"], top_k=5)


def test_naming_and_tcac_without_text_tower_are_skipped_other_errors_are_not(
        tmp_path, caplog, monkeypatch):
    def no_text_tower(self, **options):
        raise ChromaError("--model m:f has no text tower, so it cannot name colours; skip naming")

    monkeypatch.setattr(Run, "naming", no_text_tower)
    monkeypatch.setattr(Run, "extract", no_text_tower)
    Run(tmp_path)._step("naming", {})
    assert "naming skipped" in caplog.text
    no_text = {"model": "tests.planted:build", "pretrained": "none", "seed": 0,
               "layers": ["units"]}
    Run(tmp_path)._step("tcac", {**no_text, "corpus_size": 8})  # the real step refuses it
    assert "tcac skipped: --model tests.planted:build has no text tower" in caplog.text
    with pytest.raises(ChromaError, match="text tower"):
        Run(tmp_path)._step("extract", {})


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "stimuli", "extract", "analyze", "naming", "ablate",
                                     "atlas", "neuron"])
def test_parsing_a_command_imports_no_torch(command):
    """Help texts quote the steps' defaults only when printed: parsing stays quick."""
    import subprocess
    import sys

    code = ("import sys; from interp.cli import build_parser; "
            f"build_parser([{command!r}]).format_usage(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
