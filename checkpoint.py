"""A run's files: atomic writes, parameters, the resumable checkpoint, the run's lock.

A finetuning run `desc` owns `{save_dir}/{desc}/` and `{log_dir}/{desc}.jsonl`:

- `config.json`: the run's configs, one object per part, and under 'found' what the run
  found (n_ctx as cut, the vocabulary sizes, the task head), enough to rebuild the model
  without the data (`finetune.read_run_config`, which `score.py` uses, also reads the flat
  file of settings that earlier versions wrote);
- `best_params.safetensors`: the parameters of the best validation accuracy so far;
- `last_checkpoint.pt`: everything `--resume` needs, in ONE file (parameters, optimizer
  state, counters, RNG states, the run-defining flags), so that no interruption can
  leave a parameters file and a state file from two different points of the run;
- `.lock`: held while a run writes there (the owner's pid and host).

Every file is written to a temporary file beside it and renamed over it, so an
interrupted write leaves the previous file whole; temporary files left by a killed
run are removed when the next run of the same `desc` starts.
"""
import contextlib
import dataclasses
import glob
import json
import math
import os
import socket
import tempfile

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from distributed import broadcast_tree
from errors import CheckpointError, InputError

BEST_PARAMS = 'best_params.safetensors'
LAST_CHECKPOINT = 'last_checkpoint.pt'
RUN_CONFIG = 'config.json'
LOCK_FILE = '.lock'
TIED_KEY = 'lm_head.decoder.weight'  # the same tensor as transformer.embed.weight
# Flags that do not change what a resumed run computes: where files go, what is
# reported, on which device, how long to wait. Every other flag must match on --resume.
FREE_FLAGS = ('desc', 'log_dir', 'save_dir', 'data_dir', 'submission_dir', 'submit', 'analysis', 'device',
              'resume', 'overwrite', 'dist_timeout', 'max_updates', 'model_dir', 'encoder_path', 'bpe_path',
              'init', 'amp', 'attn_impl', 'cache_dir', 'eval_every')

# What a resumed run compares besides the flags, as its messages name it.
RESUME_KEYS = {'data_sha256': 'the data (sha256 of the encoded training and validation splits)'}


@dataclasses.dataclass
class TrainState:
    """Counters of a run: optimizer updates made, epochs finished, best validation score (the
    task's first metric; -inf until a finite one, so that the first evaluation always sets the
    best parameters, also for a metric that can be negative such as CoLA's MCC)."""
    n_updates: int = 0
    n_epochs: int = 0
    best_score: float = -math.inf


# ------------------------------------------------------------------ atomic files

def _tmp_prefix(path):
    return '.' + os.path.basename(path) + '.'


def atomic_write(path, write_fn):
    """write_fn(tmp_path) into a temporary file beside `path`, then os.replace it over
    `path`: an interruption leaves the previous file whole."""
    folder = os.path.dirname(path) or '.'
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_tmp_prefix(path), suffix='.tmp')
    os.close(fd)
    try:
        write_fn(tmp)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes it 0600; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode():
    """The mode open() gives a new file under the process' umask (0o644 under 022)."""
    return 0o666 & ~_umask()


def remove_stale_tmp(paths):
    """Delete the temporary files that atomic_write(path) leaves when its process is killed
    mid-write, for each of `paths`. Call it only while holding the run's lock. Returns the
    paths removed."""
    removed = []
    for path in paths:
        pattern = os.path.join(glob.escape(os.path.dirname(path) or '.'), glob.escape(_tmp_prefix(path)) + '*.tmp')
        for tmp in glob.glob(pattern):
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
                removed.append(tmp)
    return removed


def write_json(path, obj):
    """obj as indented JSON, atomically."""
    text = json.dumps(obj, indent=1, sort_keys=True) + '\n'

    def write(tmp):
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
    atomic_write(path, write)


# ------------------------------------------------------------------ the run's lock

def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


class RunLock:
    """An exclusive lock on a run folder: the file `.lock` created with O_EXCL, holding
    '<pid> <host>'. A second run of the same folder is refused with InputError while the
    owner lives; a lock whose owner (on this host) is gone is stale and taken over.
    Use as a context manager, or acquire()/release()."""

    def __init__(self, folder):
        self.path = os.path.join(folder, LOCK_FILE)
        self.held = False

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        me = f"{os.getpid()} {socket.gethostname()}"
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, 'w') as f:
                f.write(me + '\n')
            self.held = True
            return self
        raise InputError(f"{self.path}: could not take the run's lock; expected to be the only run of this "
                         f"--save_dir and --desc")

    def _take_over_if_stale(self):
        """Remove the lock when its owner is gone; raise InputError naming a live owner, or
        a folder in the lock's place."""
        if os.path.isdir(self.path):
            raise InputError(f"{self.path} is not a file: expected the run's lock file there (or nothing); move "
                             f"that folder away")
        try:
            with open(self.path, encoding='utf-8', errors='replace') as f:  # unreadable text: no live owner named
                owner = f.read().split()
        except FileNotFoundError:
            return
        pid, host = (int(owner[0]) if owner and owner[0].isdigit() else None), (owner[1] if len(owner) > 1 else '')
        if pid is not None and (host != socket.gethostname() or _pid_alive(pid)):
            raise InputError(f"{os.path.dirname(self.path)} is in use by process {pid} on {host or 'this host'} "
                             f"(lock file {self.path}): expected one run per --save_dir and --desc; wait for it, "
                             f"choose another --desc, or delete the lock file if that process is gone")
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)

    def release(self):
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()


# ------------------------------------------------------------------ parameters

def model_tensors(model):
    """The state dict without the LM head's tied copy of the embedding, contiguous on CPU."""
    return {name: t.detach().to('cpu').contiguous() for name, t in model.state_dict().items() if name != TIED_KEY}


def save_params(model, path, metadata=None):
    """Model weights as safetensors, written atomically."""
    tensors = model_tensors(model)
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    atomic_write(path, lambda tmp: write_bytes(tmp, save(tensors, metadata=meta)))


def write_bytes(path, data):
    """Write `data` to `path` ourselves: safetensors' save_file writes through a temporary file
    of its own name (.tmpXXXXXX) that remove_stale_tmp would not know after a kill."""
    with open(path, 'wb') as f:
        f.write(data)


def _load_state(model, tensors, path):
    """model.load_state_dict(tensors) with the tied LM head allowed to be absent; CheckpointError
    naming `path` when the tensors do not fit the model."""
    missing = [k for k in model.state_dict() if k not in tensors and k != TIED_KEY]
    unexpected = [k for k in tensors if k not in model.state_dict()]
    wrong = [f"{k} {tuple(t.shape)} (model {tuple(model.state_dict()[k].shape)})" for k, t in tensors.items()
             if k in model.state_dict() and tuple(t.shape) != tuple(model.state_dict()[k].shape)]
    if missing or unexpected or wrong:
        parts = [f"{what}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                 for what, keys in (('missing', missing), ('unexpected', unexpected), ('shape', wrong)) if keys]
        raise CheckpointError(f"{path} does not fit the model ({'; '.join(parts)}): expected parameters saved from "
                              f"a model with the same flags")
    model.load_state_dict(tensors)  # strict: the models accept a state dict without the tied copy


def check_finite(tensors, path):
    """CheckpointError naming `path` and the first of `tensors` (a name: tensor dict, in its
    order) that holds NaN or inf: a model loaded from it would predict from NaN logits."""
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            n = int(t.numel() - torch.isfinite(t).sum())
            raise CheckpointError(f"{path}: {name} holds {n} non-finite value{'s' if n > 1 else ''} (NaN or inf): "
                                  f"expected finite parameters (a diverged run or a damaged file?)")


def read_params(path):
    """(tensors, metadata) of a file save_params wrote, its tensors checked finite (check_finite)."""
    try:
        tensors = load_file(path)
        with safe_open(path, framework='pt') as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} could not be read as safetensors ({err}): expected the parameters a run "
                              f"wrote (truncated or corrupt file?)") from None
    check_finite(tensors, path)
    return tensors, meta


def load_params(model, path):
    """Load weights written by save_params (refused when not finite); returns the file's metadata."""
    tensors, meta = read_params(path)
    _load_state(model, tensors, path)
    return meta


# ------------------------------------------------------------------ the resumable checkpoint

def run_flags(settings):
    """The settings (a flags.ConfigGroup, {flag: value} or parsed flags) that define what a run
    computes (all but FREE_FLAGS), as a plain dict of plain values (a float subclass that marks
    a flag's default would not load with weights_only)."""
    if hasattr(settings, 'flat'):
        settings = settings.flat()
    items = settings.items() if isinstance(settings, dict) else vars(settings).items()
    return {k: float(v) if isinstance(v, float) else v for k, v in sorted(items) if k not in FREE_FLAGS}


def save_checkpoint(folder, model, opt, state, scaler=None, flags=None):
    """Write `folder/last_checkpoint.pt` atomically: parameters, optimizer state, counters, RNG
    states and the run-defining `flags` (see run_flags), loadable with torch.load(weights_only=True)."""
    blob = {'model': model_tensors(model), 'n_updates': state.n_updates, 'n_epochs': state.n_epochs,
            'best_score': float(state.best_score), 'opt': opt.state_dict(), 'torch_rng': torch.get_rng_state(),
            'cuda_rng': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            'scaler': scaler.state_dict() if scaler is not None else {}, 'flags': dict(flags or {})}
    atomic_write(os.path.join(folder, LAST_CHECKPOINT), lambda tmp: torch.save(blob, tmp))


def read_checkpoint(folder):
    """The dict save_checkpoint wrote in `folder`; InputError when there is none, CheckpointError
    when it cannot be read."""
    path = os.path.join(folder, LAST_CHECKPOINT)
    if not os.path.isfile(path):
        raise InputError(f"--resume: {path} does not exist; expected the checkpoint an earlier run with the same "
                         f"--save_dir and --desc wrote after its first epoch")
    try:
        blob = torch.load(path, weights_only=True, map_location='cpu')
    except Exception as err:  # torch raises several types for a truncated or foreign file
        raise CheckpointError(f"--resume: {path} could not be read ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:200] if str(err) else ''}); expected a checkpoint "
                              f"train.py wrote (truncated or corrupt file?)") from None
    if not isinstance(blob, dict) or not {'model', 'opt', 'n_updates', 'flags'} <= set(blob):
        raise CheckpointError(f"--resume: {path} is not a checkpoint train.py wrote (expected model, opt, "
                              f"n_updates and flags)")
    return blob


def check_resume_flags(saved, current, path, defaults=None):
    """Raise InputError naming the first flag whose value differs from the checkpoint's: a
    resumed run continues the same computation (the optimizer's lr, schedule, l2, t_total
    and the model's size are part of it). A flag the checkpoint lacks (one added since it was
    written) passes at its value in `defaults`, which is what the older run computed with."""
    defaults = defaults or {}
    for name in sorted(set(saved) | set(current)):
        old, new = saved.get(name, '(not set)'), current.get(name, '(not set)')
        if name not in saved and name in defaults and new == defaults[name]:
            continue
        if old != new:
            raise InputError(f"--resume: {RESUME_KEYS.get(name, '--' + name)} is {new!r} but the checkpoint {path} "
                             f"was written with {old!r}; expected the same value (start a new run with another "
                             f"--desc, or --overwrite)")


def load_checkpoint(folder, model, opt, scaler=None, flags=None, defaults=None, best=None):
    """Restore what save_checkpoint wrote; with `flags` (run_flags of this run) first check
    they equal the checkpoint's (check_resume_flags, with the flags' `defaults`), and that the
    parameters are finite, also those of the file `best` where there is one (the run's best
    parameters, which it predicts from at the end). Returns the TrainState."""
    blob = read_checkpoint(folder)
    path = os.path.join(folder, LAST_CHECKPOINT)
    if flags is not None:
        check_resume_flags(blob['flags'], flags, path, defaults)
    check_finite(blob['model'], path)
    if best is not None and os.path.isfile(best):
        read_params(best)
    _load_state(model, blob['model'], path)
    opt.load_state_dict(blob['opt'])
    torch.set_rng_state(blob['torch_rng'])
    if blob['cuda_rng'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob['cuda_rng'])
    if scaler is not None and blob['scaler']:
        scaler.load_state_dict(blob['scaler'])
    return TrainState(blob['n_updates'], blob['n_epochs'], blob['best_score'])


def resume_checkpoint(folder, model, opt, scaler=None, dist=None, flags=None, defaults=None, best=None):
    """load_checkpoint on rank 0; under torchrun the other ranks get the optimizer state and
    counters from rank 0 (the parameters follow when DDP wraps the model, which copies rank
    0's), so only rank 0 needs to see the checkpoint. Every rank raises rank 0's error."""
    if dist is None or not dist.sharded:
        return load_checkpoint(folder, model, opt, scaler, flags, defaults, best)
    payload = None
    if dist.is_main:
        try:
            state = load_checkpoint(folder, model, opt, scaler, flags, defaults, best)
            payload = {'opt': opt.state_dict(), 'scaler': scaler.state_dict() if scaler is not None else {},
                       'state': dataclasses.astuple(state)}
        except (InputError, CheckpointError) as err:
            payload = {'error': str(err), 'type': type(err).__name__}
    payload = broadcast_tree(payload, dist)
    if 'error' in payload:
        raise (CheckpointError if payload['type'] == 'CheckpointError' else InputError)(payload['error'])
    if not dist.is_main:
        opt.load_state_dict(payload['opt'])
        if scaler is not None and payload['scaler']:
            scaler.load_state_dict(payload['scaler'])
    return TrainState(*payload['state'])
