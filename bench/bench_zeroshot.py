"""Zero-shot scoring at GPT-1's full size (12 layers, 768 wide, random weights) against transformers'
OpenAIGPTLMHeadModel on the same weights, measured in the same run.

1. Story Cloze: every test story's two endings scored by average token log-probability. Here: each
   story's context computed once, the endings run against its keys and values, and only the
   scored positions projected onto the vocabulary (lm_scores.score_examples, what
   heuristics.evaluate_task runs). transformers: every ending over its whole story, batched with
   the same token budget, the full logits' log-softmax.
2. Perplexity of text over windows of 512 with a stride, the same windows for both.

The examples are timed in --chunks parts, each scored by this library and then by transformers,
so that a change in the machine's load during the run falls on both sides.

    python bench/bench_zeroshot.py                       # all 1,871 stories, 1 MB of text
    python bench/bench_zeroshot.py --n_stories 300 --text_bytes 40000
    python bench/bench_zeroshot.py --text_bytes 0             # the stories alone

The text is the Story Cloze files' prose (each story's sentences and both endings, a story a
line), validation file then test file (995,207 bytes, repeated beyond), cut at --text_bytes.

Prints the seconds, tokens/s and the ratio of each, and the largest difference between the scores,
and fails (exit 1) only when the two sides' scores differ by more than 1e-4.
"""
import argparse
import csv
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import heuristics  # noqa: E402
from bench import bench_log  # noqa: E402
from hf_interop import export_hf  # noqa: E402
from lm_scores import LanguageModel, score_examples  # noqa: E402
from model_pytorch import LMModel, ModelConfig  # noqa: E402
from text_utils import TextEncoder  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '..', 'shared', 'data')
N_VOCAB, N_CTX = 40478, 512


def hf_scores(hf, examples, budget):
    """Each sequence's scored log-probabilities by transformers, whole sequences batched by length."""
    flat = [seq for ex in examples for seq in ex]
    order = sorted(range(len(flat)), key=lambda i: len(flat[i].ids))
    out = [None] * len(flat)
    i = 0
    while i < len(order):
        width = len(flat[order[i]].ids) - 1
        j = i
        while j < len(order) and (j + 1 - i) * (len(flat[order[j]].ids) - 1) <= budget:
            j += 1
        j = max(j, i + 1)
        batch = [flat[k] for k in order[i:j]]
        width = max(len(s.ids) - 1 for s in batch)
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for r, s in enumerate(batch):
            ids[r, :len(s.ids) - 1] = torch.tensor(s.ids[:-1])
            mask[r, :len(s.ids) - 1] = 1
        with torch.inference_mode():
            logp = torch.log_softmax(hf(ids, attention_mask=mask).logits.float(), -1)
        for r, k in enumerate(order[i:j]):
            s = flat[k]
            tgt = torch.tensor(s.ids[1:])
            out[k] = logp[r, torch.arange(len(tgt)), tgt][s.start - 1:].double().numpy()
        i = j
    it = iter(out)
    return [[next(it) for _ in ex] for ex in examples]


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--n_stories', type=int, default=1871, help='Story Cloze test stories scored (1871: all)')
    p.add_argument('--text_bytes', type=int, default=1_000_000,
                   help='UTF-8 bytes of text for the perplexity part (0: stories only)')
    p.add_argument('--strides', type=int, nargs='+', default=[256, 512])
    p.add_argument('--budget', type=int, default=4096, help='tokens a pass holds, both implementations')
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    p.add_argument('--chunks', type=int, default=16, help='parts timed in turn, ours then transformers')
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers
    torch.manual_seed(0)
    model = LMModel(ModelConfig(), vocab=N_VOCAB + N_CTX, n_ctx=N_CTX).eval()
    with tempfile.TemporaryDirectory() as folder:
        export_hf(model, folder, n_vocab=N_VOCAB, n_special=0)
        hf = transformers.OpenAIGPTLMHeadModel.from_pretrained(folder).eval()
    tok = TextEncoder(os.path.join(SHARED, 'openai-gpt', 'encoder_bpe_40000.json'),
                      os.path.join(SHARED, 'openai-gpt', 'vocab_40000.bpe'))
    lm = LanguageModel(model, tok, N_VOCAB)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads, "
          f"12 layers x 768, random weights")

    data = heuristics.prepare_task('rocstories', os.path.join(SHARED, 'rocstories'), tok, N_CTX,
                                   n_examples=args.n_stories)
    ours, theirs, t_ours, t_hf = interleaved(lm, hf, data.examples, args)
    diff = max(abs(float(np.mean(a)) - float(np.mean(b))) for x, y in zip(ours, theirs) for a, b in zip(x, y))
    check_agrees('Story Cloze scores', diff)
    fed = sum(len(seq.ids) - 1 for ex in data.examples for seq in ex)
    results = dict(stories=len(data.examples), stories_ours_s=t_ours, stories_transformers_s=t_hf,
                   stories_ratio=t_hf / t_ours, stories_max_diff=diff)
    print(f"Story Cloze, {len(data.examples)} stories ({fed} tokens fed whole): ours {t_ours:.1f} s, "
          f"transformers {t_hf:.1f} s, ratio {t_hf / t_ours:.2f}x; largest score difference {diff:.1e}")

    text = story_text(args.text_bytes)
    ids = [tok.newline_id] + tok.encode([text], verbose=False)[0]
    for stride in args.strides if args.text_bytes else []:
        windows = [[w] for w in heuristics.text_windows(ids, N_CTX, stride)]
        mine, ref, t_ours, t_hf = interleaved(lm, hf, windows, args)
        nll_a = -sum(float(ex[0].sum()) for ex in mine)
        nll_b = -sum(float(ex[0].sum()) for ex in ref)
        worst = max(float(abs(a[0] - b[0]).max()) for a, b in zip(mine, ref))
        check_agrees(f'stride {stride} log-probabilities', worst)
        n = len(ids) - 1
        results.update({f'text_stride{stride}_ours_tokens_per_s': n / t_ours,
                        f'text_stride{stride}_transformers_tokens_per_s': n / t_hf,
                        f'text_stride{stride}_ratio': t_hf / t_ours})
        print(f"perplexity, {len(text.encode())} bytes = {n} tokens, windows of {N_CTX} with stride {stride}: "
              f"ours {n / t_ours:.0f} tokens/s, "
              f"transformers {n / t_hf:.0f} tokens/s, ratio {t_hf / t_ours:.2f}x; "
              f"perplexity {np.exp(nll_a / n):.3f} vs {np.exp(nll_b / n):.3f}")
    bench_log('bench_zeroshot', vars(args), **results)


def story_text(n_bytes):
    """The first `n_bytes` of UTF-8 of the Story Cloze files' prose, a story a line (995,207 bytes;
    from the start again beyond that: the weights are random, so only the amount matters)."""
    lines = []
    for name in ('cloze_test_val__spring2016 - cloze_test_ALL_val.csv',
                 'cloze_test_test__spring2016 - cloze_test_ALL_test.csv'):
        with open(os.path.join(SHARED, 'rocstories', name), encoding='utf-8', newline='') as f:
            lines += [' '.join(row[1:7]) for row in list(csv.reader(f))[1:]]
    prose = '\n'.join(lines).encode()
    repeated = prose * (n_bytes // len(prose) + 1)
    return repeated[:n_bytes].decode(errors='ignore')


def check_agrees(what, diff):
    if not diff <= 1e-4:
        raise SystemExit(f"FAIL: {what} differ from transformers' by {diff:.1e} (more than 1e-4)")


def interleaved(lm, hf, examples, args):
    """(our scores, transformers' scores, our seconds, theirs) of `examples`, timed --chunks parts in
    turn (ours, then transformers, on the same part): a change in the machine's load falls on both."""
    ours, theirs, t_ours, t_hf = [], [], 0.0, 0.0
    for part in np.array_split(np.arange(len(examples)), args.chunks):
        chunk = [examples[i] for i in part]
        scores, seconds = timed(lambda: score_examples(lm, chunk, args.budget, verbose=False))
        ours, t_ours = ours + scores, t_ours + seconds
        scores, seconds = timed(lambda: hf_scores(hf, chunk, args.budget))
        theirs, t_hf = theirs + scores, t_hf + seconds
    return ours, theirs, t_ours, t_hf


if __name__ == '__main__':
    main()
