"""Benchmark a full-size (12-layer, 768-wide) finetuning step and evaluation at ROCStories shapes on this machine.

    .venv/bin/python bench/bench_train.py [--steps 4] [--repeats 5] [--n_batch 8] [--eval_examples 374]
                                          [--eval_repeats N] [--threads N] [--shape race]

Batches are the first batches of the seeded epoch order over the real ROCStories
training split, encoded with the real vocabulary (n_ctx 77, real lengths), so the
trimming sees the real length distribution. Weights are random (timing only),
dropout is off so the three paths must give the same loss.

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
timed, --eval_repeats times (default --repeats), with `finetune.evaluate` (shared prefix) against the evaluation
before it (`plain_eval_logits`: the same length-sorted trimmed batches, each ending
run over its whole story). The script prints each repeat's ratios, their median and
range (in wall time and in this process's CPU time: with --threads 1 on a machine shared
with other work, CPU time is the steadier measure), the largest loss and logit
differences, the positions each evaluation computes (the plain one's padded batches
against every shared prefix once with no padding: the most sharing can gain), and a
projection of the time of the 3-epoch ROCStories finetune (the updates `train.py`
makes, 3 x 1497 // 8 = 561, at the median step time, plus the per-epoch evaluation of
374 + 374 stories and the final 1871 test predictions) on this machine. It reports;
it never fails on a slow or noisy machine.

`--shape race` times the same paths on generated RACE-shaped examples (an article of
~350 tokens and a question, shared by four answers of ~8 tokens; random token ids) in
place of the ROCStories batches; the evaluation then scores --eval_examples of them.
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
import finetune  # noqa: E402
import prefix  # noqa: E402
import task_data  # noqa: E402
import train  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), 'shared', 'data')


def race_shaped(data, n, seed=0, article=350, question=12, answer=8, n_choices=4):
    """A RocData of n generated RACE-shaped examples per split from `data`'s vocabulary: `[_start_]
    article question [_delimiter_] answer_k [_classify_]` for 4 answers, lengths drawn around the
    given means (article 350 tokens, as RACE's), token ids at random (timing only)."""
    rng = np.random.RandomState(seed)
    start, delim = data.encoder['_start_'], data.encoder['_delimiter_']

    def draw(mean):
        return max(1, int(rng.normal(mean, mean / 5)))

    examples = []
    for _ in range(3 * n):
        context = list(rng.randint(0, data.n_vocab, draw(article) + draw(question)))
        examples.append([[start] + context + [delim] + list(rng.randint(0, data.n_vocab, draw(answer)))
                         + [data.clf_token] for _ in range(n_choices)])
    n_ctx = max(len(seq) for ex in examples for seq in ex)
    X = np.zeros((len(examples), n_choices, n_ctx, 2), np.int32)
    M = np.zeros((len(examples), n_choices, n_ctx), np.float32)
    for i, ex in enumerate(examples):
        for k, seq in enumerate(ex):
            X[i, k, :len(seq), 0], M[i, k, :len(seq)] = seq, 1
    X[..., 1] = data.n_vocab + data.n_special + np.arange(n_ctx)
    Y = rng.randint(0, n_choices, len(examples))
    parts = [slice(0, n), slice(n, 2 * n), slice(2 * n, 3 * n)]
    return task_data.RocData(data.text_encoder, data.encoder, data.n_vocab, data.n_special, data.clf_token, n_ctx,
                         n_ctx, *[a[parts[i]] for i in range(2) for a in (X, M, Y)], X[parts[2]], M[parts[2]])


def time_path(model, args, data, batches, trim, use_lm_mask, attn, share_prefix, warmup):
    model.transformer.set_attention(attn)
    opt = finetune.make_optimizer(args, model, t_total=len(batches) * 100)
    lc = finetune.make_loss_compute(args, opt)
    losses, times = [], []
    for i, idx in enumerate(batches):
        t = clocks()
        losses.append(finetune.train_step(model, lc, data.trX[idx], data.trM[idx], data.trY[idx],
                                       trim=trim, use_lm_mask=use_lm_mask, share_prefix=share_prefix))
        if i >= warmup:
            times.append(clocks() - t)
    return losses, np.mean(times, axis=0)


def clocks():
    """(wall seconds, this process's CPU seconds): on a machine shared with other work the CPU
    time of a 1-thread run (--threads 1) is the steadier measure."""
    return np.array([time.perf_counter(), time.process_time()])


def plain_batches(M, n_batch):
    """The plain evaluation's batches: index arrays of n_batch examples in order of length."""
    order = np.argsort(finetune.example_lengths(M), kind='stable')
    return [order[start:start + n_batch] for start in range(0, len(order), n_batch)]


def plain_eval_logits(model, X, M, n_batch):
    """The evaluation before the shared prefix: classifier logits (n, n_choices) of the
    whole model over length-sorted trimmed batches, in the input order."""
    out = np.zeros((len(X), X.shape[1]))
    model.eval()
    with torch.inference_mode():
        for idx in plain_batches(M, n_batch):
            Xb, Mb, _ = finetune.to_batch(X[idx], M[idx])
            out[idx] = model(Xb, lm_mask=torch.zeros(Mb.shape, dtype=torch.bool))[1].numpy()
    return out


def time_eval(model, data, n_eval, n_batch):
    """((wall, CPU) seconds of the plain evaluation, of finetune.evaluate, largest |logit difference|)."""
    X, M, Y = data.vaX[:n_eval], data.vaM[:n_eval], data.vaY[:n_eval]
    t = clocks()
    plain = plain_eval_logits(model, X, M, n_batch)
    t_plain = clocks() - t
    t = clocks()
    shared, _, _ = finetune.evaluate(model, X, M, Y, n_batch=n_batch, verbose=False)
    return t_plain, clocks() - t, float(np.abs(plain - shared).max())


def eval_tokens(model, data, n_eval, n_batch):
    """(positions the plain evaluation computes over its length-sorted trimmed batches,
    positions with each shared prefix computed once and no padding at all): their ratio
    bounds what sharing can gain in an evaluation bound by its matrix products."""
    X, M = data.vaX[:n_eval], data.vaM[:n_eval]
    lengths = M.sum(-1)  # (n, C)
    plain = sum(len(b) * M.shape[1] * lengths[b].max() for b in plain_batches(M, n_batch))
    P = prefix.shared_prefix_lengths(torch.as_tensor(X), torch.as_tensor(M), model.task_head.clf_token).numpy()
    return int(plain), int((lengths - P[:, None]).sum() + P.sum())


def spread(values):
    return f"median {np.median(values):.2f}x, range {min(values):.2f}x to {max(values):.2f}x"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=4, help='timed steps per path (after --warmup)')
    p.add_argument('--repeats', type=int, default=3, help='times each path is timed, in turn')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--n_batch', type=int, default=8)
    p.add_argument('--eval_examples', type=int, default=374, help='validation stories timed in the evaluation')
    p.add_argument('--eval_repeats', type=int, default=None, help='times the evaluations are timed (default --repeats)')
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    p.add_argument('--data_dir', default=os.path.join(SHARED, 'rocstories'))
    p.add_argument('--openai_dir', default=os.path.join(SHARED, 'openai-gpt'))
    p.add_argument('--shape', choices=('rocstories', 'race'), default='rocstories',
                   help="race: generated RACE-shaped examples (an article of ~350 tokens and a question shared "
                        "by four answers) in place of the ROCStories batches; no finetune projection")
    opts = p.parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)

    args = train.parse_args([
        '--init', 'random', '--n_batch', str(opts.n_batch), '--data_dir', opts.data_dir,
        '--encoder_path', os.path.join(opts.openai_dir, 'encoder_bpe_40000.json'),
        '--bpe_path', os.path.join(opts.openai_dir, 'vocab_40000.bpe'),
        '--embd_pdrop', '0', '--attn_pdrop', '0', '--resid_pdrop', '0', '--clf_pdrop', '0'])
    finetune.set_seed(args.run.seed)
    data = train.load_data(args, verbose=False)
    if opts.shape == 'race':
        data = race_shaped(data, max(opts.eval_examples, opts.n_batch * (opts.warmup + opts.steps)), args.run.seed)
    n_steps = opts.warmup + opts.steps
    order = finetune.epoch_order(args.run.seed, 0, len(data.trY))
    batches = [order[i * opts.n_batch:(i + 1) * opts.n_batch] for i in range(n_steps)]
    lengths = data.trM.sum(-1).max(-1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; n_ctx {data.n_ctx}; "
          f"train lengths mean {lengths.mean():.1f}, median {np.median(lengths):.0f}, max {lengths.max():.0f}")
    print("timed batches' longest sequence:", [int(lengths[b].max()) for b in batches[opts.warmup:]])

    model = finetune.build_model(args, data)
    state = copy.deepcopy(model.state_dict())
    times = {'plain': [], 'default': [], 'shared': []}  # (wall, CPU) seconds per step, one pair per repeat
    paths = {'plain': (False, False, 'explicit', False), 'default': (True, True, 'sdpa', False),
             'shared': (True, True, 'sdpa', True)}
    diff, losses = 0.0, {}
    for r in range(opts.repeats):
        for name, path in paths.items():
            model.load_state_dict(state)
            losses[name], step_times = time_path(model, args, data, batches, *path, opts.warmup)
            times[name].append(step_times.tolist())
        diff = max([diff] + [abs(a - b) for a, b in zip(losses['plain'], losses['default'])]
                   + [abs(a - b) for a, b in zip(losses['plain'], losses['shared'])])
        print(f"repeat {r + 1}, s/step (wall, CPU): " + ', '.join(f"{name} {times[name][-1][0]:.2f}, "
                                                                 f"{times[name][-1][1]:.2f}" for name in paths))
    t = {name: np.array(v) for name, v in times.items()}  # (repeats, 2)
    med = {name: np.median(v, axis=0) for name, v in t.items()}
    ratios = {name: t['plain'] / t[name] for name in ('default', 'shared')}
    for name, what in (('plain', f"n_ctx {data.n_ctx}, dense LM logits, explicit attention"),
                       ('default', "trimmed, lm_mask, sdpa"),
                       ('shared', "--share_prefix: trimmed, shared prefix, LM logits at real tokens, sdpa")):
        print(f"{name} path ({what}): median {med[name][0]:.2f} s/step wall, {med[name][1]:.2f} s CPU")
    print("losses (last repeat): " + ', '.join(f"{name} {['%.7f' % v for v in losses[name]]}" for name in paths))
    for name in ('default', 'shared'):
        for k, clock in enumerate(('wall', 'CPU')):
            print(f"speed-up of the {name} path over the plain path ({clock} time): {spread(ratios[name][:, k])} "
                  f"over {opts.repeats} repeat(s)")
    print(f"max |loss difference| from the plain path {diff:.2e} ({'same losses' if diff <= 1e-4 else 'MISMATCH'}, "
          f"tolerance 1e-4)")

    n_eval = min(opts.eval_examples, len(data.vaY))
    model.transformer.set_attention('sdpa')  # train.py's default, for both evaluations
    evals = [time_eval(model, data, n_eval, args.run.n_batch) for _ in range(opts.eval_repeats or opts.repeats)]
    e_plain, e_shared = np.array([p for p, _, _ in evals]), np.array([s for _, s, _ in evals])
    eval_ratios = e_plain / e_shared
    logit_diff = max(d for _, _, d in evals)
    for k, clock in enumerate(('wall', 'CPU')):
        print(f"evaluation of {n_eval} validation {'examples' if opts.shape == 'race' else 'stories'} "
              f"({clock} time): plain median "
              f"{np.median(e_plain[:, k]):.1f} s, shared prefix median {np.median(e_shared[:, k]):.1f} s; "
              f"speed-up {spread(eval_ratios[:, k])}")
    print(f"max |logit difference| {logit_diff:.1e} ({'same logits' if logit_diff <= 1e-4 else 'MISMATCH'}, "
          f"tolerance 1e-4)")
    plain_tokens, shared_tokens = eval_tokens(model, data, n_eval, args.run.n_batch)
    print(f"positions the evaluation computes: plain {plain_tokens}, shared prefix with no padding at all "
          f"{shared_tokens}: sharing gains at most {plain_tokens / shared_tokens:.2f}x")
    if opts.shape == 'race':
        bench_log('bench_train', vars(opts), s_per_step_wall_cpu=times, max_loss_diff=diff,
                  speedup_wall_cpu={k: v.tolist() for k, v in ratios.items()},
                  eval_s_wall_cpu=[(p.tolist(), s.tolist()) for p, s, _ in evals],
                  eval_speedup_wall_cpu=eval_ratios.tolist(), max_logit_diff=logit_diff,
                  eval_positions_plain_shared=(plain_tokens, shared_tokens))
        return
    n_updates = finetune.n_updates_total(len(data.trY), args)  # what train.py makes: 3 x 1497 // 8
    n_stories = args.run.n_iter * 2 * len(data.vaY) + len(data.teX)  # train subset + valid each epoch, then test
    story = {'plain': np.median(e_plain, axis=0) / n_eval, 'shared': np.median(e_shared, axis=0) / n_eval}
    hours = {name: (n_updates * med[name] + n_stories * story['plain' if name == 'plain' else 'shared']) / 3600
             for name in paths}
    bench_log('bench_train', vars(opts), s_per_step_wall_cpu=times,
              speedup_wall_cpu={k: v.tolist() for k, v in ratios.items()}, max_loss_diff=diff,
              eval_s_wall_cpu=[(p.tolist(), s.tolist()) for p, s, _ in evals],
              eval_speedup_wall_cpu=eval_ratios.tolist(),
              max_logit_diff=logit_diff, eval_positions_plain_shared=(plain_tokens, shared_tokens),
              projected_updates=n_updates,
              projected_hours_wall_cpu={k: v.tolist() for k, v in hours.items()})
    for k, clock in enumerate(('wall', 'CPU')):
        print(f"projected 3-epoch ROCStories finetune ({clock} time): {n_updates} updates and {n_stories} evaluated "
              f"stories: --share_prefix {n_updates * med['shared'][k] / 60:.0f} min + "
              f"{n_stories * story['shared'][k] / 60:.1f} min evaluation = {hours['shared'][k]:.2f} h; default "
              f"{hours['default'][k]:.2f} h; plain path with the evaluation before the shared prefix "
              f"{hours['plain'][k]:.2f} h")


if __name__ == '__main__':
    main()
