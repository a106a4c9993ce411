"""The frame every training script runs in: what train.py and pretrain.py share.

- configs: `RunConfig` (what every run is: name, folders, seed, length, batch, device,
  precision, resume/overwrite, the encoded data's cache) and `SourceConfig` (where the model
  starts: pretrained weights or random, the BPE files, n_ctx), parts of each script's
  ConfigGroup; `resolve_bpe_paths` (the BPE files of model_dir, GPT-1's or GPT-2's), `check_writable` (a folder
  the run writes);
- the run folder: `earlier_run_files`, `refuse_earlier_run`, `remove_files` (an earlier
  run of the same name is refused, or with --overwrite deleted only once the new run has
  checked all it can), `previous_entries` and `open_log` (the log, whole after a kill at
  any point), `write_run_config` (config.json: the configs and what the run found),
  `format_settings` (the settings line);
- device and precision: `autocast`, `make_scaler`;
- training: `GradientAccumulator` (the one optimizer step: micro-batch losses / n_acc
  back-propagated, through the fp16 GradScaler when there is one, and the optimizer stepped
  every n_acc), `sync_unless_last` (DDP averages the gradients at an update's last
  micro-batch only), `nonfinite_stop`, `is_due` (evaluation and checkpoint cadence),
  `eval_mode`;
- the ends of a run: `interrupted` (the one line of Ctrl-C), `closing_summary` (the
  elapsed time and every file the run wrote), `run_job` and `cli_main` (torchrun set-up,
  the run's lock, the one-line error exit).

The module imports torch and the light modules of the library only, so that a script's
--help answers before any data or tokenizer library is loaded.
"""
import contextlib
import dataclasses
from dataclasses import field
from typing import Optional
import json
import math
import os
import shutil
import sys
import tempfile

import torch

from checkpoint import atomic_write, remove_stale_tmp, write_json
from distributed import (CollectiveFailure, cleanup_distributed, env_rank, is_collective_failure,
                         setup_distributed, torchrun_env)
from errors import (ConfigError, GPT1Error, InputError, Interrupted, NonFiniteLossError,
                    exit_interrupted, exit_with_error)
from flags import Config
from text_utils import GPT2_RELEASE_FILES, HF_BPE_FILES, RELEASE_BPE_FILES
from utils import ResultLogger

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


# ------------------------------------------------------------------ flags

AMPS = ('none', 'bf16', 'fp16')


@dataclasses.dataclass
class RunConfig(Config):
    """What every training run is, whatever it trains: its name and folders, seed, length,
    batch, evaluation cadence, device and precision, and what to do with an earlier run of
    the same name. Defaults are train.py's; pretrain.py's flags give their own. Validated on
    construction (`check`); flags.Config's `to_dict`/`from_dict` round-trip it through JSON."""
    desc: Optional[str] = field(default='run', metadata={
        'help': "run name: the log is {log_dir}/{desc}.jsonl, the run's files {save_dir}/{desc}/ (train.py: the "
                "dataset's name when not given)"})
    log_dir: str = field(default='log/', metadata={'help': "folder of the runs' logs"})
    save_dir: str = field(default='save/', metadata={'help': "folder of the runs' folders"})
    seed: int = field(default=42, metadata={'help': "seed of the run's random draws, 0 to 2^32 - 1"})
    n_iter: int = field(default=3, metadata={'help': "epochs"})
    n_batch: int = field(default=8, metadata={
        'help': "examples (pretrain.py: windows) per forward/backward pass, per process under torchrun"})
    n_acc: int = field(default=1, metadata={
        'help': "gradient accumulation: one optimizer update every n_acc batches (effective batch n_batch*n_acc, "
                "times the number of processes under torchrun)"})
    max_updates: int = field(default=0, metadata={
        'help': "stop after this many optimizer updates in all (0: no limit). train.py: the epoch in progress is "
                "logged and checkpointed as if it ended there, the schedule still spans --n_iter epochs (smoke "
                "tests, not for --resume); pretrain.py: the schedule ends there, and it must match on --resume"})
    eval_every: int = field(default=0, metadata={
        'help': "updates between evaluations (logged; train.py: besides each epoch's end, and one before the "
                "first update; pretrain.py: with a checkpoint each); 0: train.py at each epoch's end only (and "
                "in the first epoch at updates 1000, 2000, 4000, ... as the original), pretrain.py at the end"})
    device: str = field(default='auto', metadata={'help': "auto (cuda if available, else cpu), cpu, cuda, cuda:N"})
    amp: str = field(default='none', metadata={
        'choices': AMPS, 'help': "mixed precision (autocast): bf16 on CUDA or CPU (fast on CPUs with bfloat16 "
                                 "instructions: AVX512-BF16, AMX), fp16 on CUDA only (with a GradScaler)"})
    resume: bool = field(default=False, metadata={
        'help': "continue the run {desc} from {save_dir}/{desc}/last_checkpoint.pt; every flag that changes the "
                "computation must be the same as the first time"})
    overwrite: bool = field(default=False, metadata={
        'help': "start the run {desc} afresh, deleting the files of an earlier run of the same name (without it, "
                "a name already used is refused)"})
    cache_dir: Optional[str] = field(default='cache/', metadata={
        'help': "where encoded data is kept, keyed by its texts and the tokenizer (safe to delete); train.py: the "
                "paper's other tasks and custom data; pretrain.py: the corpus (default {save_dir}/tokens)"})
    # 600, not 600.0: the value the runs' files record for this flag's default
    dist_timeout: float = field(default=600, metadata={
        'help': "under torchrun: seconds a process waits for the others in a collective operation before it "
                "stops with an error (a failed or stuck process then cannot hang the job)"})

    def check(self):
        """Raise errors.ConfigError naming the first field whose value cannot work."""
        if self.desc is not None and (not isinstance(self.desc, str) or not self.desc or os.sep in self.desc
                                      or self.desc in ('.', '..')):
            raise ConfigError('desc', self.desc, "a plain run name (it names the log file and run folder)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2 ** 32:
            raise ConfigError('seed', self.seed, f"an integer from 0 to {2 ** 32 - 1}")
        for name in ('n_iter', 'n_batch', 'n_acc'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "a positive integer")
        for name in ('max_updates', 'eval_every'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(name, value, "0 (none) or a positive integer")
        if self.amp not in AMPS:
            raise ConfigError('amp', self.amp, f"one of {', '.join(AMPS)}")
        if not isinstance(self.dist_timeout, (int, float)) or not (math.isfinite(self.dist_timeout)
                                                                   and self.dist_timeout > 0):
            raise ConfigError('dist_timeout', self.dist_timeout, "a positive number of seconds")
        if self.resume and self.overwrite:
            raise InputError("--resume continues the earlier run and --overwrite deletes it: pass one of them")


INITS = ('pretrained', 'random')


@dataclasses.dataclass
class SourceConfig(Config):
    """Where a run's model starts and what it reads its text with: pretrained weights from
    model_dir (init 'pretrained') or a random initialisation, the BPE files (by default those
    of model_dir), and the positions the model has (n_ctx). Defaults are train.py's; pretrain.py
    starts from random weights."""
    model_dir: str = field(default='model/', metadata={
        'help': "OpenAI's GPT-1 checkpoint (params_shapes.json, params_0..9.npy), OpenAI's GPT-2 release folder "
                "(hparams.json, model.ckpt.*), a Hugging Face openai-gpt or gpt2 folder (config.json, "
                "model.safetensors) or a folder pretrain.py wrote; the BPE files are read from it too, and GPT-2's "
                "select GPT-2's tokenizer (pretrain.py --tokenizer char: its char_vocab.json)"})
    encoder_path: Optional[str] = field(default=None, metadata={
        'help': "BPE vocabulary (default: {model_dir}/encoder_bpe_40000.json, else GPT-2's encoder.json, else a "
                "Hugging Face folder's vocab.json)"})
    bpe_path: Optional[str] = field(default=None, metadata={
        'help': "BPE merges (default: {model_dir}/vocab_40000.bpe, else GPT-2's vocab.bpe, else a Hugging Face "
                "folder's merges.txt)"})
    init: str = field(default='pretrained', metadata={
        'choices': INITS, 'help': "pretrained: the weights of --model_dir; random: a fresh initialisation "
                                  "(train.py: smoke runs; the BPE files are still needed)"})
    n_ctx: int = field(default=512, metadata={
        'help': "positions: train.py the most an example takes (cut to the longest example; at most the "
                "checkpoint's positions, 512 for GPT-1, 1024 for GPT-2), pretrain.py the tokens per window"})

    def check(self):
        """Raise errors.ConfigError naming the first field whose value cannot work."""
        if self.init not in INITS:
            raise ConfigError('init', self.init, f"one of {', '.join(INITS)}")
        if isinstance(self.n_ctx, bool) or not isinstance(self.n_ctx, int) or self.n_ctx < 1:
            raise ConfigError('n_ctx', self.n_ctx, "a positive integer, the number of positions")


def check_writable(path, flag):
    """Create the folder `path` and a file in it; InputError naming `flag` where this user cannot."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise InputError(f"{flag} {path}: cannot write there ({err.strerror or err}); expected a folder this user "
                         f"can create files in") from None


def resolve_bpe_paths(source, kind='any'):
    """The SourceConfig `source` with encoder_path and bpe_path filled in where not given, from
    model_dir: the first complete pair of GPT-1's release names, GPT-2's release names and a
    Hugging Face folder's vocab.json and merges.txt (kind 'gpt2': GPT-2's names, then Hugging
    Face's), else the first pair's names (check_inputs then names what is missing). Which
    tokenizer reads the pair is text_utils.load_bpe's choice."""
    if source.encoder_path is not None and source.bpe_path is not None:
        return source
    pairs = (GPT2_RELEASE_FILES, HF_BPE_FILES) if kind == 'gpt2' else (RELEASE_BPE_FILES, GPT2_RELEASE_FILES,
                                                                         HF_BPE_FILES)
    paths = [tuple(os.path.join(source.model_dir, name) for name in names) for names in pairs]
    found = next((pair for pair in paths if all(os.path.isfile(p) for p in pair)), paths[0])
    return dataclasses.replace(source, encoder_path=source.encoder_path or found[0],
                               bpe_path=source.bpe_path or found[1])


# ------------------------------------------------------------------ the run folder

def earlier_run_files(paths, keys):
    """The files (or folders) of `paths` under `keys` that an earlier run left."""
    return [paths[k] for k in keys if os.path.exists(paths[k])]


def refuse_earlier_run(run, earlier):
    """Before a run writes anything (holding the run's lock): `earlier` (earlier_run_files)
    refused unless --resume continues them or --overwrite replaces them. Returns the files
    --overwrite replaces (remove_files deletes them once the new run has checked its inputs)."""
    if not earlier or run.resume:
        return []
    if not run.overwrite:
        raise InputError(f"--desc {run.desc}: an earlier run of that name left {', '.join(earlier)}; expected a new "
                         f"--desc, --resume to continue that run, or --overwrite to delete it and start afresh")
    return earlier


def prepare_run_folder(run, paths, keys, stale=()):
    """Remove the temporary files a killed run left beside `stale` (default: every path), then
    refuse_earlier_run of the files under `keys`. Returns what --overwrite replaces."""
    remove_stale_tmp(stale or paths.values())
    return refuse_earlier_run(run, earlier_run_files(paths, keys))


def remove_files(paths):
    """Delete each of `paths` (a folder with what it holds). Returns them."""
    for path in paths:
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    return list(paths)


def previous_entries(log_path, n_updates):
    """The entries of an earlier log up to update `n_updates` (those of the checkpoint a
    resumed run continues from), settings line excluded."""
    if not os.path.isfile(log_path):
        return []
    with open(log_path, 'rb') as f:
        lines = f.read().splitlines()[1:]
    entries = []
    for line in lines:
        try:
            entry = json.loads(line.decode('utf-8'))
        except ValueError:  # a line cut short by a kill (its last character too: not UTF-8)
            continue
        if isinstance(entry, dict) and entry.get('n_updates', 0) <= n_updates:
            entries.append(entry)
    return entries


def open_log(log_path, settings, previous=()):
    """Write the settings line and `previous` entries atomically, then return a ResultLogger
    that appends: a run killed at any point leaves a whole log."""
    def write(tmp):
        with ResultLogger(tmp, **settings) as log:
            for entry in previous:
                log.log(**entry)
    atomic_write(log_path, write)
    return ResultLogger(log_path, append=True)


def write_run_config(path, cfg, found):
    """A run's config.json, atomically: one object per part of `cfg` (a flags.ConfigGroup), and
    'found', what the run found beyond its config (sizes of the data, the vocabulary, ...)."""
    write_json(path, dict(cfg.to_dict(), found=found))


def format_settings(settings, width=100):
    """The settings as 'key value' pairs wrapped into lines of at most `width` characters."""
    lines, line = [], ''
    for key in sorted(settings):
        item = f"{key} {settings[key]}"
        if line and len(line) + 3 + len(item) > width:
            lines.append(line)
            line = ''
        line = f"{line}  |  {item}" if line else item
    return '\n'.join(lines + [line])


# ------------------------------------------------------------------ device and precision

def autocast(device, amp='none'):
    """The forward's mixed-precision context: none, or torch.autocast to --amp's dtype."""
    if amp == 'none':
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=AMP_DTYPES[amp])


def make_scaler(amp):
    """fp16's GradScaler (CUDA), else None."""
    return torch.amp.GradScaler('cuda') if amp == 'fp16' else None


# ------------------------------------------------------------------ training

class GradientAccumulator:
    """The optimizer step of every training loop: `backward(loss)` back-propagates one
    micro-batch's loss / n_acc (scaled by the fp16 GradScaler when there is one) and every
    n_acc-th call steps the optimizer and zeroes the gradients; `step()` applies a pending
    partial accumulation. opt None: only back-propagate."""

    def __init__(self, opt=None, n_acc=1, scaler=None):
        if int(n_acc) != n_acc or n_acc < 1:
            raise ValueError(f"n_acc={n_acc!r}: expected a positive integer (batches per optimizer update)")
        self.opt, self.n_acc, self.scaler = opt, int(n_acc), scaler
        self.n_pending = 0  # micro-batches back-propagated since the last update

    def backward(self, loss):
        """Back-propagate one micro-batch's loss; update every n_acc calls."""
        scaled = loss / self.n_acc if self.n_acc > 1 else loss
        if self.scaler is not None:
            scaled = self.scaler.scale(scaled)
        scaled.backward()
        self.n_pending += 1
        if self.n_pending >= self.n_acc:
            self.step()

    def step(self):
        """Apply the accumulated gradients (if any and if there is an optimizer). Returns whether it stepped."""
        if self.n_pending == 0:
            return False
        self.n_pending = 0
        if self.opt is None:
            return False
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return True


def sync_unless_last(model, last):
    """DDP's no_sync() for an update's micro-batches before the last (their gradients stay
    local; DDP averages the sum at the last one); a null context otherwise or without DDP."""
    return contextlib.nullcontext() if last or not hasattr(model, 'no_sync') else model.no_sync()


@contextlib.contextmanager
def nonfinite_stop(where):
    """Re-raise a NonFiniteLossError raised inside as one line saying `where` the run stopped
    (the loss is checked before its backward pass, so the last checkpoint stays as it was)."""
    try:
        yield
    except NonFiniteLossError as err:
        raise NonFiniteLossError(f"{where}: {err}; the last checkpoint is left as it was") from None


def is_due(n_updates, every, last=None):
    """Whether update `n_updates` evaluates and checkpoints: every `every` updates (0: never)
    and at the `last` update."""
    return bool(every) and n_updates % every == 0 or n_updates == last


@contextlib.contextmanager
def eval_mode(model):
    """Evaluate `model` without dropout and autograd, then put each of its modules back in the mode
    it was. Only the modules in training mode are switched: a model already in eval mode costs a
    walk over its modules (0.3 ms for GPT-2's 151), where model.eval() and model.train() set every
    module's flag through nn.Module.__setattr__ (1.4 ms: generation enters this at every step)."""
    training = [m for m in model.modules() if m.training]
    for m in training:
        m.training = False
    try:
        with torch.inference_mode():
            yield model
    finally:
        for m in training:
            m.training = True


# ------------------------------------------------------------------ the ends of a run

def interrupted(where, path, holds=None):
    """The Interrupted of Ctrl-C `where` in a run whose last checkpoint `path` holds `holds`
    (e.g. 'epoch 2, update 40'; None: no checkpoint yet, so the run starts again with --overwrite)."""
    if holds is None:
        return Interrupted(f"stopped by Ctrl-C {where}, before the first checkpoint", '--overwrite')
    return Interrupted(f"stopped by Ctrl-C {where}; {path} holds {holds}", '--resume')


def closing_summary(done, written, seconds):
    """A run's last lines: `done` (what it did), how long it took, and each (what, path) of `written`."""
    minutes, secs = divmod(seconds, 60)
    took = f"{int(minutes)} min {secs:.0f} s" if minutes else f"{secs:.1f} s"
    return '\n'.join([f"done: {done} in {took}; wrote"] + [f"  {what:<16} {path}" for what, path in written])


def run_job(cfg, body, check=None, lock=None, prepare=None):
    """The frame of a training script's run (`cfg`, a config group with a RunConfig `run`), alone
    or under torchrun: check(cfg, writes) (writes: whether this process is rank 0, the one that
    writes), then on rank 0 hold `lock` (a context manager such as checkpoint.RunLock, or None)
    and call prepare(cfg); set up the process group, return body(dist, device, is_main), and
    leave the process group. A failed collective operation becomes CollectiveFailure."""
    env = torchrun_env()
    main = env is None or env[0] == 0
    if check is not None:
        check(cfg, writes=main)
    with lock if main and lock is not None else contextlib.nullcontext():
        if main and prepare is not None:
            prepare(cfg)
        dist, device = setup_distributed(cfg.run, env)
        failed = False
        try:
            return body(dist, device, main)
        except Exception as err:
            if dist.enabled and is_collective_failure(err):
                failed = True
                raise CollectiveFailure(dist.rank, cfg.run.dist_timeout, err) from err
            raise
        finally:
            cleanup_distributed(dist, failed)


def cli_main(prog, job, args, argv=()):
    """A script's command line around job(args): a detected bad input (GPT1Error) prints one
    line `prog: error: [rank R] ...` and exits with status 2; a failed collective operation
    under torchrun prints its line and exits with status 1; Ctrl-C prints one line saying where
    the run stopped and the command (`argv`, its flags) that continues it, exit status 130."""
    rank = env_rank()
    tag = f"[rank {rank}] " if rank else ""
    try:
        return job(args)
    except GPT1Error as err:
        exit_with_error(prog, err, tag)
    except KeyboardInterrupt as err:
        exit_interrupted(prog, err, argv, tag)
    except CollectiveFailure as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(1)
