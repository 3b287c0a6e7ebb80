"""One run directory: `run.json` (atomic read/merge/write), the writer lock, settings checks."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from interp.errors import ChromaError

log = logging.getLogger(__name__)

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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunDir:
    """The directory holding every output of one run."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.json_path = self.path / "run.json"
        self.lock_path = self.path / ".lock"

    @property
    def activations(self) -> Path:
        return self.path / "activations.zarr"

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
        """Hold the writer lock: a second writer is refused; a dead holder's lock is taken over."""
        key = self.lock_path.resolve()
        if key in _held_locks:
            _held_locks[key] += 1
            try:
                yield
            finally:
                _held_locks[key] -= 1
            return
        self.path.mkdir(parents=True, exist_ok=True)
        self._acquire()
        _held_locks[key] = 1
        try:
            yield
        finally:
            del _held_locks[key]
            self.lock_path.unlink(missing_ok=True)

    def _acquire(self) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(3):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            return
        raise ChromaError(f"could not take the lock {self.lock_path}; retry")

    def _lock_age_base(self) -> float:
        try:
            return self.lock_path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def _take_over_if_stale(self) -> None:
        try:
            holder = json.loads(self.lock_path.read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            holder = {}
        pid, host = holder.get("pid"), holder.get("host")
        if not holder and time.time() - self._lock_age_base() < 10:
            raise ChromaError(f"{self.path} is being locked by another process; wait and retry")
        if host == socket.gethostname() and isinstance(pid, int) and _pid_alive(pid):
            raise ChromaError(
                f"{self.path} is in use by pid {pid} on {host}; wait for it to finish or stop it"
            )
        if host not in (None, socket.gethostname()):
            raise ChromaError(
                f"{self.path} is locked by pid {pid} on host {host}; if that run is gone, "
                f"remove {self.lock_path} and rerun"
            )
        log.warning("taking over the stale lock of %s (pid %s on %s is gone)", self.path, pid, host)
        self.lock_path.unlink(missing_ok=True)
