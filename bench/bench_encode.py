"""Benchmark: TextEncoder.encode against the plain original algorithm on all ROCStories fields.

Run from the project root:
    .venv/bin/python bench/bench_encode.py [--data_dir ../shared/data] [--repeat 5] [--repeats 1]
Prints both timings, the speed-up and whether the ids are identical; with
--repeats N it measures N times and prints the median, min and max speed-up.
It reports and does not judge: exit status 0, unless the ids differ (1).
"""
import argparse
import csv
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import bench_log  # noqa: E402
from bench.plain_encoder import PlainEncoder  # noqa: E402
from text_utils import TextEncoder  # noqa: E402

ROC_FILES = ('cloze_test_val__spring2016 - cloze_test_ALL_val.csv',
             'cloze_test_test__spring2016 - cloze_test_ALL_test.csv')


def rocstories_fields(rocstories_dir):
    """Folder of the two Story Cloze CSVs -> list of str: story, ending 1, ending 2 for every row."""
    fields = []
    for name in ROC_FILES:
        with open(os.path.join(rocstories_dir, name), newline='', encoding='utf-8') as f:
            rows = list(csv.reader(f))[1:]
        for row in rows:
            fields += [' '.join(row[1:5]), row[5], row[6]]
    return fields


def time_encode(make_encoder, encode, texts, repeat):
    """Encode `texts` with `repeat` fresh encoders, twice each.

    Returns (fastest first call in CPU seconds, fastest second call, ids of the
    last call). CPU time, because wall time on a shared 2-core machine mostly
    measures the neighbours. Construction is not timed. The first call on a fresh encoder
    starts with cold caches (spaCy's and ours), as one training run does; the
    second shows the warm state.
    """
    first = second = float('inf')
    for _ in range(repeat):
        encoder = make_encoder()
        start = time.process_time()
        encode(encoder, texts)
        first = min(first, time.process_time() - start)
        start = time.process_time()
        ids = encode(encoder, texts)
        second = min(second, time.process_time() - start)
    return first, second, ids


def measure(paths, texts, repeat):
    """One comparison: -> dict of both encoders' first and second call times, the speed-ups, identical ids."""
    plain_cold, plain_warm, plain_ids = time_encode(
        lambda: PlainEncoder(*paths), lambda enc, t: enc.encode(t), texts, repeat)
    fast_cold, fast_warm, fast_ids = time_encode(
        lambda: TextEncoder(*paths), lambda enc, t: enc.encode(t, verbose=False), texts, repeat)
    return dict(plain_first_s=plain_cold, plain_second_s=plain_warm, fast_first_s=fast_cold, fast_second_s=fast_warm,
                speedup_first=plain_cold / fast_cold, speedup_second=plain_warm / fast_warm,
                identical=fast_ids == plain_ids, n_tokens=sum(map(len, plain_ids)))


def spread(values):
    """-> dict median, min, max of a list of numbers."""
    return dict(median=statistics.median(values), min=min(values), max=max(values))


def parse_args(argv=None):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data_dir', default=os.path.join(os.path.dirname(root), 'shared', 'data'))
    parser.add_argument('--repeat', type=int, default=5,
                        help='fresh encoders per timing, the fastest counts (default 5)')
    parser.add_argument('--repeats', type=int, default=1,
                        help='whole comparisons to run; N > 1 prints the median, min and max speed-up (default 1)')
    parser.add_argument('--n_texts', type=int, default=0,
                        help='encode only the first N fields (0: all; for a smoke run)')
    args = parser.parse_args(argv)
    for flag in ('repeat', 'repeats'):
        if getattr(args, flag) < 1:
            parser.error(f'--{flag} {getattr(args, flag)}: expected a positive integer')
    return args


def main(argv=None):
    args = parse_args(argv)
    gpt_dir = os.path.join(args.data_dir, 'openai-gpt')
    paths = (os.path.join(gpt_dir, 'encoder_bpe_40000.json'), os.path.join(gpt_dir, 'vocab_40000.bpe'))
    texts = rocstories_fields(os.path.join(args.data_dir, 'rocstories'))
    texts = texts[:args.n_texts] if args.n_texts > 0 else texts

    runs = []
    for k in range(args.repeats):
        run = measure(paths, texts, args.repeat)
        runs.append(run)
        print(f'run {k + 1}/{args.repeats}: plain {run["plain_first_s"]:.3f} s / {run["plain_second_s"]:.3f} s, '
              f'TextEncoder {run["fast_first_s"]:.3f} s / {run["fast_second_s"]:.3f} s (CPU, first / second call): '
              f'speed-up {run["speedup_first"]:.1f}x / {run["speedup_second"]:.1f}x, identical ids: {run["identical"]}')
    first = spread([r['speedup_first'] for r in runs])
    second = spread([r['speedup_second'] for r in runs])
    identical = all(r['identical'] for r in runs)
    print(f'texts: {len(texts)} ROCStories fields (val + test files), {runs[0]["n_tokens"]} tokens; '
          f'each timing the best of {args.repeat} fresh encoders; {args.repeats} run(s)')
    print(f'speed-up, first calls    : median {first["median"]:.1f}x '
          f'(min {first["min"]:.1f}x, max {first["max"]:.1f}x)')
    print(f'speed-up, second calls   : median {second["median"]:.1f}x '
          f'(min {second["min"]:.1f}x, max {second["max"]:.1f}x)')
    print(f'identical ids            : {identical}')
    bench_log('bench_encode', vars(args), n_texts=len(texts), runs=runs, identical=identical,
              **{f'speedup_first_{k}': v for k, v in first.items()},
              **{f'speedup_second_{k}': v for k, v in second.items()})
    if not identical:
        sys.exit('FAIL: TextEncoder.encode differs from the plain original algorithm')


if __name__ == '__main__':
    main()
