"""Devices and torchrun: where a process runs and how the processes of one job cooperate.

A plain `python train.py` is one process with no process group (`DistInfo()`).
Under `torchrun` (WORLD_SIZE, RANK, LOCAL_RANK set) `setup_distributed` joins the
process group (NCCL on CUDA, gloo on the CPU); `wrap_model` puts the model in
DistributedDataParallel, and the broadcast helpers let rank 0 alone read files.
"""
import dataclasses
import functools
import gc
import os
import re
import sys
import time
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as tdist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from errors import InputError

TORCHRUN_VARS = ('WORLD_SIZE', 'RANK', 'LOCAL_RANK')


DEBUG_FAIL_VAR = 'GPT1_DEBUG_FAIL_RANK'  # tests only: "R:hang" or "R:exit" makes rank R stop before training


@dataclasses.dataclass
class DistInfo:
    """Where this process stands in a torchrun job. The default, DistInfo(), is a plain
    single process (`python train.py`): no process group, rank 0 of 1."""
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str = None  # 'nccl' or 'gloo' once a process group is set up, else None
    device: torch.device = None  # where collective operations put their tensors

    @property
    def enabled(self):
        return self.backend is not None

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def sharded(self):
        return self.enabled and self.world_size > 1


def torchrun_env(environ=None):
    """(rank, local_rank, world_size) from the variables torchrun sets, or None when none
    is set (a plain `python train.py`). Raises InputError when only some are set or they
    do not fit together."""
    env = os.environ if environ is None else environ
    present = [name for name in TORCHRUN_VARS if name in env]
    if not present:
        return None
    missing = [name for name in TORCHRUN_VARS if name not in env]
    if missing:
        raise InputError(f"{', '.join(present)} set but {', '.join(missing)} not: expected all of "
                         f"{', '.join(TORCHRUN_VARS)} (launch with torchrun) or none (a single process)")
    try:
        world, rank, local = (int(env[name]) for name in TORCHRUN_VARS)
    except ValueError:
        raise InputError(f"{', '.join(f'{n}={env[n]!r}' for n in TORCHRUN_VARS)}: expected integers "
                         f"(as torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise InputError(f"WORLD_SIZE={world} RANK={rank} LOCAL_RANK={local}: expected 0 <= RANK < WORLD_SIZE "
                         f"and LOCAL_RANK >= 0")
    return rank, local, world


def env_rank(environ=None):
    """This process's rank under torchrun (0 for a plain process or unreadable variables)."""
    try:
        env = torchrun_env(environ)
    except InputError:
        return 0
    return 0 if env is None else env[0]


def resolve_device(device='auto', amp='none'):
    """'auto' -> cuda when available, else cpu. Raises InputError for an unusable device or
    for --amp fp16 on anything but CUDA (bf16 autocast also runs on a CPU)."""
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N") from None
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine; use --device cpu or auto")
    if dev.type not in ('cpu', 'cuda'):
        raise InputError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    if amp == 'fp16' and dev.type != 'cuda':
        why = "CUDA is not available on this machine" if not torch.cuda.is_available() else f"the device is {dev}"
        raise InputError(f"--amp {amp} needs a CUDA device but {why}: use --amp bf16 (CPU autocast) or --amp none")
    return dev


def setup_distributed(args, env=None):
    """-> (DistInfo, device). Without torchrun's variables: DistInfo() and the device of
    --device, nothing else. Under torchrun: NCCL with device cuda:LOCAL_RANK when the
    device is CUDA, else gloo on the CPU; the process group's timeout is --dist_timeout.
    Processes other than rank 0 show no progress bars."""
    if env is None:
        env = torchrun_env()
    if env is None:
        return DistInfo(), resolve_device(args.device, args.amp)
    rank, local_rank, world = env
    device = resolve_device(args.device, args.amp)
    if device.type == 'cuda':
        if device.index is not None:
            raise InputError(f"--device {args.device}: under torchrun each process uses cuda:LOCAL_RANK; pass "
                             f"--device cuda or auto (and CUDA_VISIBLE_DEVICES to choose the GPUs)")
        n_gpu = torch.cuda.device_count()
        if local_rank >= n_gpu:
            raise InputError(f"LOCAL_RANK {local_rank} but this machine has {n_gpu} CUDA device(s): expected "
                             f"--nproc_per_node <= {n_gpu} (or --device cpu)")
        device = torch.device('cuda', local_rank)
        torch.cuda.set_device(device)
        backend = 'nccl'
    else:
        backend = 'gloo'
    if rank != 0:
        _disable_progress_bars()
    kwargs = dict(backend=backend, timeout=timedelta(seconds=args.dist_timeout))
    if backend == 'nccl':
        kwargs['device_id'] = device
    tdist.init_process_group(**kwargs)
    return DistInfo(rank, local_rank, world, backend, device), device


def _disable_progress_bars():
    """Every tqdm bar of this process off, also those of code that takes no verbose flag
    (tqdm reads TQDM_DISABLE only when it is imported, which has happened by now)."""
    tqdm.__init__ = functools.partialmethod(tqdm.__init__, disable=True)


class CollectiveFailure(RuntimeError):
    """A collective operation failed or timed out under torchrun: another process failed,
    stopped or cannot be reached. The CLI prints it as one line and exits with status 1."""

    def __init__(self, rank, timeout, err):
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), '')
        super().__init__(f"rank {rank} stopped: a collective operation with the other processes failed or timed out "
                         f"(--dist_timeout {timeout:g} s); another process has probably failed or stopped, see its "
                         f"output ({type(err).__name__}: {first[:300]})")


_COLLECTIVE_ERRORS = re.compile(r'gloo|nccl|ProcessGroup|Timed out waiting|Connection (closed|reset) by peer|'
                                r'Broken pipe|watchdog|c10d', re.IGNORECASE)


def is_collective_failure(err):
    """True for an error of torch.distributed (DistError), also when it reaches us as the
    RuntimeError that autograd raises for a failed gradient all-reduce in DDP's backward."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, tdist.DistError) or (isinstance(err, RuntimeError) and _COLLECTIVE_ERRORS.search(str(err))):
            return True
        err = err.__cause__ or err.__context__
    return False


def cleanup_distributed(dist, failed=False):
    """destroy_process_group, unless a collective failed (its peers may be gone: the
    process exits and the operating system releases what it held)."""
    if dist.enabled and tdist.is_initialized() and not failed:
        # DDP's hooks hold it in reference cycles, and with it the process group: collected
        # at interpreter exit instead, gloo's threads could die holding Python objects
        # (a rare SIGABRT, "terminate called without an active exception", at the end of
        # a 2-process ELECTRA run)
        gc.collect()
        tdist.destroy_process_group()


def wrap_model(model, dist):
    """DistributedDataParallel around the whole DoubleHeadModel (the classifier reads
    `task_head`, the LM head shares the embedding), or the model itself without a
    process group. Every parameter gets a gradient on every step (the embedding through
    the input lookup even when the LM loss is off), so no find_unused_parameters; the tied
    LM head is the embedding's Parameter, which DDP holds once. DDP copies rank 0's
    parameters to the others."""
    if not dist.enabled:
        return model
    device_ids = [dist.device.index] if dist.device.type == 'cuda' else None
    return DDP(model, device_ids=device_ids, find_unused_parameters=False)


def unwrap_model(model):
    """The DoubleHeadModel inside a DDP wrapper (or the model itself)."""
    return getattr(model, 'module', model)


def rank_seed(seed, rank, epoch):
    """Seed of the torch RNG (dropout) of a process other than rank 0 in an epoch: distinct per
    rank, so that the ranks do not drop the same units, and reproducible on --resume."""
    return int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1)[0])


def broadcast_tree(obj, dist, src=0):
    """Rank src's `obj` (nested dicts, lists and tuples of tensors and plain values) on every
    rank: the structure by broadcast_object_list, the tensors by broadcast on the
    collective device (so a resume needs the checkpoint only where rank 0 runs). Tensors
    come back on the CPU."""
    tensors = []

    def strip(o):
        if isinstance(o, torch.Tensor):
            tensors.append(o)
            return ('__tensor__', len(tensors) - 1, tuple(o.shape), str(o.dtype).replace('torch.', ''))
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return type(o)(strip(v) for v in o)
        return o
    box = [strip(obj) if dist.rank == src else None]
    tdist.broadcast_object_list(box, src=src, device=dist.device)
    skeleton = box[0]
    received = {}

    def fill(o):
        if isinstance(o, tuple) and len(o) == 4 and o[0] == '__tensor__':
            _, i, shape, dtype = o
            if dist.rank == src:
                t = tensors[i].detach().to(dist.device).contiguous()
            else:
                t = torch.empty(shape, dtype=getattr(torch, dtype), device=dist.device)
            tdist.broadcast(t, src=src)
            received[i] = t.cpu()
            return received[i]
        if isinstance(o, dict):
            return {k: fill(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return type(o)(fill(v) for v in o)
        return o
    return fill(skeleton)


@torch.no_grad()
def broadcast_params(model, dist, src=0):
    """Copy rank src's parameters and buffers into every rank's model."""
    if not dist.sharded:
        return
    for t in list(model.parameters()) + list(model.buffers()):
        tmp = t.detach().to(dist.device).contiguous()
        tdist.broadcast(tmp, src=src)
        t.copy_(tmp)


def _debug_fail(dist):
    """Tests of the failure path: with GPT1_DEBUG_FAIL_RANK=R[:hang|:exit], rank R stops
    responding (hang) or leaves early with status 0 (exit) just before training."""
    spec = os.environ.get(DEBUG_FAIL_VAR)
    if not spec or not dist.enabled:
        return
    rank, _, mode = spec.partition(':')
    if int(rank) != dist.rank:
        return
    print(f"rank {dist.rank}: {DEBUG_FAIL_VAR}={spec}: simulating a failed process", file=sys.stderr, flush=True)
    if mode == 'exit':
        os._exit(0)
    time.sleep(24 * 3600)
