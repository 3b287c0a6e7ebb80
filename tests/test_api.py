"""The notebook facade: the README example runs as written; `chromadissect run` and the four steps
called from Python give identical stores and tables; the readers return what the files hold."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import zarr

from interp.api import STEPS, Run, step_defaults
from interp.cli import main
from interp.errors import ChromaError, UsageError
from stimuli.palette import COLOR_TERMS
from viz.pages import sprite_path

ROOT = Path(__file__).resolve().parents[1]
TINY = {"model": "interp.models:tiny_clip", "pretrained": "none"}
SMALL = {"samples_per_combo": 1, "limit": 12, "batch_size": 12}


def readme_example() -> str:
    """The README's first ```python block that calls a step."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(b for b in blocks if any(f".{s}(" in b for s in STEPS))


@pytest.mark.slow
def test_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "untestable" in out or "not_activated" in out  # the type counts were printed
    assert (tmp_path / "runs" / "notebook" / "neurons.csv").exists()


def _arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a zarr store by path (attributes and timings aside)."""
    found = {}

    def walk(group: zarr.Group, prefix: str) -> None:
        for name, arr in group.arrays():
            found[f"{prefix}{name}"] = arr[...]
        for name, sub in group.groups():
            walk(sub, f"{prefix}{name}/")

    walk(zarr.open_group(path, mode="r"), "")
    return found


def _tables(run: Path) -> dict[str, str]:
    files = [run / "neurons.csv", *sorted((run / "naming").glob("*.csv")),
             *sorted((run / "daf").glob("*.csv")), run / "daf" / "failures.jsonl",
             *sorted((run / "tcac").glob("*.csv")), *sorted((run / "tcac").glob("*.jsonl")),
             *sorted((run / "ablation").rglob("*.csv"))]
    return {p.name: p.read_text() for p in files}


ARGV = ["--model", TINY["model"], "--pretrained", "none", "--samples-per-combo", "1",
        "--limit", "12", "--batch-size", "12", "--top-n", "4", "--permutations", "200",
        "--cards-per-type", "0", "--corpus-size", "24", "--k", "4", "--blind-rank", "8",
        "--reference", "tests.planted_probes:rgb_pixels", "--tcac-images", "8",
        "--transforms", "grayscale,hflip", "--units", "layer4.0:3", "--control-draws", "2",
        "--doses", "1"]
DAF = {"corpus_size": 24, "k": 4, "blind_rank": 8, "n_permutations": 200,
       "reference": "tests.planted_probes:rgb_pixels"}
TCAC = {"corpus_size": 24, "tcac_images": 8, "transforms": ["grayscale", "hflip"],
        "n_permutations": 200}
ABLATE = {"units": "layer4.0:3", "control_draws": 2, "doses": [1]}


@pytest.mark.slow
def test_run_command_and_the_steps_from_python_give_identical_results(tmp_path, capsys):
    run = tmp_path / "cli"
    assert main(["run", "--run-dir", str(run), *ARGV]) == 0
    index = run / "atlas" / "index.html"
    assert f"atlas: {index.resolve().as_uri()}" in capsys.readouterr().out
    by_steps = Run(tmp_path / "steps")
    by_steps.extract(**TINY, **SMALL)
    by_steps.analyze(top_n=4, n_permutations=200, batch_size=12)
    by_steps.naming(samples_per_combo=1, limit=12, batch_size=12)
    by_steps.daf(**DAF, batch_size=12)
    by_steps.tcac(**TCAC, batch_size=12)
    by_steps.ablate(**ABLATE, batch_size=12)  # Run.atlas: `run` above calls it
    for store in ("activations.zarr", "analysis.zarr", "naming/embeddings.zarr",
                  "probes/embeddings.zarr"):
        a, b = _arrays(tmp_path / "steps" / store), _arrays(run / store)
        assert a.keys() == b.keys(), store
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{store}/{name}")
    assert _tables(tmp_path / "steps") == _tables(run)

    # every file of the job is there
    assert Run(run).tcac_summary()["transform"].tolist() == ["identity", "grayscale", "hflip"]
    assert 'id="tcac-grayscale"' in (run / "atlas" / "probes.html").read_text()
    ablated = Run(run).ablation_summary()
    assert set(ablated["unit"]) == {"layer4.0:3"} and set(ablated["draws"]) == {2}
    assert 'href="ablation.html"' in (run / "atlas" / "index.html").read_text()
    assert "<code>layer4.0:3</code>" in (run / "atlas" / "ablation.html").read_text()
    unit_page = (run / "atlas" / "units" / "layer4.0" / "3.html").read_text()
    assert "Naming effect of silencing this unit alone" in unit_page
    assert "silencing this unit alone" not in \
        (run / "atlas" / "units" / "layer4.0" / "4.html").read_text()
    with open(run / "neurons.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    n_units = json.loads((run / "run.json").read_text())["model"]["total_units"]
    assert len(rows) == n_units
    for block in {r["block"] for r in rows}:
        assert (run / "atlas" / "blocks" / f"{block}.html").exists()
        assert (run / "atlas" / sprite_path(block, "natural")).exists()
    assert len(list((run / "atlas" / "units").rglob("*.html"))) == n_units
    assert sorted(p.name for p in (run / "naming").glob("exp*.csv")) == [
        *(f"exp{i}.csv" for i in range(1, 6)), "exp5_colored_bg.csv"]
    for figure in ("csi_by_block", "types_by_block", "types_sensitivity", "hue_histogram",
                   "naming_exp1"):
        assert (run / "figures" / f"{figure}.png").exists()

    # the readers give what the files hold
    units = Run(run).units()
    assert len(units) == len(rows) and units.index[0] == rows[0]["unit_id"]
    acts = Run(run).activations("stroop")
    block = rows[0]["block"]
    stored = zarr.open_group(run / "activations.zarr")["stroop"][block]["max"][:]
    np.testing.assert_array_equal(acts[f"max_{block}"].values, stored)
    assert acts.sizes["image"] == 12 and set(acts.word.values) <= set(COLOR_TERMS)
    assert Run(run).naming_table(4)["color"].tolist()[:2] == ["white", "black"]

    # the card of a real unit has its top crops, re-rendered from the run's stimuli
    assert main(["neuron", str(run), f"{block}:0"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["type"] == rows[0]["type"]
    assert len(record["top9"]["stroop"]) == 4 and len(record["top9"]["natural"]) == 4
    assert record == {**Run(run).unit(f"{block}:0"), "card": record["card"]}

    # rerunning resumes: extraction and analysis find their work done and rewrite no array data
    chunks = [p for store in ("activations.zarr", "analysis.zarr")
              for p in (run / store).rglob("*") if p.is_file() and p.name != "zarr.json"]
    stamps = [p.stat().st_mtime_ns for p in chunks]
    assert main(["run", "--run-dir", str(run), *ARGV, "--steps", "extract,analyze"]) == 0
    assert [p.stat().st_mtime_ns for p in chunks] == stamps
    assert json.loads((run / "run.json").read_text())["timings"]["run"].keys() == set(STEPS)


def test_step_options_come_from_the_library_signatures():
    assert step_defaults("analyze")["batch_size"] == 32
    assert step_defaults("extract")["batch_size"] == 64
    assert step_defaults("analyze")["n_permutations"] == 1000
    assert step_defaults("naming")["model"] is None  # the run's model
    assert step_defaults("atlas") == {"cards_per_type": 1, "thumb": 40}


def test_unknown_options_and_missing_results_are_one_line_errors(tmp_path):
    with pytest.raises(UsageError, match="analyze: unknown option.*top_k"):
        Run(tmp_path).analyze(top_k=5)
    with pytest.raises(ChromaError, match="neurons.csv not found; run the analyze step"):
        Run(tmp_path).units()
    with pytest.raises(ChromaError, match="exp4.csv not found"):
        Run(tmp_path).naming_table(4)
