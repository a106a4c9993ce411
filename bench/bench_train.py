"""Benchmark a full-size (12-layer, 768-wide) finetuning step at ROCStories shapes on this machine.

    .venv/bin/python bench/bench_train.py [--steps 4] [--repeats 5] [--n_batch 8]

Batches are the first batches of the seeded epoch order over the real ROCStories
training split, encoded with the real vocabulary (n_ctx 77, real lengths), so the
trimming sees the real length distribution. Weights are random (timing only),
dropout is off so the two paths must give the same loss.

* default path: batch trimmed to its longest sequence, LM logits only at real
  next-token positions (lm_mask), SDPA attention;
* plain path: fixed n_ctx (77), LM logits at every position, explicit attention
  (the earlier port's computation).

Each timed step is forward + loss + backward + OpenAIAdam update. The two paths
are timed in turn, --repeats times (from the same weights each time), and the
script prints each repeat's ratio, then their median and range, the largest loss
difference, and a projection of the wall time of the 3-epoch ROCStories finetune
(the updates `train.py` makes, 3 x 1497 // 8 = 561, at the median step time, plus
the per-epoch evaluation of 374 + 374 stories and the final 1871 test predictions)
on this machine. It reports; it never fails on a slow or noisy machine.
"""
import argparse
import copy
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
    p.add_argument('--steps', type=int, default=4, help='timed steps per path (after --warmup)')
    p.add_argument('--repeats', type=int, default=3, help='times each path is timed, in turn')
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
    plain_all, fast_all, ratios, diff = [], [], [], 0.0
    for r in range(opts.repeats):
        model.load_state_dict(state)
        plain_losses, plain_times = time_path(model, args, data, batches, False, False, 'explicit', opts.warmup)
        model.load_state_dict(state)
        fast_losses, fast_times = time_path(model, args, data, batches, True, True, 'sdpa', opts.warmup)
        diff = max([diff] + [abs(a - b) for a, b in zip(plain_losses, fast_losses)])
        plain_all.append(float(np.mean(plain_times)))
        fast_all.append(float(np.mean(fast_times)))
        ratios.append(plain_all[-1] / fast_all[-1])
        print(f"repeat {r + 1}: plain {plain_all[-1]:.2f} s/step, default {fast_all[-1]:.2f} s/step, "
              f"ratio {ratios[-1]:.2f}x")
    t_plain, t_fast = float(np.median(plain_all)), float(np.median(fast_all))
    print(f"plain path   (n_ctx {data.n_ctx}, dense LM logits, explicit attention): median {t_plain:.2f} s/step")
    print(f"default path (trimmed, lm_mask, sdpa):                     median {t_fast:.2f} s/step")
    print(f"losses (last repeat): plain {['%.7f' % l for l in plain_losses]}, default "
          f"{['%.7f' % l for l in fast_losses]}")
    print(f"speed-up: median {np.median(ratios):.2f}x, range {min(ratios):.2f}x to {max(ratios):.2f}x over "
          f"{opts.repeats} repeat(s); max |loss difference| {diff:.2e} "
          f"({'same losses' if diff <= 1e-4 else 'MISMATCH'}, tolerance 1e-4)")

    n_eval = min(opts.eval_examples, len(data.vaY))
    t = time.perf_counter()
    train.evaluate(model, data.vaX[:n_eval], data.vaM[:n_eval], data.vaY[:n_eval], n_batch=args.n_batch, verbose=False)
    t_eval = (time.perf_counter() - t) / n_eval
    n_updates = train.n_updates_total(len(data.trY), args)  # what train.py makes: 3 x 1497 // 8
    train_s = n_updates * t_fast
    eval_s = (args.n_iter * 2 * len(data.vaY) + len(data.teX)) * t_eval  # train subset + valid a epoch, then test
    print(f"eval: {t_eval * 1000:.0f} ms per story (both endings)")
    bench_log('bench_train', vars(opts), plain_s_per_step=plain_all, default_s_per_step=fast_all,
              speedup=ratios, speedup_median=float(np.median(ratios)), max_loss_diff=diff,
              eval_s_per_story=t_eval, projected_updates=n_updates, projected_hours=(train_s + eval_s) / 3600)
    print(f"projected 3-epoch ROCStories finetune on this machine: {n_updates} updates x {t_fast:.2f} s "
          f"= {train_s / 60:.0f} min training + {eval_s / 60:.1f} min evaluation = {(train_s + eval_s) / 3600:.2f} h "
          f"(plain path: {(n_updates * t_plain + eval_s) / 3600:.2f} h)")


if __name__ == '__main__':
    main()
