"""bench/bench_pretrain.py: the baseline holds the same weights, the FLOPs per token
match the formula re-derived from the layer shapes, and both update loops lower the loss."""

import numpy as np
import pytest
import torch

from bench import bench_pretrain
import pretrain
from tests.conftest import BPE_PATH, ENCODER_PATH

N_VOCAB = 40478


@pytest.fixture
def tiny(tmp_path):
    """(args, store) of a 2-layer, 32-wide BPE model on a few repeated sentences."""
    text = tmp_path / 'text.txt'
    text.write_text('the cat sat on the mat and looked at the old house near the river.\n' * 80, encoding='utf-8')
    args = pretrain.parse_args([
        '--data', str(text), '--n_layer', '2', '--n_embd', '32', '--n_head', '2', '--n_ctx', '16', '--n_batch', '4',
        '--valid_fraction', '0', '--cache_dir', str(tmp_path / 'cache'), '--save_dir', str(tmp_path),
        '--device', 'cpu', '--encoder_path', str(ENCODER_PATH), '--bpe_path', str(BPE_PATH), '--lr', '3e-3',
        '--warmup_updates', '1'])
    store = pretrain.load_corpus(args, pretrain.build_tokenizer(args), verbose=False)
    return args, store


def test_the_transformers_copy_gives_the_same_logits(tiny, tmp_path):
    args, store = tiny
    torch.manual_seed(0)
    ours = pretrain.build_model(args, N_VOCAB)
    hf = bench_pretrain.hf_copy(ours, N_VOCAB, str(tmp_path / 'hf'))
    assert bench_pretrain.logit_difference(ours, hf, args, store, N_VOCAB) < 1e-5
    with torch.no_grad():  # a changed weight shows: the check can fail
        hf.transformer.h[1].mlp.c_proj.weight.mul_(1.5)
    assert bench_pretrain.logit_difference(ours, hf, args, store, N_VOCAB) > 1e-3


def test_flops_per_token_is_the_formula_from_the_layer_shapes():
    for n_layer, d, n_head, n_ctx in ((12, 768, 12, 512), (2, 32, 2, 16)):
        sizes = dict(n_layer=n_layer, n_embd=d, n_head=n_head, n_ctx=n_ctx)
        model = pretrain.build_model(pretrain.PretrainConfig.from_flat({**pretrain.parse_args(['--data', '-']).flat(),
                                                                        **sizes})[0], N_VOCAB)
        # a block: c_attn d x 3d, c_proj d x d, c_fc d x 4d, mlp c_proj 4d x d (+ biases), two LayerNorms
        per_layer = (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d) + 2 * 2 * d
        expected = 6 * (n_layer * per_layer + d * N_VOCAB) + 12 * n_layer * n_ctx * d
        assert bench_pretrain.flops_per_token(model, N_VOCAB) == expected


def test_both_update_loops_train(tiny, tmp_path):
    args, store = tiny
    torch.manual_seed(0)
    ours = pretrain.build_model(args, N_VOCAB)
    hf = bench_pretrain.hf_copy(ours, N_VOCAB, str(tmp_path / 'hf'))
    opt_ours = pretrain.make_optimizer(args, ours, t_total=30)
    opt_hf = torch.optim.AdamW(hf.parameters(), lr=args.optimizer.lr, weight_decay=args.optimizer.l2)
    losses = {'ours': [], 'hf': []}
    for i in range(30):
        windows = pretrain.sample_windows(store['train'], args, i)
        losses['ours'].append(pretrain.train_update(ours, opt_ours, windows, N_VOCAB))
        losses['hf'].append(bench_pretrain.hf_update(hf, opt_hf, torch.as_tensor(windows[0])))
    for side, values in losses.items():
        assert np.mean(values[-5:]) < np.mean(values[:5]) - 1.0, side
    times = bench_pretrain.time_hf(hf, hf.state_dict(), args, store, n_updates=3, warmup=1)
    assert len(times) == 2 and all(t > 0 for t in times)
