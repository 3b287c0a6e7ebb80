"""RunDir: the writer lock (refusal, stale takeover) and settings checks naming the difference."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys

import pytest

from interp.errors import ChromaError
from interp.rundir import RunDir


def write_lock(run: RunDir, pid: int, host: str | None = None) -> None:
    run.path.mkdir(parents=True, exist_ok=True)
    run.lock_path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname()}))


def test_live_holder_is_refused_and_named(tmp_path):
    run = RunDir(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        write_lock(run, holder.pid)
        with pytest.raises(ChromaError, match=f"in use by pid {holder.pid} on"), run.lock():
            pass
        assert json.loads(run.lock_path.read_text())["pid"] == holder.pid  # left alone
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_is_taken_over_with_a_warning(tmp_path, caplog):
    run = RunDir(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_lock(run, gone.pid)
    with caplog.at_level(logging.WARNING), run.lock():
        assert json.loads(run.lock_path.read_text())["pid"] != gone.pid
        with run.lock():  # the same process may nest
            pass
        assert run.lock_path.exists()
    assert "stale lock" in caplog.text and str(gone.pid) in caplog.text
    assert not run.lock_path.exists()


def test_lock_of_other_host_is_refused(tmp_path):
    run = RunDir(tmp_path)
    write_lock(run, 1, host="elsewhere.example")
    with pytest.raises(ChromaError, match="on host elsewhere.example"), run.lock():
        pass


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

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        write_lock(RunDir(tmp_path), holder.pid)
        with pytest.raises(ChromaError, match=f"in use by pid {holder.pid}"):
            extract(tmp_path, {"model": "no.such.module:factory"}, ["shapes"])
    finally:
        holder.kill()
        holder.wait()
