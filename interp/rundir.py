"""One run directory: where its files live, `run.json` (atomic read/merge/write), the writer lock,
settings checks."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from interp.errors import ChromaError

MODEL_KEYS = ("model", "pretrained", "seed", "layers")
_held_locks: dict[Path, int] = {}  # lock path -> depth, so one process may nest lock()


def deep_merge(base: dict, patch: dict) -> dict:
    """Return `base` updated by `patch`, merging nested dicts key by key."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def first_difference(old: Any, new: Any, prefix: str) -> str | None:
    """Dotted name of the first setting that differs, comparing only keys present in both."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() & new.keys():
            diff = first_difference(old[key], new[key], f"{prefix}.{key}")
            if diff:
                return diff
        return None
    old, new = json.loads(json.dumps(old)), json.loads(json.dumps(new))  # tuples == lists
    return None if old == new else f"{prefix} (run has {old!r}, this command asks {new!r})"


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON to a temp file, fsync it, then rename over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunDir:
    """The directory holding every output of one run; the one place its file names are spelled."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.json_path = self.path / "run.json"
        self.lock_path = self.path / ".lock"

    @property
    def activations(self) -> Path:
        """The activation store, written by `extract`."""
        return self.path / "activations.zarr"

    @property
    def analysis(self) -> Path:
        """The analysis store, written by `analyze`."""
        return self.path / "analysis.zarr"

    @property
    def neurons_csv(self) -> Path:
        """One row per unit, written by `analyze`."""
        return self.path / "neurons.csv"

    @property
    def figures(self) -> Path:
        """Figures and the tables they are drawn from."""
        return self.path / "figures"

    @property
    def hue_histogram_csv(self) -> Path:
        """Fig. 3's histograms, written by `analyze`."""
        return self.figures / "hue_histogram.csv"

    @property
    def types_sensitivity_csv(self) -> Path:
        """Type counts under other thresholds, written by `analyze`."""
        return self.figures / "types_sensitivity.csv"

    @property
    def naming(self) -> Path:
        """Tables of the naming experiments (`exp*.csv`, `exp*.md`)."""
        return self.path / "naming"

    @property
    def naming_embeddings(self) -> Path:
        """Cache of image and text embeddings of the naming experiments."""
        return self.naming / "embeddings.zarr"

    @property
    def attributions(self) -> Path:
        """Attribution images; their paths in the index are relative to this folder."""
        return self.path / "attributions"

    @property
    def attributions_index(self) -> Path:
        """Which attribution image shows which unit or naming trial."""
        return self.attributions / "index.json"

    @property
    def probe_embeddings(self) -> Path:
        """Cache of the probes' image and caption embeddings (CLIP and the reference)."""
        return self.path / "probes" / "embeddings.zarr"

    @property
    def daf(self) -> Path:
        """The DAF probe's tables, failure cases, figure and report."""
        return self.path / "daf"

    @property
    def tcac(self) -> Path:
        """The TCAC probe's tables, per-transform cases, figure and report."""
        return self.path / "tcac"

    @property
    def ablation(self) -> Path:
        """The ablate step's summary, report and one folder per selection."""
        return self.path / "ablation"

    @property
    def atlas(self) -> Path:
        """The static HTML atlas."""
        return self.path / "atlas"

    @property
    def atlas_index(self) -> Path:
        """The atlas's start page."""
        return self.atlas / "index.html"

    @property
    def atlas_settings(self) -> Path:
        """Settings the atlas was built with, so one unit page can be rebuilt alike."""
        return self.atlas / "atlas.json"

    def read(self) -> dict:
        """The run's record, or {} for a new run."""
        if not self.json_path.exists():
            return {}
        try:
            return json.loads(self.json_path.read_text())
        except json.JSONDecodeError as err:
            raise ChromaError(
                f"{self.json_path} is not valid JSON ({err}); fix or remove it") from err

    def update(self, patch: dict) -> dict:
        """Merge `patch` into run.json (nested dicts key by key) and write it atomically."""
        self.path.mkdir(parents=True, exist_ok=True)
        data = deep_merge(self.read(), patch)
        write_json_atomic(self.json_path, data)
        return data

    def check_settings(self, section: str, settings: dict) -> None:
        """Refuse settings that differ from the run's; record the ones it did not have yet."""
        recorded = self.read().get(section, {})
        diff = first_difference(recorded, settings, section)
        if diff:
            raise ChromaError(
                f"{self.path} holds a run with other settings: {diff}; "
                "use a new --run-dir or repeat the run's settings"
            )
        self.update({section: settings})

    def model_settings(self) -> dict:
        """Keyword arguments that rebuild the run's model: `load_model(**run.model_settings())`."""
        settings = self.read().get("model_settings")
        if not settings:
            raise ChromaError(
                f"{self.path} has no recorded model; run `chromadissect extract` first")
        return {key: settings[key] for key in MODEL_KEYS if key in settings}

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the writer lock, `flock` on RUN/.lock: a second writer is refused, naming the
        holder; the kernel frees it when the holder exits or dies, so a killed run leaves no stale
        lock (forked children share it until they exit). The same process may nest lock()
        (`run` holds it while its steps take it again).

        flock is per host: on NFS it may not be enforced between processes on different hosts.
        The file is never removed: a new file would be a new lock beside the one still held."""
        self.path.mkdir(parents=True, exist_ok=True)
        key = self.lock_path.resolve()
        if key in _held_locks:
            _held_locks[key] += 1
            try:
                yield
            finally:
                _held_locks[key] -= 1
            return
        fd = self._acquire()
        _held_locks[key] = 1
        try:
            yield
        finally:
            del _held_locks[key]
            os.close(fd)  # releases the lock

    def _acquire(self) -> int:
        """Take the lock (or raise naming its holder) and record this process as the holder."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ChromaError(self._in_use()) from None
        except OSError as err:
            os.close(fd)
            raise ChromaError(f"cannot lock {self.lock_path} ({err}); "
                              "use a --run-dir on a file system that supports locks") from err
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        return fd

    def _in_use(self) -> str:
        """The refusal message, naming the holder the lock file records."""
        try:
            holder = json.loads(self.lock_path.read_text())
        except (OSError, json.JSONDecodeError):
            holder = {}  # the holder has not written itself in yet
        if not isinstance(holder, dict) or "pid" not in holder:
            return f"{self.path} is in use by another process; wait for it to finish or stop it"
        return (f"{self.path} is in use by pid {holder['pid']} on {holder.get('host', '?')}; "
                "wait for it to finish or stop it")
