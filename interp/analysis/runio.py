"""Reading a run for analysis: stimulus sets rebuilt from their recorded specs; analysis.zarr."""

from __future__ import annotations

import os

import zarr

from interp.errors import ChromaError
from interp.rundir import RunDir


def load_set(run_dir: str | os.PathLike, name: str):
    """The stimulus set `name` exactly as the run extracted it, rebuilt from its spec in run.json;
    a set the run has not extracted is a ChromaError saying how to extract it."""
    from stimuli import get_set

    spec = RunDir(run_dir).read().get("stimuli", {}).get(name)
    if spec is None:
        raise ChromaError(f"{run_dir} has no stimulus set {name!r}; extract it first "
                          f"(`chromadissect extract --run-dir {run_dir} --sets {name}`)")
    return get_set(name, samples_per_combo=spec["samples_per_combo"],
                   image_size=spec["image_size"], seed=spec["seed"], limit=spec["limit"],
                   natural_dir=spec.get("natural_dir"))


def open_analysis(run_dir: str | os.PathLike, mode: str = "r") -> zarr.Group:
    """RUN/analysis.zarr opened in zarr's `mode` (read-only by default); reading a store that
    `analyze` has not written is a ChromaError saying to run it, never None or an empty group."""
    path = RunDir(run_dir).analysis
    if mode == "r" and not (path / "zarr.json").exists():
        raise ChromaError(f"{path} does not exist; run `chromadissect analyze --run-dir {run_dir}`")
    return zarr.open_group(path, mode=mode)
