"""RunDir: the writer lock (refusal naming the holder, freed by the holder's death, no two
holders in a race), settings checks naming the difference, the layout, readers of a run."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from interp.errors import ChromaError
from interp.rundir import RunDir


def read_pipe(fd: int, n: int = 1, timeout: float = 10.0) -> bytes:
    """n bytes from a child's pipe; fails the test instead of hanging when the child is gone."""
    out = b""
    while len(out) < n:
        assert select.select([fd], [], [], timeout)[0], "a child process stopped answering"
        chunk = os.read(fd, n - len(out))
        assert chunk, "a child process exited early"
        out += chunk
    return out


@contextmanager
def held_by_child(path) -> Iterator[int]:
    """A forked child holds the run's lock until the block ends; yields its pid."""
    locked_r, locked_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            with RunDir(path).lock():
                os.write(locked_w, b"1")
                time.sleep(30)
        finally:
            os._exit(0)
    os.close(locked_w)
    try:
        assert read_pipe(locked_r) == b"1"
        yield pid
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(locked_r)


def test_second_process_is_refused_and_the_holder_named(tmp_path):
    run = RunDir(tmp_path)
    with held_by_child(tmp_path) as pid:
        with pytest.raises(ChromaError, match=f"in use by pid {pid} on {socket.gethostname()}; "
                           "wait for it to finish or stop it"), run.lock():
            pass
        assert json.loads(run.lock_path.read_text())["pid"] == pid
    with run.lock():  # free again once its holder is gone
        assert json.loads(run.lock_path.read_text())["pid"] == os.getpid()
        with run.lock():  # the same process may nest
            pass
    assert run.lock_path.exists()  # released, never removed


def test_a_dead_holders_lock_is_free_again(tmp_path):
    with held_by_child(tmp_path) as pid:
        pass  # killed with SIGKILL: no cleanup of its own
    assert json.loads(RunDir(tmp_path).lock_path.read_text())["pid"] == pid  # left behind
    with RunDir(tmp_path).lock():
        pass


def _contend(path, rounds: int, go: int, tried: int, done: int) -> None:
    """One contender of the race: each round, wait for the start, try the lock, report whether
    it got in, hold it until both have tried, report once it has let go."""
    for _ in range(rounds):
        os.read(go, 1)
        try:
            with RunDir(path).lock():
                os.write(tried, b"1")
                os.read(done, 1)
        except ChromaError:
            os.write(tried, b"0")
            os.read(done, 1)
        os.write(tried, b"r")


def test_two_processes_released_together_never_both_get_the_lock(tmp_path):
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    stale = json.dumps({"pid": dead, "host": socket.gethostname(), "since": 0})
    rounds, winners = 200, []
    go, tried, done = os.pipe(), os.pipe(), os.pipe()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            try:
                _contend(tmp_path, rounds, go[0], tried[1], done[0])
            finally:
                os._exit(0)
        pids.append(pid)
    try:
        for _ in range(rounds):
            RunDir(tmp_path).lock_path.write_text(stale)  # as a dead holder would leave it
            os.write(go[1], b"GG")  # both try at the same moment
            winners.append(read_pipe(tried[0], 2).count(b"1"))
            os.write(done[1], b"DD")
            assert read_pipe(tried[0], 2) == b"rr"
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for fd in (*go, *tried, *done):
            os.close(fd)
    assert winners == [1] * rounds


def test_settings_mismatch_names_the_setting(tmp_path):
    run = RunDir(tmp_path)
    run.check_settings("model", {"model": "RN50", "pretrained": "openai", "layers": ["a", "b"]})
    run.check_settings("model", {"model": "RN50", "pretrained": "openai", "layers": ("a", "b")})
    with pytest.raises(ChromaError, match=r"model\.pretrained \(run has 'openai', this command "
                       r"asks 'none'\)"):
        run.check_settings("model", {"model": "RN50", "pretrained": "none", "layers": ["a", "b"]})
    run.check_settings("stimuli", {"shapes": {"n": 1}})
    run.check_settings("stimuli", {"natural": {"n": 2}})  # a new set joins the run
    with pytest.raises(ChromaError, match=r"stimuli\.shapes\.n"):
        run.check_settings("stimuli", {"shapes": {"n": 3}})
    assert run.read()["stimuli"] == {"shapes": {"n": 1}, "natural": {"n": 2}}


def test_model_settings_rebuild_kwargs(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(ChromaError, match="extract"):
        run.model_settings()
    run.update({"model_settings": {"model": "RN50", "pretrained": "none", "seed": 3,
                                   "layers": None}})
    assert run.model_settings() == {"model": "RN50", "pretrained": "none", "seed": 3,
                                    "layers": None}


def test_extract_refuses_a_second_writer_before_loading_anything(tmp_path):
    from interp.extract import extract

    with held_by_child(tmp_path) as pid, pytest.raises(ChromaError, match=f"in use by pid {pid}"):
        extract(tmp_path, {"model": "no.such.module:factory"}, ["shapes"])


def test_paths_follow_the_documented_layout(tmp_path):
    layout = {"json_path": "run.json", "lock_path": ".lock", "activations": "activations.zarr",
              "analysis": "analysis.zarr", "neurons_csv": "neurons.csv", "figures": "figures",
              "hue_histogram_csv": "figures/hue_histogram.csv",
              "types_sensitivity_csv": "figures/types_sensitivity.csv", "naming": "naming",
              "naming_embeddings": "naming/embeddings.zarr", "attributions": "attributions",
              "attributions_index": "attributions/index.json", "atlas": "atlas",
              "atlas_index": "atlas/index.html", "atlas_settings": "atlas/atlas.json"}
    run = RunDir(tmp_path)
    assert {name: getattr(run, name).relative_to(tmp_path).as_posix() for name in layout} == layout


def test_readers_of_a_run_say_which_step_is_missing(tmp_path):
    from interp.analysis.runio import load_set, open_analysis

    with pytest.raises(ChromaError, match="run `chromadissect analyze --run-dir"):
        open_analysis(tmp_path)
    with pytest.raises(ChromaError, match="chromadissect extract .*--sets stroop"):
        load_set(tmp_path, "stroop")
    spec = {"samples_per_combo": 1, "image_size": 32, "seed": 2, "limit": 5}
    RunDir(tmp_path).update({"stimuli": {"stroop": spec}})
    assert {k: load_set(tmp_path, "stroop").spec()[k] for k in spec} == spec
