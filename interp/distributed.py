"""torchrun support: rank/world from the environment, gloo (CPU) or nccl (GPU), small collectives.

Without torchrun (no WORLD_SIZE or WORLD_SIZE=1) every function is a no-op for one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from interp.errors import ChromaError


@dataclass(frozen=True)
class Dist:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the torchrun job if there is one (gloo on CPU, nccl on CUDA); the rank's device.

    Under torchrun a bare `cuda` becomes `cuda:LOCAL_RANK`, one GPU per process.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank), device


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def share_outcome(d: Dist, error: BaseException | None) -> None:
    """Rank 0 tells the others whether its setup succeeded; all raise rank 0's error."""
    if d.world <= 1:
        if error is not None:
            raise error
        return
    message = [None if error is None else str(error)]
    dist.broadcast_object_list(message, src=0)
    if error is not None:
        raise error
    if message[0] is not None:
        raise ChromaError(message[0])


def share(d: Dist, value: object) -> object:
    """Rank 0's value, on every rank."""
    if d.world <= 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def finish(d: Dist) -> None:
    """Leave the process group (the job is done)."""
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
