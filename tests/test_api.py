"""The notebook facade: the README example runs as written; `chromadissect run` and the four steps
called from Python give identical stores and tables; the readers return what the files hold."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import zarr

from interp.api import STEPS, Run, step_defaults
from interp.cli import main
from interp.errors import ChromaError, UsageError

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
    assert (tmp_path / "runs" / "notebook" / "atlas" / "index.html").exists()


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
    files = [run / "neurons.csv", *sorted((run / "naming").glob("*.csv"))]
    return {p.name: p.read_text() for p in files}


@pytest.mark.slow
def test_run_command_and_the_steps_from_python_give_identical_results(tmp_path):
    by_steps = Run(tmp_path / "steps")
    by_steps.extract(**TINY, **SMALL)
    by_steps.analyze(top_n=4, batch_size=12)
    by_steps.naming(samples_per_combo=1, limit=12, batch_size=12)
    by_steps.atlas(cards_per_type=0)
    assert main(["run", "--run-dir", str(tmp_path / "cli"), "--model", TINY["model"],
                 "--pretrained", "none", "--samples-per-combo", "1", "--limit", "12",
                 "--batch-size", "12", "--top-n", "4", "--cards-per-type", "0"]) == 0
    for store in ("activations.zarr", "analysis.zarr", "naming/embeddings.zarr"):
        a, b = _arrays(tmp_path / "steps" / store), _arrays(tmp_path / "cli" / store)
        assert a.keys() == b.keys(), store
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{store}/{name}")
    assert _tables(tmp_path / "steps") == _tables(tmp_path / "cli")

    # the readers give what the files hold
    units = by_steps.units()
    with open(tmp_path / "steps" / "neurons.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(units) == len(rows) and units.index[0] == rows[0]["unit_id"]
    acts = by_steps.activations("stroop")
    block = rows[0]["block"]
    stored = zarr.open_group(tmp_path / "steps" / "activations.zarr")["stroop"][block]["max"][:]
    np.testing.assert_array_equal(acts[f"max_{block}"].values, stored)
    assert acts.sizes["image"] == 12 and set(acts.word.values) <= {
        "white", "black", "grey", "red", "green", "blue", "yellow", "brown", "orange", "pink",
        "purple"}
    record = by_steps.unit(rows[0]["unit_id"])
    assert record["type"] == rows[0]["type"] and len(record["top9"]["stroop"]) == 4
    assert by_steps.naming_table(4)["color"].tolist()[:2] == ["white", "black"]


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
