"""Tokens per second of generate.py with the key/value cache against recomputing
the whole sequence for every new token (what the earlier port's generate.py did).

Full-size GPT-1 (12 layers, 768 wide, 40,478 + 512 embedding rows), random
weights, greedy decoding of --gen_len tokens after a --prompt_len-token prompt.
Both runs must give the same tokens. Usage:

    .venv/bin/python bench/bench_generate.py [--gen_len 200] [--prompt_len 20] [--threads N]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import bench_log  # noqa: E402
from generate import generate  # noqa: E402
from model_pytorch import DEFAULT_CONFIG, LMModel  # noqa: E402

N_VOCAB = 40478


def timed(model, prompt, gen_len, use_cache):
    start = time.perf_counter()
    out = generate(model, prompt, gen_len, greedy=True, use_cache=use_cache)
    return out, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--gen_len', type=int, default=200)
    parser.add_argument('--prompt_len', type=int, default=20)
    parser.add_argument('--n_ctx', type=int, default=512)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch decides)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = LMModel(DEFAULT_CONFIG, vocab=N_VOCAB + args.n_ctx, n_ctx=args.n_ctx).to(args.device).eval()
    prompt = torch.randint(0, N_VOCAB, (args.prompt_len,)).tolist()
    print(f"GPT-1 12x768, random weights, {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"prompt {args.prompt_len} tokens, {args.gen_len} new tokens, greedy")

    generate(model, prompt, 4, greedy=True)  # warm-up
    cached, t_cached = timed(model, prompt, args.gen_len, use_cache=True)
    full, t_full = timed(model, prompt, args.gen_len, use_cache=False)
    assert cached == full, f"cached and recomputed tokens differ: first at step " \
                           f"{next(i for i, (a, b) in enumerate(zip(cached, full)) if a != b)}"
    rate_cached, rate_full = args.gen_len / t_cached, args.gen_len / t_full
    print(f"recompute everything: {t_full:8.2f} s  {rate_full:8.2f} tokens/s")
    print(f"key/value cache:      {t_cached:8.2f} s  {rate_cached:8.2f} tokens/s")
    print(f"speed-up: {t_full / t_cached:.1f}x (target >= 10x); same {len(cached)} tokens: yes")
    bench_log('bench_generate', vars(args), recompute_s=t_full, cached_s=t_cached, recompute_tokens_per_s=rate_full,
              cached_tokens_per_s=rate_cached, speedup=t_full / t_cached)


if __name__ == '__main__':
    main()
