"""Finetune OpenAI's GPT-1 on ROCStories (the Story Cloze Test), as the TF release did, or on
any task of the paper (tasks.TASKS) and the user's own data; GPT-2 from its release folder or
a Hugging Face gpt2 folder as --model_dir (its files select GPT-2's tokenizer and sizes).

    python train.py --dataset rocstories --desc rocstories --submit --analysis --data_dir DIR
    python train.py --dataset sst2 --data_dir glue/SST-2 --submit --analysis
    python train.py --dataset custom --task_type classification --train_file a.csv --valid_file b.csv

This script holds the run: `parse_args`/`validate_args` (the checked finetune.FinetuneConfig
of the flags, of a dict or of a FinetuneConfig built in Python), `check_inputs`, and
`run(cfg)` for the whole job (the order of the steps is `train_and_evaluate`'s). The steps
themselves are finetune.py's (`build_model`, `make_optimizer`, `make_loss_compute`,
`train_epoch`, `evaluate`, `predict`, `log_epoch`), the data task_data.py's (`load_data`),
and the run folder, log, device and Ctrl-C run_frame.py's; a notebook calls them from
there. The module keeps no state of its own.

Data-parallel training on several GPUs or machines: launch the same script with
PyTorch's launcher, e.g. `torchrun --nproc_per_node 4 train.py ...`. Each process
takes its share of every batch (DistributedDataParallel), so one update consumes
n_batch * world_size * n_acc examples; see distributed.setup_distributed and the README.
"""
import dataclasses
import json
import math
import os
import sys
import time

import torch

import finetune
import tasks
from analysis import format_metrics, plot_log
from analysis import rocstories as rocstories_analysis
from checkpoint import (BEST_PARAMS, LAST_CHECKPOINT, RUN_CONFIG, RunLock, TrainState, load_params,
                        resume_checkpoint, run_flags, save_checkpoint)
from datasets import ROCSTORIES_URL, TEST_FILE, VAL_FILE, rocstories_test_labels
from distributed import _debug_fail, broadcast_params, rank_seed, resolve_device, wrap_model
from errors import ConfigError, InputError
from finetune import FinetuneConfig, build_parser, log_name, metric_name, split_prefix
from prefix import SharedPrefixModel
from run_frame import (check_writable, cli_main, closing_summary, earlier_run_files, interrupted,
                       is_due, make_scaler, open_log, prepare_run_folder, previous_entries, remove_files,
                       resolve_bpe_paths, run_job, write_run_config)
from task_data import check_data_files, load_data
from model_source import check_vocabulary, resolve_model
from weights import CHECKPOINT_FORMATS, find_checkpoint_format

ROC_FILES = (VAL_FILE, TEST_FILE)
ROC_SOURCE = f"the Story Cloze Test files (spring 2016) from {ROCSTORIES_URL}"
MODEL_SOURCE = "the model/ folder of https://github.com/openai/finetune-transformer-lm"
# The earlier port (and the TF release) logged during the first epoch at these update counts.
LOG_UPDATES = (1000, 2000, 4000, 8000, 16000, 32000)
PROG = 'train.py'


def parse_args(argv=None):
    """The checked FinetuneConfig of the command line (argparse's error, exit status 2, on a bad value)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return validate_args(args)
    except InputError as err:
        parser.error(err.as_flag(FinetuneConfig.flag_of(err.field)) if isinstance(err, ConfigError) else str(err))


def validate_args(args):
    """The checked FinetuneConfig of parsed flags (an argparse Namespace), a dict or a
    FinetuneConfig, with what the flags leave open filled in: the run's name (the dataset's),
    the BPE files (those of --model_dir, GPT-1's or GPT-2's), the model's block layout and sizes
    where --model_dir's checkpoint records them (model_source.resolve_model; --n_ctx at most its
    positions) and the LM loss's weight (0 for a bidirectional --model_dir unless given). Raises
    InputError, a ConfigError naming the field."""
    cfg = FinetuneConfig.from_any(args)
    run = cfg.run if cfg.run.desc is not None else dataclasses.replace(cfg.run, desc=cfg.task.dataset)
    cfg = resolve_model(dataclasses.replace(cfg, run=run, source=resolve_bpe_paths(cfg.source)))
    cfg = dataclasses.replace(cfg, tuning=dataclasses.replace(cfg.tuning, lm_coef=finetune.resolve_lm_coef(cfg)))
    resolve_device(run.device, run.amp)
    return cfg


def check_inputs(cfg, writes=True):
    """Check, before any work, the files the run reads and the folders it writes
    (writes=False: only the files it reads, as for a torchrun process other than rank 0,
    which writes nothing). Raises InputError saying what is expected and where it comes from."""
    task, source, run = cfg.task, cfg.source, cfg.run
    if task.dataset != 'rocstories':
        check_data_files(cfg)
    elif not os.path.isdir(task.data_dir):
        raise InputError(f"--data_dir {task.data_dir}: no such folder; expected it to hold {ROC_SOURCE}: "
                         f"{ROC_FILES[0]!r} and {ROC_FILES[1]!r}")
    missing = [f for f in ROC_FILES if not os.path.isfile(os.path.join(task.data_dir, f))]
    if missing and task.dataset == 'rocstories':
        raise InputError(f"--data_dir {task.data_dir}: {', '.join(repr(f) for f in missing)} missing; expected "
                         f"{ROC_SOURCE}")
    if source.init == 'pretrained':
        if not os.path.isdir(source.model_dir):
            raise InputError(f"--model_dir {source.model_dir}: no such folder; expected OpenAI's checkpoint "
                             f"(params_shapes.json, params_0.npy ... params_9.npy) from {MODEL_SOURCE}, GPT-2's "
                             f"release folder, or a Hugging Face openai-gpt or gpt2 folder (or --init random for a "
                             f"run without pretrained weights)")
        try:
            find_checkpoint_format(source.model_dir)
        except FileNotFoundError as err:
            raise InputError(f"--model_dir {source.model_dir}: {err}") from None
    for flag, path, name, gpt2 in (('--encoder_path', source.encoder_path, 'encoder_bpe_40000.json', 'encoder.json'),
                                   ('--bpe_path', source.bpe_path, 'vocab_40000.bpe', 'vocab.bpe')):
        if not os.path.isfile(path):
            raise InputError(f"{flag} {path}: no such file; expected OpenAI's {name} from {MODEL_SOURCE} "
                             f"(it defaults to {{model_dir}}/{name}), or GPT-2's {gpt2} for a GPT-2 model")
    check_vocabulary(source)
    if task.analysis and task.dataset == 'rocstories':  # before training: --analysis needs the test answers
        rocstories_test_labels(task.data_dir)
    if not writes:
        return
    check_writable(run.log_dir, '--log_dir')
    check_writable(os.path.join(run.save_dir, run.desc), '--save_dir')
    if task.submit:
        check_writable(task.submission_dir, '--submission_dir')


# ------------------------------------------------------------------ the run

def run_paths(cfg):
    """The files a run writes: a dict of 'log', 'dir', 'best', 'last', 'config', 'submission'."""
    run = cfg.run
    run_dir = os.path.join(run.save_dir, run.desc)
    return dict(log=os.path.join(run.log_dir, f'{run.desc}.jsonl'), dir=run_dir,
                best=os.path.join(run_dir, BEST_PARAMS), last=os.path.join(run_dir, LAST_CHECKPOINT),
                config=os.path.join(run_dir, RUN_CONFIG),
                submission=os.path.join(cfg.task.submission_dir, submission_files(cfg.task.dataset)[0]))


def submission_files(dataset):
    """The submission files of the dataset's test splits (custom data: custom.tsv)."""
    return tasks.TASKS[dataset].submission_files if dataset in tasks.TASKS else ('custom.tsv',)


EARLIER_RUN = ('log', 'best', 'last', 'config')  # run_paths' keys of what an earlier run leaves


def prepare_run_files(cfg):
    """Before a run writes anything (holding the run's lock): run_frame.prepare_run_folder.
    Returns the earlier run's files that --overwrite replaces (deleted once the new run has
    read its data and built its model)."""
    return prepare_run_folder(cfg.run, run_paths(cfg), EARLIER_RUN)


def found_settings(cfg, data, fmt, world_size=1):
    """What the run found beyond its config (n_ctx as cut, the vocabulary, the layers loaded, the
    weights' format, ...): config.json's 'found'."""
    found = dict(n_ctx=data.n_ctx, max_len=data.max_len, n_vocab=data.n_vocab, n_special=data.n_special,
                 clf_token=data.clf_token, vocab=data.vocab, n_transfer=finetune.layers_to_load(cfg),
                 encoder_path=os.path.abspath(cfg.source.encoder_path), bpe_path=os.path.abspath(cfg.source.bpe_path),
                 checkpoint_format=fmt, world_size=world_size, task_head_type=data.task.head,
                 n_ctx_requested=cfg.source.n_ctx)
    if cfg.task.dataset != 'rocstories':  # what the other tasks add; ROCStories' line stays the original's
        found.update(task_type=data.task.task_type, classes=data.task.classes, n_truncated=data.n_truncated,
                     splits={name: len(split.X) for name, split in data.splits.items()})
    return found


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
    files = f"log {paths['log']}, checkpoint {paths['last']}, best parameters {paths['best']}"
    if g('submit'):
        files += f", submission {paths['submission']}"
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
    cut = {k: v for k, v in (g('n_truncated') or {}).items() if v}
    where += f"; examples cut to fit n_ctx: {', '.join(f'{k} {v}' for k, v in cut.items())}" if cut else ''
    return f"{where}; vocabulary {g('n_vocab')} + {g('n_special')} special tokens"


def run(cfg, verbose=True):
    """The whole job of `python train.py` for `cfg` (a FinetuneConfig, or parsed flags or a dict,
    checked by validate_args): returns a dict of results.

    Rank 0 holds the run's lock ({save_dir}/{desc}/.lock) from start to end. Launched by
    torchrun (WORLD_SIZE, RANK, LOCAL_RANK set), it trains data-parallel with
    DistributedDataParallel (see finetune.train_epoch); only rank 0 logs, prints, writes
    checkpoints and the submission (run_frame.run_job)."""
    cfg = validate_args(cfg)
    return run_job(cfg, lambda dist, device, main: train_and_evaluate(cfg, dist, device, verbose and main),
                   check_inputs, RunLock(run_paths(cfg)['dir']), prepare_run_files)


def train_and_evaluate(cfg, dist, device, verbose):
    """run()'s body in each process: data, model, optimizer, the epochs with their evaluations
    and checkpoints, then predict_and_report; rank 0 logs, writes and prints the closing summary."""
    started = time.monotonic()
    main, run = dist.is_main, cfg.run
    finetune.set_seed(run.seed)
    data = load_data(cfg, verbose)
    finetune.check_global_batch(len(data.trY), cfg, dist.world_size)
    fmt = find_checkpoint_format(cfg.source.model_dir) if cfg.source.init == 'pretrained' else 'random'
    found = found_settings(cfg, data, fmt, dist.world_size)
    paths = run_paths(cfg)
    if verbose:
        where = f" ({dist.world_size} processes, {dist.backend})" if dist.enabled else ""
        print(f"device {device}{where}; weights: {CHECKPOINT_FORMATS.get(fmt, 'random initialisation')}"
              f"{' from ' + cfg.source.model_dir if fmt != 'random' else ''}\nsettings (every value in the log's "
              f"first line):\n{settings_summary(dict(cfg.flat(), **found), paths)}", file=sys.stderr)
    model = finetune.build_model(cfg, data, device)
    if not model.transformer.causal:  # a bidirectional --model_dir makes a bidirectional model
        found['causal'] = False
    settings = dict(cfg.flat(), **found)
    t_total = finetune.n_updates_total(len(data.trY), cfg, dist.world_size)
    opt = finetune.make_optimizer(cfg, model, t_total)
    scaler = make_scaler(run.amp)
    flags = dict(run_flags(cfg), n_transfer=finetune.layers_to_load(cfg), world_size=dist.world_size,
                 data_sha256=finetune.data_digest(data))

    state = TrainState()
    if run.resume:  # a checkpoint written before the data was compared lacks data_sha256: it passes
        defaults = dict(FinetuneConfig().flat(), data_sha256=flags['data_sha256'])
        state = resume_checkpoint(paths['dir'], model, opt, scaler, dist, flags, defaults,
                                  best=paths['best'])
        if verbose:
            print(f"resuming after epoch {state.n_epochs}, update {state.n_updates}", file=sys.stderr)
    # after a resume: DDP copies rank 0's parameters; it wraps the module whose forward the step calls
    train_model = wrap_model(SharedPrefixModel(model) if cfg.tuning.share_prefix else model, dist)
    loss_compute = finetune.make_loss_compute(cfg, opt, scaler, data.task.task_type)
    ctx = finetune.RunContext(cfg, model, data, device, dist, verbose)
    logger = None
    if main:
        remove_files(earlier_run_files(paths, EARLIER_RUN) if run.overwrite else [])
        write_run_config(paths['config'], cfg, found)
        logger = open_log(paths['log'], settings, previous_entries(paths['log'], state.n_updates) if run.resume
                          else [])
        for message in data.data_warnings:
            logger.log(warning=message)
    saved = dataclasses.replace(state) if run.resume else None  # what the last checkpoint holds
    try:
        def on_update(st):
            if (st.n_updates in LOG_UPDATES and st.n_epochs == 0) or is_due(st.n_updates, run.eval_every):
                finetune.log_epoch(ctx, st, logger)

        _debug_fail(dist)
        if run.eval_every and state.n_updates == 0:
            finetune.log_epoch(ctx, state, logger)
        while state.n_epochs < run.n_iter:
            if run.max_updates and state.n_updates >= run.max_updates:
                break
            if not main:
                torch.manual_seed(rank_seed(run.seed, dist.rank, state.n_epochs))
            finetune.train_epoch(ctx, train_model, loss_compute, state, on_update)
            state.n_epochs += 1
            finetune.log_epoch(ctx, state, logger)
            if main:
                save_checkpoint(paths['dir'], model, opt, state, scaler, flags)
            saved = dataclasses.replace(state)
    except KeyboardInterrupt:
        raise interrupted(f"in epoch {state.n_epochs + 1}, after update {state.n_updates}", paths['last'],
                          _holds(saved)) from None
    finally:
        if logger is not None:
            logger.close()
    try:
        result = predict_and_report(ctx, paths, state)
    except KeyboardInterrupt:
        raise interrupted("after training, while predicting the test split", paths['last'], _holds(saved)) from None
    if verbose:
        print(closing_summary(f"{state.n_epochs} epochs, {state.n_updates} updates", written_files(result, paths),
                              time.monotonic() - started), file=sys.stderr)
    return result


def _holds(saved):
    """What the last checkpoint holds, for run_frame.interrupted: a TrainState or None (none yet)."""
    return None if saved is None else f"epoch {saved.n_epochs}, update {saved.n_updates}"


def predict_and_report(ctx, paths, state):
    """The run's result dict: where its best parameters are (score.py predicts with them), and with
    --submit the test predictions of those parameters (`ctx` a finetune.RunContext,
    `paths` run_paths'), written to the submission file of each test split, and with --analysis
    the task's metrics."""
    cfg, data, dist = ctx.cfg, ctx.data, ctx.dist
    result = dict(n_ctx=data.n_ctx, n_updates=state.n_updates, log_path=paths['log'],
                  best_va_acc=state.best_score if math.isfinite(state.best_score) else None,
                  world_size=dist.world_size, rank=dist.rank)
    if dist.is_main and os.path.isfile(paths['best']):
        result['best_params'] = paths['best']
    if not cfg.task.submit:
        return result
    if dist.is_main:
        load_params(ctx.model, paths['best'])
    broadcast_params(ctx.model, dist)  # the other ranks need not see rank 0's files
    task = data.task
    for split in task.test_splits:
        if split not in data.splits:
            continue
        test = data.splits[split]
        preds = finetune.predict(ctx.model, test.X, test.M, cfg.run.n_batch * cfg.run.n_acc, ctx.device, cfg.run.amp,
                                 ctx.verbose, dist, task.task_type, desc=f'predicting {split}')
        if not dist.is_main:
            continue
        path = tasks.write_submission(task, preds, cfg.task.submission_dir, split, test.ids)
        result.setdefault('submission_path', path)
        result.setdefault('submission_paths', []).append(path)
        if cfg.task.analysis and task.name != 'rocstories' and test.Y is not None:
            metrics = finetune.split_metrics(task, test.Y, preds, test.groups)
            result[f'{split}_metrics'] = metrics
            print_metrics(task, split, metrics)
    if dist.is_main and cfg.task.analysis:
        report_analysis(cfg.task.data_dir, task, result, paths)
        result['plot_path'] = plot_log(paths['log'])
    return result


def written_files(result, paths):
    """(what, path) of each file the run wrote: log, plot, submission files, best parameters, checkpoint."""
    written = [('log', paths['log'])]
    written += [('plot', result['plot_path'])] if 'plot_path' in result else []
    written += [('submission', path) for path in result.get('submission_paths', [])]
    written += [('best parameters', result['best_params'])] if 'best_params' in result else []
    written += [('checkpoint', paths['last'])] if os.path.isfile(paths['last']) else []
    return written


def print_metrics(task, split, metrics):
    """Print split_metrics' result as '{Task} {Split} {Metric}: value' lines."""
    title = f'{task.title} {split.replace("_", " ").title()}'
    print('\n'.join(format_metrics(title, {metric_name(k): v for k, v in metrics.items()})))


def report_analysis(data_dir, task, result, paths):
    """--analysis: ROCStories' original report (validation and test accuracy), or the best
    epoch's validation metrics of the other tasks, printed and added to `result`."""
    if task.name == 'rocstories':
        valid_acc, test_acc = rocstories_analysis(data_dir, result['submission_path'], paths['log'])
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
    (exit status 2); a failed collective operation under torchrun exits with status 1; Ctrl-C
    prints where the run stopped and how to continue it (exit status 130)."""
    return cli_main(PROG, run, build_parser().parse_args(argv),
                    sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    main()
