"""Stimulus batches for the extraction loop, rendered by DataLoader workers straight into a ring of
buffers made once (shared with the workers, pinned on a GPU).

The DataLoader's own way costs a fresh shared-memory batch per batch, a collate copy into it,
page faults on both sides and, on a GPU, a pin copy: about 0.3 ms of CPU per 224 px image here,
as much as rendering a Stroop image (bench/host.py). Here each worker renders into its batch's
slot and returns the slot's number only.

A yielded batch is a view of its slot: it stays valid while the consumer takes the next
`HOLD - 1` batches (the extraction loop holds two: the one computing and the one collecting).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

log = logging.getLogger(__name__)

#: batches the consumer may hold at once (each beyond is overwritten by a worker)
HOLD = 2
PREFETCH = 2  # batches in flight per worker (DataLoader's prefetch_factor)


class _RenderInto(Dataset):
    """Batch k: its images rendered into slot k % slots, returning k."""

    def __init__(self, stimulus_set, batches: Sequence[Sequence[int]], slots: torch.Tensor) -> None:
        self.set, self.batches, self.slots = stimulus_set, batches, slots

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> int:
        slot = self.slots[k % len(self.slots)].numpy()
        for j, i in enumerate(self.batches[k]):
            slot[j] = self.set.render(i)
        return k


class RenderedBatches:
    """Iterates (uint8 images (n, H, W, 3), image indices) over `batches` of a stimulus set, in
    order, rendered by `workers` processes (none: in this process). `pin`: page-lock the ring
    for asynchronous copies to a GPU. Use as a context manager, or call `close`."""

    def __init__(self, stimulus_set, batches: Sequence[Sequence[int]], workers: int = 0,
                 pin: bool = False) -> None:
        self.set, self.batches, self.workers = stimulus_set, [list(b) for b in batches], workers
        # every slot a worker may be filling, plus those the consumer holds, plus one to spare
        n_slots = (PREFETCH * workers if workers else 1) + HOLD + 1
        size = stimulus_set.image_size
        longest = max((len(b) for b in self.batches), default=1)
        self.slots = torch.empty((n_slots, longest, size, size, 3), dtype=torch.uint8)
        if workers:
            self.slots.share_memory_()
        self._pinned = pin and _pin(self.slots)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = DataLoader(_RenderInto(self.set, self.batches, self.slots), batch_size=None,
                            num_workers=self.workers,
                            prefetch_factor=PREFETCH if self.workers else None)
        for k in loader:
            index = self.batches[k]
            yield self.slots[k % len(self.slots)][:len(index)], torch.tensor(index)

    def close(self) -> None:
        """Unpin the ring (page-locked memory is scarce); it stays usable as plain memory."""
        if self._pinned:
            int(torch.cuda.cudart().cudaHostUnregister(self.slots.data_ptr()))
            self._pinned = False

    def __enter__(self) -> RenderedBatches:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def _pin(t: torch.Tensor) -> bool:
    """Page-lock `t` in place (cudaHostRegister); False, with a log line, where that fails."""
    code = int(torch.cuda.cudart().cudaHostRegister(t.data_ptr(), t.numel() * t.element_size(), 0))
    if code != 0:
        log.info("could not page-lock the batch ring (CUDA error %s): copies to the GPU will "
                 "wait for the host", code)
        return False
    return True
