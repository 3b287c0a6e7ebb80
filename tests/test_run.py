"""`chromadissect run`: options forwarded to each step, and the whole job on the tiny model."""

from __future__ import annotations

import argparse
import csv
import json

import pytest

from interp.cli import build_parser, main
from interp.cli import run as run_cmd
from interp.errors import ChromaError
from interp.rundir import RunDir
from viz.pages import sprite_path

TINY = ["--model", "interp.models:tiny_clip", "--pretrained", "none"]


def forwarded(argv: list[str]) -> dict[str, list[str]]:
    args = build_parser().parse_args(["run", "--run-dir", "R", *argv])
    run_parser, steps = run_cmd.step_parsers()
    return {name: run_cmd.forwarded_argv(p, args, run_parser) for name, p in steps.items()}


def test_each_step_gets_the_options_it_takes_and_no_defaults():
    argv = forwarded([*TINY, "--limit", "7", "--top-n", "5", "--batch-size", "8",
                      "--cards-per-type", "2", "--dtype", "bfloat16"])
    assert argv["extract"] == ["--run-dir", "R", "--model", "interp.models:tiny_clip",
                               "--pretrained", "none", "--limit", "7", "--batch-size", "8",
                               "--dtype", "bfloat16"]
    assert argv["analyze"] == ["--run-dir", "R", "--top-n", "5", "--batch-size", "8"]
    assert argv["naming"][:5] == argv["extract"][:5] and "--top-n" not in argv["naming"]
    assert argv["atlas"] == ["--run-dir", "R", "--cards-per-type", "2"]
    assert forwarded([])["extract"] == ["--run-dir", "R"]


def test_lists_are_forwarded_comma_separated():
    argv = forwarded(["--sets", "stroop,natural", "--layers", "layer1.0,layer4.0"])
    assert argv["extract"] == ["--run-dir", "R", "--layers", "layer1.0,layer4.0",
                               "--sets", "stroop,natural"]
    assert argv["analyze"] == ["--run-dir", "R", "--sets", "stroop,natural"]


def test_unknown_step_is_one_line_error(tmp_path, capsys):
    assert main(["run", "--run-dir", str(tmp_path), "--steps", "extract,plot"]) == 1
    assert "unknown step 'plot'; steps are extract,analyze,naming,atlas" in capsys.readouterr().err


@pytest.mark.slow
def test_run_end_to_end_on_tiny_model_and_resume(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["run", "--run-dir", str(run), *TINY, "--samples-per-combo", "1", "--limit", "12",
            "--batch-size", "12", "--top-n", "4", "--cards-per-type", "0"]  # one card below
    assert main(argv) == 0
    out = capsys.readouterr().out
    index = RunDir(run).atlas_index
    assert f"atlas: {index.resolve().as_uri()}" in out
    with open(RunDir(run).neurons_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    n_units = json.loads(RunDir(run).json_path.read_text())["model"]["total_units"]
    assert len(rows) == n_units
    for block in {r["block"] for r in rows}:
        assert (RunDir(run).atlas / "blocks" / f"{block}.html").exists()
        assert (RunDir(run).atlas / sprite_path(block, "natural")).exists()
    assert len(list((RunDir(run).atlas / "units").rglob("*.html"))) == n_units
    assert sorted(p.name for p in RunDir(run).naming.glob("exp*.csv")) == [
        *(f"exp{i}.csv" for i in range(1, 6)), "exp5_colored_bg.csv"]
    for figure in ("csi_by_block", "types_by_block", "types_sensitivity", "hue_histogram",
                   "naming_exp1"):
        assert (RunDir(run).figures / f"{figure}.png").exists()
    # The card of a real unit has its top crops, re-rendered from the run's stimuli.
    assert main(["neuron", str(run), f"{rows[0]['block']}:0"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["top9"]["stroop"]) == 4 and len(record["top9"]["natural"]) == 4
    # Rerunning resumes: extraction and analysis find their work done and rewrite no array data.
    chunks = [p for store in (RunDir(run).activations, RunDir(run).analysis)
              for p in store.rglob("*") if p.is_file() and p.name != "zarr.json"]
    stamps = [p.stat().st_mtime_ns for p in chunks]
    assert main([*argv, "--steps", "extract,analyze"]) == 0
    assert [p.stat().st_mtime_ns for p in chunks] == stamps
    assert json.loads(RunDir(run).json_path.read_text())["timings"]["run"].keys() == set(
        run_cmd.STEPS)


def test_naming_without_text_tower_is_skipped_other_errors_are_not(caplog):
    def no_text_tower(args):
        raise ChromaError("--model m:f has no text tower, so it cannot name colours; skip naming")

    args = argparse.Namespace(func=no_text_tower)
    run_cmd.run_step("naming", args)
    assert "naming skipped" in caplog.text
    with pytest.raises(ChromaError, match="text tower"):
        run_cmd.run_step("extract", args)
