"""Pre-training throughput (tokens/s of forward + backward + update) of pretrain.py against
transformers' OpenAIGPTLMHeadModel trained by a plain loop, on the same windows, in the same run.

    .venv/bin/python bench/bench_pretrain.py [--configs small full] [--repeats 3] [--steps 2]

Our side is pretrain.py's own update: its model (build_model: SDPA attention, fused
tanh-GELU, the LM loss by loss.chunked_lm_loss, which never holds the whole logits),
OpenAIAdam with the paper's settings (warm-up cosine, L2 0.01, clipping at 1), dropout
0.1 with pretrain.py's default masks (--dropout_masks int), windows drawn by `sample_windows` from a
token store (token_store.py) of the ROCStories stories encoded with GPT-1's BPE (40,478 tokens). The baseline is
`OpenAIGPTLMHeadModel` holding the same initial weights (copied through
hf_interop.export_hf), dropout 0.1, trained by a plain loop: `model(input_ids=w,
labels=w).loss`, backward, `clip_grad_norm_(1)`, `torch.optim.AdamW(lr 2.5e-4,
weight_decay 0.01)`, on the same windows (the n_batch windows of each update).

Our side is timed twice (--amp): in float32 like the baseline, and under CPU autocast
to bfloat16 (`pretrain.py --amp bf16`: matmuls in bfloat16, weights, optimizer, softmax
and loss in float32). The CPUs here (AMD EPYC with avx512_bf16) multiply bfloat16
matrices about 2.4x faster than float32. The float32 figure is the like-for-like one;
the bf16 one is what the flag gives against the same float32 baseline.

Configs: `small` (4 layers, 256 wide, 4 heads, n_ctx 128, 16 windows) and `full`
(the paper's 12 x 768, 12 heads, n_ctx 512, 2 windows: the paper's batch is 64, which a
2-core CPU cannot time in reasonable time; a larger batch spreads each optimizer step
over more tokens, on both sides alike). Each repeat times `--steps` updates per side
after `--warmup` untimed ones, every side starting from the same weights, the side that
goes first rotating; a repeat's tokens/s counts n_batch x n_ctx tokens per update. The
script prints each repeat, the median and range of each side's tokens/s and of each of
our sides' ratio to the baseline, and the largest difference of the two models' logits
on one batch with dropout off (the copy is exact: about 1e-6).

Then the projection of the paper's pre-training on one H100 (no GPU measured): FLOPs
per token = 6 (N + n_embd V) + 12 n_layer n_ctx n_embd, N the non-embedding parameters,
n_embd V the tied output layer's matmul, the last term the attention scores and their
weighted sum (QK^T and AV, 2 x 2 n_ctx n_embd FLOPs a token a layer forward, x3 for
forward + backward, no causal saving counted); tokens = --epochs (100, the paper) x the
BooksCorpus words (--corpus_words, 984,846,357: Zhu et al. 2015) x BPE tokens per word
measured on the ROCStories text; time = FLOPs / (--mfu x --peak_tflops) (0.4 x 989
TFLOP/s, an H100 SXM's dense bf16 peak). It reports; it never fails on a slow machine.
"""
import argparse
import copy
import os
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import bench_log  # noqa: E402
import datasets  # noqa: E402
import pretrain  # noqa: E402
import pretraining  # noqa: E402
from hf_interop import export_hf  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), 'shared', 'data')
CONFIGS = {  # name: (n_layer, n_embd, n_head, n_ctx, n_batch)
    'small': (4, 256, 4, 128, 16),
    'full': (12, 768, 12, 512, 2),
}
BOOKSCORPUS_WORDS = 984_846_357


def write_stories(data_dir, path):
    """The ROCStories stories (each its four sentences and first ending) as one text file
    at `path`, a story a line. Returns (path, number of words)."""
    (trX1, trX2, _, _), (vaX1, vaX2, _, _), (teX1, teX2, _) = datasets.rocstories(data_dir)
    lines = [f"{s} {e}\n" for s, e in zip(trX1 + vaX1 + teX1, trX2 + vaX2 + teX2)]
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(lines)
    return path, sum(len(line.split()) for line in lines)


def pretrain_args(opts, config, text_path, cache_dir):
    n_layer, n_embd, n_head, n_ctx, n_batch = config
    return pretrain.parse_args([
        '--data', text_path, '--tokenizer', 'bpe', '--n_layer', str(n_layer), '--n_embd', str(n_embd),
        '--n_head', str(n_head), '--n_ctx', str(n_ctx), '--n_batch', str(n_batch), '--valid_fraction', '0',
        '--cache_dir', cache_dir, '--save_dir', cache_dir, '--device', 'cpu', '--seed', str(opts.seed),
        '--encoder_path', os.path.join(opts.openai_dir, 'encoder_bpe_40000.json'),
        '--bpe_path', os.path.join(opts.openai_dir, 'vocab_40000.bpe')])


def hf_copy(model, n_vocab, folder):
    """transformers' OpenAIGPTLMHeadModel with `model`'s weights (an LMModel without special rows)."""
    from transformers import OpenAIGPTLMHeadModel
    export_hf(model, folder, n_vocab=n_vocab, n_special=0)
    return OpenAIGPTLMHeadModel.from_pretrained(folder)


def hf_update(model, opt, ids):
    """The plain loop's update on ids (n_batch, n_ctx): loss, backward, clip, AdamW step. Returns the loss."""
    model.train()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def time_ours(model, state, args, store, n_vocab, n_updates, warmup, amp='none'):
    """Seconds of each update after `warmup` of pretrain.train_update from `state` (under
    CPU autocast to bfloat16 with amp='bf16')."""
    model.load_state_dict(state)
    opt = pretrain.make_optimizer(args, model, t_total=10_000)
    times = []
    for i in range(n_updates):
        torch.manual_seed(i)
        windows = pretrain.sample_windows(store['train'], args, i)
        t = time.perf_counter()
        pretrain.train_update(model, opt, windows, n_vocab, amp=amp)
        times.append(time.perf_counter() - t)
    return times[warmup:]


def time_hf(model, state, args, store, n_updates, warmup):
    """Seconds of each update after `warmup` of the plain loop from `state`, on the same windows."""
    model.load_state_dict(state)
    opt = torch.optim.AdamW(model.parameters(), lr=args.optimizer.lr, weight_decay=args.optimizer.l2)
    times = []
    for i in range(n_updates):
        torch.manual_seed(i)
        ids = torch.as_tensor(pretrain.sample_windows(store['train'], args, i)[0])
        t = time.perf_counter()
        hf_update(model, opt, ids)
        times.append(time.perf_counter() - t)
    return times[warmup:]


def logit_difference(ours, hf, args, store, n_vocab):
    """Largest |logit difference| of the two models over the token rows, on the first
    update's windows with dropout off. (Our LM loss normalises over every row of the tied
    embedding, position rows too, as the TF release does; transformers' over the token
    rows only: the losses differ slightly while the weights are the same.)"""
    ids = pretrain.sample_windows(store['train'], args, 0)[0]
    ours.eval()
    hf.eval()
    with torch.no_grad():
        a = ours(pretraining.window_inputs(ids, n_vocab))[..., :n_vocab]
        b = hf(input_ids=torch.as_tensor(ids)).logits
    return float((a - b).abs().max())


def flops_per_token(model, n_vocab):
    """Training FLOPs per token (see the module's docstring) of an LMModel: an int."""
    t = model.transformer
    n_embd, n_layer, n_ctx = t.embed.weight.size(1), len(t.h), t.n_ctx
    n_nonembed = sum(p.numel() for name, p in t.named_parameters() if not name.startswith('embed'))
    return 6 * (n_nonembed + n_embd * n_vocab) + 12 * n_layer * n_ctx * n_embd


def profile(ours, hf, args, store, n_vocab, n_rows):
    """Print the `n_rows` ops of most self CPU time in one update of each side (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile as torch_profile
    sides = {'pretrain.py': lambda: time_ours(ours, copy.deepcopy(ours.state_dict()), args, store, n_vocab, 1, 0),
             'transformers': lambda: time_hf(hf, copy.deepcopy(hf.state_dict()), args, store, 1, 0)}
    for side, update in sides.items():
        update()  # optimizer state allocated outside the profile
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            update()
        print(f"  {side}, one update:\n" + prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=n_rows))


def spread(values):
    return f"median {np.median(values):.0f}, range {min(values):.0f} to {max(values):.0f}"


def bench_config(opts, name, text_path, cache_dir, folder):
    """Time one config (interleaved repeats); returns its results dict."""
    config = CONFIGS[name]
    args = pretrain_args(opts, config, text_path, cache_dir)
    tokenizer = pretrain.build_tokenizer(args)
    store = pretrain.load_corpus(args, tokenizer, verbose=False)
    n_vocab = tokenizer.vocab_size
    torch.manual_seed(opts.seed)
    ours = pretrain.build_model(args, n_vocab)
    hf = hf_copy(ours, n_vocab, os.path.join(folder, name))
    diff = logit_difference(ours, hf, args, store, n_vocab)
    state_ours, state_hf = copy.deepcopy(ours.state_dict()), copy.deepcopy(hf.state_dict())
    tokens = args.run.n_batch * args.source.n_ctx
    n_updates = opts.warmup + opts.steps
    print(f"\n{name}: {config[0]} layers x {config[1]} wide, {config[2]} heads, n_ctx {config[3]}, "
          f"batch {config[4]} windows ({tokens} tokens an update); largest logit difference at the same weights, "
          f"dropout off: {diff:.1e}")
    if opts.profile:
        profile(ours, hf, args, store, n_vocab, opts.profile)
    sides = {'transformers': lambda: time_hf(hf, state_hf, args, store, n_updates, opts.warmup)}
    for amp in opts.amp:
        sides[f'pretrain.py {amp}'] = lambda amp=amp: time_ours(ours, state_ours, args, store, n_vocab, n_updates,
                                                              opts.warmup, amp)
    rates = {side: [] for side in sides}
    for r in range(opts.repeats):
        order = list(sides)[r % len(sides):] + list(sides)[:r % len(sides)]  # who goes first rotates
        for side in order:
            rates[side].append(tokens / float(np.mean(sides[side]())))
        print(f"  repeat {r + 1}: " + ', '.join(f"{side} {rates[side][-1]:.0f}" for side in order) + " tokens/s")
    fpt = flops_per_token(ours, n_vocab)
    result = dict(config=dict(zip(('n_layer', 'n_embd', 'n_head', 'n_ctx', 'n_batch'), config)), logit_diff=diff,
                  flops_per_token=fpt, tokens_per_s=rates)
    for side, values in rates.items():
        print(f"  {side:18s} {spread(values)} tokens/s ({np.median(values) * fpt / 1e9:.1f} GFLOP/s)")
    for amp in opts.amp:
        ratios = [a / b for a, b in zip(rates[f'pretrain.py {amp}'], rates['transformers'])]
        result[f'ratio_{amp}'] = ratios
        print(f"  pretrain.py {amp} / transformers: median {np.median(ratios):.2f}x, range {min(ratios):.2f}x to "
              f"{max(ratios):.2f}x (target >= 1.3x)")
    return result


def h100_projection(opts, fpt, tokens_per_word):
    """Print and return the projected hours of the paper's pre-training on one H100."""
    tokens = opts.epochs * opts.corpus_words * tokens_per_word
    flops = tokens * fpt
    hours = flops / (opts.mfu * opts.peak_tflops * 1e12) / 3600
    print(f"\nprojection, the paper's pre-training on one H100: {opts.epochs} epochs x {opts.corpus_words:,} words x "
          f"{tokens_per_word:.3f} BPE tokens/word = {tokens:.3g} tokens; x {fpt / 1e9:.3f} GFLOP/token = "
          f"{flops:.3g} FLOP ({flops / 1e15 / 86400:.2f} petaflop/s-days); at {opts.mfu:.0%} of "
          f"{opts.peak_tflops:.0f} TFLOP/s: {hours:.0f} h ({hours / 24:.1f} days)")
    return dict(tokens=tokens, flops=flops, hours=hours, tokens_per_word=tokens_per_word)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--configs', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument('--repeats', type=int, default=3, help='times each side is timed, interleaved')
    p.add_argument('--steps', type=int, default=2, help='timed updates per side and repeat (after --warmup)')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch decides)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--amp', nargs='+', default=['none', 'bf16'], choices=('none', 'bf16'),
                   help="our side's precision, each timed: none (float32, as the baseline) and bf16 (CPU autocast)")
    p.add_argument('--profile', type=int, default=0, metavar='N',
                   help='before timing, print the N ops of most CPU time in one update of each side')
    p.add_argument('--data_dir', default=os.path.join(SHARED, 'rocstories'))
    p.add_argument('--openai_dir', default=os.path.join(SHARED, 'openai-gpt'))
    p.add_argument('--epochs', type=int, default=100, help="the paper's pre-training epochs")
    p.add_argument('--corpus_words', type=int, default=BOOKSCORPUS_WORDS, help='BooksCorpus words')
    p.add_argument('--mfu', type=float, default=0.4, help='assumed share of the H100 peak sustained')
    p.add_argument('--peak_tflops', type=float, default=989.0, help="H100 SXM dense bf16 peak")
    opts = p.parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; os load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        text_path, n_words = write_stories(opts.data_dir, os.path.join(tmp, 'stories.txt'))
        for name in opts.configs:
            results[name] = bench_config(opts, name, text_path, os.path.join(tmp, 'cache'), tmp)
        args = pretrain_args(opts, CONFIGS['full'], text_path, os.path.join(tmp, 'cache'))
        store = pretrain.load_corpus(args, pretrain.build_tokenizer(args), verbose=False)
        tokens_per_word = store['meta']['n_train_tokens'] / n_words
    torch.manual_seed(opts.seed)
    full = pretrain.build_model(pretrain_args(opts, CONFIGS['full'], '-', '-'), 40478)
    projection = h100_projection(opts, flops_per_token(full, 40478), tokens_per_word)
    bench_log('bench_pretrain', vars(opts), load_average=os.getloadavg(), h100=projection, **results)


if __name__ == '__main__':
    main()
