"""Benchmark the model: checkpoint loading memory/time and fused vs explicit attention.

    python bench/bench_model.py [--shapes ../shared/data/openai-gpt/params_shapes.json] [--steps 5]

1. Writes a checkpoint at the full real shapes (random values) to a temp folder,
   then loads it in fresh processes, once with load_openai_pretrained_model and
   once the naive way (concatenate all shards, split, copy), and prints the
   peak memory each adds over a process that only built the model, as a
   multiple of the checkpoint's size.
2. Times forward+backward of the full-size DoubleHeadModel at ROCStories shapes
   (batch 8, 2 choices, 77 tokens) with SDPA against the explicit TF-style
   attention, checks the outputs agree to 1e-5 and prints the ratio.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import bench_log  # noqa: E402
import model_pytorch as mp  # noqa: E402

N_SPECIAL, N_CTX = 3, 77

CHILD = r'''
import json, math, os, resource, sys, time
import numpy as np, torch
sys.path.insert(0, {root!r})
import model_pytorch as mp
import tf_checkpoint
path, how = sys.argv[1], sys.argv[2]
model = mp.TransformerModel(mp.DEFAULT_CONFIG, vocab=40478 + {n_special} + {n_ctx}, n_ctx={n_ctx})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
if how == 'project':
    mp.load_openai_pretrained_model(model, n_ctx={n_ctx}, n_special={n_special}, path=path)
elif how == 'naive':
    shapes = json.load(open(os.path.join(path, 'params_shapes.json')))
    offsets = np.cumsum([math.prod(s) for s in shapes])[:-1]
    flat = np.concatenate([np.load(os.path.join(path, f'params_{{i}}.npy')) for i in range(10)])
    arrays = [a.reshape(s) for a, s in zip(np.split(flat, offsets), shapes)]
    arrays[1] = np.concatenate([arrays[1], np.zeros(({n_special}, 768), np.float32), arrays[0][:{n_ctx}]])
    params = dict(model.named_parameters())
    with torch.no_grad():
        params['embed.weight'].copy_(torch.from_numpy(arrays[1]))
        for name, a in zip(tf_checkpoint.tf_variable_names(12)[1:], arrays[2:]):
            params[tf_checkpoint.tf_to_torch_name(name)].copy_(torch.from_numpy(np.ascontiguousarray(a.reshape(params[tf_checkpoint.tf_to_torch_name(name)].shape))))
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(added=peak - base, seconds=elapsed)))
'''


def write_full_checkpoint(path, shapes_path):
    shapes = json.load(open(shapes_path))
    sizes = [math.prod(s) for s in shapes]
    total = sum(sizes)
    rng = np.random.default_rng(0)
    # written shard by shard so the writer never holds the whole checkpoint
    bounds = np.linspace(0, total, 11).astype(np.int64)
    for i in range(10):
        n = int(bounds[i + 1] - bounds[i])
        np.save(os.path.join(path, f'params_{i}.npy'), rng.standard_normal(n, dtype=np.float32) * np.float32(0.02))
    with open(os.path.join(path, 'params_shapes.json'), 'w') as f:
        json.dump(shapes, f)
    return total * 4


def bench_loading(shapes_path):
    with tempfile.TemporaryDirectory() as tmp:
        nbytes = write_full_checkpoint(tmp, shapes_path)
        code = CHILD.format(root=ROOT, n_special=N_SPECIAL, n_ctx=N_CTX)
        results = {}
        for how in ('naive', 'project'):
            out = subprocess.run([sys.executable, '-c', code, tmp, how], capture_output=True, text=True, check=True)
            results[how] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"checkpoint: {nbytes / 2**20:.0f} MiB in 10 shards")
        for how, r in results.items():
            print(f"  {how:8s} load: {r['seconds']:.2f} s, peak memory added {r['added'] / 2**20:.0f} MiB "
                  f"= {r['added'] / nbytes:.2f}x the checkpoint")
        print(f"  memory ratio naive / project: {results['naive']['added'] / results['project']['added']:.2f}x")
        return results


def bench_attention(steps):
    torch.manual_seed(0)
    cfg = mp.dotdict(mp.DEFAULT_CONFIG, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0, clf_pdrop=0.0)
    clf_token = 40478 + 2
    model = mp.DoubleHeadModel(cfg, clf_token, 'multiple_choice', vocab=40478 + N_SPECIAL + N_CTX, n_ctx=N_CTX)
    model.train()
    x = torch.zeros(8, 2, N_CTX, 2, dtype=torch.long)
    x[..., 0] = torch.randint(0, 40478, (8, 2, N_CTX))
    x[..., N_CTX - 1, 0] = clf_token
    x[..., 1] = 40478 + N_SPECIAL + torch.arange(N_CTX)

    def step():
        model.zero_grad(set_to_none=True)
        lm, clf = model(x)
        loss = lm.float().logsumexp(-1).mean() + clf.float().logsumexp(-1).mean()
        loss.backward()
        return lm.detach(), clf.detach()

    times, outs = {}, {}
    for impl in ('explicit', 'sdpa'):
        model.transformer.set_attention(impl)
        outs[impl] = step()  # warm-up
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        times[impl] = (time.perf_counter() - t0) / steps
    for a, b in zip(outs['explicit'], outs['sdpa']):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    print(f"forward+backward, full-size DoubleHeadModel, batch 8 x 2 choices x {N_CTX} tokens, "
          f"{torch.get_num_threads()} threads, {steps} steps each:")
    print(f"  explicit attention: {times['explicit']:.3f} s/step; sdpa: {times['sdpa']:.3f} s/step; "
          f"speed-up {times['explicit'] / times['sdpa']:.2f}x; outputs equal to 1e-5")
    return times


def bench_attention_core(steps):
    """Forward+backward of the attention alone (q, k, v at ROCStories shapes), both paths."""
    torch.manual_seed(0)
    attn = mp.Attention(768, 12, 0.0, 0.0).train()
    x = torch.randn(16, N_CTX, 768)
    qkv = [t.detach().view(16, N_CTX, 12, 64).transpose(1, 2).requires_grad_()
           for t in attn.c_attn(x).split(768, dim=2)]

    def core(impl):
        attn.impl = impl
        q, k, v = qkv
        if impl == 'sdpa':
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            b = torch.ones(N_CTX, N_CTX).tril()
            w = (q @ k.transpose(-2, -1) / 8) * b + -1e9 * (1 - b)
            y = torch.softmax(w, -1) @ v
        y.sum().backward()
        return y.detach()

    times = {}
    for impl in ('explicit', 'sdpa'):
        core(impl)
        t0 = time.perf_counter()
        for _ in range(steps * 10):
            core(impl)
        times[impl] = (time.perf_counter() - t0) / (steps * 10)
    torch.testing.assert_close(core('explicit'), core('sdpa'), atol=1e-5, rtol=0)
    print(f"attention core alone (16 x 12 heads x {N_CTX} x 64), forward+backward: explicit "
          f"{times['explicit'] * 1e3:.1f} ms, sdpa {times['sdpa'] * 1e3:.1f} ms; "
          f"speed-up {times['explicit'] / times['sdpa']:.2f}x")
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--shapes', default=os.path.join(ROOT, '..', 'shared', 'data', 'openai-gpt', 'params_shapes.json'))
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--skip_loading', action='store_true')
    args = p.parse_args()
    loading = None if args.skip_loading else bench_loading(args.shapes)
    core = bench_attention_core(args.steps)
    times = bench_attention(args.steps)
    bench_log('bench_model', vars(args), loading=loading, explicit_s_per_step=times['explicit'],
              sdpa_s_per_step=times['sdpa'], speedup=times['explicit'] / times['sdpa'],
              core_explicit_s=core['explicit'], core_sdpa_s=core['sdpa'],
              core_speedup=core['explicit'] / core['sdpa'])


if __name__ == '__main__':
    main()
