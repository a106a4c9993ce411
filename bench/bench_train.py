"""Benchmark a full-size (12-layer, 768-wide) finetuning step and evaluation at ROCStories shapes on this machine.

    .venv/bin/python bench/bench_train.py [--steps 4] [--repeats 5] [--n_batch 8] [--eval_examples 374]

Batches are the first batches of the seeded epoch order over the real ROCStories
training split, encoded with the real vocabulary (n_ctx 77, real lengths), so the
trimming sees the real length distribution. Weights are random (timing only),
dropout is off so the two paths must give the same loss.

* default path: batch trimmed to its longest sequence, LM logits only at real
  next-token positions (lm_mask), SDPA attention;
* plain path: fixed n_ctx (77), LM logits at every position, explicit attention
  (the earlier port's computation);
* shared-prefix path (`--share_prefix`): trimmed, each story's `[_start_] story
  [_delimiter_]` run once and its keys and values reused by both endings, LM logits
  at real tokens, SDPA.

Each timed step is forward + loss + backward + OpenAIAdam update. The three paths
are timed in turn, --repeats times (from the same weights each time). Then the
evaluation of the first --eval_examples validation stories (all 374 by default) is
timed, --repeats times, with `train.evaluate` (shared prefix) against the evaluation
before it (`plain_eval_logits`: the same length-sorted trimmed batches, each ending
run over its whole story). The script prints each repeat's ratios, their median and
range, the largest loss and logit differences, and a projection of the wall time of
the 3-epoch ROCStories finetune (the updates `train.py` makes, 3 x 1497 // 8 = 561,
at the median step time, plus the per-epoch evaluation of 374 + 374 stories and the
final 1871 test predictions) on this machine. It reports; it never fails on a slow
or noisy machine.
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


def time_path(model, args, data, batches, trim, use_lm_mask, attn, share_prefix, warmup):
    model.transformer.set_attention(attn)
    opt = train.make_optimizer(args, model, t_total=len(batches) * 100)
    lc = train.make_loss_compute(args, opt)
    losses, times = [], []
    for i, idx in enumerate(batches):
        t = time.perf_counter()
        losses.append(train.train_step(model, lc, data.trX[idx], data.trM[idx], data.trY[idx],
                                       trim=trim, use_lm_mask=use_lm_mask, share_prefix=share_prefix))
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return losses, times


def plain_eval_logits(model, X, M, n_batch):
    """The evaluation before the shared prefix: classifier logits (n, n_choices) of the
    whole model over length-sorted trimmed batches, in the input order."""
    order = np.argsort(M.reshape(len(M), -1, M.shape[-1]).sum(-1).max(-1), kind='stable')
    out = np.zeros((len(X), X.shape[1]))
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(X), n_batch):
            idx = order[start:start + n_batch]
            Xb, Mb, _ = train.to_batch(X[idx], M[idx])
            out[idx] = model(Xb, lm_mask=torch.zeros(Mb.shape, dtype=torch.bool))[1].numpy()
    return out


def time_eval(model, data, n_eval, n_batch):
    """(seconds of the plain evaluation, of train.evaluate, largest |logit difference|)."""
    X, M, Y = data.vaX[:n_eval], data.vaM[:n_eval], data.vaY[:n_eval]
    t = time.perf_counter()
    plain = plain_eval_logits(model, X, M, n_batch)
    t_plain = time.perf_counter() - t
    t = time.perf_counter()
    shared, _, _ = train.evaluate(model, X, M, Y, n_batch=n_batch, verbose=False)
    return t_plain, time.perf_counter() - t, float(np.abs(plain - shared).max())


def spread(values):
    return f"median {np.median(values):.2f}x, range {min(values):.2f}x to {max(values):.2f}x"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=4, help='timed steps per path (after --warmup)')
    p.add_argument('--repeats', type=int, default=3, help='times each path is timed, in turn')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--n_batch', type=int, default=8)
    p.add_argument('--eval_examples', type=int, default=374, help='validation stories timed in the evaluation')
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
    times = {'plain': [], 'default': [], 'shared': []}
    paths = {'plain': (False, False, 'explicit', False), 'default': (True, True, 'sdpa', False),
             'shared': (True, True, 'sdpa', True)}
    diff, losses = 0.0, {}
    for r in range(opts.repeats):
        for name, path in paths.items():
            model.load_state_dict(state)
            losses[name], step_times = time_path(model, args, data, batches, *path, opts.warmup)
            times[name].append(float(np.mean(step_times)))
        diff = max([diff] + [abs(a - b) for a, b in zip(losses['plain'], losses['default'])]
                   + [abs(a - b) for a, b in zip(losses['plain'], losses['shared'])])
        print(f"repeat {r + 1}: plain {times['plain'][-1]:.2f} s/step, default {times['default'][-1]:.2f} s/step, "
              f"shared prefix {times['shared'][-1]:.2f} s/step")
    med = {name: float(np.median(t)) for name, t in times.items()}
    ratios = {name: [p / f for p, f in zip(times['plain'], times[name])] for name in ('default', 'shared')}
    print(f"plain path   (n_ctx {data.n_ctx}, dense LM logits, explicit attention): median {med['plain']:.2f} s/step")
    print(f"default path (trimmed, lm_mask, sdpa):                     median {med['default']:.2f} s/step")
    print(f"--share_prefix (trimmed, shared prefix, lm at real tokens, sdpa): median {med['shared']:.2f} s/step")
    print("losses (last repeat): " + ', '.join(f"{name} {['%.7f' % v for v in losses[name]]}" for name in paths))
    for name in ('default', 'shared'):
        print(f"speed-up of the {name} path over the plain path: {spread(ratios[name])} over {opts.repeats} repeat(s)")
    print(f"max |loss difference| from the plain path {diff:.2e} ({'same losses' if diff <= 1e-4 else 'MISMATCH'}, "
          f"tolerance 1e-4)")

    n_eval = min(opts.eval_examples, len(data.vaY))
    model.transformer.set_attention('sdpa')  # train.py's default, for both evaluations
    evals = [time_eval(model, data, n_eval, args.n_batch) for _ in range(opts.repeats)]
    eval_ratios = [p / s for p, s, _ in evals]
    logit_diff = max(d for _, _, d in evals)
    t_eval = float(np.median([s for _, s, _ in evals])) / n_eval
    t_eval_plain = float(np.median([p for p, _, _ in evals])) / n_eval
    print(f"evaluation of {n_eval} validation stories: plain median {t_eval_plain * n_eval:.1f} s, shared prefix "
          f"median {t_eval * n_eval:.1f} s; speed-up {spread(eval_ratios)}; max |logit difference| {logit_diff:.1e} "
          f"({'same logits' if logit_diff <= 1e-4 else 'MISMATCH'}, tolerance 1e-4)")
    n_updates = train.n_updates_total(len(data.trY), args)  # what train.py makes: 3 x 1497 // 8
    n_stories = args.n_iter * 2 * len(data.vaY) + len(data.teX)  # train subset + valid each epoch, then test

    def hours(step_s, story_s):
        return (n_updates * step_s + n_stories * story_s) / 3600
    bench_log('bench_train', vars(opts), s_per_step=times, speedup=ratios,
              speedup_median={k: float(np.median(v)) for k, v in ratios.items()}, max_loss_diff=diff,
              eval_s=evals, eval_speedup=eval_ratios, eval_speedup_median=float(np.median(eval_ratios)),
              max_logit_diff=logit_diff, projected_updates=n_updates,
              projected_hours={'plain': hours(med['plain'], t_eval_plain),
                               'default': hours(med['default'], t_eval),
                               'share_prefix': hours(med['shared'], t_eval)})
    print(f"projected 3-epoch ROCStories finetune on this machine: {n_updates} updates and {n_stories} evaluated "
          f"stories: default {n_updates} x {med['default']:.2f} s = {n_updates * med['default'] / 60:.0f} min + "
          f"{n_stories * t_eval / 60:.1f} min evaluation = {hours(med['default'], t_eval):.2f} h; --share_prefix "
          f"{n_updates * med['shared'] / 60:.0f} min + {n_stories * t_eval / 60:.1f} min = "
          f"{hours(med['shared'], t_eval):.2f} h (plain path with the evaluation before the shared prefix: "
          f"{hours(med['plain'], t_eval_plain):.2f} h)")


if __name__ == '__main__':
    main()
