"""Processes and devices: one process, or many under torchrun (DistributedDataParallel).

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; the process group uses nccl on GPUs and gloo on
CPUs. Multi-node runs are torchrun's job (``--nnodes``, ``--rdzv-endpoint``); nothing here changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import SpecError


@dataclass(frozen=True)
class Processes:
    """This process's place in the run and the device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs, checkpoints and plots, and shows progress."""
        return self.rank == 0


def start(device: str | None = None) -> Processes:
    """Join torchrun's process group when there is one, and pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group(backend=backend)
    return Processes(rank, world_size, local_rank, chosen)


def pick_device(device: str | None, local_rank: int) -> torch.device:
    if device in (None, "auto"):
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise SpecError(f"--device: unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise SpecError(f"--device: {device} asked for, but torch sees no CUDA device here; use --device cpu")
        if chosen.index is None:
            chosen = torch.device(f"cuda:{local_rank}")
    return chosen


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast(value: Any, processes: Processes) -> Any:
    """The main process's ``value`` on every process (a no-op in a single process)."""
    if not processes.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_process(flag: bool, processes: Processes) -> bool:
    """True on every process when it is true on any (so all stop at the same step)."""
    if not processes.distributed:
        return flag
    tensor = torch.tensor([int(flag)], device=processes.device if processes.device.type == "cuda" else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def barrier(processes: Processes) -> None:
    if processes.distributed:
        dist.barrier()
