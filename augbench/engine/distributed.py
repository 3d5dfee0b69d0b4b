"""One run on many processes: DistributedDataParallel started by torchrun.

``torchrun --nproc_per_node N -m augbench train ...`` starts N copies of the
command; torchrun's environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``) tells each copy which rank it is. Multi-node
runs use torchrun's own ``--nnodes`` and rendezvous flags; nothing here
changes for them. Without that environment (or with a world of one) a run is
the ordinary single-process run and no process group exists.

Backend: nccl when the ranks train on CUDA (rank r uses ``cuda:LOCAL_RANK``),
gloo on the CPU. Every collective goes through the few helpers below, so a
reader can see what the ranks exchange:

- once: the run folder's state (rank 0 reads it) and, on a resume, the
  checkpoint (rank 0 reads it, every rank gets the shared state and its own
  RNG and method state);
- per epoch: the training sums, BatchNorm buffers (rank 0's), the evaluation
  counts, every rank's RNG and method state (to rank 0, for the checkpoint)
  and rank 0's stop decision;
- every ``FINITE_CHECK_EVERY`` steps: whether every rank's loss is finite.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from augbench.errors import FieldError, UsageError

#: Seconds a rank waits for the rendezvous and, later, for the other ranks in a collective.
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank ``rank`` of ``size`` (``local_rank`` on its node)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = World()


def world_from_env() -> World:
    """The world torchrun describes in the environment; one process when it describes none."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise UsageError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets them)") from None
    if size < 1 or not 0 <= rank < size:
        raise UsageError(f"RANK {rank} and WORLD_SIZE {size}: accepted: 0 <= RANK < WORLD_SIZE")
    return World(rank=rank, size=size, local_rank=local_rank)


def check_request(world: World, batch_size: int, sync_bn: bool, device: str | None = None) -> None:
    """Bad DDP input, found before any process group or file exists; raises UsageError.

    ``device``: this rank's device name once known (``--sync-bn`` needs CUDA).
    """
    if sync_bn and not world.enabled:
        raise UsageError("--sync-bn: needs more than one process; accepted: with torchrun --nproc_per_node N "
                         "(N >= 2), or leave out --sync-bn")
    if sync_bn and device is not None and not device.startswith("cuda"):
        raise UsageError(f"--sync-bn: torch's SyncBatchNorm runs on CUDA only, this run is on {device}; "
                         "accepted: a CUDA device, or leave out --sync-bn (BatchNorm per rank)")
    if not world.enabled:
        return
    if batch_size % world.size:
        raise FieldError("batch_size", f"--batch-size {batch_size}: the global batch must divide by the world size "
                         f"{world.size} (torchrun's processes); accepted: a multiple of {world.size}")


def check_mixing(world: World, batch_size: int) -> None:
    """Batch mixing pairs samples within a rank's shard (timm's flip pairing): the shard must be even."""
    shard = batch_size // world.size
    if world.enabled and shard % 2:
        raise FieldError("batch_size", f"--batch-size {batch_size}: each of the {world.size} ranks would mix {shard} samples "
                         f"and batch mixing needs an even number; accepted: a multiple of {2 * world.size}")


def device_for(world: World, requested: str) -> str:
    """The device name of this rank: ``cuda:LOCAL_RANK`` when the ranks train on CUDA."""
    if not world.enabled:
        return requested
    if requested not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device {requested}: under torchrun every rank takes cuda:LOCAL_RANK; "
                         "accepted: auto, cuda or cpu")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return "cpu"
    if not torch.cuda.is_available():
        raise UsageError(f"--device {requested}: CUDA is not available on this machine (use --device cpu or auto)")
    if world.local_rank >= torch.cuda.device_count():
        raise UsageError(f"LOCAL_RANK {world.local_rank}: this node has {torch.cuda.device_count()} CUDA devices; "
                         "accepted: --nproc_per_node at most the number of devices")
    return f"cuda:{world.local_rank}"


def init(world: World, device: torch.device, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Joins the process group (nccl on CUDA, gloo on the CPU); a clear error if the rendezvous is unreachable."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    address = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
    try:
        dist.init_process_group(backend, rank=world.rank, world_size=world.size,
                                timeout=timedelta(seconds=timeout))
    except (RuntimeError, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RendezvousError(f"rank {world.rank} of {world.size} could not join the run at {address} "
                              f"({backend}) within {timeout:g}s: {first}") from None


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class RendezvousError(UsageError):
    """A rank could not reach the rendezvous (the address torchrun gave) within the timeout.

    A usage error: the address and port come from torchrun's flags (exit status 2).
    """


class Terminated(RuntimeError):
    """SIGTERM: torchrun stops the surviving ranks this way when one of them has died."""


def raise_on_sigterm() -> None:
    """Turns SIGTERM into :class:`Terminated`, so rank 0 can still record why the run stopped."""
    def handler(signum, frame):
        raise Terminated("stopped by SIGTERM (torchrun stops every rank when one of them fails)")

    signal.signal(signal.SIGTERM, handler)


# -- what the ranks exchange ------------------------------------------------------------------------

def sum_(tensor: torch.Tensor) -> torch.Tensor:
    """In-place sum over the ranks (the tensor is returned for chaining)."""
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_true(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on every rank."""
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; tensors should be on the CPU)."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0, in rank order (None on the other ranks)."""
    boxes = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, boxes, dst=0)
    return boxes


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank: the model evaluated and saved."""
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


def to_device(obj: Any, device: torch.device | str) -> Any:
    """``obj`` with every tensor inside dicts, lists and tuples moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
