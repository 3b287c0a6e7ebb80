"""Background chunk writers: compression and disk writes happen off the model's thread.

Batches are gathered into whole chunks, handed through a bounded queue to `threads` writer
threads; each thread writes whole chunks (never part of one), so chunks land in parallel and in
any order, each with its own completion mark. An error in any thread stops the producer at its
next call. Compression releases the GIL (numcodecs' Blosc), so the threads use separate cores.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np

from interp.errors import ChromaError

BlockArrays = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # block -> (max, argmax, mean)
_STOP = object()


class ChunkWriter:
    """Runs `write(chunk_index, arrays)` in `threads` background threads, at most `depth` chunks
    queued beyond those being written (default: one per thread)."""

    def __init__(self, write: Callable[[int, BlockArrays], None], threads: int = 1,
                 depth: int | None = None) -> None:
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=depth or max(2, threads))
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._run, name=f"chunk-writer-{i}", daemon=True)
                         for i in range(max(1, threads))]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as err:  # reported to the producer, not lost in the thread
                    self._error = err

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            err = self._error
            raise ChromaError(
                f"writing activations failed ({type(err).__name__}: {err}); fix the cause "
                "(disk space, permissions) and rerun the same command to resume"
            ) from err

    def submit(self, chunk: int, arrays: BlockArrays) -> None:
        """Queue a whole chunk for writing; blocks while `depth` chunks are pending."""
        self._raise_if_failed()
        self._queue.put((chunk, arrays))

    def _stop(self) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()

    def abort(self) -> None:
        """Stop after the chunks already queued (whole chunks only), without raising."""
        self._stop()

    def close(self) -> None:
        """Wait for every queued chunk to be written; raise if any write failed."""
        self._stop()
        self._raise_if_failed()


class ChunkAssembler:
    """Collects per-batch reductions of one chunk until it holds `size` images."""

    def __init__(self, chunk: int, size: int) -> None:
        self.chunk, self.size, self.count = chunk, size, 0
        self._parts: list[BlockArrays] = []

    def add(self, arrays: BlockArrays) -> bool:
        """Add one batch; True once the chunk is full."""
        self._parts.append(arrays)
        self.count += len(next(iter(arrays.values()))[0])
        return self.count >= self.size

    def arrays(self) -> BlockArrays:
        """The chunk's arrays, batches concatenated along images (one batch: as it is)."""
        if len(self._parts) == 1:
            return self._parts[0]
        blocks = self._parts[0].keys()
        return {
            b: tuple(np.concatenate([p[b][k] for p in self._parts]) for k in range(3))
            for b in blocks
        }
