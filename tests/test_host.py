"""The host side of the extraction: the batch ring, the writer threads, the default split."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from interp.batches import HOLD, RenderedBatches
from interp.errors import ChromaError
from interp.inputs import host_threads
from interp.writer import ChunkWriter
from stimuli import get_set


@pytest.fixture(scope="module")
def stroop():
    return get_set("stroop", samples_per_combo=1, image_size=32, limit=40)


@pytest.mark.parametrize("workers", [0, 2])
def test_ring_batches_are_the_rendered_images_in_order_while_held(stroop, workers):
    batches = [list(range(k, min(k + 6, 40))) for k in range(0, 40, 6)]  # short last batch
    held, seen = [], []
    with RenderedBatches(stroop, batches, workers) as ring:
        for images, index in ring:
            held = [*held[-(HOLD - 1):], (images, index)]  # what the extraction loop holds
            for imgs, idx in held:  # every held batch is still intact when the next arrives
                expected = np.stack([stroop.render(int(i)) for i in idx])
                np.testing.assert_array_equal(imgs.numpy(), expected)
            seen.append(index.tolist())
    assert seen == batches


@pytest.mark.slow
def test_ring_renders_in_workers_not_here(stroop, monkeypatch):
    batches = [list(range(k, k + 8)) for k in range(0, 40, 8)]
    calls = []
    real = type(stroop).render
    monkeypatch.setattr(type(stroop), "render", lambda self, i: calls.append(i) or real(self, i))
    images = [x.clone() for x, _ in RenderedBatches(stroop, batches, workers=1)]
    assert calls == []  # the workers are forked processes: their calls land there
    assert len(images) == 5 and images[0].shape == (8, 32, 32, 3)


def test_writer_threads_write_every_chunk_once_and_in_parallel():
    written, lock, active, peak = [], threading.Lock(), [0], [0]

    def write(chunk, arrays):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
            written.append(chunk)

    writer = ChunkWriter(write, threads=4)
    for c in range(16):
        writer.submit(c, {})
    writer.close()
    assert sorted(written) == list(range(16))
    assert peak[0] > 1


def test_a_failed_write_in_any_thread_stops_the_producer():
    def write(chunk, arrays):
        if chunk == 3:
            raise OSError(28, "No space left on device")

    writer = ChunkWriter(write, threads=3)
    with pytest.raises(ChromaError, match="No space left.*rerun the same command"):
        for c in range(50):
            writer.submit(c, {})
            time.sleep(0.002)
        writer.close()
    writer.abort()


def test_host_threads_keep_the_cpu_for_the_model_and_split_a_gpu_host(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert host_threads(cpu) == (0, 1)
    assert host_threads(cpu, workers=2, writers=3) == (2, 3)
    monkeypatch.setattr("interp.inputs.usable_cores", lambda: 16)
    assert host_threads(cuda) == (9, 12)  # 15 spare: 9 render, 2 writers per other core
    assert host_threads(cuda, processes=2) == (4, 6)
    assert host_threads(cuda, workers=3) == (3, 24)
    monkeypatch.setattr("interp.inputs.usable_cores", lambda: 1)
    assert host_threads(cuda) == (1, 4)
