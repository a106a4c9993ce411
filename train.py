"""Finetune OpenAI's GPT-1 on ROCStories (the Story Cloze Test), as the TF release did.

    python train.py --dataset rocstories --desc rocstories --submit --analysis --data_dir DIR

Every step is a function a notebook can call (see `run` for the order):
`parse_args`, `check_inputs`, `set_seed`, `resolve_device`, `load_data`,
`build_model`, `make_optimizer`, `make_loss_compute`, `train_step`,
`train_epoch`, `evaluate`, `predict`, `log_epoch`, `write_submission`,
`save_checkpoint` / `load_checkpoint`, and `run(args)` for the whole job.
The module keeps no state of its own.

Data-parallel training on several GPUs or machines: launch the same script with
PyTorch's launcher, e.g. `torchrun --nproc_per_node 4 train.py ...`. Each process
takes its share of every batch (DistributedDataParallel), so one update consumes
n_batch * world_size * n_acc examples; see `setup_distributed` and the README.
"""
import argparse
import contextlib
import dataclasses
import json
import math
import os
import random
import re
import sys
import tempfile
import time
from datetime import timedelta

import numpy as np
import torch
import torch.nn as nn
import torch.distributed as tdist
import torch.nn.functional as F

from datasets import ROCSTORIES_URL, TEST_FILE, VAL_FILE, rocstories  # the project's datasets.py
from errors import InputError
from loss import MultipleChoiceLossCompute, lm_mask_from
from model_pytorch import (CHECKPOINT_FORMATS, CheckpointError, DoubleHeadModel, find_checkpoint_format,
                           load_pretrained)
from opt import OpenAIAdam

DATASETS = ('rocstories',)
SUBMISSION_FILES = {'rocstories': 'ROCStories.tsv'}
ROC_FILES = (VAL_FILE, TEST_FILE)
ROC_SOURCE = f"the Story Cloze Test files (spring 2016) from {ROCSTORIES_URL}"
ROC_N_STORIES = 1871  # in the validation file, split into train and valid
MODEL_SOURCE = "the model/ folder of https://github.com/openai/finetune-transformer-lm"
# The earlier port (and the TF release) logged during the first epoch at these update counts.
LOG_UPDATES = (1000, 2000, 4000, 8000, 16000, 32000)
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
BEST_PARAMS = 'best_params.safetensors'
LAST_PARAMS = 'last_params.safetensors'
LAST_STATE = 'last_state.pt'


# ------------------------------------------------------------------ flags

def build_parser():
    p = argparse.ArgumentParser(description="Finetune OpenAI's GPT-1 (finetune-transformer-lm) on ROCStories.")
    # the earlier port's flags, same names and defaults
    p.add_argument('--desc', type=str, default=None,
                   help="run name: the log is {log_dir}/{desc}.jsonl, checkpoints {save_dir}/{desc}/ (default: the dataset)")
    p.add_argument('--dataset', type=str, default='rocstories', choices=DATASETS)
    p.add_argument('--log_dir', type=str, default='log/')
    p.add_argument('--save_dir', type=str, default='save/')
    p.add_argument('--data_dir', type=str, default='data/')
    p.add_argument('--submission_dir', type=str, default='submission/')
    p.add_argument('--submit', action='store_true', help="keep the best-validation parameters and write the test predictions")
    p.add_argument('--analysis', action='store_true', help="with --submit: print the validation and test accuracy")
    p.add_argument('--seed', type=int, default=42)
    p.add_argument('--n_iter', type=int, default=3, help="epochs")
    p.add_argument('--n_batch', type=int, default=8, help="examples per forward/backward pass (per process under torchrun)")
    p.add_argument('--max_grad_norm', type=float, default=1)
    p.add_argument('--lr', type=float, default=6.25e-5)
    p.add_argument('--lr_warmup', type=float, default=0.002)
    p.add_argument('--n_ctx', type=int, default=512)
    p.add_argument('--n_embd', type=int, default=768)
    p.add_argument('--n_head', type=int, default=12)
    p.add_argument('--n_layer', type=int, default=12)
    p.add_argument('--embd_pdrop', type=float, default=0.1)
    p.add_argument('--attn_pdrop', type=float, default=0.1)
    p.add_argument('--resid_pdrop', type=float, default=0.1)
    p.add_argument('--clf_pdrop', type=float, default=0.1)
    p.add_argument('--l2', type=float, default=0.01)
    p.add_argument('--vector_l2', action='store_true')
    p.add_argument('--opt', type=str, default='adam', choices=('adam',))
    p.add_argument('--afn', type=str, default='gelu', choices=('gelu', 'relu', 'swish'))
    p.add_argument('--lr_schedule', type=str, default='warmup_linear',
                   choices=('warmup_linear', 'warmup_cosine', 'warmup_constant', 'none'))
    p.add_argument('--encoder_path', type=str, default=None, help="default: {model_dir}/encoder_bpe_40000.json")
    p.add_argument('--bpe_path', type=str, default=None, help="default: {model_dir}/vocab_40000.bpe")
    p.add_argument('--n_transfer', type=int, default=12, help="pretrained layers to load (-1: embeddings only)")
    p.add_argument('--lm_coef', type=float, default=0.5)
    p.add_argument('--b1', type=float, default=0.9)
    p.add_argument('--b2', type=float, default=0.999)
    p.add_argument('--e', type=float, default=1e-8)
    p.add_argument('--n_valid', type=int, default=374)
    # added
    p.add_argument('--model_dir', type=str, default='model/',
                   help="folder with OpenAI's checkpoint (params_shapes.json, params_0..9.npy) or a Hugging Face "
                        "openai-gpt folder (config.json, model.safetensors), and the BPE files")
    p.add_argument('--init', type=str, default='pretrained', choices=('pretrained', 'random'),
                   help="'random' skips the pretrained weights (smoke runs); the BPE files are still needed")
    p.add_argument('--n_acc', type=int, default=1,
                   help="gradient accumulation: one optimizer update every n_acc batches (effective batch "
                        "n_batch*n_acc, times the number of processes under torchrun)")
    p.add_argument('--device', type=str, default='auto', help="auto (cuda if available, else cpu), cpu, cuda, cuda:N")
    p.add_argument('--amp', type=str, default='none', choices=('none', 'bf16', 'fp16'),
                   help="CUDA mixed precision (autocast; fp16 adds a GradScaler)")
    p.add_argument('--attn_impl', type=str, default='sdpa', choices=('sdpa', 'explicit'))
    p.add_argument('--truncate', action='store_true',
                   help="cut stories and endings to n_ctx // 2 - 2 tokens, as the original always did, instead of "
                        "refusing an n_ctx that cannot hold the longest example")
    p.add_argument('--resume', action='store_true',
                   help="continue from {save_dir}/{desc}/last_params.safetensors and last_state.pt")
    p.add_argument('--max_updates', type=int, default=0,
                   help="stop after this many optimizer updates in all (0: no limit); the epoch in progress is "
                        "logged and checkpointed as if it ended there. The schedule still spans --n_iter epochs, "
                        "so these are the first updates of the full run (smoke tests and checks; not for --resume)")
    p.add_argument('--dist_timeout', type=float, default=600,
                   help="under torchrun: seconds a process waits for the others in a collective operation before "
                        "it stops with an error (a failed or stuck process then cannot hang the job)")
    return p


def parse_args(argv=None):
    """Parse and check the flags (argparse errors, exit status 2, on bad values)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        validate_args(args)
    except InputError as err:
        parser.error(str(err))
    return args


def validate_args(args):
    """Fill in derived defaults and check values; raises InputError naming the flag."""
    if args.desc is None:
        args.desc = args.dataset
    if not args.desc or os.sep in args.desc or args.desc in ('.', '..'):
        raise InputError(f"--desc {args.desc!r}: expected a plain run name (it names the log file and checkpoint folder)")
    if args.dataset not in DATASETS:
        raise InputError(f"--dataset {args.dataset!r}: expected one of {', '.join(DATASETS)}")
    for flag in ('n_batch', 'n_iter', 'n_acc'):
        if getattr(args, flag) < 1:
            raise InputError(f"--{flag} {getattr(args, flag)}: expected a positive integer")
    if args.max_updates < 0:
        raise InputError(f"--max_updates {args.max_updates}: expected 0 (no limit) or a positive integer")
    if not args.dist_timeout > 0 or not math.isfinite(args.dist_timeout):
        raise InputError(f"--dist_timeout {args.dist_timeout}: expected a positive number of seconds")
    if not args.lr > 0 or not math.isfinite(args.lr):
        raise InputError(f"--lr {args.lr}: expected a positive learning rate")
    if args.n_ctx < 6:
        raise InputError(f"--n_ctx {args.n_ctx}: expected at least 6 (3 special tokens plus story and ending "
                         f"of n_ctx // 2 - 2 tokens each)")
    if not 1 <= args.n_valid < ROC_N_STORIES:
        raise InputError(f"--n_valid {args.n_valid}: expected 1 to {ROC_N_STORIES - 1} validation stories (the rest "
                         f"of the {ROC_N_STORIES} in the Story Cloze validation file train)")
    if args.encoder_path is None:
        args.encoder_path = os.path.join(args.model_dir, 'encoder_bpe_40000.json')
    if args.bpe_path is None:
        args.bpe_path = os.path.join(args.model_dir, 'vocab_40000.bpe')
    if args.analysis and not args.submit:
        raise InputError("--analysis scores the test predictions that --submit writes: pass --submit too")
    resolve_device(args.device, args.amp)
    return args


def resolve_device(device='auto', amp='none'):
    """'auto' -> cuda when available, else cpu. Raises InputError for an unusable device or
    for --amp on anything but CUDA."""
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
    if amp != 'none' and dev.type != 'cuda':
        why = "CUDA is not available on this machine" if not torch.cuda.is_available() else f"the device is {dev}"
        raise InputError(f"--amp {amp} needs a CUDA device but {why}: use --amp none")
    return dev


def _check_writable(path, flag):
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise InputError(f"{flag} {path}: cannot write there ({err.strerror or err}); expected a folder this user "
                         f"can create files in") from None


def check_inputs(args, writes=True):
    """Check, before any work, the files the run reads and the folders it writes
    (writes=False: only the files it reads, as for a torchrun process other than rank 0,
    which writes nothing). Raises InputError saying what is expected and where it comes from."""
    if not os.path.isdir(args.data_dir):
        raise InputError(f"--data_dir {args.data_dir}: no such folder; expected it to hold {ROC_SOURCE}: "
                         f"{ROC_FILES[0]!r} and {ROC_FILES[1]!r}")
    missing = [f for f in ROC_FILES if not os.path.isfile(os.path.join(args.data_dir, f))]
    if missing:
        raise InputError(f"--data_dir {args.data_dir}: {', '.join(repr(f) for f in missing)} missing; expected "
                         f"{ROC_SOURCE}")
    if args.init == 'pretrained':
        if not os.path.isdir(args.model_dir):
            raise InputError(f"--model_dir {args.model_dir}: no such folder; expected OpenAI's checkpoint "
                             f"(params_shapes.json, params_0.npy ... params_9.npy) from {MODEL_SOURCE}, or a "
                             f"Hugging Face openai-gpt folder (or --init random for a run without pretrained weights)")
        try:
            find_checkpoint_format(args.model_dir)
        except FileNotFoundError as err:
            raise InputError(f"--model_dir {args.model_dir}: {err}") from None
    for flag, path, name in (('--encoder_path', args.encoder_path, 'encoder_bpe_40000.json'),
                             ('--bpe_path', args.bpe_path, 'vocab_40000.bpe')):
        if not os.path.isfile(path):
            raise InputError(f"{flag} {path}: no such file; expected OpenAI's {name} from {MODEL_SOURCE} "
                             f"(it defaults to {{model_dir}}/{name})")
    if not writes:
        return
    _check_writable(args.log_dir, '--log_dir')
    _check_writable(os.path.join(args.save_dir, args.desc), '--save_dir')
    if args.submit:
        _check_writable(args.submission_dir, '--submission_dir')


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too


# ------------------------------------------------------------------ distributed (torchrun)

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
    import functools
    from tqdm import tqdm
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
    from torch.nn.parallel import DistributedDataParallel as DDP
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


def check_global_batch(n_train, args, world_size=1):
    """Raise InputError when one update's examples, n_batch * world_size * n_acc, exceed the
    training set (no update would happen), saying what would fit."""
    per_update = args.n_batch * world_size * args.n_acc
    if per_update <= n_train:
        return
    W, n_acc = world_size, args.n_acc
    procs = f" x {W} processes" if W > 1 else ""
    with_procs = f" with {W} processes" if W > 1 else ""
    if n_train >= W * n_acc:
        fix = f"--n_batch {n_train // (W * n_acc)} or less{with_procs} and --n_acc {n_acc}"
    elif n_train >= W:
        fix = f"--n_acc 1 and --n_batch {n_train // W} or less{with_procs}"
    else:
        fix = f"at most {n_train} processes"
    raise InputError(f"--n_batch {args.n_batch}{procs} x --n_acc {n_acc} = {per_update} examples per update is more "
                     f"than the {n_train} training examples: expected at most {n_train} (e.g. {fix})")


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


# ------------------------------------------------------------------ data

@dataclasses.dataclass
class RocData:
    """Encoded ROCStories. X (n, 2, n_ctx, 2) int32: token and position ids; M (n, 2, n_ctx) float32 masks."""
    text_encoder: object
    encoder: dict
    n_vocab: int
    n_special: int
    clf_token: int
    n_ctx: int
    max_len: int
    trX: np.ndarray
    trM: np.ndarray
    trY: np.ndarray
    vaX: np.ndarray
    vaM: np.ndarray
    vaY: np.ndarray
    teX: np.ndarray
    teM: np.ndarray

    @property
    def vocab(self):
        """Rows of the embedding matrix: tokens, special tokens, positions."""
        return self.n_vocab + self.n_special + self.n_ctx


def transform_roc(X1, X2, X3, encoder, n_ctx, max_len, n_vocab, n_special):
    """Token lists -> (X (n, 2, n_ctx, 2) int32, M (n, 2, n_ctx) float32):
    `[_start_] story [_delimiter_] ending [_classify_]` for each of the two endings."""
    n = len(X1)
    xmb = np.zeros((n, 2, n_ctx, 2), dtype=np.int32)
    mmb = np.zeros((n, 2, n_ctx), dtype=np.float32)
    start, delimiter, clf_token = encoder['_start_'], encoder['_delimiter_'], encoder['_classify_']
    for i, (x1, x2, x3) in enumerate(zip(X1, X2, X3)):
        for j, x in enumerate((x2, x3)):
            seq = [start] + x1[:max_len] + [delimiter] + x[:max_len] + [clf_token]
            xmb[i, j, :len(seq), 0] = seq
            mmb[i, j, :len(seq)] = 1
    xmb[:, :, :, 1] = np.arange(n_vocab + n_special, n_vocab + n_special + n_ctx)
    return xmb, mmb


def _longest_example(splits, max_len=None):
    """(length, split name, index) of the longest `[start] story [delim] ending [clf]`."""
    best = (0, None, None)
    for name, (X1, X2, X3) in splits.items():
        for i, (x1, x2, x3) in enumerate(zip(X1, X2, X3)):
            if max_len is not None:
                x1, x2, x3 = x1[:max_len], x2[:max_len], x3[:max_len]
            n = len(x1) + max(len(x2), len(x3)) + 3
            if n > best[0]:
                best = (n, name, i)
    return best


def encode_rocstories(args, verbose=True):
    """Read ROCStories from args.data_dir and BPE-encode it (tqdm bar).
    Returns (text_encoder, ((trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3)))
    with token-id lists, before the special tokens exist."""
    from text_utils import TextEncoder
    from utils import encode_dataset

    text_encoder = TextEncoder(args.encoder_path, args.bpe_path)
    if verbose:
        print("Encoding dataset...", file=sys.stderr)
    splits = rocstories(args.data_dir, n_train=ROC_N_STORIES - args.n_valid, n_valid=args.n_valid)
    return text_encoder, tuple(tuple(s) for s in encode_dataset(*splits, encoder=text_encoder))


def check_n_ctx(encoded, n_ctx):
    """Raise InputError when a story or an ending is longer than the n_ctx // 2 - 2 tokens
    n_ctx leaves it (the original silently cut it; --truncate does that)."""
    max_len = n_ctx // 2 - 2
    names = ('train', 'valid', 'test')
    parts = ('story', 'first ending', 'second ending')
    n_tok, name, i, part = max((len(x), name, i, part) for name, split in zip(names, encoded)
                               for part, field in zip(parts, split[:3]) for i, x in enumerate(field))
    if n_tok > max_len:
        raise InputError(
            f"--n_ctx {n_ctx} cannot hold the longest example: the {part} of {name} example {i} is {n_tok} "
            f"tokens, more than the n_ctx // 2 - 2 = {max_len} a story or an ending may have; expected "
            f"--n_ctx >= {2 * (n_tok + 2)} (or --truncate to cut them to {max_len} tokens as the original did)")


def make_roc_data(text_encoder, encoded, n_ctx=512, truncate=False):
    """Add the special tokens `_start_`, `_delimiter_`, `_classify_` to the encoder (once),
    cut n_ctx to the longest example as the original did, and build the padded arrays."""
    ((trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3)) = encoded
    encoder = text_encoder.encoder
    specials = ('_start_', '_delimiter_', '_classify_')
    if specials[0] not in encoder:
        for name in specials:
            encoder[name] = len(encoder)
    n_special = len(specials)
    n_vocab = len(encoder) - n_special
    clf_token = encoder['_classify_']
    if not truncate:
        check_n_ctx(encoded, n_ctx)
    max_len = n_ctx // 2 - 2
    splits = {'train': (trX1, trX2, trX3), 'valid': (vaX1, vaX2, vaX3), 'test': (teX1, teX2, teX3)}
    longest, _, _ = _longest_example(splits, max_len)
    n_ctx = min(longest, n_ctx)
    trX, trM = transform_roc(trX1, trX2, trX3, encoder, n_ctx, max_len, n_vocab, n_special)
    vaX, vaM = transform_roc(vaX1, vaX2, vaX3, encoder, n_ctx, max_len, n_vocab, n_special)
    teX, teM = transform_roc(teX1, teX2, teX3, encoder, n_ctx, max_len, n_vocab, n_special)
    return RocData(text_encoder, encoder, n_vocab, n_special, clf_token, n_ctx, max_len,
                   trX, trM, np.asarray(trY, dtype=np.int64), vaX, vaM, np.asarray(vaY, dtype=np.int64), teX, teM)


def load_data(args, verbose=True):
    """Read and encode ROCStories, add the special tokens, cut n_ctx to the longest
    example as the original did, and build the padded arrays. Returns RocData."""
    text_encoder, encoded = encode_rocstories(args, verbose)
    return make_roc_data(text_encoder, encoded, args.n_ctx, args.truncate)


# ------------------------------------------------------------------ model and optimizer

def build_model(args, data, device='cpu'):
    """The DoubleHeadModel for `data`, with OpenAI's weights unless args.init == 'random'."""
    model = DoubleHeadModel(args, data.clf_token, 'multiple_choice', data.vocab, data.n_ctx)
    model.transformer.set_attention(getattr(args, 'attn_impl', 'sdpa'))
    if getattr(args, 'init', 'pretrained') == 'pretrained':
        try:
            load_pretrained(model, args.model_dir, n_ctx=data.n_ctx, n_special=data.n_special,
                            n_transfer=args.n_transfer)
        except (CheckpointError, ValueError) as err:
            raise InputError(f"--model_dir {args.model_dir}: {err}") from None
    return model.to(device)


def n_updates_total(n_train, args, world_size=1):
    """Optimizer updates in the whole run (t_total): full update batches of
    n_batch * world_size * n_acc examples per epoch times epochs, as the original (the last
    partial batch of an epoch is dropped). Under torchrun these are global updates."""
    return (n_train // (args.n_batch * world_size * args.n_acc)) * args.n_iter


def make_optimizer(args, model, t_total):
    return OpenAIAdam(model.parameters(), lr=args.lr, schedule=args.lr_schedule, warmup=args.lr_warmup,
                      t_total=max(t_total, 1), b1=args.b1, b2=args.b2, e=args.e, l2=args.l2,
                      vector_l2=args.vector_l2, max_grad_norm=args.max_grad_norm)


def make_loss_compute(args, opt=None, scaler=None):
    criterion = nn.CrossEntropyLoss(reduction='none')
    return MultipleChoiceLossCompute(criterion, criterion, args.lm_coef, opt, n_acc=args.n_acc, scaler=scaler)


def make_scaler(amp):
    return torch.amp.GradScaler('cuda') if amp == 'fp16' else None


def autocast(device, amp='none'):
    if amp == 'none':
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=AMP_DTYPES[amp])


# ------------------------------------------------------------------ steps

def to_batch(X, M, Y=None, device='cpu', trim=True):
    """numpy arrays of one batch -> tensors on `device`; with trim, cut the position axis
    to the batch's longest sequence (causal attention: padding after a sequence never
    changes it)."""
    if trim:
        T = max(int(M.sum(-1).max()), 2)
        X, M = X[..., :T, :], M[..., :T]
    Xt = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.long, device=device)
    Mt = torch.as_tensor(np.ascontiguousarray(M), dtype=torch.float32, device=device)
    Yt = None if Y is None else torch.as_tensor(np.asarray(Y), dtype=torch.long, device=device)
    return Xt, Mt, Yt


def train_step(model, loss_compute, X, M, Y, device='cpu', amp='none', trim=True, use_lm_mask=True):
    """One micro-batch: forward, loss, backward (loss_compute steps the optimizer every
    n_acc calls). X, M, Y numpy arrays of the batch. Returns the objective (float)."""
    model.train()
    X, M, Y = to_batch(X, M, Y, device, trim)
    lm_mask = None
    if use_lm_mask:
        lm_mask = lm_mask_from(M) if loss_compute.lm_coef else torch.zeros(M.shape, dtype=torch.bool, device=device)
    with autocast(device, amp):
        lm_logits, clf_logits = model(X, lm_mask=lm_mask)
    return loss_compute(X, Y, M, clf_logits, lm_logits, lm_mask=lm_mask)


@dataclasses.dataclass
class TrainState:
    n_updates: int = 0
    n_epochs: int = 0
    best_score: float = 0.0


def epoch_order(seed, epoch, n):
    """The shuffled order of the training examples in epoch `epoch` (0-based)."""
    return np.random.RandomState([seed, epoch]).permutation(n)


def train_epoch(model, loss_compute, X, M, Y, args, state, device='cpu', on_update=None, verbose=True,
                trim=True, use_lm_mask=True, dist=None):
    """One epoch, shuffled with (args.seed, state.n_epochs): updates of n_batch * world_size *
    n_acc examples (the last partial one dropped, as the original), each as n_acc micro-batches
    of n_batch per process. Calls on_update(state) after every update; stops early once
    state.n_updates reaches args.max_updates (when set). Returns the mean objective (of this
    process's micro-batches).

    Under torchrun (`dist`, a DistInfo, and `model` wrapped by DDP) every process walks the
    same shuffled order; micro-batch k of an update is the update's examples
    [k*W*b, (k+1)*W*b) and rank r takes its slice [r*b, (r+1)*b) of it. The gradients of the
    first n_acc - 1 micro-batches stay local (model.no_sync()); DDP averages the sum over the
    ranks at the last one, so the update's gradient is that of the mean loss over the global
    batch, as one process with n_batch * W would get."""
    from utils import iter_data

    world, rank = (dist.world_size, dist.rank) if dist is not None else (1, 0)
    max_updates = getattr(args, 'max_updates', 0)
    order = epoch_order(args.seed, state.n_epochs, len(Y))
    b = args.n_batch
    n_up = b * world * args.n_acc
    total, count = 0.0, 0
    for idx in iter_data(order, n_batch=n_up, truncate=True, verbose=verbose):
        for k in range(args.n_acc):
            start = (k * world + rank) * b
            mb = idx[start:start + b]
            last = k == args.n_acc - 1
            sync = contextlib.nullcontext() if last or not hasattr(model, 'no_sync') else model.no_sync()
            with sync:
                total += train_step(model, loss_compute, X[mb], M[mb], Y[mb], device, args.amp, trim, use_lm_mask)
            count += 1
        state.n_updates += 1
        if on_update is not None:
            on_update(state)
        if max_updates and state.n_updates >= max_updates:
            break
    return total / max(count, 1)


def _eval_logits(model, X, M, n_batch, device='cpu', amp='none', verbose=True, dist=None):
    """Classifier logits (n, n_choices) as float64 numpy, in eval mode under inference_mode.
    Batches are formed in order of length so that trimming cuts most padding; the
    results come back in the input order.

    Under torchrun (`dist` with world_size W > 1) it is a collective call: rank r scores
    every W-th example of the length order from r (a share of similar cost on every rank)
    and all_gather gives every rank all the logits, so every rank computes the same
    accuracy and agrees on the best epoch. `model` is the plain module, not DDP."""
    from utils import iter_data

    lengths = M.reshape(len(M), -1, M.shape[-1]).sum(-1).max(-1)
    order = np.argsort(lengths, kind='stable')
    sharded = dist is not None and dist.sharded
    mine = order[dist.rank::dist.world_size] if sharded else order
    local = np.zeros((len(mine), X.shape[1]), dtype=np.float64)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for pos in iter_data(np.arange(len(mine)), n_batch=n_batch, verbose=verbose):
                idx = mine[pos]
                Xb, Mb, _ = to_batch(X[idx], M[idx], None, device, trim=True)
                no_lm = torch.zeros(Mb.shape, dtype=torch.bool, device=device)
                with autocast(device, amp):
                    _, clf_logits = model(Xb, lm_mask=no_lm)
                local[pos] = clf_logits.float().cpu().numpy()
    finally:
        model.train(was_training)
    out = np.zeros((len(X), X.shape[1]), dtype=np.float64)
    if not sharded:
        out[mine] = local
        return out
    W = dist.world_size
    per = -(-len(X) // W)
    buf = torch.zeros(per, X.shape[1], dtype=torch.float64, device=dist.device)
    buf[:len(mine)] = torch.from_numpy(local).to(dist.device)
    parts = [torch.empty_like(buf) for _ in range(W)]
    tdist.all_gather(parts, buf)
    for r, part in enumerate(parts):
        idx = order[r::W]
        out[idx] = part[:len(idx)].cpu().numpy()
    return out


def evaluate(model, X, M, Y, n_batch=8, device='cpu', amp='none', verbose=True, dist=None):
    """-> (logits (n, n_choices), cost = mean classifier loss, accuracy in percent).
    With `dist` (torchrun), a collective call whose results every rank gets."""
    logits = _eval_logits(model, X, M, n_batch, device, amp, verbose, dist)
    Y = np.asarray(Y)
    cost = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(Y).long(), reduction='mean'))
    acc = float(np.mean(np.argmax(logits, 1) == Y) * 100.)
    return logits, cost, acc


def predict(model, X, M, n_batch=8, device='cpu', amp='none', verbose=True, dist=None):
    """Predicted choice per example (argmax of the classifier logits); collective with `dist`."""
    return np.argmax(_eval_logits(model, X, M, n_batch, device, amp, verbose, dist), 1)


def write_submission(predictions, submission_dir, dataset='rocstories'):
    """Write `index\\tprediction` lines, as the original, atomically. Returns the path."""
    path = os.path.join(submission_dir, SUBMISSION_FILES[dataset])
    lines = ['index\tprediction\n'] + [f'{i}\t{int(p)}\n' for i, p in enumerate(predictions)]

    def write(tmp):
        with open(tmp, 'w') as f:
            f.writelines(lines)
    atomic_write(path, write)
    return path


# ------------------------------------------------------------------ checkpoints

def atomic_write(path, write_fn):
    """write_fn(tmp_path) into a temporary file beside `path`, then os.replace it over
    `path`: an interruption leaves the previous file whole."""
    folder = os.path.dirname(path) or '.'
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    os.close(fd)
    try:
        write_fn(tmp)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def model_tensors(model):
    """The state dict without the LM head's tied copy of the embedding, contiguous on CPU."""
    out = {}
    for name, t in model.state_dict().items():
        if name == 'lm_head.decoder.weight':  # the same tensor as transformer.embed.weight
            continue
        out[name] = t.detach().to('cpu').contiguous()
    return out


def save_params(model, path, metadata=None):
    """Model weights as safetensors, written atomically."""
    from safetensors.torch import save_file
    tensors = model_tensors(model)
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_params(model, path):
    """Load weights written by save_params; returns the file's metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    tensors = load_file(path)
    with safe_open(path, framework='pt') as f:
        meta = f.metadata() or {}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if k != 'lm_head.decoder.weight']
    if missing or unexpected:
        raise ValueError(f"{path} does not fit the model: missing {missing}, unexpected {unexpected}")
    return meta


def save_checkpoint(folder, model, opt, state, scaler=None):
    """Resumable checkpoint: last_params.safetensors and last_state.pt (optimizer state,
    counters, RNG states; loadable with torch.load(weights_only=True))."""
    save_params(model, os.path.join(folder, LAST_PARAMS), {'n_updates': state.n_updates, 'n_epochs': state.n_epochs})
    blob = {'n_updates': state.n_updates, 'n_epochs': state.n_epochs, 'best_score': float(state.best_score),
            'opt': opt.state_dict(), 'torch_rng': torch.get_rng_state(),
            'cuda_rng': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            'scaler': scaler.state_dict() if scaler is not None else {}}
    atomic_write(os.path.join(folder, LAST_STATE), lambda tmp: torch.save(blob, tmp))


def load_checkpoint(folder, model, opt, scaler=None):
    """Restore what save_checkpoint wrote; returns the TrainState."""
    params, state_path = os.path.join(folder, LAST_PARAMS), os.path.join(folder, LAST_STATE)
    for p in (params, state_path):
        if not os.path.isfile(p):
            raise InputError(f"--resume: {p} does not exist; expected the last_params.safetensors and last_state.pt "
                             f"an earlier run with the same --save_dir and --desc wrote")
    meta = load_params(model, params)
    blob = torch.load(state_path, weights_only=True, map_location='cpu')
    if int(meta.get('n_updates', -1)) != blob['n_updates']:
        raise InputError(f"--resume: {params} (update {meta.get('n_updates')}) and {state_path} "
                         f"(update {blob['n_updates']}) come from different points of the run")
    opt.load_state_dict(blob['opt'])
    torch.set_rng_state(blob['torch_rng'])
    if blob['cuda_rng'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob['cuda_rng'])
    if scaler is not None and blob['scaler']:
        scaler.load_state_dict(blob['scaler'])
    return TrainState(blob['n_updates'], blob['n_epochs'], blob['best_score'])


# ------------------------------------------------------------------ the run

def log_epoch(model, data, args, state, logger, device='cpu', verbose=True, dist=None):
    """The original's log(): cost and accuracy on the first n_valid training examples and on
    the validation set, one JSONL entry; with --submit keeps the best parameters.
    Returns the entry.

    Under torchrun (`dist`) every rank calls it (the evaluations are collective and every
    rank gets the same results, so all agree on state.best_score); only rank 0 logs,
    prints and writes; `logger` may be None elsewhere."""
    main = dist is None or dist.is_main
    n_valid = len(data.vaY)
    n_eval = args.n_batch * args.n_acc
    _, tr_cost, tr_acc = evaluate(model, data.trX[:n_valid], data.trM[:n_valid], data.trY[:n_valid], n_eval,
                                  device, args.amp, verbose, dist)
    _, va_cost, va_acc = evaluate(model, data.vaX, data.vaM, data.vaY, n_eval, device, args.amp, verbose, dist)
    entry = dict(n_epochs=state.n_epochs, n_updates=state.n_updates, tr_cost=tr_cost, va_cost=va_cost,
                 tr_acc=tr_acc, va_acc=va_acc)
    if main:
        logger.log(**entry)
        print('%d %d %.3f %.3f %.2f %.2f' % (state.n_epochs, state.n_updates, tr_cost, va_cost, tr_acc, va_acc))
    if args.submit and va_acc > state.best_score:
        state.best_score = va_acc
        if main:
            save_params(model, os.path.join(args.save_dir, args.desc, BEST_PARAMS),
                        {'n_updates': state.n_updates, 'n_epochs': state.n_epochs, 'va_acc': va_acc})
    return entry


def _previous_entries(log_path):
    if not os.path.isfile(log_path):
        return []
    with open(log_path) as f:
        return [json.loads(line) for line in f.read().splitlines()[1:] if line.strip()]


def resume_checkpoint(folder, model, opt, scaler=None, dist=None):
    """load_checkpoint on rank 0; under torchrun the other ranks get the optimizer state and
    counters from rank 0 (the parameters follow when DDP wraps the model, which copies rank
    0's), so only rank 0 needs to see the checkpoint. Every rank raises rank 0's InputError."""
    if dist is None or not dist.sharded:
        return load_checkpoint(folder, model, opt, scaler)
    payload = None
    if dist.is_main:
        try:
            state = load_checkpoint(folder, model, opt, scaler)
            payload = {'opt': opt.state_dict(), 'scaler': scaler.state_dict() if scaler is not None else {},
                       'state': dataclasses.astuple(state)}
        except InputError as err:
            payload = {'error': str(err)}
    payload = broadcast_tree(payload, dist)
    if 'error' in payload:
        raise InputError(payload['error'])
    if not dist.is_main:
        opt.load_state_dict(payload['opt'])
        if scaler is not None and payload['scaler']:
            scaler.load_state_dict(payload['scaler'])
    return TrainState(*payload['state'])


def run(args, verbose=True):
    """The whole job of `python train.py`: returns a dict of results.

    Launched by torchrun (WORLD_SIZE, RANK, LOCAL_RANK set), it trains data-parallel with
    DistributedDataParallel (see setup_distributed and train_epoch); only rank 0 logs,
    prints, writes checkpoints and the submission."""
    env = torchrun_env()
    rank = 0 if env is None else env[0]
    main = rank == 0
    if main:
        check_inputs(args)
    else:
        check_inputs(args, writes=False)
    dist, device = setup_distributed(args, env)
    failed = False
    try:
        return _run(args, dist, device, verbose and main)
    except Exception as err:
        if dist.enabled and is_collective_failure(err):
            failed = True
            raise CollectiveFailure(dist.rank, args.dist_timeout, err) from err
        raise
    finally:
        cleanup_distributed(dist, failed)


def _run(args, dist, device, verbose):
    from utils import ResultLogger

    main = dist.is_main
    set_seed(args.seed)
    if main:
        where = f" ({dist.world_size} processes, {dist.backend})" if dist.enabled else ""
        print(f"device {device}{where}", file=sys.stderr)
    data = load_data(args, verbose)
    check_global_batch(len(data.trY), args, dist.world_size)
    fmt = find_checkpoint_format(args.model_dir) if args.init == 'pretrained' else 'random'
    if main:
        print(f"weights: {CHECKPOINT_FORMATS.get(fmt, 'random initialisation')}"
              f"{' from ' + args.model_dir if fmt != 'random' else ''}", file=sys.stderr)
    model = build_model(args, data, device)
    t_total = n_updates_total(len(data.trY), args, dist.world_size)
    opt = make_optimizer(args, model, t_total)
    scaler = make_scaler(args.amp)
    run_dir = os.path.join(args.save_dir, args.desc)
    log_path = os.path.join(args.log_dir, f'{args.desc}.jsonl')
    best_path = os.path.join(run_dir, BEST_PARAMS)

    state = TrainState()
    previous = []
    if args.resume:
        state = resume_checkpoint(run_dir, model, opt, scaler, dist)
        if main:
            previous = _previous_entries(log_path)
            print(f"resuming after epoch {state.n_epochs}, update {state.n_updates}", file=sys.stderr)
    train_model = wrap_model(model, dist)  # after a resume: DDP copies rank 0's parameters
    loss_compute = make_loss_compute(args, opt, scaler)
    logger = ResultLogger(log_path, **vars(args), checkpoint_format=fmt) if main else None
    try:
        for entry in previous:
            logger.log(**entry)
        if main and args.submit and not (args.resume and os.path.isfile(best_path)):
            save_params(model, best_path, {'n_updates': 0, 'n_epochs': 0})

        def on_update(st):
            if st.n_updates in LOG_UPDATES and st.n_epochs == 0:
                log_epoch(model, data, args, st, logger, device, verbose, dist)

        _debug_fail(dist)
        while state.n_epochs < args.n_iter:
            if args.max_updates and state.n_updates >= args.max_updates:
                break
            if verbose:
                print(f"running epoch {state.n_epochs}", file=sys.stderr)
            if not main:
                torch.manual_seed(rank_seed(args.seed, dist.rank, state.n_epochs))
            train_epoch(train_model, loss_compute, data.trX, data.trM, data.trY, args, state, device, on_update,
                        verbose, dist=dist)
            state.n_epochs += 1
            log_epoch(model, data, args, state, logger, device, verbose, dist)
            if main:
                save_checkpoint(run_dir, model, opt, state, scaler)
    finally:
        if logger is not None:
            logger.close()

    result = dict(n_ctx=data.n_ctx, n_updates=state.n_updates, log_path=log_path, best_va_acc=state.best_score,
                  world_size=dist.world_size, rank=dist.rank)
    if args.submit:
        if main:
            load_params(model, best_path)
        broadcast_params(model, dist)  # the other ranks need not see rank 0's files
        preds = predict(model, data.teX, data.teM, args.n_batch * args.n_acc, device, args.amp, verbose, dist)
        result['best_params'] = best_path
        if main:
            result['submission_path'] = write_submission(preds, args.submission_dir, args.dataset)
            if args.analysis:
                from analysis import rocstories as rocstories_analysis
                valid_acc, test_acc = rocstories_analysis(args.data_dir, result['submission_path'], log_path)
                result.update(valid_accuracy=valid_acc, test_accuracy=test_acc)
    return result


def main(argv=None):
    parser = build_parser()
    args = parse_args(argv)
    rank = env_rank()
    if rank == 0:
        print(args, file=sys.stderr)
    tag = f"[rank {rank}] " if rank else ""
    try:
        return run(args)
    except InputError as err:
        parser.error(tag + str(err))
    except CollectiveFailure as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
