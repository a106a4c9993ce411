"""A miniature of the paper's figure 2 (right): zero-shot Story Cloze accuracy as pre-training goes on.

    .venv/bin/python bench/zero_shot_miniature.py [--corpus_dir data/shakespeare] [--seeds 0 1 2]
    .venv/bin/python bench/zero_shot_miniature.py --quick        # a tiny smoke run (minutes)

For each seed, pretrain.py pre-trains pretrain_miniature.py's model with its recipe (4 layers,
128 wide, windows of 128, GPT-1's BPE, Shakespeare's works) with `--zero_shot rocstories`: the
Story Cloze heuristic (the ending with the higher average token log-probability) on the
--n_examples first test stories, and the validation perplexity, at every --eval_every updates.

Reported, in {out}/zero_shot_miniature.jsonl: the settings, one entry per seed and validation
(n_updates, va_ppl, zs_rocstories), and the summary: per validation the mean and standard
deviation over the seeds, against chance (50). Whatever comes out is the result: the script
reports, it never asserts that the heuristic rises. Each seed's log is drawn by pretrain.py
({out}/log/zero_shot_{seed}.png: the zero-shot panel with its chance line).
"""
import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pretrain  # noqa: E402
from bench.pretrain_miniature import SHARED, pretrain_argv, schedule_epochs, set_up  # noqa: E402
from heuristics import CHANCE  # noqa: E402
from utils import ResultLogger  # noqa: E402

QUICK = dict(n_layer=1, n_embd=32, n_head=2, n_ctx=80, pretrain_updates=6, pretrain_batch=4, pretrain_warmup=2,
             eval_every=3, n_examples=40, seeds=[0, 1])


def run_seed(opts, corpus_dir, seed):
    """One pre-training run with the zero-shot heuristic; returns its validation entries."""
    opts.seed = seed
    argv = pretrain_argv(opts, corpus_dir, opts.pretrain_updates, schedule_epochs(opts, corpus_dir),
                         desc=f'zero_shot_{seed}')
    argv[argv.index('--eval_every') + 1] = str(opts.eval_every)
    argv += ['--zero_shot', 'rocstories', '--zero_shot_dir', opts.data_dir, '--zero_shot_examples',
             str(opts.n_examples)]
    result = pretrain.run(pretrain.parse_args(argv), verbose=not opts.quiet)
    with open(result['log_path'], encoding='utf-8') as f:
        entries = [json.loads(line) for line in f][1:]
    return [dict(seed=seed, n_updates=e['n_updates'], va_ppl=e.get('va_ppl'), zs_rocstories=e['zs_rocstories'])
            for e in entries if 'zs_rocstories' in e]


def summarize(rows):
    """Per validation (n_updates): the mean and standard deviation over the seeds of the
    zero-shot accuracy and of the validation perplexity."""
    out = []
    for n in sorted({r['n_updates'] for r in rows}):
        acc = np.array([r['zs_rocstories'] for r in rows if r['n_updates'] == n], dtype=float)
        ppl = np.array([r['va_ppl'] for r in rows if r['n_updates'] == n and r['va_ppl'] is not None], dtype=float)
        out.append(dict(n_updates=n, acc_mean=float(acc.mean()), acc_std=float(acc.std(ddof=1)) if len(acc) > 1
                        else 0.0, ppl_mean=float(ppl.mean()) if len(ppl) else None, n_seeds=len(acc)))
    return out


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=os.path.join(ROOT, 'bench', 'out', 'zero_shot_miniature'))
    p.add_argument('--corpus_dir', default=None, help='pre-training text (default: Shakespeare, fetched into --out)')
    p.add_argument('--data_dir', default=os.path.join(SHARED, 'rocstories'), help='the Story Cloze files')
    p.add_argument('--openai_dir', default=os.path.join(SHARED, 'openai-gpt'), help='the BPE files')
    p.add_argument('--n_layer', type=int, default=4)
    p.add_argument('--n_embd', type=int, default=128)
    p.add_argument('--n_head', type=int, default=4)
    p.add_argument('--n_ctx', type=int, default=128)
    p.add_argument('--pretrain_updates', type=int, default=600)
    p.add_argument('--pretrain_batch', type=int, default=16)
    p.add_argument('--pretrain_warmup', type=int, default=60)
    p.add_argument('--valid_fraction', type=float, default=0.05)
    p.add_argument('--eval_every', type=int, default=50, help='updates between validations')
    p.add_argument('--n_examples', type=int, default=1871, help='Story Cloze test stories scored (1871: all)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--quick', action='store_true', help='a tiny smoke run: ' + ', '.join(f'{k} {v}' for k, v in
                                                                                        QUICK.items()))
    p.add_argument('--quiet', action='store_true')
    return p


def main(argv=None):
    opts = build_parser().parse_args(argv)
    corpus_dir = set_up(opts, QUICK)
    rows = []
    with ResultLogger(os.path.join(opts.out, 'zero_shot_miniature.jsonl'),
                      **dict(vars(opts), corpus_dir=corpus_dir)) as log:
        for seed in opts.seeds:
            for row in run_seed(opts, corpus_dir, seed):
                rows.append(row)
                log.log(phase='validation', **row)
        summary = summarize(rows)
        log.log(phase='summary', chance=CHANCE['rocstories'], per_validation=summary)
    for s in summary:
        ppl = f"{s['ppl_mean']:.1f}" if s['ppl_mean'] is not None else 'n/a'
        print(f"update {s['n_updates']:5d}: zero-shot Story Cloze {s['acc_mean']:.2f} +- {s['acc_std']:.2f} "
              f"(chance {CHANCE['rocstories']:.0f}; {s['n_seeds']} seeds), validation perplexity {ppl}")
    return summary


if __name__ == '__main__':
    main()
