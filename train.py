"""Finetune OpenAI's GPT-1 on ROCStories (the Story Cloze Test), as the TF release did, or on
any task of the paper (tasks.TASKS) and the user's own data.

    python train.py --dataset rocstories --desc rocstories --submit --analysis --data_dir DIR
    python train.py --dataset sst2 --data_dir glue/SST-2 --submit --analysis
    python train.py --dataset custom --task_type classification --train_file a.csv --valid_file b.csv

Every step is a function a notebook can call (see `run` for the order):
`parse_args`, `check_inputs`, `set_seed`, `resolve_device`, `load_data`,
`build_model`, `make_optimizer`, `make_loss_compute`, `train_step`,
`train_epoch`, `evaluate`, `predict`, `log_epoch`, `write_submission`, and
`run(args)` for the whole job. A run's files (checkpoints, the lock) are
checkpoint.py's job and the torchrun set-up distributed.py's; their names are
importable from here too. The module keeps no state of its own.

Data-parallel training on several GPUs or machines: launch the same script with
PyTorch's launcher, e.g. `torchrun --nproc_per_node 4 train.py ...`. Each process
takes its share of every batch (DistributedDataParallel), so one update consumes
n_batch * world_size * n_acc examples; see `setup_distributed` and the README.
"""
import argparse
import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import random
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.distributed as tdist
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

import tasks
from analysis import format_metrics, plot_log, task_metrics
from analysis import rocstories as rocstories_analysis
from checkpoint import (BEST_PARAMS, LAST_CHECKPOINT, RUN_CONFIG, RunLock, TrainState, atomic_write,  # noqa: F401
                        load_checkpoint, load_params, model_tensors, remove_stale_tmp, resume_checkpoint, run_flags,
                        save_checkpoint, save_params, write_json)
from datasets import ROCSTORIES_URL, TEST_FILE, VAL_FILE, rocstories, rocstories_test_labels  # the project's
from distributed import (DEBUG_FAIL_VAR, TORCHRUN_VARS, CollectiveFailure, DistInfo, _debug_fail,  # noqa: F401
                         broadcast_params, broadcast_tree, check_seed, cleanup_distributed, env_rank,
                         is_collective_failure, rank_seed, resolve_device, setup_distributed, torchrun_env,
                         unwrap_model, wrap_model)
from errors import (CheckpointError, ConfigError, DataWarning, GPT1Error, InputError, Interrupted, MissingFileError,
                    NonFiniteLossError, exit_interrupted, exit_with_error)
from loss import MultipleChoiceLossCompute, lm_mask_from
from model_pytorch import DoubleHeadModel, ModelConfig, MultipleChoiceHead
from opt import OpenAIAdam, check_hyperparameters
from prefix import SharedPrefixModel, grouped_clf_logits, shared_prefix_model
from task_data import Encoded, SplitData, check_data_files, load_task_data
from text_utils import RELEASE_BPE_FILES, TextEncoder, find_bpe_files
from tf_checkpoint import N_CTX_MAX
from utils import ResultLogger, encode_dataset, iter_data
from weights import CHECKPOINT_FORMATS, checkpoint_causal, find_checkpoint_format, load_pretrained

DATASETS = tuple(tasks.TASKS) + ('custom',)
ROC_FILES = (VAL_FILE, TEST_FILE)
ROC_SOURCE = f"the Story Cloze Test files (spring 2016) from {ROCSTORIES_URL}"
ROC_N_STORIES = 1871  # in the validation file, split into train and valid
MODEL_SOURCE = "the model/ folder of https://github.com/openai/finetune-transformer-lm"
# The earlier port (and the TF release) logged during the first epoch at these update counts.
LOG_UPDATES = (1000, 2000, 4000, 8000, 16000, 32000)
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
# Evaluation takes this many batches at once and regroups them by shared-prefix length and by
# remainder length (prefix.grouped_clf_logits): less padding, for a cache of their keys and values.
EVAL_GROUP = 8
# --bucket sorts the examples of this many updates by length together: batches of similar
# lengths, while an example still lands anywhere in the epoch
BUCKET_SPAN = 50
# data_digest hashes a split this many examples at a time
DIGEST_ROWS = 4096


class FlagDefault(float):
    """A flag's default value, told apart (by identity) from the same value given on the command line."""


# The paper's weight of the LM loss; a bidirectional --model_dir gets 0 unless --lm_coef is given.
LM_COEF_DEFAULT = FlagDefault(0.5)


# ------------------------------------------------------------------ flags

class DefaultsHelpFormatter(argparse.HelpFormatter):
    """--help shows every flag's default, except where its help already says what the default is."""

    def _format_action(self, action):
        if not action.help and action.option_strings and action.default is not argparse.SUPPRESS:
            action = copy.copy(action)  # argparse prints no help line for a flag without help text
            action.help = '(default: %(default)s)'
        return super()._format_action(action)

    def _get_help_string(self, action):
        text = action.help
        if not action.option_strings or action.default is argparse.SUPPRESS or action.required or 'default' in text:
            return text
        return f"{text} (default: %(default)s)"


def build_parser():
    p = argparse.ArgumentParser(description="Finetune OpenAI's GPT-1 (finetune-transformer-lm) on ROCStories, the "
                                            "paper's other tasks or your own data.",
                                formatter_class=DefaultsHelpFormatter)
    # the earlier port's flags, same names and defaults
    p.add_argument('--desc', type=str, default=None,
                   help="run name: the log is {log_dir}/{desc}.jsonl, checkpoints {save_dir}/{desc}/ "
                        "(default: the dataset)")
    p.add_argument('--dataset', type=str, default='rocstories', choices=DATASETS)
    p.add_argument('--log_dir', type=str, default='log/')
    p.add_argument('--save_dir', type=str, default='save/')
    p.add_argument('--data_dir', type=str, default='data/',
                   help="the dataset's folder as released (see the README's table of tasks)")
    p.add_argument('--submission_dir', type=str, default='submission/')
    p.add_argument('--submit', action='store_true',
                   help="keep the best-validation parameters and write the test predictions")
    p.add_argument('--analysis', action='store_true',
                   help="with --submit: print the validation and test accuracy; draw the log to {log_dir}/{desc}.png")
    p.add_argument('--seed', type=int, default=42)
    p.add_argument('--n_iter', type=int, default=3, help="epochs")
    p.add_argument('--n_batch', type=int, default=8,
                   help="examples per forward/backward pass (per process under torchrun)")
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
    p.add_argument('--encoder_path', type=str, default=None,
                   help="default: {model_dir}/encoder_bpe_40000.json, or a Hugging Face folder's vocab.json")
    p.add_argument('--bpe_path', type=str, default=None,
                   help="default: {model_dir}/vocab_40000.bpe, or a Hugging Face folder's merges.txt")
    p.add_argument('--n_transfer', type=int, default=None,
                   help="pretrained layers to load (default: all --n_layer of them, 12 for the full model; "
                        "-1: embeddings only)")
    p.add_argument('--lm_coef', type=float, default=LM_COEF_DEFAULT)
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
                   help="mixed precision (autocast): bf16 on CUDA or CPU (fast on CPUs with bfloat16 "
                        "instructions: AVX512-BF16, AMX), fp16 on CUDA only (with a GradScaler)")
    p.add_argument('--attn_impl', type=str, default='sdpa', choices=('sdpa', 'explicit'))
    p.add_argument('--arch', type=str, default='gpt1', choices=('gpt1', 'gpt2'),
                   help="block layout: GPT-1's (the paper's, OpenAI's checkpoint) or GPT-2's pre-LayerNorm one, to "
                        "finetune a gpt2 folder such as pretrain.py --arch gpt2 writes")
    p.add_argument('--truncate', action='store_true',
                   help="cut every example's segments to n_ctx // 2 - 2 tokens, as the original always did "
                        "(ROCStories: instead of refusing an n_ctx that cannot hold the longest example)")
    p.add_argument('--no_truncate', action='store_true',
                   help="other tasks: refuse an example longer than --n_ctx instead of cutting it by the original's "
                        "rule (the default cuts only such examples, and logs how many)")
    p.add_argument('--cache_dir', type=str, default='cache/',
                   help="other tasks: where the BPE encoding of each split is kept, keyed by its texts and the "
                        "encoder (safe to delete)")
    # the user's own data (--dataset custom)
    p.add_argument('--task_type', type=str, default=None, choices=tasks.TASK_TYPES,
                   help="--dataset custom: the paper's input transformation to use")
    p.add_argument('--train_file', type=str, default=None, help="--dataset custom: CSV, TSV or JSONL")
    p.add_argument('--valid_file', type=str, default=None, help="--dataset custom: CSV, TSV or JSONL")
    p.add_argument('--test_file', type=str, default=None,
                   help="--dataset custom: CSV, TSV or JSONL (labels optional); its predictions go to "
                        "{submission_dir}/custom.tsv")
    p.add_argument('--text_columns', type=str, default=None,
                   help="--dataset custom: comma-separated text columns in the task's order (default: text; "
                        "premise,hypothesis; sentence1,sentence2; context,answers)")
    p.add_argument('--label_column', type=str, default='label', help="--dataset custom")
    p.add_argument('--id_column', type=str, default=None,
                   help="--dataset custom: ids written in the submission file (default: row numbers from 0)")
    p.add_argument('--resume', action='store_true',
                   help="continue the run {desc} from {save_dir}/{desc}/last_checkpoint.pt (written after every "
                        "epoch); every flag that changes the computation must be the same as the first time")
    p.add_argument('--overwrite', action='store_true',
                   help="start the run {desc} afresh, deleting the log, checkpoint and best parameters of an earlier "
                        "run of the same name (without it, a name already used is refused)")
    p.add_argument('--max_updates', type=int, default=0,
                   help="stop after this many optimizer updates in all (0: no limit); the epoch in progress is "
                        "logged and checkpointed as if it ended there. The schedule still spans --n_iter epochs, "
                        "so these are the first updates of the full run (smoke tests and checks; not for --resume)")
    p.add_argument('--share_prefix', action='store_true',
                   help="train with each example's shared context ([_start_] story [_delimiter_], the first tokens "
                        "all its choices share) computed once and its keys and values reused by every choice: the "
                        "same objective and, with dropout off, the same gradients, in less time. With dropout on "
                        "the choices share the context's dropout masks (the TF release drew one per choice). "
                        "Evaluation always computes the shared context once (exact)")
    p.add_argument('--bucket', action='store_true',
                   help="form each update from examples of similar length (the examples of %d updates at a "
                        "time sorted by length, the updates shuffled): less padding for a task whose lengths "
                        "vary (RACE, MNLI). Changes the batches, so off by default (the original shuffles "
                        "freely)" % BUCKET_SPAN)
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
        parser.error(err.as_flag() if isinstance(err, ConfigError) else str(err))
    return args


def validate_args(args):
    """Fill in derived defaults and check values; raises InputError naming the flag."""
    if args.desc is None:
        args.desc = args.dataset
    if not args.desc or os.sep in args.desc or args.desc in ('.', '..'):
        raise InputError(f"--desc {args.desc!r}: expected a plain run name "
                         "(it names the log file and checkpoint folder)")
    if args.dataset not in DATASETS:
        raise InputError(f"--dataset {args.dataset!r}: expected one of {', '.join(DATASETS)}")
    check_seed(args.seed)
    for flag in ('n_batch', 'n_iter', 'n_acc'):
        if getattr(args, flag) < 1:
            raise InputError(f"--{flag} {getattr(args, flag)}: expected a positive integer")
    if args.max_updates < 0:
        raise InputError(f"--max_updates {args.max_updates}: expected 0 (no limit) or a positive integer")
    if not args.dist_timeout > 0 or not math.isfinite(args.dist_timeout):
        raise InputError(f"--dist_timeout {args.dist_timeout}: expected a positive number of seconds")
    if not args.lr > 0 or not math.isfinite(args.lr):
        raise InputError(f"--lr {args.lr}: expected a positive learning rate")
    if not 6 <= args.n_ctx <= N_CTX_MAX:
        raise InputError(f"--n_ctx {args.n_ctx}: expected 6 (3 special tokens plus story and ending) to "
                         f"{N_CTX_MAX} (the positions of OpenAI's checkpoint)")
    check_dataset_flags(args)
    if args.dataset == 'rocstories' and not 1 <= args.n_valid < ROC_N_STORIES:
        raise InputError(f"--n_valid {args.n_valid}: expected 1 to {ROC_N_STORIES - 1} validation stories (the rest "
                         f"of the {ROC_N_STORIES} in the Story Cloze validation file train)")
    if args.encoder_path is None or args.bpe_path is None:
        try:  # the release's pair, else a Hugging Face folder's vocab.json and merges.txt
            encoder_path, bpe_path = find_bpe_files(args.model_dir)
        except MissingFileError:  # check_inputs names what is missing
            encoder_path, bpe_path = (os.path.join(args.model_dir, name) for name in RELEASE_BPE_FILES)
        args.encoder_path = args.encoder_path or encoder_path
        args.bpe_path = args.bpe_path or bpe_path
    ModelConfig.from_any(args).check_sizes(args.n_ctx + 1, args.n_ctx)  # the model's flags, before any data is read
    check_optimizer_flags(args)
    if args.resume and args.overwrite:
        raise InputError("--resume continues the earlier run and --overwrite deletes it: pass one of them")
    if args.n_transfer is not None and not -1 <= args.n_transfer <= args.n_layer:
        raise InputError(f"--n_transfer {args.n_transfer}: expected -1 (embeddings only) up to --n_layer "
                         f"{args.n_layer} (the default loads all of them)")
    if args.analysis and not args.submit:
        raise InputError("--analysis scores the test predictions that --submit writes: pass --submit too")
    args.lm_coef = resolve_lm_coef(args)
    resolve_device(args.device, args.amp)
    return args


def resolve_lm_coef(args):
    """--lm_coef as a plain float: 0 for a bidirectional --model_dir when the flag was not given
    (its next-token loss is no objective), else its value; InputError for a negative or
    non-finite weight."""
    if not math.isfinite(args.lm_coef) or args.lm_coef < 0:
        raise InputError(f"--lm_coef {args.lm_coef}: expected a finite weight >= 0 of the LM loss (0: none)")
    if args.lm_coef is LM_COEF_DEFAULT and args.init == 'pretrained' and _bidirectional(args.model_dir):
        return 0.0
    return float(args.lm_coef)


def _bidirectional(model_dir):
    """Whether `model_dir` holds a bidirectional model; False where it cannot be read (check_inputs
    and build_model name what is wrong with it)."""
    try:
        return not checkpoint_causal(model_dir)
    except (OSError, ValueError):
        return False




def check_dataset_flags(args):
    """Raise InputError for dataset flags that do not go together."""
    if args.truncate and args.no_truncate:
        raise InputError("--truncate cuts every example and --no_truncate refuses any cut: pass one of them")
    custom = ('task_type', 'train_file', 'valid_file', 'test_file', 'text_columns', 'id_column')
    if args.dataset == 'custom':
        for flag in ('task_type', 'train_file', 'valid_file'):
            if getattr(args, flag) is None:
                raise InputError(f"--dataset custom needs --{flag} (--task_type, --train_file and --valid_file; "
                                 f"--test_file is optional)")
    else:
        given = [f'--{flag}' for flag in custom if getattr(args, flag) is not None]
        if given:
            raise InputError(f"{', '.join(given)}: only for --dataset custom, not --dataset {args.dataset}")
    task_type = args.task_type if args.dataset == 'custom' else tasks.TASKS[args.dataset].task_type
    if getattr(args, 'share_prefix', False) and task_type != 'multiple_choice':
        raise InputError(f"--share_prefix: --dataset {args.dataset} is a {task_type} task; expected a "
                         f"multiple_choice task (only its choices share a context)")


OPT_FLAGS = {'lr': 'lr', 'schedule': 'lr_schedule', 'warmup': 'lr_warmup', 'b1': 'b1', 'b2': 'b2', 'e': 'e',
             'l2': 'l2', 'vector_l2': 'vector_l2', 'max_grad_norm': 'max_grad_norm'}


def check_optimizer_flags(args):
    """OpenAIAdam's checks of its settings, run on the flags before any work; the InputError
    names the flag."""
    try:
        check_hyperparameters(dict({name: getattr(args, flag) for name, flag in OPT_FLAGS.items()}, t_total=1))
    except InputError as err:
        flag = OPT_FLAGS[err.setting]
        raise InputError(f"--{flag} {getattr(args, flag)}: {err}") from None


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
    if args.dataset != 'rocstories':
        check_data_files(args)
    elif not os.path.isdir(args.data_dir):
        raise InputError(f"--data_dir {args.data_dir}: no such folder; expected it to hold {ROC_SOURCE}: "
                         f"{ROC_FILES[0]!r} and {ROC_FILES[1]!r}")
    missing = [f for f in ROC_FILES if not os.path.isfile(os.path.join(args.data_dir, f))]
    if missing and args.dataset == 'rocstories':
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
    if args.analysis and args.dataset == 'rocstories':  # before training: --analysis needs the test answers
        rocstories_test_labels(args.data_dir)
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




# ------------------------------------------------------------------ data

@dataclasses.dataclass
class RocData(Encoded):
    """Encoded ROCStories. X (n, 2, n_ctx, 2) int32: token and position ids; M (n, 2, n_ctx) float32 masks."""
    trX: np.ndarray
    trM: np.ndarray
    trY: np.ndarray
    vaX: np.ndarray
    vaM: np.ndarray
    vaY: np.ndarray
    teX: np.ndarray
    teM: np.ndarray
    data_warnings: list = dataclasses.field(default_factory=list)  # the reader's one-line DataWarnings, logged
    task = tasks.TASKS['rocstories']
    n_truncated = None  # --truncate's cut is not counted here, as the original did not

    @property
    def splits(self):
        """The arrays as task_data.TaskData holds them (the test answers are analysis.py's job)."""
        return {'train': SplitData(self.trX, self.trM, self.trY), 'valid': SplitData(self.vaX, self.vaM, self.vaY),
                'test': SplitData(self.teX, self.teM, None)}


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
    text_encoder = TextEncoder(args.encoder_path, args.bpe_path)
    if verbose:
        print("Encoding dataset...", file=sys.stderr)
    splits = rocstories(args.data_dir, n_train=ROC_N_STORIES - args.n_valid, n_valid=args.n_valid)
    encoded = encode_dataset(*splits, encoder=text_encoder, verbose=verbose, split_names=('train', 'valid', 'test'),
                             field_names=('story', 'ending 1', 'ending 2'))
    return text_encoder, tuple(tuple(s) for s in encoded)


def check_n_ctx(encoded, n_ctx):
    """Raise InputError when the longest `[_start_] story [_delimiter_] ending [_classify_]`
    does not fit in n_ctx positions (the original silently cut stories and endings to
    n_ctx // 2 - 2 tokens; --truncate does that)."""
    names = ('train', 'valid', 'test')
    splits = {name: split[:3] for name, split in zip(names, encoded)}
    longest, name, i = _longest_example(splits)
    if longest > n_ctx:
        raise InputError(
            f"--n_ctx {n_ctx} cannot hold the longest example: {name} example {i} is {longest} tokens with its "
            f"special tokens; expected --n_ctx >= {longest} (or --truncate to cut stories and endings to "
            f"n_ctx // 2 - 2 = {n_ctx // 2 - 2} tokens each, as the original did)")


def make_roc_data(text_encoder, encoded, n_ctx=512, truncate=False):
    """Add the special tokens `_start_`, `_delimiter_`, `_classify_` to the encoder (once),
    cut n_ctx to the longest example as the original did, and build the padded arrays.
    With truncate, stories and endings are first cut to n_ctx // 2 - 2 tokens (the
    original's max_len); without, an n_ctx that cannot hold the longest example is refused
    and nothing is cut."""
    ((trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3)) = encoded
    encoder = text_encoder.encoder
    specials = ('_start_', '_delimiter_', '_classify_')
    if specials[0] not in encoder:
        for name in specials:
            encoder[name] = len(encoder)
    n_special = len(specials)
    n_vocab = len(encoder) - n_special
    clf_token = encoder['_classify_']
    if truncate:
        max_len = n_ctx // 2 - 2
    else:
        check_n_ctx(encoded, n_ctx)
        max_len = n_ctx  # nothing is longer: no cut
    splits = {'train': (trX1, trX2, trX3), 'valid': (vaX1, vaX2, vaX3), 'test': (teX1, teX2, teX3)}
    longest, _, _ = _longest_example(splits, max_len)
    n_ctx = min(longest, n_ctx)
    trX, trM = transform_roc(trX1, trX2, trX3, encoder, n_ctx, max_len, n_vocab, n_special)
    vaX, vaM = transform_roc(vaX1, vaX2, vaX3, encoder, n_ctx, max_len, n_vocab, n_special)
    teX, teM = transform_roc(teX1, teX2, teX3, encoder, n_ctx, max_len, n_vocab, n_special)
    return RocData(text_encoder, encoder, n_vocab, n_special, clf_token, n_ctx, max_len,
                   trX, trM, np.asarray(trY, dtype=np.int64), vaX, vaM, np.asarray(vaY, dtype=np.int64), teX, teM)


def load_data(args, verbose=True):
    """Read and encode the dataset, add the special tokens, cut n_ctx to the longest example
    as the original did, and build the padded arrays. Returns RocData for ROCStories (the
    original's pipeline) and task_data.TaskData for every other task; both have `task`,
    `splits` and the trX/vaY/... arrays, and data_warnings that hold the readers'
    DataWarnings (printed when verbose; run() logs them)."""
    if args.dataset != 'rocstories':
        return load_task_data(args, verbose)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        text_encoder, encoded = encode_rocstories(args, verbose)
    data = make_roc_data(text_encoder, encoded, args.n_ctx, args.truncate)
    for w in caught:
        if issubclass(w.category, DataWarning):
            data.data_warnings.append(str(w.message))
            if verbose:
                print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return data


# ------------------------------------------------------------------ model and optimizer

def transfer_layers(args):
    """--n_transfer as loaded: all --n_layer layers when not given."""
    return args.n_layer if args.n_transfer is None else args.n_transfer


def build_model(args, data, device='cpu'):
    """The DoubleHeadModel with the task head of `data`, with OpenAI's weights unless args.init == 'random'.
    A bidirectional --model_dir (pretrain.py --objective mlm or electra) gives a bidirectional model."""
    pretrained = getattr(args, 'init', 'pretrained') == 'pretrained'
    cfg = _with_folder_attention(args) if pretrained else args
    model = DoubleHeadModel(cfg, data.clf_token, data.task.head, data.vocab, data.n_ctx)
    model.transformer.set_attention(getattr(args, 'attn_impl', 'sdpa'))
    if pretrained:
        try:
            load_pretrained(model, args.model_dir, n_ctx=data.n_ctx, n_special=data.n_special,
                            n_transfer=transfer_layers(args))
        except (CheckpointError, ValueError) as err:
            raise CheckpointError(f"--model_dir {args.model_dir}: {err}") from None
    return model.to(device)


def _with_folder_attention(args):
    """args, or a copy with causal=False when --model_dir holds a bidirectional model; raises
    InputError for --lm_coef above 0 then (each position sees the next token it would predict)."""
    try:
        if checkpoint_causal(args.model_dir):
            return args
    except (CheckpointError, ValueError) as err:
        raise CheckpointError(f"--model_dir {args.model_dir}: {err}") from None
    if getattr(args, 'lm_coef', 0):
        raise InputError(f"--lm_coef {args.lm_coef}: --model_dir {args.model_dir} holds a bidirectional model, "
                         f"whose next-token loss is no objective (each position sees the next token): expected "
                         f"--lm_coef 0")
    if getattr(args, 'share_prefix', False):
        raise InputError(f"--share_prefix: --model_dir {args.model_dir} holds a bidirectional model, whose "
                         f"context depends on each choice: expected a causal model or no --share_prefix")
    cfg = copy.copy(args)
    cfg.causal = False
    return cfg


def n_updates_total(n_train, args, world_size=1):
    """Optimizer updates in the whole run (t_total): full update batches of
    n_batch * world_size * n_acc examples per epoch times epochs, as the original (the last
    partial batch of an epoch is dropped). Under torchrun these are global updates."""
    return (n_train // (args.n_batch * world_size * args.n_acc)) * args.n_iter


def make_optimizer(args, model, t_total):
    return OpenAIAdam(model.parameters(), lr=args.lr, schedule=args.lr_schedule, warmup=args.lr_warmup,
                      t_total=max(t_total, 1), b1=args.b1, b2=args.b2, e=args.e, l2=args.l2,
                      vector_l2=args.vector_l2, max_grad_norm=args.max_grad_norm)


def make_loss_compute(args, opt=None, scaler=None, task_type='multiple_choice'):
    """The objective of the task type: cross-entropy over the choices or classes, squared
    error for regression (STS-B), plus lm_coef times the LM loss. Every task's X is
    (batch, n_seq, T, 2), which the multiple-choice loss takes as it is."""
    lm = nn.CrossEntropyLoss(reduction='none')
    clf = nn.MSELoss(reduction='none') if task_type == 'regression' else lm
    return MultipleChoiceLossCompute(lm, clf, args.lm_coef, opt, n_acc=args.n_acc, scaler=scaler)


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
    Yt = None
    if Y is not None:  # class indices stay integers, regression scores float32
        Y = np.asarray(Y)
        Yt = torch.as_tensor(Y, dtype=torch.float32 if Y.dtype.kind == 'f' else torch.long, device=device)
    return Xt, Mt, Yt


def padding_keys(model, M):
    """The key_mask of a batch M (..., T) for `model` (a DoubleHeadModel, or DDP around one):
    (B', T) bool, False at padding, for a bidirectional model; None for a causal one, which
    never reads the padding after a sequence (GPT-1's path stays as it was)."""
    if unwrap_model(model).transformer.causal:
        return None
    return M.reshape(-1, M.size(-1)) > 0


def train_step(model, loss_compute, X, M, Y, device='cpu', amp='none', trim=True, use_lm_mask=True,
               share_prefix=False):
    """One micro-batch: forward, loss, backward (loss_compute steps the optimizer every
    n_acc calls). X, M, Y numpy arrays of the batch. Returns the objective (float).
    share_prefix: each example's shared context computed once (prefix.py; `model` a
    DoubleHeadModel, a SharedPrefixModel, or DDP around a SharedPrefixModel), LM logits
    only where a next token is real whatever use_lm_mask."""
    model.train()
    X, M, Y = to_batch(X, M, Y, device, trim)
    if share_prefix:
        with autocast(device, amp):
            clf_logits, lm_loss = shared_prefix_model(model)(X, M, with_lm=bool(loss_compute.lm_coef))
        return loss_compute.train_on(loss_compute.objective(Y, clf_logits, lm_loss))
    lm_mask = None
    if use_lm_mask:
        lm_mask = lm_mask_from(M) if loss_compute.lm_coef else torch.zeros(M.shape, dtype=torch.bool, device=device)
    with autocast(device, amp):
        lm_logits, clf_logits = model(X, lm_mask=lm_mask, key_mask=padding_keys(model, M))
    return loss_compute(X, Y, M, clf_logits, lm_logits, lm_mask=lm_mask)


def example_lengths(M):
    """(n,) the longest sequence of each example of M (n, ..., T): a numpy array or a
    tasks.Padded view (whose token lists give it without laying M out)."""
    if hasattr(M, 'lengths'):
        return M.lengths()
    M = np.asarray(M)
    return M.reshape(len(M), -1, M.shape[-1]).sum(-1).max(-1)


def epoch_order(seed, epoch, n):
    """The shuffled order of the training examples in epoch `epoch` (0-based)."""
    return np.random.RandomState([seed, epoch]).permutation(n)


def bucketed_order(order, lengths, n_up, seed, epoch):
    """`order` (n,) regrouped so that each update's n_up examples have similar lengths (--bucket):
    the whole updates' examples are taken BUCKET_SPAN updates at a time, sorted by `lengths` (n,)
    within the span and cut into updates, and the updates are shuffled (seeded by seed and
    epoch). The last partial update's examples stay last, dropped as before. Returns (n,)."""
    n = len(order) // n_up * n_up
    span = BUCKET_SPAN * n_up
    spans = [order[i:min(i + span, n)] for i in range(0, n, span)]
    updates = [part[np.argsort(lengths[part], kind='stable')].reshape(-1, n_up) for part in spans]
    updates = np.concatenate(updates) if updates else np.zeros((0, n_up), order.dtype)
    updates = updates[np.random.RandomState([seed, epoch, 1]).permutation(len(updates))]
    return np.concatenate([updates.reshape(-1), order[n:]])


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
    world, rank = (dist.world_size, dist.rank) if dist is not None else (1, 0)
    max_updates = getattr(args, 'max_updates', 0)
    order = epoch_order(args.seed, state.n_epochs, len(Y))
    b = args.n_batch
    n_up = b * world * args.n_acc
    if getattr(args, 'bucket', False):
        order = bucketed_order(order, example_lengths(M), n_up, args.seed, state.n_epochs)
    total, count = 0.0, 0
    bar = tqdm(iter_data(order, n_batch=n_up, truncate=True), total=len(order) // n_up, file=sys.stderr, ncols=100,
               leave=False, disable=not verbose, desc=f'epoch {state.n_epochs + 1}/{args.n_iter} train')
    with bar:  # closed (cleared) before an error or Ctrl-C is printed
        for idx in bar:
            for k in range(args.n_acc):
                start = (k * world + rank) * b
                mb = idx[start:start + b]
                last = k == args.n_acc - 1
                sync = contextlib.nullcontext() if last or not hasattr(model, 'no_sync') else model.no_sync()
                try:
                    with sync:
                        total += train_step(model, loss_compute, X[mb], M[mb], Y[mb], device, args.amp, trim,
                                            use_lm_mask, getattr(args, 'share_prefix', False))
                except NonFiniteLossError as err:
                    raise NonFiniteLossError(f"update {state.n_updates + 1} (epoch {state.n_epochs}): {err}; the "
                                             f"last checkpoint is left as it was") from None
                count += 1
            bar.set_postfix_str(f'mean loss {total / count:.4f}', refresh=False)
            state.n_updates += 1
            if on_update is not None:
                on_update(state)
            if max_updates and state.n_updates >= max_updates:
                break
    return total / max(count, 1)


def _shares_contexts(model):
    """Whether evaluation computes each example's shared context once: a multiple-choice head
    on a causal model (a bidirectional model's context depends on each choice)."""
    return isinstance(model.task_head, MultipleChoiceHead) and model.transformer.causal


def _task_logits(model, X, M, n_batch):
    """The task head's outputs for one group of examples X (B, ..., T, 2), M (B, ..., T): a
    causal multiple-choice head's from the shared contexts (n_batch examples a pass), others'
    from one plain forward without LM logits."""
    if _shares_contexts(model):
        return grouped_clf_logits(model, X, M, n_batch)
    _, logits = model(X, lm_mask=torch.zeros(M.shape, dtype=torch.bool, device=M.device),
                      key_mask=padding_keys(model, M))
    return logits


def _eval_logits(model, X, M, n_batch, device='cpu', amp='none', verbose=True, dist=None, desc=None):
    """Task-head outputs as float64 numpy, in eval mode under inference_mode: (n, n_choices)
    or (n, n_class) logits, or (n,) scores for regression.
    Batches are formed in order of length so that trimming cuts most padding; the
    results come back in the input order. A multiple-choice example's shared context
    (the first tokens all its choices share) is computed once, over groups of EVAL_GROUP
    batches (prefix.grouped_clf_logits): the same logits, to float rounding.

    Under torchrun (`dist` with world_size W > 1) it is a collective call: rank r scores
    every W-th example of the length order from r (a share of similar cost on every rank)
    and all_gather gives every rank all the logits, so every rank computes the same
    accuracy and agrees on the best epoch. `model` is the plain module, not DDP. desc labels the bar."""
    order = np.argsort(example_lengths(M), kind='stable')
    sharded = dist is not None and dist.sharded
    mine = order[dist.rank::dist.world_size] if sharded else order
    local = None
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            group = EVAL_GROUP if _shares_contexts(model) else 1
            for pos in iter_data(np.arange(len(mine)), n_batch=n_batch * group, verbose=verbose, desc=desc):
                idx = mine[pos]
                Xb, Mb, _ = to_batch(X[idx], M[idx], None, device, trim=True)
                with autocast(device, amp):
                    clf_logits = _task_logits(model, Xb, Mb, n_batch)
                if local is None:
                    local = np.zeros((len(mine),) + tuple(clf_logits.shape[1:]), dtype=np.float64)
                local[pos] = clf_logits.float().cpu().numpy()
    finally:
        model.train(was_training)
    if local is None:  # no examples here: the head's output width is the model's
        local = np.zeros((0,) + _head_shape(model, X), dtype=np.float64)
    out = np.zeros((len(X),) + local.shape[1:], dtype=np.float64)
    if not sharded:
        out[mine] = local
        return out
    W = dist.world_size
    per = -(-len(X) // W)
    buf = torch.zeros((per,) + local.shape[1:], dtype=torch.float64, device=dist.device)
    buf[:len(mine)] = torch.from_numpy(local).to(dist.device)
    parts = [torch.empty_like(buf) for _ in range(W)]
    tdist.all_gather(parts, buf)
    for r, part in enumerate(parts):
        idx = order[r::W]
        out[idx] = part[:len(idx)].cpu().numpy()
    return out


def _head_shape(model, X):
    """The shape of one example's task-head output: () for one score, else (n_choices,) or (n_class,)."""
    head = model.task_head
    if isinstance(head, MultipleChoiceHead):
        return (X.shape[1],)
    width = head.clf.w.size(1)
    return () if width == 1 else (width,)


def eval_cost(task_type, logits, Y):
    """Mean task loss of the head's outputs against the targets Y (n,): cross-entropy over
    the choices or classes, squared error for regression scores."""
    out, y = torch.from_numpy(logits), torch.from_numpy(np.asarray(Y))
    if task_type == 'regression':
        return float(F.mse_loss(out, y.double()))
    return float(F.cross_entropy(out, y.long(), reduction='mean'))


def predictions(task_type, logits):
    """The predicted choice or class per example (argmax), or the score for regression."""
    return logits if task_type == 'regression' else np.argmax(logits, 1)


def evaluate(model, X, M, Y, n_batch=8, device='cpu', amp='none', verbose=True, dist=None,
             task_type='multiple_choice'):
    """-> (logits, cost = mean task loss, accuracy in percent; None for regression).
    With `dist` (torchrun), a collective call whose results every rank gets."""
    logits = _eval_logits(model, X, M, n_batch, device, amp, verbose, dist)
    Y = np.asarray(Y)
    acc = None if task_type == 'regression' else float(np.mean(predictions(task_type, logits) == Y) * 100.)
    return logits, eval_cost(task_type, logits, Y), acc


def log_name(metric):
    """A metric's name in the log: analysis.task_metrics' 'accuracy' is 'acc', as the original
    logged it ('accuracy_middle' is 'acc_middle'); the others as they are."""
    return 'acc' + metric[len('accuracy'):] if metric.startswith('accuracy') else metric


def metric_name(key):
    """log_name's inverse."""
    return 'accuracy' + key[len('acc'):] if key.startswith('acc') else key


def split_metrics(task, Y, preds, groups=None):
    """analysis.task_metrics of a split under the log's names: {'acc': ..., 'acc_middle': ...}
    or {'mcc': ...}, in percent."""
    name = task.name if task.name in tasks.TASKS else task.task_type
    return {log_name(k): v for k, v in task_metrics(name, Y, preds, groups).items()}


def score_split(model, task, split, n_batch=8, device='cpu', amp='none', verbose=True, dist=None, desc=None):
    """A labelled SplitData scored: (logits, cost, split_metrics). Collective with `dist`; desc labels the bar."""
    logits = _eval_logits(model, split.X, split.M, n_batch, device, amp, verbose, dist, desc)
    preds = predictions(task.task_type, logits)
    return logits, eval_cost(task.task_type, logits, split.Y), split_metrics(task, split.Y, preds, split.groups)


def predict(model, X, M, n_batch=8, device='cpu', amp='none', verbose=True, dist=None, task_type='multiple_choice',
            desc=None):
    """Predicted choice or class per example (argmax of the head's logits), or the score for
    regression; collective with `dist`; desc labels the bar."""
    return predictions(task_type, _eval_logits(model, X, M, n_batch, device, amp, verbose, dist, desc))


def write_submission(predictions, submission_dir, dataset='rocstories'):
    """Write `index\tprediction` lines, as the original, atomically (tasks.write_submission
    of a registered task's test split). Returns the path."""
    return tasks.write_submission(tasks.get_task(dataset), predictions, submission_dir)


# ------------------------------------------------------------------ the run

def run_paths(args):
    """The files a run writes: a dict of 'log', 'dir', 'best', 'last', 'config', 'submission'."""
    run_dir = os.path.join(args.save_dir, args.desc)
    return dict(log=os.path.join(args.log_dir, f'{args.desc}.jsonl'), dir=run_dir,
                best=os.path.join(run_dir, BEST_PARAMS), last=os.path.join(run_dir, LAST_CHECKPOINT),
                config=os.path.join(run_dir, RUN_CONFIG),
                submission=os.path.join(args.submission_dir, submission_files(args)[0]))


def submission_files(args):
    """The submission files of the dataset's test splits (custom data: custom.tsv)."""
    return tasks.TASKS[args.dataset].submission_files if args.dataset in tasks.TASKS else ('custom.tsv',)


def prepare_run_files(args):
    """Before a run writes anything (call it holding the run's lock): refuse to start afresh
    over an earlier run of the same --desc unless --overwrite, and remove temporary files a
    killed run left. Returns the earlier run's files that --overwrite replaces (remove_earlier_run
    deletes them once the new run has read its data and built its model)."""
    paths = run_paths(args)
    remove_stale_tmp(paths.values())
    earlier = earlier_run_files(args)
    if not earlier or args.resume:
        return []
    if not args.overwrite:
        raise InputError(f"--desc {args.desc}: an earlier run of that name left {', '.join(earlier)}; expected a new "
                         f"--desc, --resume to continue that run, or --overwrite to delete it and start afresh")
    return earlier


def earlier_run_files(args):
    """The log, best parameters, checkpoint and config an earlier run of --desc left."""
    paths = run_paths(args)
    return [paths[k] for k in ('log', 'best', 'last', 'config') if os.path.isfile(paths[k])]


def remove_earlier_run(args):
    """With --overwrite, delete earlier_run_files: called once the new run has checked all it
    can (flags, data, model), so that a bad input stops it with the earlier run whole. Returns
    the deleted paths."""
    earlier = earlier_run_files(args) if args.overwrite else []
    for path in earlier:
        os.remove(path)
    return earlier


def data_digest(data):
    """sha256 (hex) of the encoded training and validation splits (X, M, Y): --resume compares
    the data by content, which a data file changed in place or a moved --data_dir keeps or not."""
    h = hashlib.sha256()
    for name in ('train', *data.task.valid_splits):
        split = data.splits.get(name)
        for array in () if split is None else (split.X, split.M, split.Y):
            h.update(name.encode())
            # a batch at a time: a tasks.Padded split (MNLI, QQP) is never laid out whole
            for start in range(0, len(array), DIGEST_ROWS):
                h.update(np.ascontiguousarray(array[start:start + DIGEST_ROWS]).tobytes())
    return h.hexdigest()


def run_settings(args, data, fmt, world_size=1):
    """The flags with the values the run actually uses (n_ctx as cut, n_transfer as loaded)
    and what it found: the first line of the log and the run's config.json."""
    settings = dict(vars(args))
    settings.update(n_ctx=data.n_ctx, max_len=data.max_len, n_vocab=data.n_vocab, n_special=data.n_special,
                    clf_token=data.clf_token, vocab=data.vocab, n_transfer=transfer_layers(args),
                    encoder_path=os.path.abspath(args.encoder_path), bpe_path=os.path.abspath(args.bpe_path),
                    checkpoint_format=fmt, world_size=world_size, task_head_type=data.task.head,
                    n_ctx_requested=args.n_ctx)
    if args.dataset != 'rocstories':  # what the other tasks add; ROCStories' line stays the original's
        settings.update(task_type=data.task.task_type, classes=data.task.classes, n_truncated=data.n_truncated,
                        splits={name: len(split.X) for name, split in data.splits.items()})
    return settings


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


def settings_summary(settings, paths):
    """A few lines, grouped (model, data, optimisation, run files), of the run_settings that
    apply to this run; `paths` is run_paths'. The log's first line keeps every value."""
    g = settings.get
    weights = CHECKPOINT_FORMATS.get(g('checkpoint_format'), 'random initialisation')
    if g('checkpoint_format') != 'random':
        weights += f" from {g('model_dir')}, {g('n_transfer')} layers loaded"
    model = (f"{g('arch', 'gpt1')}, n_layer {g('n_layer')}, n_embd {g('n_embd')}, n_head {g('n_head')}, "
             f"afn {g('afn')}, n_ctx {g('n_ctx')} (of {g('n_ctx_requested')} asked); {weights}; "
             f"dropout embd {g('embd_pdrop')}, "
             f"attn {g('attn_pdrop')}, resid {g('resid_pdrop')}, clf {g('clf_pdrop')}")
    optimisation = (f"n_iter {g('n_iter')} epochs, updates of n_batch {g('n_batch')} x n_acc {g('n_acc')} x "
                    f"world_size {g('world_size')}; lr {g('lr')} {g('lr_schedule')} (warm-up {g('lr_warmup')}), "
                    f"l2 {g('l2')}{' (vectors too)' if g('vector_l2') else ''}, max_grad_norm {g('max_grad_norm')}, "
                    f"b1 {g('b1')} b2 {g('b2')} e {g('e')}, lm_coef {g('lm_coef')}, seed {g('seed')}" +
                    ''.join(f", {flag} {g(flag)}" for flag in ('max_updates', 'amp') if g(flag) not in (0, 'none')) +
                    ''.join(f", {flag}" for flag in ('share_prefix', 'bucket', 'truncate') if g(flag)))
    files = f"log {paths['log']}, checkpoint {paths['last']}"
    if g('submit'):
        files += f", best parameters {paths['best']}, submission {paths['submission']}"
    if g('analysis'):
        files += f", plot {os.path.splitext(paths['log'])[0]}.png"
    lines = dict(model=model, data=_data_summary(settings), optimisation=optimisation, files=files)
    return '\n'.join(f"  {name:<13}{text}" for name, text in lines.items())


def _data_summary(settings):
    """settings_summary's data line: where the examples come from and how many there are."""
    g = settings.get
    if g('dataset') == 'custom':
        files = ', '.join(f"{split} {g(split + '_file')}" for split in ('train', 'valid', 'test') if g(split + '_file'))
        where = f"custom {g('task_type')} data: {files}; text columns {g('text_columns') or 'the default'}"
    elif g('dataset') == 'rocstories':
        where = (f"rocstories from {g('data_dir')}, {g('n_valid')} stories of the validation file held out for "
                 f"validation (the original's split)")
    else:
        where = f"{g('dataset')} from {g('data_dir')}"
    counts = g('splits')
    where += f"; examples: {', '.join(f'{k} {v}' for k, v in counts.items())}" if counts else ''
    where += f"; {g('n_truncated')} cut to fit n_ctx" if g('n_truncated') else ''
    return f"{where}; vocabulary {g('n_vocab')} + {g('n_special')} special tokens"


def split_prefix(split):
    """The log's prefix of a validation split: 'va', and e.g. 'va_mm' for MNLI's valid_mismatched."""
    return {'valid': 'va', 'valid_mismatched': 'va_mm'}.get(split, 'va_' + split)


def log_epoch(model, data, args, state, logger, device='cpu', verbose=True, dist=None):
    """The original's log(): cost and the task's metrics on the first n_valid training
    examples and on each validation split, one JSONL entry (ROCStories: tr_cost, va_cost,
    tr_acc, va_acc, as the original); with --submit keeps the best parameters by the first
    validation split's first metric (the first evaluation of a run always sets them).
    Returns the entry.

    Under torchrun (`dist`) every rank calls it (the evaluations are collective and every
    rank gets the same results, so all agree on state.best_score); only rank 0 logs,
    prints and writes; `logger` may be None elsewhere."""
    main = dist is None or dist.is_main
    task, n_eval = data.task, args.n_batch * args.n_acc
    train, n_valid = data.splits['train'], len(data.vaY)
    head = SplitData(train.X[:n_valid], train.M[:n_valid], train.Y[:n_valid],
                     groups=None if train.groups is None else train.groups[:n_valid])
    scored = {'tr': score_split(model, task, head, n_eval, device, args.amp, verbose, dist,
                                desc=f'evaluating train[:{n_valid}]')[1:]}
    for split in task.valid_splits:
        if split in data.splits:
            scored[split_prefix(split)] = score_split(model, task, data.splits[split], n_eval, device, args.amp,
                                                      verbose, dist, desc=f'evaluating {split}')[1:]
    entry = dict(n_epochs=state.n_epochs, n_updates=state.n_updates)
    entry.update({f'{p}_cost': cost for p, (cost, _) in scored.items()})
    entry.update({f'{p}_{k}': v for p, (_, metrics) in scored.items() for k, v in metrics.items()})
    key = f"va_{log_name(task.metrics[0])}"
    score = entry[key] if math.isfinite(entry[key]) else -math.inf
    improved = args.submit and (score > state.best_score or state.best_score == -math.inf)
    if improved:
        state.best_score = score
        if main:
            save_params(model, os.path.join(args.save_dir, args.desc, BEST_PARAMS),
                        {'n_updates': state.n_updates, 'n_epochs': state.n_epochs, key: entry[key]})
    if main:
        logger.log(**entry)
        if verbose:
            parts = [f"{f'train[:{n_valid}]' if p == 'tr' else 'valid' + p[2:]} cost {cost:.3f} " +
                     ' '.join(f'{k} {v:.2f}' for k, v in metrics.items()) for p, (cost, metrics) in scored.items()]
            print(f"epoch {state.n_epochs} | updates {state.n_updates} | {' | '.join(parts)}"
                  f"{' (best so far, saved)' if improved else ''}")
    return entry


def _previous_entries(log_path, n_updates):
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


def run(args, verbose=True):
    """The whole job of `python train.py`: returns a dict of results.

    Rank 0 holds the run's lock ({save_dir}/{desc}/.lock) from start to end. Launched by
    torchrun (WORLD_SIZE, RANK, LOCAL_RANK set), it trains data-parallel with
    DistributedDataParallel (see setup_distributed and train_epoch); only rank 0 logs,
    prints, writes checkpoints and the submission."""
    env = torchrun_env()
    rank = 0 if env is None else env[0]
    main = rank == 0
    check_inputs(args, writes=main)
    with RunLock(run_paths(args)['dir']) if main else contextlib.nullcontext():
        if main:
            prepare_run_files(args)
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
    started = time.monotonic()
    main = dist.is_main
    set_seed(args.seed)
    data = load_data(args, verbose)
    check_global_batch(len(data.trY), args, dist.world_size)
    fmt = find_checkpoint_format(args.model_dir) if args.init == 'pretrained' else 'random'
    settings = run_settings(args, data, fmt, dist.world_size)
    if verbose:
        where = f" ({dist.world_size} processes, {dist.backend})" if dist.enabled else ""
        print(f"device {device}{where}; weights: {CHECKPOINT_FORMATS.get(fmt, 'random initialisation')}"
              f"{' from ' + args.model_dir if fmt != 'random' else ''}\nsettings (every value in the log's first "
              f"line):\n{settings_summary(settings, run_paths(args))}", file=sys.stderr)
    model = build_model(args, data, device)
    if not model.transformer.causal:  # for score.load_run; a causal run's config stays as it was
        settings['causal'] = False
    t_total = n_updates_total(len(data.trY), args, dist.world_size)
    opt = make_optimizer(args, model, t_total)
    scaler = make_scaler(args.amp)
    paths = run_paths(args)
    flags = dict(run_flags(args), n_transfer=transfer_layers(args), world_size=dist.world_size,
                 data_sha256=data_digest(data))

    state = TrainState()
    if args.resume:  # a checkpoint written before the data was compared lacks data_sha256: it passes
        defaults = dict(vars(build_parser().parse_args([])), data_sha256=flags['data_sha256'])
        state = resume_checkpoint(paths['dir'], model, opt, scaler, dist, flags, defaults,
                                  best=paths['best'] if args.submit else None)
        if verbose:
            print(f"resuming after epoch {state.n_epochs}, update {state.n_updates}", file=sys.stderr)
    # after a resume: DDP copies rank 0's parameters; it wraps the module whose forward the step calls
    train_model = wrap_model(SharedPrefixModel(model) if args.share_prefix else model, dist)
    loss_compute = make_loss_compute(args, opt, scaler, data.task.task_type)
    logger = None
    if main:
        remove_earlier_run(args)
        write_json(paths['config'], settings)
        logger = open_log(paths['log'], settings, _previous_entries(paths['log'], state.n_updates) if args.resume
                          else [])
        for message in data.data_warnings:
            logger.log(warning=message)
    saved = dataclasses.replace(state) if args.resume else None  # what the last checkpoint holds
    try:
        def on_update(st):
            if st.n_updates in LOG_UPDATES and st.n_epochs == 0:
                log_epoch(model, data, args, st, logger, device, verbose, dist)

        _debug_fail(dist)
        while state.n_epochs < args.n_iter:
            if args.max_updates and state.n_updates >= args.max_updates:
                break
            if not main:
                torch.manual_seed(rank_seed(args.seed, dist.rank, state.n_epochs))
            train_epoch(train_model, loss_compute, data.trX, data.trM, data.trY, args, state, device, on_update,
                        verbose, dist=dist)
            state.n_epochs += 1
            log_epoch(model, data, args, state, logger, device, verbose, dist)
            if main:
                save_checkpoint(paths['dir'], model, opt, state, scaler, flags)
            saved = dataclasses.replace(state)
    except KeyboardInterrupt:
        raise interrupted(f"in epoch {state.n_epochs + 1}, after update {state.n_updates}", saved,
                          paths['last']) from None
    finally:
        if logger is not None:
            logger.close()
    try:
        result = _finish(args, model, data, state, paths, device, verbose, dist)
    except KeyboardInterrupt:
        raise interrupted("after training, while predicting the test split", saved, paths['last']) from None
    if verbose:
        print(closing_summary(result, paths, state, time.monotonic() - started), file=sys.stderr)
    return result


def interrupted(where, saved, path):
    """The Interrupted of Ctrl-C `where` in a run whose last checkpoint `path` holds the
    TrainState `saved` (None: no checkpoint yet, so the run starts again with --overwrite)."""
    if saved is None:
        return Interrupted(f"stopped by Ctrl-C {where}, before the first checkpoint", '--overwrite')
    return Interrupted(f"stopped by Ctrl-C {where}; {path} holds epoch {saved.n_epochs}, update "
                       f"{saved.n_updates}", '--resume')


def _finish(args, model, data, state, paths, device, verbose, dist):
    """With --submit: the test predictions of the best parameters, written to the submission
    file of each test split, and with --analysis the task's metrics. Returns the run's result dict."""
    result = dict(n_ctx=data.n_ctx, n_updates=state.n_updates, log_path=paths['log'],
                  best_va_acc=state.best_score if math.isfinite(state.best_score) else None,
                  world_size=dist.world_size, rank=dist.rank)
    if not args.submit:
        return result
    if dist.is_main:
        load_params(model, paths['best'])
    broadcast_params(model, dist)  # the other ranks need not see rank 0's files
    result['best_params'] = paths['best']
    task = data.task
    for split in task.test_splits:
        if split not in data.splits:
            continue
        test = data.splits[split]
        preds = predict(model, test.X, test.M, args.n_batch * args.n_acc, device, args.amp, verbose, dist,
                        task.task_type, desc=f'predicting {split}')
        if not dist.is_main:
            continue
        path = tasks.write_submission(task, preds, args.submission_dir, split, test.ids)
        result.setdefault('submission_path', path)
        result.setdefault('submission_paths', []).append(path)
        if args.analysis and task.name != 'rocstories' and test.Y is not None:
            metrics = split_metrics(task, test.Y, preds, test.groups)
            result[f'{split}_metrics'] = metrics
            print_metrics(task, split, metrics)
    if dist.is_main and args.analysis:
        _analysis(args, task, result, paths)
        result['plot_path'] = plot_log(paths['log'])
    return result


def closing_summary(result, paths, state, seconds):
    """The run's last lines: how long it took and each file it wrote (log, plot, submission
    files, best parameters, checkpoint)."""
    written = [('log', paths['log'])]
    written += [('plot', result['plot_path'])] if 'plot_path' in result else []
    written += [('submission', path) for path in result.get('submission_paths', [])]
    written += [('best parameters', result['best_params'])] if 'best_params' in result else []
    written += [('checkpoint', paths['last'])] if os.path.isfile(paths['last']) else []
    minutes, secs = divmod(seconds, 60)
    took = f"{int(minutes)} min {secs:.0f} s" if minutes else f"{secs:.1f} s"
    return '\n'.join([f"done: {state.n_epochs} epochs, {state.n_updates} updates in {took}; wrote"] +
                     [f"  {what:<16} {path}" for what, path in written])


def print_metrics(task, split, metrics):
    """Print split_metrics' result as '{Task} {Split} {Metric}: value' lines."""
    title = f'{task.title} {split.replace("_", " ").title()}'
    print('\n'.join(format_metrics(title, {metric_name(k): v for k, v in metrics.items()})))


def _analysis(args, task, result, paths):
    """--analysis: ROCStories' original report (validation and test accuracy), or the best
    epoch's validation metrics of the other tasks, printed and added to `result`."""
    if task.name == 'rocstories':
        valid_acc, test_acc = rocstories_analysis(args.data_dir, result['submission_path'], paths['log'])
        result.update(valid_accuracy=valid_acc, test_accuracy=test_acc)
        return
    with open(paths['log'], encoding='utf-8') as f:
        entries = [json.loads(line) for line in f.read().splitlines()[1:]]
    key = f"va_{log_name(task.metrics[0])}"
    best = max((e for e in entries if key in e), key=lambda e: e[key] if math.isfinite(e[key]) else -math.inf)
    for split in task.valid_splits:
        prefix = split_prefix(split) + '_'
        metrics = {k[len(prefix):]: v for k, v in best.items() if k.startswith(prefix) and k != prefix + 'cost'
                   and not k[len(prefix):].startswith('mm_')}
        result[f'{split}_metrics'] = metrics
        print_metrics(task, split, metrics)


def main(argv=None):
    """The command line: parse the flags, run, and print any detected bad input as one line
    (exit status 2); a failed collective operation under torchrun exits with status 1."""
    args = build_parser().parse_args(argv)
    rank = env_rank()
    tag = f"[rank {rank}] " if rank else ""
    try:
        return run(validate_args(args))
    except GPT1Error as err:
        exit_with_error('train.py', err, tag)
    except KeyboardInterrupt as err:
        exit_interrupted('train.py', err, sys.argv[1:] if argv is None else argv, tag)
    except CollectiveFailure as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
