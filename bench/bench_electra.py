"""Benchmark one ELECTRA pre-training step: electra.Electra against electra-pytorch's Electra.

    .venv/bin/python bench/bench_electra.py [--steps 5] [--repeats 3] [--device auto] [--quick]

Both wrap the same generator/discriminator pair of the library's bidirectional
TransformerModels (embeddings shared, DiscHead), at two shapes:

* small: 4 layers, 128 wide, 2 heads, generator 1/4 width, 128 tokens, batch 32;
* electra-small: ELECTRA-Small's shape, 12 layers, 256 wide, 4 heads, generator 1/4
  width (64 wide, 1 head), 128 tokens, batch 128 (the paper's), the 40k BPE vocabulary.

Both use the 40478-token BPE vocabulary plus the mask token. A step is forward, loss,
backward and an OpenAIAdam update, on windows of random token ids (timing only; dropout
0.1 as in pre-training). The wrapper's generator projects every position onto the
vocabulary (what its API asks of a generator: logits (B, T, vocab)); ours projects only
the masked ones. The two are timed in turn, --repeats times, from the same weights; the
script prints each repeat's tokens/s and ratio, their median, and then tokens/s of
pretrain.py's `--objective lm` (the discriminator's shape as an LMModel) and `mlm` (a
MaskedLM of that shape) at each shape, so the cost of each objective shows. --quick runs a
tiny shape once (a check that the script works, not a measurement). It reports; it never
fails on a slow or noisy machine.
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

import electra  # noqa: E402
import pretraining  # noqa: E402
from bench import bench_log  # noqa: E402
from distributed import resolve_device  # noqa: E402
from model_pytorch import DEFAULT_CONFIG, LMModel, TransformerModel, dotdict  # noqa: E402
from opt import OpenAIAdam  # noqa: E402

N_VOCAB = 40478  # GPT-1's BPE vocabulary; the mask token is id N_VOCAB
SHAPES = {  # n_layer, n_embd, n_head, n_ctx, n_batch
    'small': (4, 128, 2, 128, 32),
    'electra-small': (12, 256, 4, 128, 128),
}
QUICK = {'tiny': (1, 32, 2, 16, 4)}


def build(shape, device):
    """(our Electra, electra-pytorch's Electra around the same models, the LM model, the MaskedLM)."""
    from electra_pytorch import Electra as WrapperElectra
    n_layer, n_embd, n_head, n_ctx, _ = shape
    cfg = dotdict(DEFAULT_CONFIG, n_layer=n_layer, n_embd=n_embd, n_head=n_head, causal=False)
    vocab = N_VOCAB + 1 + n_ctx
    gen_cfg = dotdict(cfg, n_embd=max(1, n_embd // 4), n_head=max(1, n_head // 4))
    torch.manual_seed(0)
    ours = electra.Electra(TransformerModel(gen_cfg, vocab, n_ctx), TransformerModel(cfg, vocab, n_ctx),
                           mask_token_id=N_VOCAB).to(device)
    wrapper = WrapperElectra(electra.WrapperView(ours, 'generator', N_VOCAB + 1),
                             electra.WrapperView(ours, 'discriminator', N_VOCAB + 1),
                             mask_token_id=N_VOCAB, pad_token_id=-1, mask_prob=0.15, replace_prob=0.85,
                             disc_weight=50.0, gen_weight=1.0)  # -1: no padding, as in pre-training windows
    lm = LMModel(dotdict(cfg, causal=True), vocab=N_VOCAB + n_ctx, n_ctx=n_ctx).to(device)
    mlm = electra.MaskedLM(TransformerModel(cfg, vocab, n_ctx), mask_token_id=N_VOCAB).to(device)
    return ours, wrapper, lm, mlm


def time_steps(params, loss_of, batches, warmup, device):
    """Mean seconds per step (after `warmup` steps) of loss_of(batch).backward() and an
    OpenAIAdam update, and the losses."""
    opt = OpenAIAdam(params, lr=2.5e-4, schedule='warmup_cosine', warmup=0.01, t_total=1000, b1=0.9, b2=0.999,
                     e=1e-8, l2=0.01, max_grad_norm=1)
    times, losses = [], []
    for i, batch in enumerate(batches):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t = time.perf_counter()
        loss = loss_of(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())  # waits for the step
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return float(np.mean(times)), losses


def bench_shape(name, shape, opts, device):
    n_layer, n_embd, n_head, n_ctx, n_batch = shape
    ours, wrapper, lm, mlm = build(shape, device)
    rng = np.random.default_rng(0)
    batches = [torch.as_tensor(rng.integers(0, N_VOCAB, (n_batch, n_ctx)), device=device)
               for _ in range(opts.warmup + opts.steps)]
    tokens = n_batch * n_ctx
    state = copy.deepcopy(ours.state_dict())
    result = dict(ours_tokens_s=[], wrapper_tokens_s=[], ratio=[])
    for r in range(opts.repeats):
        ours.load_state_dict(state)
        t_ours, _ = time_steps(ours.parameters(),
                               lambda b: ours(pretraining.window_inputs(b, N_VOCAB + 1, device)).loss, batches,
                               opts.warmup, device)
        ours.load_state_dict(state)
        t_wrapper, _ = time_steps(ours.parameters(), lambda b: wrapper(b).loss, batches, opts.warmup, device)
        result['ours_tokens_s'].append(tokens / t_ours)
        result['wrapper_tokens_s'].append(tokens / t_wrapper)
        result['ratio'].append(t_wrapper / t_ours)
        print(f"{name} repeat {r + 1}: ours {tokens / t_ours:.0f} tokens/s, electra-pytorch "
              f"{tokens / t_wrapper:.0f} tokens/s, ratio {t_wrapper / t_ours:.2f}x")
    t_lm, _ = time_steps(lm.parameters(),
                         lambda b: pretraining.lm_loss(lm, pretraining.window_inputs(b, N_VOCAB, device)), batches,
                         opts.warmup, device)
    t_mlm, _ = time_steps(mlm.parameters(), lambda b: mlm(pretraining.window_inputs(b, N_VOCAB + 1, device)).loss,
                          batches, opts.warmup, device)
    result.update(lm_tokens_s=tokens / t_lm, mlm_tokens_s=tokens / t_mlm,
                  ratio_median=float(np.median(result['ratio'])))
    print(f"{name} ({n_layer} layers, {n_embd} wide, {n_head} heads, generator {n_embd // 4} wide, {n_ctx} tokens, "
          f"batch {n_batch}): electra ours {np.median(result['ours_tokens_s']):.0f} tokens/s, electra-pytorch "
          f"{np.median(result['wrapper_tokens_s']):.0f}, speed-up median {result['ratio_median']:.2f}x (range "
          f"{min(result['ratio']):.2f}x to {max(result['ratio']):.2f}x); lm {tokens / t_lm:.0f} tokens/s, "
          f"mlm {tokens / t_mlm:.0f} tokens/s")
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=5, help='timed steps per path (after --warmup)')
    p.add_argument('--repeats', type=int, default=3, help='times each path is timed, in turn')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--device', default='auto', help='auto (cuda if available, else cpu), cpu, cuda, cuda:N')
    p.add_argument('--shapes', nargs='+', default=list(SHAPES), choices=list(SHAPES))
    p.add_argument('--quick', action='store_true', help='a tiny shape, one step, one repeat: checks the script runs')
    opts = p.parse_args(argv)
    shapes = QUICK if opts.quick else {k: SHAPES[k] for k in opts.shapes}
    if opts.quick:
        opts.steps, opts.repeats, opts.warmup = 1, 1, 0
    device = resolve_device(opts.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads")
    results = {name: bench_shape(name, shape, opts, device) for name, shape in shapes.items()}
    bench_log('bench_electra' + ('_quick' if opts.quick else ''), dict(vars(opts), device=str(device)), **results)


if __name__ == '__main__':
    main()
