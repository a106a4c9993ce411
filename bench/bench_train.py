"""Benchmark a full-size (12-layer, 768-wide) finetuning step at ROCStories shapes on this machine.

    .venv/bin/python bench/bench_train.py [--steps 3] [--n_batch 8]

Batches are the first batches of the seeded epoch order over the real ROCStories
training split, encoded with the real vocabulary (n_ctx 77, real lengths), so the
trimming sees the real length distribution. Weights are random (timing only),
dropout is off so the two paths must give the same loss.

* default path: batch trimmed to its longest sequence, LM logits only at real
  next-token positions (lm_mask), SDPA attention;
* plain path: fixed n_ctx (77), LM logits at every position, explicit attention
  (the earlier port's computation).

Each timed step is forward + loss + backward + OpenAIAdam update. Prints the time
per step of each path, the ratio, the largest loss difference, and a projection of
the wall time of the 3-epoch ROCStories finetune (ceil(1497 / 8) steps an epoch,
plus the per-epoch evaluation of 374 + 374 stories and the final 1871 test
predictions) on this machine.
"""
import argparse
import copy
import math
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import bench_log  # noqa: E402
import train  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), 'shared', 'data')


def time_path(model, args, data, batches, trim, use_lm_mask, attn, warmup):
    model.transformer.set_attention(attn)
    opt = train.make_optimizer(args, model, t_total=len(batches) * 100)
    lc = train.make_loss_compute(args, opt)
    losses, times = [], []
    for i, idx in enumerate(batches):
        t = time.perf_counter()
        losses.append(train.train_step(model, lc, data.trX[idx], data.trM[idx], data.trY[idx],
                                       trim=trim, use_lm_mask=use_lm_mask))
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return losses, times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=3, help='timed steps per path (after --warmup)')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--n_batch', type=int, default=8)
    p.add_argument('--eval_examples', type=int, default=32, help='validation stories timed for the eval projection')
    p.add_argument('--data_dir', default=os.path.join(SHARED, 'rocstories'))
    p.add_argument('--openai_dir', default=os.path.join(SHARED, 'openai-gpt'))
    opts = p.parse_args(argv)

    args = train.parse_args([
        '--init', 'random', '--n_batch', str(opts.n_batch), '--data_dir', opts.data_dir,
        '--encoder_path', os.path.join(opts.openai_dir, 'encoder_bpe_40000.json'),
        '--bpe_path', os.path.join(opts.openai_dir, 'vocab_40000.bpe'),
        '--embd_pdrop', '0', '--attn_pdrop', '0', '--resid_pdrop', '0', '--clf_pdrop', '0'])
    train.set_seed(args.seed)
    data = train.load_data(args, verbose=False)
    n_steps = opts.warmup + opts.steps
    order = train.epoch_order(args.seed, 0, len(data.trY))
    batches = [order[i * opts.n_batch:(i + 1) * opts.n_batch] for i in range(n_steps)]
    lengths = data.trM.sum(-1).max(-1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; n_ctx {data.n_ctx}; "
          f"train lengths mean {lengths.mean():.1f}, median {np.median(lengths):.0f}, max {lengths.max():.0f}")
    print("timed batches' longest sequence:", [int(lengths[b].max()) for b in batches[opts.warmup:]])

    model = train.build_model(args, data)
    state = copy.deepcopy(model.state_dict())
    plain_losses, plain_times = time_path(model, args, data, batches, False, False, 'explicit', opts.warmup)
    model.load_state_dict(state)
    fast_losses, fast_times = time_path(model, args, data, batches, True, True, 'sdpa', opts.warmup)

    diff = max(abs(a - b) for a, b in zip(plain_losses, fast_losses))
    t_plain, t_fast = float(np.mean(plain_times)), float(np.mean(fast_times))
    print(f"plain path   (n_ctx {data.n_ctx}, dense LM logits, explicit attention): {t_plain:.2f} s/step "
          f"{['%.2f' % t for t in plain_times]}")
    print(f"default path (trimmed, lm_mask, sdpa):                     {t_fast:.2f} s/step "
          f"{['%.2f' % t for t in fast_times]}")
    print(f"losses: plain {['%.7f' % l for l in plain_losses]}, default {['%.7f' % l for l in fast_losses]}")
    print(f"speed-up: {t_plain / t_fast:.2f}x; "
          f"max |loss difference| {diff:.2e} ({'OK' if diff <= 1e-4 else 'MISMATCH'}, tolerance 1e-4)")

    n_eval = min(opts.eval_examples, len(data.vaY))
    t = time.perf_counter()
    train.evaluate(model, data.vaX[:n_eval], data.vaM[:n_eval], data.vaY[:n_eval], n_batch=args.n_batch, verbose=False)
    t_eval = (time.perf_counter() - t) / n_eval
    steps_per_epoch = math.ceil(1497 / args.n_batch)
    train_s = 3 * steps_per_epoch * t_fast
    eval_s = (3 * (374 + 374) + 1871) * t_eval
    print(f"eval: {t_eval * 1000:.0f} ms per story (both endings)")
    bench_log('bench_train', vars(opts), plain_s_per_step=t_plain, default_s_per_step=t_fast,
              speedup=t_plain / t_fast, max_loss_diff=diff, eval_s_per_story=t_eval,
              projected_hours=(train_s + eval_s) / 3600)
    print(f"projected 3-epoch ROCStories finetune on this machine: {3 * steps_per_epoch} steps x {t_fast:.2f} s "
          f"= {train_s / 60:.0f} min training + {eval_s / 60:.1f} min evaluation = {(train_s + eval_s) / 3600:.2f} h "
          f"(plain path: {(3 * steps_per_epoch * t_plain + eval_s) / 3600:.2f} h)")


if __name__ == '__main__':
    main()
