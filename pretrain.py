"""Pre-train GPT-1's language model (LMModel) on raw text, with the paper's recipe.

    python pretrain.py --data books/ --desc books                          # the paper's settings, BPE
    python pretrain.py --data my.txt --tokenizer char --n_layer 4 --n_embd 128 --n_head 4 \\
        --n_ctx 128 --n_batch 32 --n_iter 20 --desc mine                  # a small model on your text

Input (`--data`): text files (each one document), folders of them (*.txt, *.jsonl) and
JSONL files (one document per line, its `text` field), encoded once into a token store
(token_store.py) in `--cache_dir`. Whole documents go to the validation split, a
`--valid_fraction` of them (with a single document, its last fraction of tokens),
topped up to one window where that is less (README, "Pre-training"). A file that is
not UTF-8 or not a regular file is skipped and counted (the log names each one);
`--strict` refuses one that is not UTF-8 instead.

`--arch gpt1` (the default) is the paper's post-LayerNorm block; `--arch gpt2` builds
GPT-2's pre-LayerNorm layout (model_pytorch.py) and writes a Hugging Face `gpt2` folder.

Tokenizers: `--tokenizer bpe` is GPT-1's BPE (text_utils.TextEncoder, ids identical to
the original's). Documents are separated by the newline symbol '\\n</w>': each document
ends with exactly one (added unless its text ends with a newline already). The paper
trained on BooksCorpus as contiguous text and the original pre-training code is not
public; a newline is what the original pipeline gives at a paragraph break, so a
document boundary reads as one, without a symbol the vocabulary does not have.
`--tokenizer gpt2` is GPT-2's byte-level BPE (text_utils.GPT2Encoder, the release's ids; its
encoder.json and vocab.bpe, or a Hugging Face gpt2 folder's vocab.json and merges.txt, from
--encoder_path/--bpe_path or --model_dir); every document ends with '<|endoftext|>' (50256),
GPT-2's end of text, which no encoded text yields. `--tokenizer char` makes each distinct
character of the training text (plus '\\n', the document separator) one id. The tokenizer's
files are saved with the model.

The recipe (every number a flag): windows of `--n_ctx` 512 contiguous tokens at random
places of the training split, minibatches of `--n_batch` 64 windows (where memory is
short, `--n_batch 16 --n_acc 4` accumulates four micro-batches into one update of 64, as
in train.py), OpenAIAdam with lr 2.5e-4 warmed up linearly over `--warmup_updates` 2000 updates then cosine-annealed to
0 (`warmup_cosine`) over the whole run, dropout 0.1 on residuals, embeddings and
attention, L2 0.01 on weights with more than one dimension (not biases, not gains),
global gradient clipping at 1. One update consumes n_batch * n_acc * world_size windows;
the run lasts `--n_iter` epochs, an epoch being the updates that consume as many tokens
as the training split holds (at least one). `--max_updates` stops earlier, and the
schedule then ends at that update (train.py's schedule spans --n_iter epochs regardless).
The objective is the mean next-token cross
entropy over positions 1..n_ctx-1 of every window, over every row of the tied embedding
(as the TF release's LM loss). Validation scores the non-overlapping windows that tile
the validation split. `--init random` (from scratch) is the default here; `--init
pretrained` continues from `--model_dir`. The progress bar shows the loss and tokens/s.

`--objective mlm` (BERT's masked LM) and `--objective electra` (ELECTRA: a masked-LM
generator `--gen_size` as wide as the discriminator, which learns to find the tokens the
generator replaced; loss = mlm loss + `--disc_weight` * the discriminator's loss) train
bidirectional models (electra.py) on the same windows: ceil(`--mask_prob` * n_ctx) tokens
of each window are masked, 85% of them shown as the mask token `_mask_` (id n_vocab, one
new row between the tokens and the positions; no token id moves) and 15% unchanged. The
log adds tr_ and va_ mlm_loss, disc_loss, gen_acc, disc_acc (mlm: mlm_loss, mlm_acc), and
va_ppl is null; validation masks are drawn from a generator seeded by `--seed`, alike at
every evaluation. The output folder holds the encoder (the discriminator) without the mask
row, config.json's `causal` false: `train.py --model_dir` finetunes it with `--lm_coef 0`;
the generator is saved beside it (generator.safetensors); last_checkpoint.pt holds both.

This script holds the run (`parse_args`/`validate_args`: the checked pretraining.PretrainConfig
of the flags, of a dict or of a PretrainConfig built in Python; `check_inputs`, the loop, and
`run(cfg)` for the whole job); its steps are pretraining.py's (`build_tokenizer`,
`load_corpus`, `build_model`, `make_optimizer`, `sample_windows`, `train_update`,
`evaluate_lm`, `evaluate_objective`, `save_model_folder`), which a notebook calls from
there. The module keeps no state.

A run `desc` writes `{log_dir}/{desc}.jsonl` (the settings line, then entries with
n_updates, tr_loss, va_loss, va_ppl, lr, tokens_per_s at every `--eval_every` updates
and at the end) and `{save_dir}/{desc}/`: `last_checkpoint.pt` (atomic, what `--resume`
continues from, written at every evaluation and at the end), `config.json` (the
PretrainConfig, one object per part, and what the run found), and `model/`, the output: a
Hugging Face openai-gpt folder (config.json, model.safetensors) with the tokenizer beside it
(vocab.json and merges.txt for BPE, char_vocab.json for characters). That layout carries the
model's sizes in config.json, so `generate.py --model_dir` needs no size flags, and `train.py
--model_dir` and `load_pretrained` read it as they read Hugging Face's own openai-gpt save.

Data-parallel: `torchrun --nproc_per_node N pretrain.py ...`; every process draws its
own windows (seeded by seed, rank and update), DDP averages the gradients, the
validation windows are shared out and the losses summed; only rank 0 writes.
"""
import argparse
import dataclasses
import os
import shutil
import sys
import time
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.distributed as tdist
from tqdm import tqdm

import electra
from analysis import plot_log
from checkpoint import (LAST_CHECKPOINT, RUN_CONFIG, RunLock, TrainState, resume_checkpoint, run_flags, save_checkpoint)
from corpus import find_inputs
from distributed import rank_seed, resolve_device, wrap_model
from errors import ConfigError, InputError
from flags import DefaultsHelpFormatter
from heuristics import CHANCE, evaluate_tasks, prepare_tasks
from model_pytorch import LMModel
from opt import OpenAIAdam
from pretraining import (DEFAULTS, PretrainConfig, build_model, build_tokenizer, evaluate_lm, evaluate_objective,
                         load_corpus, make_optimizer, n_updates_total, sample_windows, save_model_folder, scheduled_lr,
                         train_update, updates_per_epoch, warmup_fraction)
from run_frame import (check_writable, cli_main, closing_summary,
                       earlier_run_files, format_settings, interrupted, is_due, make_scaler, nonfinite_stop, open_log,
                       prepare_run_folder, previous_entries, remove_files, resolve_bpe_paths, run_job,
                       write_run_config)
from text_utils import CHAR_VOCAB, GPT2_RELEASE_FILES, HF_BPE_FILES, RELEASE_BPE_FILES
from weights import find_checkpoint_format

PROG = 'pretrain.py'
MODEL_FOLDER = 'model'  # {save_dir}/{desc}/model/: the output
GENERATOR = 'generator.safetensors'  # --objective electra: the generator, beside the model folder
BPE_KINDS = {'bpe': "GPT-1's", 'gpt2': "GPT-2's"}  # --tokenizer -> whose BPE files it reads
# Flags that change nothing a resumed run computes, besides checkpoint.py's FREE_FLAGS: the
# corpus is compared by its content (the token store's key), not by where it lies.
PRETRAIN_FREE = ('data', 'cache_dir', 'eval_every', 'strict', 'zero_shot', 'zero_shot_dir', 'zero_shot_examples')
# for --resume: the values that runs from before a flag existed computed with
RESUME_DEFAULTS = dict(electra.OBJECTIVE_DEFAULTS, dropout_masks='bernoulli', max_updates=0)


# ------------------------------------------------------------------ flags

def build_parser():
    """pretrain.py's flags, derived from PretrainConfig's parts (the defaults are the paper's pre-training)."""
    p = argparse.ArgumentParser(description="Pre-train GPT-1's language model on raw text (the paper's recipe).",
                                formatter_class=DefaultsHelpFormatter)
    return PretrainConfig.add_flags(p, DEFAULTS)


def parse_args(argv=None):
    """The checked PretrainConfig of the command line; a bad value exits with status 2 and one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return validate_args(args)
    except InputError as err:
        parser.error(err.as_flag(PretrainConfig.flag_of(err.field)) if isinstance(err, ConfigError) else str(err))


def validate_args(args):
    """The checked PretrainConfig of parsed flags (an argparse Namespace), a dict or a
    PretrainConfig, with what the flags leave open filled in: the BPE files (those of
    --model_dir) and the token cache ({save_dir}/tokens). Raises InputError, a ConfigError
    naming the field."""
    cfg = PretrainConfig.from_any(args)
    run = cfg.run
    if run.cache_dir is None:
        run = dataclasses.replace(run, cache_dir=os.path.join(run.save_dir, 'tokens'))
    source = resolve_bpe_paths(cfg.source, cfg.corpus.tokenizer) if cfg.corpus.tokenizer != 'char' else cfg.source
    cfg = dataclasses.replace(cfg, run=run, source=source)
    if os.path.abspath(run.cache_dir) == os.path.abspath(run_paths(cfg)['dir']):
        raise InputError(f"--desc {run.desc}: its run folder {run_paths(cfg)['dir']} is the token cache "
                         f"(--cache_dir {run.cache_dir}); expected another --desc or --cache_dir")
    resolve_device(run.device, run.amp)
    return cfg


def check_inputs(cfg, writes=True):
    """Check, before any work, the files the run reads and (writes=True) the folders it
    writes; raises InputError (or MissingFileError for --data) saying what is expected."""
    find_inputs(cfg.corpus.data)
    if cfg.corpus.tokenizer != 'char':
        names = RELEASE_BPE_FILES if cfg.corpus.tokenizer == 'bpe' else GPT2_RELEASE_FILES
        for flag, path in (('--encoder_path', cfg.source.encoder_path), ('--bpe_path', cfg.source.bpe_path)):
            if not os.path.isfile(path):
                raise InputError(f"{flag} {path}: no such file; expected {BPE_KINDS[cfg.corpus.tokenizer]} BPE files "
                                 f"({' and '.join(names)}, or {' and '.join(HF_BPE_FILES)}), by default from "
                                 f"--model_dir")
    if cfg.source.init == 'pretrained':
        try:
            find_checkpoint_format(cfg.source.model_dir)
        except FileNotFoundError as err:
            raise InputError(f"--model_dir {cfg.source.model_dir}: {err}") from None
        if cfg.corpus.tokenizer == 'char' and not os.path.isfile(os.path.join(cfg.source.model_dir, CHAR_VOCAB)):
            raise InputError(f"--model_dir {cfg.source.model_dir}: no {CHAR_VOCAB}; --tokenizer char --init pretrained "
                             f"continues a character model this script wrote (or use --init random)")
    if writes:
        check_writable(cfg.run.log_dir, '--log_dir')
        check_writable(run_paths(cfg)['dir'], '--save_dir')
        check_writable(cfg.run.cache_dir, '--cache_dir')


# ------------------------------------------------------------------ the run

def run_paths(cfg):
    """The files a run writes: a dict of 'log', 'dir', 'last', 'config', 'model', 'generator'."""
    run_dir = os.path.join(cfg.run.save_dir, cfg.run.desc)
    return dict(log=os.path.join(cfg.run.log_dir, f'{cfg.run.desc}.jsonl'), dir=run_dir,
                last=os.path.join(run_dir, LAST_CHECKPOINT), config=os.path.join(run_dir, RUN_CONFIG),
                model=os.path.join(run_dir, MODEL_FOLDER), generator=os.path.join(run_dir, GENERATOR))


EARLIER_RUN = ('log', 'last', 'config', 'model', 'generator')  # run_paths' keys of what an earlier run leaves


def prepare_run_files(cfg):
    """Before a run writes anything (holding the run's lock): remove what a killed run left
    half-written (export_hf's temporary model folder too), then run_frame.refuse_earlier_run.
    Returns the earlier run's files that --overwrite replaces (deleted once the new run has
    read its corpus and built its model)."""
    paths = run_paths(cfg)
    for name in os.listdir(paths['dir']) if os.path.isdir(paths['dir']) else ():
        if name.startswith(f'.{MODEL_FOLDER}.tmp-'):
            shutil.rmtree(os.path.join(paths['dir'], name), ignore_errors=True)
    return prepare_run_folder(cfg.run, paths, EARLIER_RUN,
                              stale=[paths['log'], paths['last'], paths['config'], paths['generator']])


def found_settings(cfg, store, n_vocab, t_total, world_size=1):
    """What the run found beyond its config (corpus sizes, vocabulary, schedule length):
    config.json's 'found', and with the config's flat() the first line of the log."""
    meta = store['meta']
    return dict(n_vocab=n_vocab, t_total=t_total, world_size=world_size,
                updates_per_epoch=updates_per_epoch(meta['n_train_tokens'], cfg, world_size),
                warmup=warmup_fraction(cfg, t_total),
                n_docs=meta['n_docs'], n_train_tokens=meta['n_train_tokens'], n_valid_tokens=meta['n_valid_tokens'],
                n_skipped_files=len(meta.get('skipped', [])), token_store=store['folder'],
                tokenizer_fingerprint=meta['tokenizer'],
                **({'zero_shot_chance': {t: CHANCE[t] for t in cfg.zero_shot.folders()}} if cfg.zero_shot.folders()
                   else {}))


def resume_flags(cfg, store, n_vocab, world_size=1):
    """What must match on --resume: the flags that change the computation (here --max_updates
    too, as it ends the schedule) and the corpus by content (the token store's key), not by path."""
    flags = {k: v for k, v in run_flags(cfg).items() if k not in PRETRAIN_FREE}
    return dict(flags, corpus=os.path.basename(store['folder']), n_vocab=n_vocab, world_size=world_size,
                max_updates=cfg.run.max_updates)


def run_warnings(cfg, store, t_total):
    """One-line warnings for the log: each input file skipped (not UTF-8, not a regular file),
    and a warm-up as long as the run (the learning rate would never anneal)."""
    warnings = [f"skipped: {message}" for message in store['meta'].get('skipped', [])]
    warnings += electra.objective_warnings(cfg.objective, cfg.model.n_embd, cfg.model.n_head)
    if cfg.corpus.warmup_updates >= t_total:
        warnings.append(f"--warmup_updates {cfg.corpus.warmup_updates} is not less than the run's {t_total} updates: "
                        f"the learning rate only warms up (lower --warmup_updates or raise --n_iter or --max_updates)")
    return warnings


@dataclasses.dataclass
class PretrainRun:
    """What the steps of one run share: the flags, the model and what trains it (itself or
    its DDP wrapper), optimizer, GradScaler (fp16) or None, the token store, the sizes
    (n_vocab: the rows before the position rows, the mask token's row included with mlm and
    electra), device, torchrun info (DistInfo), the run's paths and resume flags, and the log
    (rank 0)."""
    cfg: PretrainConfig
    model: torch.nn.Module  # LMModel, or electra's MaskedLM or Electra
    train_model: torch.nn.Module
    opt: OpenAIAdam
    scaler: object
    store: dict
    n_vocab: int
    t_total: int
    device: torch.device
    dist: object
    paths: dict
    flags: dict
    logger: object = None
    saved: int = None  # the update the last checkpoint holds (None: none yet)
    zero_shot: object = None  # heuristics.ZeroShotTasks scored at each validation (rank 0), or None


class Validation(NamedTuple):
    """_validate's result: the validation loss, the perplexity (None for mlm and electra, and
    both None without a validation split), and the objective's statistics."""
    loss: Optional[float]
    perplexity: Optional[float]
    stats: dict


def _validate(ctx):
    """Validation on the validation split: the LM's loss and perplexity, or the mlm/electra
    objective's loss (no perplexity) and statistics."""
    if ctx.store['valid'] is None:
        return Validation(None, None, {})
    run, n_ctx = ctx.cfg.run, ctx.cfg.source.n_ctx
    if isinstance(ctx.model, LMModel):
        score = evaluate_lm(ctx.model, ctx.store['valid'], n_ctx, ctx.n_vocab, run.n_batch, ctx.device, run.amp,
                            ctx.dist)
        return Validation(score.loss, score.perplexity, {})
    stats = evaluate_objective(ctx.model, ctx.store['valid'], n_ctx, ctx.n_vocab, run.n_batch, ctx.device, run.amp,
                               ctx.dist, run.seed)
    return Validation(stats.pop('loss'), None, stats)


def log_progress(ctx, state, losses, train_seconds, verbose, stats=()):
    """Validation loss and perplexity (when there is a validation split), one log entry,
    and the checkpoint (rank 0). stats: each update's statistics of the mlm or electra
    objective, logged as tr_{name} (their mean) beside va_{name}. Returns the entry."""
    va_loss, va_ppl, va_stats = _validate(ctx)
    tokens = len(losses) * ctx.cfg.run.n_batch * ctx.cfg.run.n_acc * ctx.dist.world_size * ctx.cfg.source.n_ctx
    entry = dict(n_updates=state.n_updates, tr_loss=float(np.mean(losses)), va_loss=va_loss, va_ppl=va_ppl,
                 lr=scheduled_lr(ctx.cfg, state.n_updates, ctx.t_total),
                 tokens_per_s=tokens / max(train_seconds, 1e-9))
    for name in sorted(set().union(*stats)) if stats else ():
        entry[f'tr_{name}'] = float(np.mean([s[name] for s in stats]))
        entry[f'va_{name}'] = va_stats.get(name)
    if ctx.dist.is_main:
        if ctx.zero_shot is not None:
            entry.update(evaluate_tasks(ctx.model, ctx.zero_shot))
        ctx.logger.log(**entry)
        save_checkpoint(ctx.paths['dir'], ctx.model, ctx.opt, state, ctx.scaler, ctx.flags)
        ctx.saved = state.n_updates
        if verbose:
            valid = f" | valid loss {va_loss:.4f}" if va_loss is not None else ""
            valid += f" ppl {va_ppl:.2f}" if va_ppl is not None else ""
            more = ''.join(f" | {k} {v:.4f}" for k, v in entry.items() if k.startswith(('tr_', 'va_', 'zs_'))
                           and k not in ('tr_loss', 'va_loss', 'va_ppl') and v is not None)
            tqdm.write(f"update {state.n_updates} | train loss (mean of {len(losses)} updates) "
                       f"{entry['tr_loss']:.4f}{valid}{more} | "
                       f"{entry['tokens_per_s']:.0f} tokens/s", file=sys.stderr)
    return entry


def train_loop(ctx, state, verbose=True):
    """Updates until t_total (--n_iter epochs' or --max_updates), logging and checkpointing every
    --eval_every updates and at the end. The dropout generator is seeded per update by
    (seed, rank, update) so that a resumed run equals the uninterrupted one. Returns the
    last log entry (None when no update was left to make)."""
    bar = tqdm(total=ctx.t_total, initial=state.n_updates, desc='pretraining', unit='update', disable=not verbose,
               leave=False, file=sys.stderr)
    with bar:  # closed (cleared) before an error is printed
        return _train_updates(ctx, state, bar, verbose)


def _train_updates(ctx, state, bar, verbose):
    """train_loop's updates, shown on `bar`. Returns the last log entry (None when none was made)."""
    cfg, stop = ctx.cfg, ctx.t_total
    per_update = cfg.run.n_batch * cfg.run.n_acc * ctx.dist.world_size * cfg.source.n_ctx
    losses, stats, seconds, entry = [], [], 0.0, None
    while state.n_updates < stop:
        torch.manual_seed(rank_seed(cfg.run.seed, ctx.dist.rank, state.n_updates))
        windows = sample_windows(ctx.store['train'], cfg, state.n_updates, ctx.dist.rank)
        t0 = time.perf_counter()
        stats.append({})
        with nonfinite_stop(f"update {state.n_updates + 1}"):
            losses.append(train_update(ctx.train_model, ctx.opt, windows, ctx.n_vocab, ctx.device, cfg.run.amp,
                                       ctx.scaler, stats=stats[-1]))
        seconds += time.perf_counter() - t0
        state.n_updates += 1
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}", **{k: f"{v:.3f}" for k, v in stats[-1].items()},
                        tokens_s=f"{per_update * len(losses) / seconds:.0f}")
        if is_due(state.n_updates, cfg.run.eval_every, stop):
            entry = log_progress(ctx, state, losses, seconds, verbose, [s for s in stats if s])
            losses, stats, seconds = [], [], 0.0
    return entry


def run(cfg, verbose=True):
    """The whole job of `python pretrain.py` for `cfg` (a PretrainConfig, or parsed flags or a
    dict, checked by validate_args): returns a dict of results (n_updates,
    t_total, log_path, model_dir, va_loss, va_ppl, world_size, rank).

    Rank 0 holds the run's lock from start to end; under torchrun every process trains
    its share and only rank 0 logs and writes (run_frame.run_job)."""
    cfg = validate_args(cfg)
    return run_job(cfg, lambda dist, device, main: pretrain_and_save(cfg, dist, device, verbose and main),
                   check_inputs, RunLock(run_paths(cfg)['dir']), prepare_run_files)


def _load_corpus_once(cfg, tokenizer, dist, verbose):
    """load_corpus on rank 0 first, then on the others (which find it cached)."""
    store = load_corpus(cfg, tokenizer, verbose) if dist.is_main else None
    if dist.sharded:
        tdist.barrier()
    return store if store is not None else load_corpus(cfg, tokenizer, False)


def pretrain_and_save(cfg, dist, device, verbose):
    """run()'s body in each process: tokenizer, corpus, model, optimizer, the updates, and on
    rank 0 the log, the checkpoints, the model folder and the closing summary."""
    started = time.monotonic()
    tokenizer = build_tokenizer(cfg, verbose)
    store = _load_corpus_once(cfg, tokenizer, dist, verbose)
    n_vocab = tokenizer.vocab_size
    t_total = n_updates_total(store['meta']['n_train_tokens'], cfg, dist.world_size)
    found = found_settings(cfg, store, n_vocab, t_total, dist.world_size)
    settings = dict(cfg.flat(), **found)
    if verbose:
        print(f"device {device}; {store['meta']['n_train_tokens']} training tokens, {t_total} updates\nsettings:\n"
              f"{format_settings(settings)}", file=sys.stderr)
    torch.manual_seed(cfg.run.seed)  # the initialisation
    model = build_model(cfg, n_vocab, device)
    opt = make_optimizer(cfg, model, t_total)
    scaler = make_scaler(cfg.run.amp)
    paths = run_paths(cfg)
    flags = resume_flags(cfg, store, n_vocab, dist.world_size)
    state = TrainState()
    if cfg.run.resume:
        state = resume_checkpoint(paths['dir'], model, opt, scaler, dist, flags, RESUME_DEFAULTS)
    ctx = PretrainRun(cfg=cfg, model=model, train_model=wrap_model(model, dist), opt=opt, scaler=scaler, store=store,
                      n_vocab=n_vocab + electra.special_rows(cfg.objective.objective), t_total=t_total, device=device,
                      dist=dist, paths=paths, flags=flags, saved=state.n_updates if cfg.run.resume else None)
    if dist.is_main:
        if cfg.zero_shot.folders():
            ctx.zero_shot = prepare_tasks(cfg.zero_shot, tokenizer, cfg.source.n_ctx, verbose)
        remove_files(earlier_run_files(paths, EARLIER_RUN) if cfg.run.overwrite else [])
        write_run_config(paths['config'], cfg, found)
        previous = previous_entries(paths['log'], state.n_updates) if cfg.run.resume else []
        ctx.logger = open_log(paths['log'], settings, previous)
        for message in [] if cfg.run.resume else run_warnings(cfg, store, t_total):
            ctx.logger.log(warning=message)
            if verbose:
                print(f"warning: {message}", file=sys.stderr)
    try:
        entry = train_loop(ctx, state, verbose)
    except KeyboardInterrupt:
        epoch = state.n_updates // max(ctx.t_total // ctx.cfg.run.n_iter, 1) + 1
        raise _interrupted(ctx, f"in epoch {epoch}, after update {state.n_updates}") from None
    finally:
        if ctx.logger is not None:
            ctx.logger.close()
    try:
        if dist.is_main:
            electra.save_generator(model, paths['generator'])
            save_model_folder(model, paths['model'], tokenizer)
            plot = plot_log(paths['log'])
    except KeyboardInterrupt:
        raise _interrupted(ctx, "after training, while writing the model folder") from None
    if verbose:
        written = [('model folder', paths['model'])] + ([('generator', paths['generator'])]
                                                        if os.path.isfile(paths['generator']) else [])
        written += [('log', paths['log']), ('plot', plot), ('checkpoint', paths['last'])]
        print(closing_summary(f"{state.n_updates} updates", written, time.monotonic() - started), file=sys.stderr)
    return dict(n_updates=state.n_updates, t_total=t_total, log_path=paths['log'], model_dir=paths['model'],
                va_loss=entry and entry['va_loss'], va_ppl=entry and entry['va_ppl'], world_size=dist.world_size,
                rank=dist.rank)


def _interrupted(ctx, where):
    """run_frame.interrupted of Ctrl-C `where` in the run `ctx`, naming the update its last checkpoint holds."""
    return interrupted(where, ctx.paths['last'], None if ctx.saved is None else f"update {ctx.saved}")


def main(argv=None):
    """The command line: parse the flags, run, and print a detected bad input as one line
    (exit status 2); a failed collective operation under torchrun exits with status 1; Ctrl-C
    prints where the run stopped and how to continue it (exit status 130)."""
    return cli_main(PROG, run, build_parser().parse_args(argv),
                    sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    main()
