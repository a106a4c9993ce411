"""Finetuning GPT-1 or GPT-2 (DoubleHeadModel) on a task: the steps train.py runs and the estimators
reuse. The configs: `TaskConfig` (the data and what a run writes at its end), `TuningConfig`
(layers loaded, the LM loss's weight, shared contexts, buckets) and `FinetuneConfig`, the
group of every part train.py is set up with, whose fields are its flags (`build_parser`,
defaults the paper's finetuning); a run folder's config.json reads back with
`read_run_config`. The steps: the LM loss's weight (`resolve_lm_coef`) and the batch that
must fit (`check_global_batch`), the model (`build_model`) with OpenAI's weights or a
folder's, the optimizer and loss, one micro-batch (`train_step`), one epoch (`train_epoch`),
evaluation (`evaluate`, `score_split`, `predict`), the log's entry of an evaluation
(`log_epoch`, given the run's `RunContext`) and the data's digest that --resume compares. The
module keeps no state of its own.

Under torchrun (`dist`, a distributed.DistInfo) every process calls the same steps: DDP
averages the gradients, evaluation shares the examples out and gathers the results.
"""
import argparse
import dataclasses
import hashlib
import math
import numbers
import os
import random
import sys
from dataclasses import field
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.distributed as tdist
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

import tasks
from analysis import task_metrics
from checkpoint import BEST_PARAMS, save_params
from distributed import unwrap_model
from errors import CheckpointError, ConfigError, DataError, InputError
from flags import Config, ConfigGroup, DefaultsHelpFormatter, check_number
from loss import MultipleChoiceLossCompute, lm_mask_from
from model_pytorch import DoubleHeadModel, ModelConfig, MultipleChoiceHead
from opt import AdamConfig
from prefix import grouped_clf_logits, shared_prefix_model
from readers import DATASETS
from run_frame import RunConfig, SourceConfig, autocast, eval_mode, nonfinite_stop, sync_unless_last
from task_data import ROC_N_STORIES, SplitData
from utils import iter_data, read_json
from weights import checkpoint_causal, load_pretrained

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


@dataclasses.dataclass
class TaskConfig(Config):
    """What a finetuning run learns from: the task (one of readers.DATASETS, or `custom` with the
    user's files), how its examples are cut to the context, and what the run writes at its end
    (--submit, --analysis). The earlier port's flags keep its names and defaults."""
    dataset: str = field(default='rocstories', metadata={'choices': DATASETS})
    data_dir: str = field(default='data/', metadata={
        'help': "the dataset's folder as released (see docs/finetuning.md's table of tasks)"})
    submission_dir: str = 'submission/'
    submit: bool = field(default=False, metadata={
        'help': "write the test predictions of the best-validation parameters to --submission_dir"})
    analysis: bool = field(default=False, metadata={
        'help': "with --submit: print the validation and test accuracy; draw the log to {log_dir}/{desc}.png"})
    n_valid: int = 374
    truncate: bool = field(default=False, metadata={
        'help': "cut every example's segments to n_ctx // 2 - 2 tokens, as the original always did (ROCStories: "
                "instead of refusing an n_ctx that cannot hold the longest example)"})
    no_truncate: bool = field(default=False, metadata={
        'help': "other tasks: refuse an example longer than --n_ctx instead of cutting it by the original's rule "
                "(the default cuts only such examples, and logs how many)"})
    task_type: Optional[str] = field(default=None, metadata={
        'choices': tasks.TASK_TYPES, 'help': "--dataset custom: the paper's input transformation to use"})
    train_file: Optional[str] = field(default=None, metadata={'help': "--dataset custom: CSV, TSV or JSONL"})
    valid_file: Optional[str] = field(default=None, metadata={'help': "--dataset custom: CSV, TSV or JSONL"})
    test_file: Optional[str] = field(default=None, metadata={
        'help': "--dataset custom: CSV, TSV or JSONL (labels optional); its predictions go to "
                "{submission_dir}/custom.tsv"})
    text_columns: Optional[str] = field(default=None, metadata={
        'help': "--dataset custom: comma-separated text columns in the task's order (default: text; "
                "premise,hypothesis; sentence1,sentence2; context,answers)"})
    label_column: str = field(default='label', metadata={'help': "--dataset custom"})
    id_column: Optional[str] = field(default=None, metadata={
        'help': "--dataset custom: ids written in the submission file (default: row numbers from 0)"})
    def check(self):
        """Raise InputError (ConfigError naming a field) for the first setting that cannot work."""
        if self.dataset not in DATASETS:
            raise ConfigError('dataset', self.dataset, f"one of {', '.join(DATASETS)}")
        if self.dataset == 'rocstories' and not (_is_int(self.n_valid) and 1 <= self.n_valid < ROC_N_STORIES):
            raise ConfigError('n_valid', self.n_valid, f"1 to {ROC_N_STORIES - 1} validation stories (the rest of the "
                                                       f"{ROC_N_STORIES} in the Story Cloze validation file train)")
        if self.analysis and not self.submit:
            raise InputError("--analysis scores the test predictions that --submit writes: pass --submit too")
        check_dataset_flags(self)


@dataclasses.dataclass
class TuningConfig(Config):
    """How the pretrained model is finetuned, whatever the data: the layers loaded, the LM loss's
    weight, and the two ways of saving time (shared contexts, length buckets)."""
    opt: str = field(default='adam', metadata={'choices': ('adam',)})
    n_transfer: Optional[int] = field(default=None, metadata={
        'help': "pretrained layers to load (default: all --n_layer of them, 12 for the full model; -1: embeddings "
                "only)"})
    lm_coef: float = LM_COEF_DEFAULT
    share_prefix: bool = field(default=False, metadata={
        'help': "train with each example's shared context ([_start_] story [_delimiter_], the first tokens all its "
                "choices share) computed once and its keys and values reused by every choice: the same objective "
                "and, with dropout off, the same gradients, in less time. With dropout on the choices share the "
                "context's dropout masks (the TF release drew one per choice). Evaluation always computes the "
                "shared context once (exact)"})
    bucket: bool = field(default=False, metadata={
        'help': f"form each update from examples of similar length (the examples of {BUCKET_SPAN} updates at a "
                f"time sorted by length, the updates shuffled): less padding for a task whose lengths vary (RACE, "
                f"MNLI). Changes the batches, so off by default (the original shuffles freely)"})


    def check(self):
        """Raise ConfigError naming the first field that cannot work."""
        if self.opt != 'adam':
            raise ConfigError('opt', self.opt, "adam")
        check_number('lm_coef', self.lm_coef, lambda v: math.isfinite(v) and v >= 0,
                     "a finite weight >= 0 of the LM loss (0: none)")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_transfer(cfg):
    """ConfigError unless cfg.tuning.n_transfer is None (all) or -1 (embeddings only) to cfg.model.n_layer."""
    n_transfer, n_layer = cfg.tuning.n_transfer, cfg.model.n_layer
    if n_transfer is not None and not (_is_int(n_transfer) and -1 <= n_transfer <= n_layer):
        raise ConfigError('n_transfer', n_transfer, f"-1 (embeddings only) up to n_layer {n_layer} (the default "
                                                    f"loads all of them)")


DEFAULTS = {'run': {'desc': None}}  # train.py's own defaults: the run's name is the dataset's unless given


@dataclasses.dataclass
class FinetuneConfig(ConfigGroup):
    """Everything a finetuning run of train.py is set up with: the run frame's settings, the
    model's source, sizes and optimizer, how it is finetuned, and the task. `flat()` is the
    flags by name, as the log's first line records them; config.json holds `to_dict()`."""
    SKIP = ('causal', 'dropout_masks')  # a bidirectional --model_dir sets causal; dropout masks stay torch's

    run: RunConfig = field(default_factory=lambda: RunConfig(**DEFAULTS['run']))
    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: AdamConfig = field(default_factory=AdamConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    task: TaskConfig = field(default_factory=TaskConfig)

    def check(self):
        """The checks that span parts (each part checked its own fields when built)."""
        n_ctx = self.source.n_ctx
        if n_ctx < 6:  # the most is the checkpoint's positions: model_source.resolve_model checks it
            raise ConfigError('n_ctx', n_ctx, "6 (3 special tokens plus story and ending) or more")
        self.model.check_sizes(n_ctx + 1, n_ctx)
        check_transfer(self)
        task = self.task
        task_type = task.task_type if task.dataset == 'custom' else tasks.TASKS[task.dataset].task_type
        if self.tuning.share_prefix and task_type != 'multiple_choice':
            raise InputError(f"--share_prefix: --dataset {task.dataset} is a {task_type} task; expected a "
                             f"multiple_choice task (only its choices share a context)")


def build_parser():
    """train.py's flags, derived from FinetuneConfig's parts (the defaults are the paper's finetuning)."""
    p = argparse.ArgumentParser(description="Finetune OpenAI's GPT-1 (finetune-transformer-lm) on ROCStories, the "
                                            "paper's other tasks or your own data.",
                                formatter_class=DefaultsHelpFormatter)
    return FinetuneConfig.add_flags(p, DEFAULTS)


def resolve_lm_coef(cfg):
    """The LM loss's weight a run uses, a plain float: 0 for a bidirectional --model_dir when
    --lm_coef was not given (its next-token loss is no objective), else --lm_coef."""
    tuning, source = cfg.tuning, cfg.source
    if tuning.lm_coef is LM_COEF_DEFAULT and source.init == 'pretrained' and _bidirectional(source.model_dir):
        return 0.0
    return float(tuning.lm_coef)


def _bidirectional(model_dir):
    """Whether `model_dir` holds a bidirectional model; False where it cannot be read (check_inputs
    and build_model name what is wrong with it)."""
    try:
        return not checkpoint_causal(model_dir)
    except (OSError, ValueError):
        return False


CUSTOM_FIELDS = ('task_type', 'train_file', 'valid_file', 'test_file', 'text_columns', 'id_column')


def check_dataset_flags(task):
    """Raise InputError for settings of the TaskConfig `task` that do not go together."""
    if task.truncate and task.no_truncate:
        raise InputError("--truncate cuts every example and --no_truncate refuses any cut: pass one of them")
    if task.dataset == 'custom':
        for name in ('task_type', 'train_file', 'valid_file'):
            if getattr(task, name) is None:
                raise InputError(f"--dataset custom needs --{name} (--task_type, --train_file and --valid_file; "
                                 f"--test_file is optional)")
    else:
        given = [f'--{name}' for name in CUSTOM_FIELDS if getattr(task, name) is not None]
        if given:
            raise InputError(f"{', '.join(given)}: only for --dataset custom, not --dataset {task.dataset}")


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too


def check_global_batch(n_train, cfg, world_size=1):
    """Raise InputError when one update's examples, n_batch * world_size * n_acc, exceed the
    training set (no update would happen), saying what would fit."""
    n_batch, n_acc, W = cfg.run.n_batch, cfg.run.n_acc, world_size
    per_update = n_batch * W * n_acc
    if per_update <= n_train:
        return
    procs = f" x {W} processes" if W > 1 else ""
    with_procs = f" with {W} processes" if W > 1 else ""
    if n_train >= W * n_acc:
        fix = f"--n_batch {n_train // (W * n_acc)} or less{with_procs} and --n_acc {n_acc}"
    elif n_train >= W:
        fix = f"--n_acc 1 and --n_batch {n_train // W} or less{with_procs}"
    else:
        fix = f"at most {n_train} processes"
    raise InputError(f"--n_batch {n_batch}{procs} x --n_acc {n_acc} = {per_update} examples per update is more "
                     f"than the {n_train} training examples: expected at most {n_train} (e.g. {fix})")


# ------------------------------------------------------------------ model and optimizer

def layers_to_load(cfg):
    """--n_transfer as loaded: all --n_layer layers when not given."""
    return cfg.model.n_layer if cfg.tuning.n_transfer is None else cfg.tuning.n_transfer


def build_model(cfg, data, device='cpu'):
    """The DoubleHeadModel with the task head of `data`, with OpenAI's weights unless the source's
    init is 'random'. A bidirectional --model_dir (pretrain.py --objective mlm or electra) gives a
    bidirectional model."""
    pretrained = cfg.source.init == 'pretrained'
    model_cfg = _match_folder_causality(cfg) if pretrained else cfg.model
    model = DoubleHeadModel(model_cfg, data.clf_token, data.task.head, data.vocab, data.n_ctx)
    model.transformer.set_attention(model_cfg.attn_impl)
    if pretrained:
        try:
            load_pretrained(model, cfg.source.model_dir, n_ctx=data.n_ctx, n_special=data.n_special,
                            n_transfer=layers_to_load(cfg))
        except (CheckpointError, ValueError) as err:
            raise CheckpointError(f"--model_dir {cfg.source.model_dir}: {err}") from None
    return model.to(device)


def _match_folder_causality(cfg):
    """cfg.model, or a copy with causal=False when --model_dir holds a bidirectional model;
    raises InputError for --lm_coef above 0 then (each position sees the next token it would
    predict)."""
    model_dir = cfg.source.model_dir
    try:
        if checkpoint_causal(model_dir):
            return cfg.model
    except (CheckpointError, ValueError) as err:
        raise CheckpointError(f"--model_dir {model_dir}: {err}") from None
    if cfg.tuning.lm_coef:
        raise InputError(f"--lm_coef {cfg.tuning.lm_coef}: --model_dir {model_dir} holds a bidirectional model, "
                         f"whose next-token loss is no objective (each position sees the next token): expected "
                         f"--lm_coef 0")
    if cfg.tuning.share_prefix:
        raise InputError(f"--share_prefix: --model_dir {model_dir} holds a bidirectional model, whose "
                         f"context depends on each choice: expected a causal model or no --share_prefix")
    return dataclasses.replace(cfg.model, causal=False)


def n_updates_total(n_train, cfg, world_size=1):
    """Optimizer updates in the whole run (t_total): full update batches of
    n_batch * world_size * n_acc examples per epoch times epochs, as the original (the last
    partial batch of an epoch is dropped). Under torchrun these are global updates."""
    run = cfg.run
    return (n_train // (run.n_batch * world_size * run.n_acc)) * run.n_iter


def make_optimizer(cfg, model, t_total):
    """OpenAIAdam (cfg.optimizer's settings) over the model's parameters for t_total updates (at least 1)."""
    return cfg.optimizer.build(model.parameters(), max(t_total, 1))


def make_loss_compute(cfg, opt=None, scaler=None, task_type='multiple_choice'):
    """The objective of the task type: cross-entropy over the choices or classes, squared
    error for regression (STS-B), plus lm_coef times the LM loss. Every task's X is
    (batch, n_seq, T, 2), which the multiple-choice loss takes as it is."""
    lm = nn.CrossEntropyLoss(reduction='none')
    clf = nn.MSELoss(reduction='none') if task_type == 'regression' else lm
    return MultipleChoiceLossCompute(lm, clf, cfg.tuning.lm_coef, opt, n_acc=cfg.run.n_acc, scaler=scaler)


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
    epoch). The last partial update's examples stay last and are dropped, as the original drops them. Returns (n,)."""
    n = len(order) // n_up * n_up
    span = BUCKET_SPAN * n_up
    spans = [order[i:min(i + span, n)] for i in range(0, n, span)]
    updates = [part[np.argsort(lengths[part], kind='stable')].reshape(-1, n_up) for part in spans]
    updates = np.concatenate(updates) if updates else np.zeros((0, n_up), order.dtype)
    updates = updates[np.random.RandomState([seed, epoch, 1]).permutation(len(updates))]
    return np.concatenate([updates.reshape(-1), order[n:]])


def train_epoch(ctx, model, loss_compute, state, on_update=None, trim=True, use_lm_mask=True):
    """One epoch of the run `ctx` (a RunContext: its config, its data's trX, trM, trY, device,
    dist and verbose) training `model` (ctx.model, or the DDP or SharedPrefixModel around it),
    shuffled with (cfg.run.seed, state.n_epochs): updates of n_batch * world_size *
    n_acc examples (the last partial one dropped, as the original), each as n_acc micro-batches
    of n_batch per process. Calls on_update(state) after every update; stops early once
    state.n_updates reaches cfg.run.max_updates (when set). Returns the mean objective (of this
    process's micro-batches).

    Under torchrun (ctx.dist, a DistInfo, and `model` wrapped by DDP) every process walks the
    same shuffled order; micro-batch k of an update is the update's examples
    [k*W*b, (k+1)*W*b) and rank r takes its slice [r*b, (r+1)*b) of it. The gradients of the
    first n_acc - 1 micro-batches stay local (model.no_sync()); DDP averages the sum over the
    ranks at the last one, so the update's gradient is that of the mean loss over the global
    batch, as one process with n_batch * W would get."""
    cfg, device, dist = ctx.cfg, ctx.device, ctx.dist
    X, M, Y = ctx.data.trX, ctx.data.trM, ctx.data.trY
    world, rank = (dist.world_size, dist.rank) if dist is not None else (1, 0)
    max_updates = cfg.run.max_updates
    order = epoch_order(cfg.run.seed, state.n_epochs, len(Y))
    b = cfg.run.n_batch
    n_up = b * world * cfg.run.n_acc
    if cfg.tuning.bucket:
        order = bucketed_order(order, example_lengths(M), n_up, cfg.run.seed, state.n_epochs)
    total, count = 0.0, 0
    bar = tqdm(iter_data(order, n_batch=n_up, truncate=True), total=len(order) // n_up, file=sys.stderr, ncols=100,
               leave=False, disable=not ctx.verbose, desc=f'epoch {state.n_epochs + 1}/{cfg.run.n_iter} train')
    with bar:  # closed (cleared) before an error or Ctrl-C is printed
        for idx in bar:
            for k in range(cfg.run.n_acc):
                start = (k * world + rank) * b
                mb = idx[start:start + b]
                with nonfinite_stop(f"update {state.n_updates + 1} (epoch {state.n_epochs})"), \
                        sync_unless_last(model, k == cfg.run.n_acc - 1):
                    total += train_step(model, loss_compute, X[mb], M[mb], Y[mb], device, cfg.run.amp, trim,
                                        use_lm_mask, cfg.tuning.share_prefix)
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
    with eval_mode(model):
        group = EVAL_GROUP if _shares_contexts(model) else 1
        for pos in iter_data(np.arange(len(mine)), n_batch=n_batch * group, verbose=verbose, desc=desc):
            idx = mine[pos]
            Xb, Mb, _ = to_batch(X[idx], M[idx], None, device, trim=True)
            with autocast(device, amp):
                clf_logits = _task_logits(model, Xb, Mb, n_batch)
            if local is None:
                local = np.zeros((len(mine),) + tuple(clf_logits.shape[1:]), dtype=np.float64)
            local[pos] = clf_logits.float().cpu().numpy()
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


class Evaluation(NamedTuple):
    """evaluate's result: the head's outputs (n, ...) as float64, the mean task loss, and the
    accuracy in percent (None for regression)."""
    logits: np.ndarray
    cost: float
    accuracy: Optional[float]


class ScoredSplit(NamedTuple):
    """score_split's result: the head's outputs (n, ...) as float64, the mean task loss, and
    the task's metrics under the log's names ({'acc': ...} or {'mcc': ...}, in percent)."""
    logits: np.ndarray
    cost: float
    metrics: dict


def evaluate(model, X, M, Y, n_batch=8, device='cpu', amp='none', verbose=True, dist=None,
             task_type='multiple_choice'):
    """-> Evaluation(logits, cost = mean task loss, accuracy in percent; None for regression).
    With `dist` (torchrun), a collective call whose results every rank gets."""
    logits = _eval_logits(model, X, M, n_batch, device, amp, verbose, dist)
    Y = np.asarray(Y)
    acc = None if task_type == 'regression' else float(np.mean(predictions(task_type, logits) == Y) * 100.)
    return Evaluation(logits, eval_cost(task_type, logits, Y), acc)


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
    """A labelled SplitData scored: ScoredSplit(logits, cost, split_metrics' metrics). Collective
    with `dist`; desc labels the bar."""
    logits = _eval_logits(model, split.X, split.M, n_batch, device, amp, verbose, dist, desc)
    preds = predictions(task.task_type, logits)
    return ScoredSplit(logits, eval_cost(task.task_type, logits, split.Y),
                       split_metrics(task, split.Y, preds, split.groups))


def predict(model, X, M, n_batch=8, device='cpu', amp='none', verbose=True, dist=None, task_type='multiple_choice',
            desc=None):
    """Predicted choice or class per example (argmax of the head's logits), or the score for
    regression; collective with `dist`; desc labels the bar."""
    return predictions(task_type, _eval_logits(model, X, M, n_batch, device, amp, verbose, dist, desc))


def write_submission(predictions, submission_dir, dataset='rocstories'):
    """Write `index\tprediction` lines, as the original, atomically (tasks.write_submission
    of a registered task's test split). Returns the path."""
    return tasks.write_submission(tasks.get_task(dataset), predictions, submission_dir)


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


def split_prefix(split):
    """The log's prefix of a validation split: 'va', and e.g. 'va_mm' for MNLI's valid_mismatched."""
    return {'valid': 'va', 'valid_mismatched': 'va_mm'}.get(split, 'va_' + split)


def log_epoch(ctx, state, logger):
    """The original's log(): cost and the task's metrics on the first n_valid training
    examples and on each validation split, one JSONL entry (ROCStories: tr_cost, va_cost,
    tr_acc, va_acc, as the original); keeps the best parameters by the first validation split's
    first metric (the first evaluation of a run always sets them), which score.py predicts with.
    `ctx` is the run's RunContext. Returns the entry.

    Under torchrun every rank calls it (the evaluations are collective and every rank gets the
    same results, so all agree on state.best_score); only rank 0 logs, prints and writes;
    `logger` may be None elsewhere."""
    cfg, model, data, device, verbose, dist = ctx.cfg, ctx.model, ctx.data, ctx.device, ctx.verbose, ctx.dist
    main = dist is None or dist.is_main
    task, n_eval = data.task, cfg.run.n_batch * cfg.run.n_acc
    train, n_valid = data.splits['train'], len(data.vaY)
    head = SplitData(train.X[:n_valid], train.M[:n_valid], train.Y[:n_valid],
                     groups=None if train.groups is None else train.groups[:n_valid])
    scored = {'tr': score_split(model, task, head, n_eval, device, cfg.run.amp, verbose, dist,
                                desc=f'evaluating train[:{n_valid}]')[1:]}
    for split in task.valid_splits:
        if split in data.splits:
            scored[split_prefix(split)] = score_split(model, task, data.splits[split], n_eval, device, cfg.run.amp,
                                                      verbose, dist, desc=f'evaluating {split}')[1:]
    entry = dict(n_epochs=state.n_epochs, n_updates=state.n_updates)
    entry.update({f'{p}_cost': cost for p, (cost, _) in scored.items()})
    entry.update({f'{p}_{k}': v for p, (_, metrics) in scored.items() for k, v in metrics.items()})
    key = f"va_{log_name(task.metrics[0])}"
    score = entry[key] if math.isfinite(entry[key]) else -math.inf
    improved = score > state.best_score or state.best_score == -math.inf
    if improved:
        state.best_score = score
        if main:
            save_params(model, os.path.join(cfg.run.save_dir, cfg.run.desc, BEST_PARAMS),
                        {'n_updates': state.n_updates, 'n_epochs': state.n_epochs, key: entry[key]})
    if main:
        logger.log(**entry)
        if verbose:
            parts = [f"{f'train[:{n_valid}]' if p == 'tr' else 'valid' + p[2:]} cost {cost:.3f} " +
                     ' '.join(f'{k} {v:.2f}' for k, v in metrics.items()) for p, (cost, metrics) in scored.items()]
            print(f"epoch {state.n_epochs} | updates {state.n_updates} | {' | '.join(parts)}"
                  f"{' (best so far, saved)' if improved else ''}")
    return entry


@dataclasses.dataclass
class RunContext:
    """What a finetuning run's steps share: its FinetuneConfig, the model (the plain module, not
    DDP), the data (task_data's), the device, torchrun's DistInfo (None: one process) and
    whether to print."""
    cfg: FinetuneConfig
    model: nn.Module
    data: object
    device: object = 'cpu'
    dist: object = None
    verbose: bool = True


class RunRecord(NamedTuple):
    """A run folder's config.json read back: the FinetuneConfig the run was set up with, and what
    it found (n_ctx as cut, the vocabulary, the task head, the weights' format, ...)."""
    config: FinetuneConfig
    found: dict

    @property
    def settings(self):
        """Every setting by name, as the log's first line has them (found values over configured ones)."""
        return dict(self.config.flat(), **self.found)


def read_run_config(path, expected="the config.json train.py writes"):
    """The RunRecord of a run's config.json: the configs and what the run found, or a flat file of
    settings by name (the runs' files of earlier versions: n_ctx as cut, n_ctx_requested as asked).
    DataError naming the file where it is not such a file."""
    d = read_json(path, expected)
    try:
        if 'found' in d:
            found = d['found']
            return RunRecord(FinetuneConfig.from_dict({k: v for k, v in d.items() if k != 'found'}), dict(found))
        flat = dict(d)
        if 'n_ctx_requested' in flat:
            flat['n_ctx'] = flat['n_ctx_requested']
        config, found = FinetuneConfig.from_flat(flat)
        return RunRecord(config, dict(found, n_ctx=d.get('n_ctx', config.source.n_ctx)))
    except (InputError, TypeError) as err:
        raise DataError(f"{path}: {err}; expected {expected}") from None
