"""Benchmark: GPT2Encoder.encode against transformers' GPT2TokenizerFast and the release's plain algorithm.

Run from the project root:
    .venv/bin/python bench/bench_gpt2_tokenizer.py [--data_dir ../shared/data] [--repeat 3] [--n_texts 0]
The same texts for all three, in the same run: every ROCStories field as one batch of
short texts, and the same fields joined by line breaks as one long document. Prints
throughput (tokens/s, MB/s of UTF-8 text; wall time, the best of --repeat calls on one
encoder built beforehand) and GPT2Encoder's ratio to each other; the plain algorithm is
timed on the short texts only (a first call: it keeps no cache). GPT2TokenizerFast runs a
batch on every core it finds, GPT2Encoder on one. It reports and does not judge: exit
status 0, unless the ids differ (1).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import bench_log  # noqa: E402
from bench.bench_encode import rocstories_fields  # noqa: E402
from bench.plain_gpt2_encoder import PlainGPT2Encoder  # noqa: E402
from text_utils import GPT2Encoder  # noqa: E402


def hf_fast(encoder_path, bpe_path):
    """transformers' GPT2TokenizerFast built from the two files, as a function list of str -> lists of ids
    (the text '<|endoftext|>' stays text, as in the release). The project's datasets.py, which shadows
    Hugging Face `datasets`, is hidden while transformers imports."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    saved_path, saved = list(sys.path), sys.modules.pop('datasets', None)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != root]
    try:
        from transformers import GPT2TokenizerFast
    finally:
        sys.path[:] = saved_path
        if saved is not None:
            sys.modules['datasets'] = saved
    tok = GPT2TokenizerFast(encoder_path, bpe_path)  # vocab(_file), merges(_file) in transformers 4 and 5
    return lambda texts: tok(texts, split_special_tokens=True)['input_ids']


def best_time(encode, texts, repeat):
    """(fastest wall seconds of `repeat` calls of encode(texts), the ids of the last call)."""
    best, ids = float('inf'), None
    for _ in range(repeat):
        start = time.perf_counter()
        ids = encode(texts)
        best = min(best, time.perf_counter() - start)
    return best, ids


def throughput(seconds, ids, texts):
    """dict of seconds, tokens/s and MB/s (of the texts' UTF-8 bytes)."""
    n_bytes = sum(len(t.encode('utf-8')) for t in texts)
    return dict(seconds=seconds, tokens_per_s=sum(map(len, ids)) / seconds, mb_per_s=n_bytes / seconds / 1e6)


def measure(paths, texts, repeat):
    """{'short texts' | 'one document': {engine: throughput dict}}, and whether the ids are identical."""
    ours, fast, plain = GPT2Encoder(*paths), hf_fast(*paths), PlainGPT2Encoder(*paths)
    document = ['\n'.join(texts)]
    engines = {'GPT2Encoder': lambda t: ours.encode(t), 'GPT2TokenizerFast': fast}
    results, identical = {}, True
    for name, batch in (('short texts', texts), ('one document', document)):
        timed = {engine: best_time(encode, batch, repeat) for engine, encode in engines.items()}
        if name == 'short texts':
            timed['plain release algorithm'] = best_time(lambda t: [plain.encode(x) for x in t], batch, 1)
        reference = timed['GPT2Encoder'][1]
        identical = identical and all(ids == reference for _, ids in timed.values())
        results[name] = {engine: throughput(s, ids, batch) for engine, (s, ids) in timed.items()}
    return results, identical


def parse_args(argv=None):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data_dir', default=os.path.join(os.path.dirname(root), 'shared', 'data'))
    parser.add_argument('--repeat', type=int, default=3, help='calls per timing, the fastest counts (default 3)')
    parser.add_argument('--n_texts', type=int, default=0, help='only the first N fields (0: all; for a smoke run)')
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f'--repeat {args.repeat}: expected a positive integer')
    return args


def main(argv=None):
    args = parse_args(argv)
    gpt2_dir = os.path.join(args.data_dir, 'gpt2')
    paths = (os.path.join(gpt2_dir, 'encoder.json'), os.path.join(gpt2_dir, 'vocab.bpe'))
    texts = rocstories_fields(os.path.join(args.data_dir, 'rocstories'))
    texts = texts[:args.n_texts] if args.n_texts > 0 else texts
    results, identical = measure(paths, texts, args.repeat)
    print(f'texts: {len(texts)} ROCStories fields ({sum(len(t.encode()) for t in texts) / 1e6:.2f} MB); wall time, '
          f'best of {args.repeat}; {os.cpu_count()} CPUs (a shared machine: neighbours slow every engine)')
    for name, engines in results.items():
        ours = engines['GPT2Encoder']
        for engine, r in engines.items():
            ratio = ours['tokens_per_s'] / r['tokens_per_s']
            ratio = '' if engine == 'GPT2Encoder' else f'   GPT2Encoder is {ratio:.1f}x'
            print(f'{name:13s} {engine:24s} {r["tokens_per_s"]:12,.0f} tokens/s {r["mb_per_s"]:8.2f} MB/s{ratio}')
    print(f'identical ids: {identical}')
    bench_log('bench_gpt2_tokenizer', vars(args), n_texts=len(texts), results=results, identical=identical)
    if not identical:
        sys.exit('FAIL: GPT2Encoder.encode differs from GPT2TokenizerFast or the plain release algorithm')


if __name__ == '__main__':
    main()
