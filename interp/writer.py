"""Background chunk writer: compression and disk writes happen off the model's thread.

Batches are gathered into whole chunks (a writer owns whole chunks, never part of one), handed to
one thread through a bounded queue; an error in the thread stops the producer at its next call.
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
    """Runs `write(chunk_index, arrays)` in a background thread, at most `depth` chunks behind."""

    def __init__(self, write: Callable[[int, BlockArrays], None], depth: int = 2) -> None:
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chunk-writer", daemon=True)
        self._thread.start()

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

    def abort(self) -> None:
        """Stop after the chunks already queued (whole chunks only), without raising."""
        self._queue.put(_STOP)
        self._thread.join()

    def close(self) -> None:
        """Wait for every queued chunk to be written; raise if any write failed."""
        self._queue.put(_STOP)
        self._thread.join()
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
        """The chunk's arrays, batches concatenated along images."""
        blocks = self._parts[0].keys()
        return {
            b: tuple(np.concatenate([p[b][k] for p in self._parts]) for k in range(3))
            for b in blocks
        }
