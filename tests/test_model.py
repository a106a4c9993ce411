import argparse
import copy
import dataclasses
import json
import math
import os
import pickle

import numpy as np
import pytest
import torch

import model_pytorch as mp
import tf_checkpoint
import weights
from errors import ConfigError, InputError, MissingFileError
from loss import chunked_lm_loss
from model_pytorch import (DEFAULT_CONFIG, DoubleHeadModel, LMModel, ModelConfig, TransformerModel, dotdict,
                           load_openai_pretrained_model)
from tests.conftest import PARAMS_SHAPES_PATH
from tests.helpers import tf_shapes, write_tf_checkpoint

TINY = dotdict(DEFAULT_CONFIG, n_embd=16, n_head=4, n_layer=2)
N_VOCAB, N_SPECIAL, N_CTX = 50, 3, 12


def tiny_cfg(**kw):
    return dotdict(TINY, **kw)


def make_input(batch, t, vocab_rows, n_vocab, n_special, n_choices=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, t) if n_choices is None else (batch, n_choices, t)
    x = torch.zeros(*shape, 2, dtype=torch.long)
    x[..., 0] = torch.randint(0, n_vocab + n_special, shape, generator=g)
    x[..., 1] = n_vocab + n_special + torch.arange(t)
    return x


# ------------------------------------------------------------- numerics vs HF

def hf_openai(n_layer, n_embd, n_head, n_vocab, n_pos, afn='gelu'):
    transformers = pytest.importorskip('transformers')
    config = transformers.OpenAIGPTConfig(vocab_size=n_vocab, n_positions=n_pos, n_embd=n_embd, n_layer=n_layer,
                                          n_head=n_head, afn=afn, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                          layer_norm_epsilon=1e-5)
    torch.manual_seed(1)
    return transformers.OpenAIGPTLMHeadModel(config).eval()


def copy_hf_to_ours(hf, ours, n_vocab):
    """HF's separate token/position tables into our one matrix (n_special = 0)."""
    sd = hf.transformer.state_dict()
    with torch.no_grad():
        ours.embed.weight[:n_vocab] = sd['tokens_embed.weight']
        ours.embed.weight[n_vocab:] = sd['positions_embed.weight'][:ours.n_ctx]
        for name, p in ours.named_parameters():
            if name.startswith('h.'):
                hf_name = name[:-2] + ('.weight' if name.endswith(('.w', '.g')) else '.bias')
                p.copy_(sd[hf_name])


@pytest.mark.slow
@pytest.mark.parametrize('size', ['small', 'full'])
def test_matches_transformers_openai_gpt(size):
    if size == 'small':
        n_layer, n_embd, n_head, n_vocab, n_ctx, t = 3, 48, 4, 300, 40, 33
    else:
        n_layer, n_embd, n_head, n_vocab, n_ctx, t = 12, 768, 12, 40478, 512, 77
    hf = hf_openai(n_layer, n_embd, n_head, n_vocab, n_ctx)
    cfg = dotdict(DEFAULT_CONFIG, n_layer=n_layer, n_embd=n_embd, n_head=n_head)
    ours = LMModel(cfg, vocab=n_vocab + n_ctx, n_ctx=n_ctx).eval()
    copy_hf_to_ours(hf, ours.transformer, n_vocab)
    ids = torch.randint(0, n_vocab, (2, t), generator=torch.Generator().manual_seed(0))
    x = torch.stack([ids, n_vocab + torch.arange(t).expand(2, t)], dim=-1)
    with torch.no_grad():
        ref = hf(ids, output_hidden_states=True)
        for impl in mp.ATTN_IMPLS:
            ours.transformer.set_attention(impl)
            h = ours.transformer(x)
            logits = ours(x)
            torch.testing.assert_close(h, ref.hidden_states[-1], atol=1e-5, rtol=0)
            torch.testing.assert_close(logits[..., :n_vocab], ref.logits, atol=1e-5, rtol=0)


def test_layernorm_and_gelu_formulas():
    x = torch.randn(4, 7, dtype=torch.float64)
    ln = mp.LayerNorm(7).double()
    with torch.no_grad():
        ln.g.uniform_(0.5, 1.5)
        ln.b.uniform_(-1, 1)
    xn = x.numpy()
    mean = xn.mean(-1, keepdims=True)
    var = ((xn - mean) ** 2).mean(-1, keepdims=True)
    ref = (xn - mean) / np.sqrt(var + 1e-5) * ln.g.detach().numpy() + ln.b.detach().numpy()
    np.testing.assert_allclose(ln(x).detach().numpy(), ref, atol=1e-12)
    gelu_ref = 0.5 * xn * (1 + np.tanh(math.sqrt(2 / math.pi) * (xn + 0.044715 * xn ** 3)))
    np.testing.assert_allclose(mp.gelu(x).numpy(), gelu_ref, atol=1e-12)
    np.testing.assert_allclose(mp.swish(x).numpy(), xn / (1 + np.exp(-xn)), atol=1e-12)


def test_attention_matches_tf_masking_formula():
    """SDPA and the explicit path against TF's attention written out in numpy."""
    torch.manual_seed(0)
    attn = mp.Attention(16, 4, 0.0, 0.0).eval()
    x = torch.randn(2, 9, 16)
    xn = x.double().numpy()
    w_attn, b_attn = attn.c_attn.w.detach().double().numpy(), attn.c_attn.b.detach().double().numpy()
    q, k, v = np.split(xn @ w_attn + b_attn, 3, axis=-1)
    split = lambda a: a.reshape(2, 9, 4, 4).transpose(0, 2, 1, 3)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    w = q @ k.transpose(0, 1, 3, 2) / math.sqrt(4)
    b = np.tril(np.ones((9, 9)))
    w = w * b + -1e9 * (1 - b)
    w = np.exp(w - w.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    a = (w @ v).transpose(0, 2, 1, 3).reshape(2, 9, 16)
    ref = a @ attn.c_proj.w.detach().double().numpy() + attn.c_proj.b.detach().double().numpy()
    for impl in mp.ATTN_IMPLS:
        attn.impl = impl
        out, _ = attn(x)
        np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-6)


# ------------------------------------------------------------- shapes, dtypes

def test_shapes_choices_batch_of_one_and_short_context():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = DoubleHeadModel(TINY, clf_token=N_VOCAB + 2, task_head_type='multiple_choice', vocab=vocab,
                            n_ctx=N_CTX).eval()
    for batch, t in [(1, N_CTX), (3, 5), (1, 1 + 1)]:
        x = make_input(batch, t, vocab, N_VOCAB, N_SPECIAL, n_choices=2)
        x[..., -1, 0] = N_VOCAB + 2
        lm, clf = model(x)
        assert lm.shape == (batch * 2 * (t - 1), vocab)
        assert clf.shape == (batch, 2)
        assert model.transformer(x).shape == (batch * 2, t, 16)


def test_padding_after_a_sequence_changes_nothing_before_it():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = TransformerModel(TINY, vocab=vocab, n_ctx=N_CTX).eval()
    x = make_input(2, N_CTX, vocab, N_VOCAB, N_SPECIAL)
    torch.testing.assert_close(model(x)[:, :7], model(x[:, :7]), atol=1e-6, rtol=0)


def test_bfloat16_forward_close_to_float32():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = LMModel(TINY, vocab=vocab, n_ctx=N_CTX).eval()
    x = make_input(2, N_CTX, vocab, N_VOCAB, N_SPECIAL)
    ref = model(x)
    out = model.to(torch.bfloat16)(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason='needs CUDA; not yet run on a GPU (see docs/faithfulness.md, "Not verified")')
def test_cuda_matches_cpu():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = LMModel(TINY, vocab=vocab, n_ctx=N_CTX).eval()
    x = make_input(2, N_CTX, vocab, N_VOCAB, N_SPECIAL)
    ref = model(x)
    torch.testing.assert_close(model.cuda()(x.cuda()).cpu(), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('arch', ['gpt1', 'gpt2'])
def test_lm_targets_give_the_cross_entropy_of_the_logits(arch):
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = LMModel(tiny_cfg(arch=arch), vocab=vocab, n_ctx=N_CTX).eval()
    x = make_input(3, N_CTX, vocab, N_VOCAB, N_SPECIAL)
    targets = torch.nn.functional.pad(x[:, 1:, 0], (0, 1), value=-100)
    logits = model(x)
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    out = model(x, lm_targets=targets)
    grads = torch.autograd.grad(out, list(model.parameters()))
    assert abs(out.item() - ref.item()) < 1e-6
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    per = model(x, lm_targets=targets, reduction='none')
    assert per.shape == (3, N_CTX) and (per[:, -1] == 0).all()
    with pytest.raises(InputError, match='lm_targets: expected use_cache=False'):
        model(x, lm_targets=targets, use_cache=True)


def test_lm_targets_loss_reuses_one_buffer_outside_the_state_dict_and_pickles():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = LMModel(TINY, vocab=vocab, n_ctx=N_CTX).eval()
    x = make_input(3, N_CTX, vocab, N_VOCAB, N_SPECIAL)
    targets = torch.nn.functional.pad(x[:, 1:, 0], (0, 1), value=-100)
    model(x, lm_targets=targets)
    first = model.lm_loss_buffer.tensor
    out = model(x, lm_targets=targets)
    grads = torch.autograd.grad(out, list(model.parameters()))
    assert first is not None and model.lm_loss_buffer.tensor is first  # the second step wrote into the same buffer
    ref = chunked_lm_loss(model.transformer(x), model.transformer.embed.weight, targets)  # a fresh buffer
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    assert out.item() == ref.item()
    for got, want in zip(grads, ref_grads):
        assert torch.equal(got, want)
    assert not any('buffer' in key for key in model.state_dict())
    assert copy.deepcopy(model).lm_loss_buffer.tensor is None
    assert pickle.loads(pickle.dumps(model)).lm_loss_buffer.tensor is None


# ---------------------------------------------------------------- dropout masks

def test_int_dropout_keeps_1_minus_p_of_the_entries_scaled_and_passes_its_mask_back():
    x = torch.ones(1_000_000, requires_grad=True)
    y = mp.int_dropout(x, 0.1)
    kept = y != 0
    assert abs(kept.double().mean().item() - 0.9) < 5 * math.sqrt(0.9 * 0.1 / 1e6)
    assert torch.equal(y[kept], torch.full_like(y[kept], 1 / 0.9))
    y.backward(torch.full_like(y, 2.0))
    assert torch.equal(x.grad, 2.0 * y.detach())
    assert mp.int_dropout(x, 0.1, training=False) is x and mp.int_dropout(x, 0.0) is x
    y64 = mp.int_dropout(torch.ones(1000, dtype=torch.float64), 0.1)
    assert y64.dtype == torch.float64 and set(y64.tolist()) == {0.0, 1 / 0.9}  # the scale in float64 precision


def test_attention_with_int_dropout_equals_a_numpy_derivation_from_the_same_draws():
    attn = mp.Attention(16, 4, attn_pdrop=0.25, resid_pdrop=0.1)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 6, 4, generator=g) for _ in range(3))
    torch.manual_seed(7)
    y = attn.attend_int_dropout(q, k, v, mp.KeyMask(None, True))
    torch.manual_seed(7)
    draws = torch.empty(2, 4, 6, 6, dtype=torch.int32).random_().numpy().astype(np.int64)
    qn, kn, vn = (t.double().numpy() for t in (q, k, v))
    w = qn @ kn.swapaxes(-1, -2) / 2.0
    w = np.where(np.tril(np.ones((6, 6), dtype=bool)), w, -np.inf)
    w = np.exp(w - w.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    want = (w * np.where(draws < round(0.75 * 2 ** 31), 1 / 0.75, 0.0)) @ vn
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-6)


def test_int_dropout_masks_replace_every_bernoulli_draw_and_change_nothing_in_eval():
    from torch.profiler import ProfilerActivity, profile
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = LMModel(TINY, vocab=vocab, n_ctx=N_CTX)
    x = make_input(3, N_CTX, vocab, N_VOCAB, N_SPECIAL)
    ref = model.eval()(x)
    assert model.transformer.set_dropout_masks('int') is model.transformer
    torch.testing.assert_close(model(x), ref, rtol=0, atol=0)
    model.train()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x).sum().backward()
    names = {e.key for e in prof.key_averages()}
    assert 'aten::random_' in names and not any('bernoulli' in name for name in names)
    model.transformer.set_dropout_masks('bernoulli')
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x)
    assert any('bernoulli' in e.key for e in prof.key_averages())
    with pytest.raises(InputError, match=r"^dropout_masks='philox': expected one of bernoulli, int"):
        model.transformer.set_dropout_masks('philox')


def test_lm_mask_selects_rows_of_the_full_logits():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = DoubleHeadModel(TINY, N_VOCAB + 2, 'multiple_choice', vocab=vocab, n_ctx=N_CTX).eval()
    x = make_input(2, N_CTX, vocab, N_VOCAB, N_SPECIAL, n_choices=2)
    x[..., 8, 0] = N_VOCAB + 2
    mask = torch.zeros(x.shape[:-1], dtype=torch.bool)
    mask[..., :8] = True
    full, clf_full = model(x)
    part, clf_part = model(x, lm_mask=mask)
    rows = mask[..., :-1].reshape(-1)
    torch.testing.assert_close(part, full[rows], atol=1e-6, rtol=0)
    torch.testing.assert_close(clf_part, clf_full)


def test_lm_head_is_tied_and_probs_mask_special_and_position_rows():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = LMModel(TINY, vocab=vocab, n_ctx=N_CTX, return_probs=True, n_special=N_SPECIAL).eval()
    assert model.lm_head.decoder.weight is model.transformer.embed.weight
    probs = model(make_input(2, 5, vocab, N_VOCAB, N_SPECIAL))
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 5))
    assert probs[..., N_VOCAB:].max() == 0


def test_task_heads():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    clf = N_VOCAB + 2
    x3 = make_input(4, 6, vocab, N_VOCAB, N_SPECIAL)
    x3[..., 0][x3[..., 0] == clf] = 0
    x3[:, 4, 0] = clf
    x4 = torch.stack([x3, x3.flip(0)], dim=1)
    for head, x, shape in [(('classification', 5), x3, (4, 5)), ('inference', x3, (4, 3)),
                           ('similarity', x4, (4,)), (('similarity', 2), x4, (4, 2)),
                           ('multiple_choice', x4, (4, 2))]:
        model = DoubleHeadModel(TINY, clf, head, vocab=vocab, n_ctx=N_CTX).eval()
        _, logits = model(x)
        assert logits.shape == shape, head
    # the head reads the state at the classify token, nothing after it
    model = DoubleHeadModel(TINY, clf, ('classification', 2), vocab=vocab, n_ctx=N_CTX).eval()
    y = x3.clone()
    y[:, 5, 0] = 1
    torch.testing.assert_close(model(x3)[1], model(y)[1])


# ------------------------------------------------------------- dropout

def test_dropout_train_differs_from_eval():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = DoubleHeadModel(TINY, N_VOCAB + 2, 'multiple_choice', vocab=vocab, n_ctx=N_CTX)
    x = make_input(2, N_CTX, vocab, N_VOCAB, N_SPECIAL, n_choices=2)
    x[..., -1, 0] = N_VOCAB + 2
    model.eval()
    e1, e2 = model(x)[1], model(x)[1]
    torch.testing.assert_close(e1, e2)
    model.train()
    t1, t2 = model(x)[1], model(x)[1]
    assert not torch.allclose(t1, e1) and not torch.allclose(t1, t2)


def test_multiple_choice_dropout_mask_is_shared_by_choices():
    torch.manual_seed(0)
    head = mp.MultipleChoiceHead(clf_token=7, cfg=dotdict(TINY, clf_pdrop=0.5)).train()
    with torch.no_grad():
        head.clf.w.fill_(1.0)
        head.clf.b.zero_()
    B, C, T = 64, 3, 4
    x = torch.zeros(B, C, T, 2, dtype=torch.long)
    x[..., 2, 0] = 7
    h = torch.zeros(B * C, T, 16)
    h[:, 2] = 1.0  # every choice's clf state is all ones: logit = 2 * (number of kept units)
    logits = head(h, x)
    assert torch.equal(logits, logits[:, :1].expand(B, C)), 'choices of one example saw different masks'
    assert logits[:, 0].unique().numel() > 1, 'examples should get different masks'


def test_embedding_dropout_masks_rows_of_the_matrix():
    """TF drops entries of `we`: a token repeated in a batch gets one mask,
    while each position row gets its own (the earlier port masked the sums)."""
    torch.manual_seed(0)
    model = TransformerModel(dotdict(TINY, embd_pdrop=0.5), vocab=30, n_ctx=8).train()
    x = torch.zeros(2, 8, 2, dtype=torch.long)
    x[..., 0] = 3
    x[..., 1] = 22 + torch.arange(8)
    with torch.no_grad():
        model.embed.weight.zero_()
        model.embed.weight[3] = 1.0
    e = model.embed_input(x)
    assert torch.equal(e, e[:1, :1].expand_as(e)), 'one token row must get one mask everywhere'
    assert 0 < (e == 0).sum() < e.numel()
    with torch.no_grad():
        model.embed.weight.zero_()
        model.embed.weight[22:30] = 1.0
    e = model.embed_input(x)
    assert torch.equal(e[0], e[1]), 'a position row is one row of the matrix in every sequence'
    assert not torch.equal(e[0], e[0, :1].expand(8, 16)), 'different position rows get different masks'


# ------------------------------------------------------------- checkpoint loader

def tiny_checkpoint(tmp_path, n_layer=2, n_embd=16, n_vocab=N_VOCAB, seed=0):
    path = tmp_path / 'model'
    arrays = write_tf_checkpoint(path, tf_shapes(n_layer, n_embd, n_vocab), seed=seed)
    return str(path), arrays


def test_tf_variable_names_follow_from_the_layer_count():
    names = tf_checkpoint.tf_variable_names(12)
    assert len(names) == 1 + 12 * 12
    assert names[:3] == ['model/we:0', 'model/h0/attn/c_attn/w:0', 'model/h0/attn/c_attn/b:0']
    assert names[-1] == 'model/h11/ln_2/b:0'
    assert tf_checkpoint.tf_to_torch_name('model/h3/mlp/c_proj/w:0') == 'h.3.mlp.c_proj.w'


@pytest.mark.parametrize('n_ctx,n_special', [(N_CTX, N_SPECIAL), (5, 0)])
def test_loader_puts_every_value_where_it_belongs(tmp_path, n_ctx, n_special):
    path, arrays = tiny_checkpoint(tmp_path)
    model = TransformerModel(TINY, vocab=N_VOCAB + n_special + n_ctx, n_ctx=n_ctx)
    special_before = model.embed.weight[N_VOCAB:N_VOCAB + n_special].detach().clone()
    load_openai_pretrained_model(model, n_ctx=n_ctx, n_special=n_special, n_transfer=2, n_embd=16, path=path)
    emb = model.embed.weight.detach().numpy()
    np.testing.assert_array_equal(emb[:N_VOCAB], arrays[1])
    np.testing.assert_array_equal(emb[N_VOCAB + n_special:], arrays[0][:n_ctx])  # positions cropped
    torch.testing.assert_close(model.embed.weight[N_VOCAB:N_VOCAB + n_special], special_before)
    params = dict(model.named_parameters())
    for i, (tf_name, array) in enumerate(zip(tf_checkpoint.tf_variable_names(2)[1:], arrays[2:])):
        got = params[tf_checkpoint.tf_to_torch_name(tf_name)].detach().numpy()
        np.testing.assert_array_equal(got, array.reshape(got.shape), err_msg=tf_name)
        if array.ndim == 3:
            np.testing.assert_array_equal(got, array[0])


def test_loader_n_transfer_and_wrapped_models(tmp_path):
    path, arrays = tiny_checkpoint(tmp_path)
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = DoubleHeadModel(TINY, N_VOCAB + 2, 'multiple_choice', vocab=vocab, n_ctx=N_CTX)
    h1_before = model.transformer.h[1].attn.c_attn.w.detach().clone()
    h0_before = model.transformer.h[0].attn.c_attn.w.detach().clone()
    load_openai_pretrained_model(model, n_ctx=N_CTX, n_special=N_SPECIAL, n_transfer=1, n_embd=16, path=path)
    np.testing.assert_array_equal(model.transformer.h[0].attn.c_attn.w.detach().numpy(), arrays[2][0])
    assert not torch.equal(model.transformer.h[0].attn.c_attn.w, h0_before)
    torch.testing.assert_close(model.transformer.h[1].attn.c_attn.w, h1_before)
    # embeddings only
    model = LMModel(TINY, vocab=vocab, n_ctx=N_CTX)
    before = model.transformer.h[0].ln_1.g.detach().clone()
    load_openai_pretrained_model(model, n_special=N_SPECIAL, n_transfer=-1, n_embd=16, path=path)
    np.testing.assert_array_equal(model.transformer.embed.weight[:N_VOCAB].detach().numpy(), arrays[1])
    torch.testing.assert_close(model.transformer.h[0].ln_1.g, before)
    assert model.lm_head.decoder.weight is model.transformer.embed.weight  # tying survives loading
    assert weights.load_pretrained(model, path, n_transfer=2) == 'tf'


@pytest.mark.slow
def test_loader_at_the_full_real_shapes(tmp_path):
    shapes = [tuple(s) for s in json.loads(PARAMS_SHAPES_PATH.read_text())]
    assert sum(math.prod(s) for s in shapes) == 116_534_784
    path = tmp_path / 'model'
    arrays = write_tf_checkpoint(path, shapes, seed=3)
    (path / 'params_shapes.json').write_text(PARAMS_SHAPES_PATH.read_text())  # the real file, byte for byte
    model = DoubleHeadModel(DEFAULT_CONFIG, 40480, 'multiple_choice', vocab=40478 + 3 + 77, n_ctx=77)
    load_openai_pretrained_model(model.transformer, n_ctx=77, n_special=3, path=str(path))
    t = model.transformer
    np.testing.assert_array_equal(t.embed.weight[:40478].detach().numpy(), arrays[1])
    np.testing.assert_array_equal(t.embed.weight[40481:].detach().numpy(), arrays[0][:77])
    for i in (0, 5, 11):
        base = 2 + 12 * i
        np.testing.assert_array_equal(t.h[i].attn.c_attn.w.detach().numpy(), arrays[base][0])
        np.testing.assert_array_equal(t.h[i].mlp.c_proj.w.detach().numpy(), arrays[base + 8][0])
        np.testing.assert_array_equal(t.h[i].ln_2.b.detach().numpy(), arrays[base + 11])
    del arrays


# ------------------------------------------------------------- bad input

def test_missing_folder_and_shards(tmp_path):
    model = TransformerModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    with pytest.raises(FileNotFoundError, match=r"nowhere.*does not exist.*finetune-transformer-lm"):
        load_openai_pretrained_model(model, path=str(tmp_path / 'nowhere'), n_embd=16)
    with pytest.raises(FileNotFoundError, match=r"params_shapes.json is missing.*finetune-transformer-lm"):
        load_openai_pretrained_model(model, path=str(tmp_path), n_embd=16)
    path, _ = tiny_checkpoint(tmp_path)
    os.remove(os.path.join(path, 'params_7.npy'))
    with pytest.raises(FileNotFoundError, match=r"params_7.npy is missing.*finetune-transformer-lm"):
        load_openai_pretrained_model(model, path=path, n_embd=16, n_transfer=2)


def test_wrong_size_and_corrupt_shards(tmp_path):
    model = TransformerModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    path, _ = tiny_checkpoint(tmp_path)
    np.save(os.path.join(path, 'params_3.npy'), np.zeros(10, np.float32))
    with pytest.raises(mp.CheckpointError,
                       match=r"hold \d+ floats but params_shapes.json expects \d+.*params_3.npy: 10"):
        load_openai_pretrained_model(model, path=path, n_embd=16, n_transfer=2)
    with open(os.path.join(path, 'params_3.npy'), 'wb') as f:
        f.write(b'not a numpy file')
    with pytest.raises(mp.CheckpointError, match=r"params_3.npy is not a valid .npy file"):
        load_openai_pretrained_model(model, path=path, n_embd=16, n_transfer=2)
    np.save(os.path.join(path, 'params_3.npy'), np.zeros((2, 2), np.float64))
    with pytest.raises(mp.CheckpointError, match=r"params_3.npy holds a float64 array of shape \(2, 2\)"):
        load_openai_pretrained_model(model, path=path, n_embd=16, n_transfer=2)


def test_truncated_shard_data(tmp_path):
    model = TransformerModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    path, _ = tiny_checkpoint(tmp_path)
    shard = os.path.join(path, 'params_9.npy')
    data = open(shard, 'rb').read()
    open(shard, 'wb').write(data[:-40])
    with pytest.raises(mp.CheckpointError, match=r"params_9.npy is not a valid .npy file: mmap length"):
        load_openai_pretrained_model(model, path=path, n_embd=16, n_transfer=2)


def test_checkpoint_that_does_not_fit_the_model(tmp_path):
    path, _ = tiny_checkpoint(tmp_path, n_embd=16)
    wide = TransformerModel(dotdict(TINY, n_embd=32), vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    with pytest.raises(mp.CheckpointError, match=r"width 16.*n_embd=16.*model has 32"):
        load_openai_pretrained_model(wide, path=path, n_embd=16, n_transfer=2)
    wider_mlp = TransformerModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    wider_mlp.h[0].mlp.c_fc.w = torch.nn.Parameter(torch.zeros(16, 48))
    with pytest.raises(mp.CheckpointError,
                       match=r"h.0.mlp.c_fc.w has shape \(16, 64\).*parameter has shape \(16, 48\)"):
        load_openai_pretrained_model(wider_mlp, path=path, n_embd=16, n_transfer=2)
    odd_vocab = TransformerModel(TINY, vocab=N_VOCAB + N_CTX - 1, n_ctx=N_CTX)
    with pytest.raises(mp.CheckpointError, match=r"embed.weight: the model has 61 rows"):
        load_openai_pretrained_model(odd_vocab, path=path, n_special=0, n_embd=16, n_transfer=2)


def test_bad_arguments(tmp_path):
    path, _ = tiny_checkpoint(tmp_path)
    model = TransformerModel(TINY, vocab=N_VOCAB + 600, n_ctx=600)
    with pytest.raises(ValueError, match=r"n_ctx=600 exceeds the 512 positions"):
        load_openai_pretrained_model(model, path=path, n_embd=16, n_transfer=2)
    model = TransformerModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    with pytest.raises(ValueError, match=r"n_transfer=3.*2 layers"):
        load_openai_pretrained_model(model, path=path, n_transfer=3, n_embd=16)
    with pytest.raises(ValueError, match=r"task_head_type='ranking' is not one of"):
        DoubleHeadModel(TINY, 5, 'ranking', vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    with pytest.raises(ValueError, match=r"task_head_type=\('classification', 0\)"):
        DoubleHeadModel(TINY, 5, ('classification', 0), vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    with pytest.raises(ValueError, match=r"input of shape \(2, 7\): expected \(batch, n_ctx, 2\)"):
        model(torch.zeros(2, 7, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input of shape \(2, 7, 3\)"):
        model(torch.zeros(2, 7, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"afn='elu'"):
        TransformerModel(dotdict(TINY, afn='elu'), vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    head = mp.MultipleChoiceHead(7, TINY)
    with pytest.raises(ValueError, match=r"no classify token \(id 7\)"):
        head(torch.zeros(2, 4, 16), torch.zeros(1, 2, 4, 2, dtype=torch.long))


# ------------------------------------------------------------- defaults from the model

def test_tf_loader_takes_depth_and_width_from_the_model(tmp_path):
    path, arrays = tiny_checkpoint(tmp_path)  # 2 layers, width 16
    torch.manual_seed(0)
    model = LMModel(TINY, vocab=N_VOCAB + N_SPECIAL + N_CTX, n_ctx=N_CTX)
    load_openai_pretrained_model(model, n_special=N_SPECIAL, path=path)  # no n_transfer, no n_embd
    params = dict(model.transformer.named_parameters())
    for tf_name, array in zip(tf_checkpoint.tf_variable_names(2)[1:], arrays[2:]):
        got = params[tf_checkpoint.tf_to_torch_name(tf_name)].detach().numpy()
        np.testing.assert_array_equal(got, array.reshape(got.shape), err_msg=tf_name)
    torch.manual_seed(0)  # the same random special rows
    other = LMModel(TINY, vocab=N_VOCAB + N_SPECIAL + N_CTX, n_ctx=N_CTX)
    assert weights.load_pretrained(other, path, n_special=N_SPECIAL) == 'tf'
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    load_openai_pretrained_model(other, n_special=N_SPECIAL, path=path, n_embd=16)  # the right width is accepted
    with pytest.raises(InputError, match=r"^n_embd=32: the model's width is 16"):
        load_openai_pretrained_model(other, n_special=N_SPECIAL, path=path, n_embd=32)


def test_tf_loader_default_depth_against_deeper_and_shallower_checkpoints(tmp_path):
    path, arrays = tiny_checkpoint(tmp_path)  # 2 layers
    vocab = N_VOCAB + N_CTX
    deeper = TransformerModel(dotdict(TINY, n_layer=3), vocab=vocab, n_ctx=N_CTX)
    with pytest.raises(mp.CheckpointError, match=r"the model has 3 layers but .* holds 2: pass n_transfer=2"):
        load_openai_pretrained_model(deeper, path=path)
    load_openai_pretrained_model(deeper, path=path, n_transfer=2)
    np.testing.assert_array_equal(deeper.h[1].ln_2.b.detach().numpy(), arrays[2 + 12 + 11])
    shallower = TransformerModel(dotdict(TINY, n_layer=1), vocab=vocab, n_ctx=N_CTX)
    load_openai_pretrained_model(shallower, path=path)  # its one layer, from the checkpoint's first
    np.testing.assert_array_equal(shallower.h[0].mlp.c_fc.w.detach().numpy(), arrays[2 + 6][0])
    with pytest.raises(InputError, match=r"n_transfer='2': expected an integer"):
        load_openai_pretrained_model(shallower, path=path, n_transfer='2')


# ------------------------------------------------------------- non-finite values

def corrupt_flat(path, positions, values):
    """Set the values at these positions of the shards' concatenation; returns {shard path: count}."""
    shards = [np.load(os.path.join(path, f'params_{i}.npy')) for i in range(10)]
    starts = np.cumsum([0] + [len(s) for s in shards])
    hit = {}
    for pos, v in zip(positions, values):
        k = int(np.searchsorted(starts, pos, side='right')) - 1
        shards[k][pos - starts[k]] = v
        p = os.path.join(path, f'params_{k}.npy')
        hit[p] = hit.get(p, 0) + 1
    for k, s in enumerate(shards):
        np.save(os.path.join(path, f'params_{k}.npy'), s)
    return hit


def array_offset(shapes, i):
    return sum(math.prod(s) for s in shapes[:i])


@pytest.mark.parametrize('where', ['one shard', 'across shards'])
def test_tf_loader_refuses_nan_and_inf_naming_shard_and_variable(tmp_path, where):
    shapes = tf_shapes(2, 16, N_VOCAB)
    path, _ = tiny_checkpoint(tmp_path)
    i = 2 + 12 + 6  # model/h1/mlp/c_fc/w:0, (1, 16, 64)
    start = array_offset(shapes, i)
    if where == 'one shard':
        positions = [start + 3, start + 10, start + 500]
    else:  # straddle the boundary of two shards that the array spans
        sizes = [len(np.load(os.path.join(path, f'params_{k}.npy'), mmap_mode='r')) for k in range(10)]
        boundary = next(b for b in np.cumsum(sizes) if start < b < start + 1024)
        positions = [boundary - 2, boundary - 1, boundary]
    hit = corrupt_flat(path, positions, [np.nan, np.inf, -np.inf])
    assert (len(hit) == 1) == (where == 'one shard')
    model = TransformerModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(mp.CheckpointError) as info:
        load_openai_pretrained_model(model, path=path, n_transfer=2, n_embd=16)
    msg = str(info.value)
    assert 'model/h1/mlp/c_fc/w:0 (h.1.mlp.c_fc.w) holds 3 non-finite values (NaN or inf) of 1024' in msg, msg
    assert all(p in msg for p in hit) and '\n' not in msg
    if where == 'across shards':
        assert ', '.join(f'{c} in {os.path.basename(p)}' for p, c in hit.items()) in msg
    assert all(torch.equal(p, before[n]) for n, p in model.state_dict().items()), 'a failed load changed the model'
    # only what is copied is checked: the first layer alone loads
    load_openai_pretrained_model(model, path=path, n_transfer=1, n_embd=16)


def test_tf_loader_checks_only_the_position_rows_it_keeps(tmp_path):
    shapes = tf_shapes(2, 16, N_VOCAB)
    path, _ = tiny_checkpoint(tmp_path)
    corrupt_flat(path, [N_CTX * 16 + 5], [np.nan])  # position row N_CTX: beyond the model's n_ctx
    model = TransformerModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    load_openai_pretrained_model(model, path=path, n_transfer=2, n_embd=16)
    assert torch.isfinite(model.embed.weight).all()
    wider = TransformerModel(TINY, vocab=N_VOCAB + N_CTX + 1, n_ctx=N_CTX + 1)
    with pytest.raises(mp.CheckpointError, match=r"params_0\.npy: model/we:0 \(embed.weight \(position rows\)\) "
                                                 r"holds 1 non-finite"):
        load_openai_pretrained_model(wider, path=path, n_transfer=2, n_embd=16)
    corrupt_flat(path, [array_offset(shapes, 1) + 7], [np.nan])
    with pytest.raises(mp.CheckpointError, match=r"model/we:0 \(embed.weight \(token rows\)\) holds 1 non-finite"):
        load_openai_pretrained_model(model, path=path, n_transfer=2, n_embd=16)


# ------------------------------------------------------------- ModelConfig

def test_model_config_round_trips_through_json_and_defaults_to_gpt1():
    cfg = ModelConfig(n_embd=16, n_head=4, n_layer=2, arch='gpt2', causal=False, attn_impl='explicit')
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert ModelConfig.from_any(DEFAULT_CONFIG) == ModelConfig()
    assert (ModelConfig().n_embd, ModelConfig().arch, ModelConfig().causal) == (768, 'gpt1', True)


def test_model_config_from_dict_refuses_unknown_keys_and_from_any_reads_a_namespace_fields_only():
    with pytest.raises(ConfigError, match=r"^n_hed=4: expected a field of ModelConfig \(n_embd, n_head, "):
        ModelConfig.from_any(dotdict(DEFAULT_CONFIG, n_hed=4))
    args = argparse.Namespace(n_embd=16, n_head=2, n_layer=1, lr=6.25e-5, dataset='rocstories')
    assert ModelConfig.from_any(args) == ModelConfig(n_embd=16, n_head=2, n_layer=1)
    cfg = ModelConfig(n_embd=16, n_head=2)
    assert ModelConfig.from_any(cfg) is cfg
    with pytest.raises(TypeError, match='expected a ModelConfig'):
        ModelConfig.from_any([('n_embd', 16)])


def test_model_config_field_metadata_gives_help_and_choices():
    for f in dataclasses.fields(ModelConfig):
        assert f.metadata['help'], f.name
    assert {f.name: f.metadata.get('choices') for f in dataclasses.fields(ModelConfig) if 'choices' in f.metadata} == \
        {'afn': ('gelu', 'relu', 'swish'), 'arch': ('gpt1', 'gpt2'), 'attn_impl': ('sdpa', 'explicit'),
         'dropout_masks': ('bernoulli', 'int')}
    assert set(mp.ACT_FNS) == set(mp.AFNS)


def test_models_keep_their_config_and_dotdict_refuses_a_missing_key():
    model = DoubleHeadModel(TINY, N_VOCAB, 'multiple_choice', vocab=N_VOCAB + N_SPECIAL + N_CTX, n_ctx=N_CTX)
    assert model.config == ModelConfig.from_any(TINY) and model.config is model.transformer.config
    model.transformer.set_attention('explicit').set_dropout_masks('int')
    assert (model.config.attn_impl, model.config.dropout_masks) == ('explicit', 'int')
    with pytest.raises(AttributeError, match="n_hed"):
        TINY.n_hed
    with pytest.raises(ConfigError, match=r"^vocab=12: expected an integer above n_ctx=12"):
        ModelConfig().check_sizes(N_CTX, N_CTX)


# ------------------------------------------------------------- the error family

@pytest.mark.parametrize('field, value, message', [
    ('n_layer', -1, 'n_layer=-1: expected a positive integer, the number of blocks'),
    ('n_layer', 0, 'n_layer=0: expected a positive integer, the number of blocks'),
    ('n_embd', 0, 'n_embd=0: expected a positive integer, the width of the hidden states'),
    ('n_head', 0, 'n_head=0: expected a positive integer, the number of attention heads'),
    ('n_head', 5, 'n_head=5: expected a divisor of n_embd 768'),
    ('embd_pdrop', 1.5, 'embd_pdrop=1.5: expected a dropout probability in [0, 1)'),
    ('attn_pdrop', -0.1, 'attn_pdrop=-0.1: expected a dropout probability in [0, 1)'),
    ('resid_pdrop', 1.0, 'resid_pdrop=1.0: expected a dropout probability in [0, 1)'),
    ('clf_pdrop', 1.5, 'clf_pdrop=1.5: expected a dropout probability in [0, 1)'),
    ('afn', 'elu', "afn='elu': expected one of gelu, relu, swish"),
    ('attn_impl', 'flash', "attn_impl='flash': expected one of sdpa, explicit"),
    ('arch', 'gpt3', "arch='gpt3': expected one of gpt1, gpt2"),
])
def test_bad_configuration_is_refused_at_construction(field, value, message):
    cfg = dotdict(DEFAULT_CONFIG, **{field: value})
    with pytest.raises(InputError) as info:
        DoubleHeadModel(cfg, 40480, 'multiple_choice', vocab=40478 + 3 + 77, n_ctx=77)
    assert str(info.value) == message


@pytest.mark.parametrize('kw, message', [
    (dict(n_ctx=0), 'n_ctx=0: expected a positive integer, the number of positions'),
    (dict(vocab=0), 'vocab=0: expected an integer above n_ctx=12'),
    (dict(vocab=N_CTX), f'vocab={N_CTX}: expected an integer above n_ctx={N_CTX}'),
    (dict(n_special=-2), 'n_special=-2: expected 0 up to vocab - n_ctx - 1'),
    (dict(n_special=N_VOCAB + 3), 'n_special=53: expected 0 up to vocab - n_ctx - 1 = 52'),
])
def test_bad_sizes_are_refused_at_construction(kw, message):
    args = {**dict(vocab=N_VOCAB + N_SPECIAL + N_CTX, n_ctx=N_CTX, n_special=N_SPECIAL), **kw}
    with pytest.raises(InputError, match='^' + message.replace('(', r'\(').replace(')', r'\)')):
        LMModel(TINY, **args)


def test_bad_clf_token_and_direct_module_arguments():
    with pytest.raises(InputError, match=r"^clf_token=62: expected a token id in 0\.\.52"):
        DoubleHeadModel(TINY, N_VOCAB + N_SPECIAL + N_CTX - 3, 'multiple_choice', vocab=N_VOCAB + N_SPECIAL + N_CTX,
                        n_ctx=N_CTX)
    with pytest.raises(InputError, match=r"^n_head=0: expected a positive integer"):
        mp.Attention(16, 0, 0.1, 0.1)
    with pytest.raises(InputError, match=r"^n_head=5: expected a divisor of n_embd 16"):
        mp.Attention(16, 5, 0.1, 0.1)
    with pytest.raises(InputError, match=r"^clf_pdrop=1: expected a dropout probability"):
        mp.MultipleChoiceHead(7, dotdict(TINY, clf_pdrop=1))
    model = TransformerModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    with pytest.raises(InputError, match=r"^attn_impl='flash'"):
        model.set_attention('flash')
    with pytest.raises(InputError, match=r"more than the model's n_ctx=12"):
        model(torch.zeros(1, N_CTX + 1, 2, dtype=torch.long))


def test_loader_errors_belong_to_the_family(tmp_path):
    model = TransformerModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    with pytest.raises(MissingFileError, match='does not exist'):
        load_openai_pretrained_model(model, path=str(tmp_path / 'nowhere'))
    with pytest.raises(MissingFileError, match='params_shapes.json is missing'):
        load_openai_pretrained_model(model, path=str(tmp_path))
    with pytest.raises(MissingFileError, match='holds no checkpoint'):
        weights.load_pretrained(model, str(tmp_path))
    path, _ = tiny_checkpoint(tmp_path)
    with pytest.raises(InputError, match=r"n_transfer=3: expected -1"):
        load_openai_pretrained_model(model, path=path, n_transfer=3)
    with pytest.raises(InputError, match=r"n_ctx=600 exceeds the 512 positions"):
        load_openai_pretrained_model(TransformerModel(TINY, vocab=N_VOCAB + 600, n_ctx=600), path=path)
    os.remove(os.path.join(path, 'params_7.npy'))
    with pytest.raises(MissingFileError, match='params_7.npy is missing'):
        load_openai_pretrained_model(model, path=path)


# ------------------------------------------------------------- state dicts and the tied LM head

def _models():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    return [lambda: LMModel(TINY, vocab=vocab, n_ctx=N_CTX),
            lambda: DoubleHeadModel(TINY, N_VOCAB + 2, 'multiple_choice', vocab=vocab, n_ctx=N_CTX)]


def _assert_same_values(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize('make', _models(), ids=['LMModel', 'DoubleHeadModel'])
def test_state_dict_loads_with_or_without_the_tied_lm_head(make, tmp_path):
    from safetensors.torch import load_file, save_file
    torch.manual_seed(0)
    src = make()
    torch.manual_seed(1)  # every model made below starts from other weights
    keys = list(src.state_dict())
    assert 'lm_head.decoder.weight' in keys and 'transformer.embed.weight' in keys  # state_dict() as before
    # as train.py saves: without the tied copy, through safetensors (which refuses shared tensors)
    saved = {k: v.contiguous() for k, v in src.state_dict().items() if k != 'lm_head.decoder.weight'}
    save_file(saved, str(tmp_path / 'best_params.safetensors'))
    loaded = load_file(str(tmp_path / 'best_params.safetensors'))
    for state in [loaded,  # without the tied key
                  {k: v.clone() for k, v in src.state_dict().items()},  # with it, as a separate equal copy
                  src.state_dict()]:  # with it, sharing storage
        dst = make()
        result = dst.load_state_dict(state)  # strict=True
        assert result.missing_keys == [] and result.unexpected_keys == []
        _assert_same_values(dst, src)
        assert dst.lm_head.decoder.weight is dst.transformer.embed.weight
    assert 'lm_head.decoder.weight' not in loaded  # the caller's dict is left as it was
    dst = make()
    dst.load_state_dict(load_file(str(tmp_path / 'best_params.safetensors')), assign=True)
    assert dst.lm_head.decoder.weight is dst.transformer.embed.weight
    _assert_same_values(dst, src)
    # still strict about everything else
    partial = dict(saved)
    del partial['transformer.h.0.ln_1.g']
    with pytest.raises(RuntimeError, match=r'Missing key\(s\).*transformer\.h\.0\.ln_1\.g'):
        make().load_state_dict(partial)
    assert make().load_state_dict(partial, strict=False).missing_keys == ['transformer.h.0.ln_1.g']


@pytest.mark.parametrize('make', _models(), ids=['LMModel', 'DoubleHeadModel'])
def test_a_tied_copy_that_differs_from_the_embedding_is_refused(make):
    state = {k: v.clone() for k, v in make().state_dict().items()}
    state['lm_head.decoder.weight'][0, 0] += 1
    dst = make()
    with pytest.raises(mp.CheckpointError, match=r"lm_head\.decoder\.weight differs from transformer\.embed\.weight"):
        dst.load_state_dict(state)
    with pytest.raises(mp.CheckpointError, match=r"lm_head\.decoder\.weight differs"):
        dst.load_state_dict(state, strict=False)


def test_tied_loading_inside_a_wrapper():
    src = LMModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    wrapper = torch.nn.ModuleDict({'module': LMModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)})
    state = {'module.' + k: v for k, v in src.state_dict().items() if k != 'lm_head.decoder.weight'}
    wrapper.load_state_dict(state)
    _assert_same_values(wrapper['module'], src)
    assert wrapper['module'].lm_head.decoder.weight is wrapper['module'].transformer.embed.weight


def test_loaders_draw_no_progress_bar(tmp_path, capfd):
    path, _ = tiny_checkpoint(tmp_path)
    model = LMModel(TINY, vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    capfd.readouterr()
    load_openai_pretrained_model(model, path=path, n_transfer=2, n_embd=16)
    list(tf_checkpoint.iter_checkpoint_arrays(path))
    assert capfd.readouterr() == ('', '')


# ------------------------------------------------------------- GPT-2's block layout

def test_gpt2_block_is_pre_layernorm_with_a_final_layernorm():
    """arch='gpt2' against the formula written out: n = x + attn(ln_1(x)), h = n + mlp(ln_2(n)),
    ln_f after the last block; every LayerNorm and bias random so misplacing one shows."""
    torch.manual_seed(0)
    model = TransformerModel(tiny_cfg(arch='gpt2', embd_pdrop=0, attn_pdrop=0, resid_pdrop=0),
                             vocab=N_VOCAB + N_SPECIAL + N_CTX, n_ctx=N_CTX).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = make_input(2, N_CTX, model.vocab, N_VOCAB, N_SPECIAL)

    def ln(t, m):
        mu = t.mean(-1, keepdim=True)
        return (t - mu) / torch.sqrt(((t - mu) ** 2).mean(-1, keepdim=True) + 1e-5) * m.g + m.b

    def attn(t, a):
        q, k, v = (t @ a.c_attn.w + a.c_attn.b).split(t.size(-1), dim=-1)
        heads = [z.view(*z.shape[:2], a.n_head, -1).transpose(1, 2) for z in (q, k, v)]
        w = heads[0] @ heads[1].transpose(-1, -2) / math.sqrt(heads[0].size(-1))
        w = w.masked_fill(~torch.ones(N_CTX, N_CTX, dtype=torch.bool).tril(), float('-inf'))
        y = (w.softmax(-1) @ heads[2]).transpose(1, 2).reshape(t.shape)
        return y @ a.c_proj.w + a.c_proj.b

    def mlp(t, m):
        h = t @ m.c_fc.w + m.c_fc.b
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
        return h @ m.c_proj.w + m.c_proj.b

    with torch.no_grad():
        h = model.embed.weight[x[..., 0]] + model.embed.weight[x[..., 1]]
        for block in model.h:
            n = h + attn(ln(h, block.ln_1), block.attn)
            h = n + mlp(ln(n, block.ln_2), block.mlp)
        torch.testing.assert_close(model(x), ln(h, model.ln_f), atol=1e-5, rtol=0)


@pytest.mark.slow
def test_gpt2_initialises_residual_projections_smaller_and_gpt1_is_unchanged():
    torch.manual_seed(0)
    gpt1 = TransformerModel(DEFAULT_CONFIG, vocab=40478 + 512, n_ctx=512)
    torch.manual_seed(0)
    default = TransformerModel(dotdict(DEFAULT_CONFIG, arch='gpt1'), vocab=40478 + 512, n_ctx=512)
    assert all(torch.equal(a, b) for a, b in zip(gpt1.state_dict().values(), default.state_dict().values()))
    assert 'ln_f.g' not in gpt1.state_dict() and gpt1.arch == 'gpt1'
    gpt2 = TransformerModel(dotdict(DEFAULT_CONFIG, arch='gpt2'), vocab=40478 + 512, n_ctx=512)
    std = 0.02 / math.sqrt(2 * 12)
    for name in ('attn.c_proj.w', 'mlp.c_proj.w'):
        w = torch.cat([dict(b.named_parameters())[name].flatten() for b in gpt2.h])
        assert abs(w.std().item() - std) < 0.02 * std, name  # millions of draws: within 2%
    assert abs(gpt2.h[0].attn.c_attn.w.std().item() - 0.02) < 0.0004
    assert set(gpt2.state_dict()) - set(gpt1.state_dict()) == {'ln_f.g', 'ln_f.b'}


def test_gpt2_cached_decoding_equals_the_full_forward():
    torch.manual_seed(0)
    model = LMModel(tiny_cfg(arch='gpt2'), vocab=N_VOCAB + N_SPECIAL + N_CTX, n_ctx=N_CTX).eval()
    x = make_input(2, N_CTX, model.transformer.vocab, N_VOCAB, N_SPECIAL)
    with torch.no_grad():
        full = model(x)
        head, past = model(x[:, :7], use_cache=True)
        tail, _ = model(x[:, 7:], past=past, use_cache=True)
    torch.testing.assert_close(torch.cat([head, tail], dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize('arch', ['gpt1', 'gpt2'])
def test_preallocated_cache_decodes_as_the_concatenated_past(arch):
    torch.manual_seed(0)
    model = LMModel(tiny_cfg(arch=arch), vocab=N_VOCAB + N_SPECIAL + N_CTX, n_ctx=N_CTX).eval()
    x = make_input(2, N_CTX, model.transformer.vocab, N_VOCAB, N_SPECIAL)
    cache = model.transformer.new_cache(2)
    d = model.transformer.n_embd // 4
    assert [layer.k.shape for layer in cache] == [(2, 4, N_CTX, d)] * len(model.transformer.h)
    with torch.no_grad():
        full = model(x)
        steps, past = [], None
        out, cache = model(x[:, :7], past=cache, use_cache=True)
        steps.append(out)
        for t in range(7, N_CTX):  # one token a step, as generate feeds it
            out, cache = model(x[:, t:t + 1], past=cache, use_cache=True)
            steps.append(out)
        head, past = model(x[:, :7], use_cache=True)
        tail, _ = model(x[:, 7:8], past=past, use_cache=True)
    assert all(isinstance(layer, mp.LayerCache) and layer.length == N_CTX for layer in cache)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=0)
    torch.testing.assert_close(steps[1], tail, atol=1e-6, rtol=0)
    with pytest.raises(InputError, match=rf'{N_CTX + 1} positions in a key/value cache made for {N_CTX}'):
        model(x[:, :1], past=cache, use_cache=True)


# ------------------------------------------------------------- bidirectional attention (causal=False)

def numpy_attention(attn, x, allowed):
    """One Attention module written out in numpy (float64); allowed (B, T, T) 0/1."""
    B, T, C = x.shape
    xn = x.double().numpy()
    q, k, v = np.split(xn @ attn.c_attn.w.detach().double().numpy() + attn.c_attn.b.detach().double().numpy(), 3,
                       axis=-1)
    split = lambda a: a.reshape(B, T, attn.n_head, -1).transpose(0, 2, 1, 3)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    w = q @ k.transpose(0, 1, 3, 2) / math.sqrt(C // attn.n_head)
    w = np.where(allowed[:, None] > 0, w, -np.inf)
    w = np.exp(w - w.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    a = (w @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
    return a @ attn.c_proj.w.detach().double().numpy() + attn.c_proj.b.detach().double().numpy()


def test_bidirectional_attention_matches_unmasked_attention_in_numpy():
    torch.manual_seed(0)
    attn = mp.Attention(16, 4, 0.0, 0.0, causal=False).eval()
    x = torch.randn(2, 9, 16)
    key_mask = torch.ones(2, 9, dtype=torch.bool)
    key_mask[1, 6:] = False  # the second sequence has 6 real tokens
    every = np.ones((2, 9, 9))
    real = np.broadcast_to(key_mask.numpy()[:, None, :], (2, 9, 9)) | np.eye(9, dtype=bool)
    for impl in mp.ATTN_IMPLS:
        attn.impl = impl
        np.testing.assert_allclose(attn(x)[0].detach().numpy(), numpy_attention(attn, x, every), atol=1e-6)
        out = attn(x, key_mask=key_mask)[0].detach().numpy()
        np.testing.assert_allclose(out, numpy_attention(attn, x, real), atol=1e-6)


def test_bidirectional_model_sees_later_tokens_and_causal_does_not():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    x = make_input(2, N_CTX, vocab, N_VOCAB, N_SPECIAL)
    y = x.clone()
    y[:, -1, 0] = (x[:, -1, 0] + 1) % N_VOCAB  # change the last token only
    for causal in (True, False):
        torch.manual_seed(0)
        model = TransformerModel(tiny_cfg(causal=causal), vocab=vocab, n_ctx=N_CTX).eval()
        assert model.causal is causal and all(b.attn.causal is causal for b in model.h)
        with torch.no_grad():
            moved = (model(x)[:, :-1] - model(y)[:, :-1]).abs().max().item()
        assert (moved > 1e-3) is not causal, (causal, moved)


def test_causal_true_is_the_default_and_builds_the_same_parameters():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    torch.manual_seed(0)
    default = TransformerModel(TINY, vocab=vocab, n_ctx=N_CTX).eval()
    torch.manual_seed(0)
    bidirectional = TransformerModel(tiny_cfg(causal=False), vocab=vocab, n_ctx=N_CTX).eval()
    assert default.causal is True
    for (name, a), (_, b) in zip(default.state_dict().items(), bidirectional.state_dict().items()):
        assert torch.equal(a, b), name  # the option changes the attention, not the parameters


def test_bidirectional_refuses_a_key_value_cache_and_a_non_bool_causal():
    vocab = N_VOCAB + N_SPECIAL + N_CTX
    model = LMModel(tiny_cfg(causal=False), vocab=vocab, n_ctx=N_CTX).eval()
    x = make_input(1, 5, vocab, N_VOCAB, N_SPECIAL)
    _, past = LMModel(TINY, vocab=vocab, n_ctx=N_CTX).eval()(x, use_cache=True)
    with pytest.raises(InputError, match=r'key/value cache .* bidirectional attention \(causal=False\)'):
        model(x[:, :1], past=past, use_cache=True)
    with pytest.raises(InputError, match=r"causal='no': expected True .* or False"):
        TransformerModel(tiny_cfg(causal='no'), vocab=vocab, n_ctx=N_CTX)


def test_tf_loader_refuses_a_bidirectional_model(tmp_path):
    path, _ = tiny_checkpoint(tmp_path)
    model = TransformerModel(tiny_cfg(causal=False), vocab=N_VOCAB + N_CTX, n_ctx=N_CTX)
    before = copy.deepcopy(model)
    with pytest.raises(mp.CheckpointError, match=r"causal attention but the model has causal=False"):
        load_openai_pretrained_model(model, path=path)
    _assert_same_values(model, before)


def test_the_public_tf_writer_lays_out_the_release_format(tmp_path):
    """tf_checkpoint.tf_shapes is the real params_shapes.json at the release's sizes, and
    write_tf_checkpoint's shards are the arrays' flat concatenation cut in 10, read back
    by the loader."""
    real = [tuple(s) for s in json.loads(PARAMS_SHAPES_PATH.read_text())]
    assert tf_checkpoint.tf_shapes(12, 768, 40478) == real
    shapes = tf_checkpoint.tf_shapes(2, 8, 30, n_pos=12)
    arrays = tf_checkpoint.write_tf_checkpoint(tmp_path / 'ckpt', shapes, seed=3)
    assert sorted(os.listdir(tmp_path / 'ckpt')) == sorted(['params_shapes.json'] +
                                                          [f'params_{i}.npy' for i in range(10)])
    assert json.loads((tmp_path / 'ckpt' / 'params_shapes.json').read_text()) == [list(s) for s in shapes]
    flat = np.concatenate([np.load(tmp_path / 'ckpt' / f'params_{i}.npy') for i in range(10)])
    np.testing.assert_array_equal(flat, np.concatenate([a.ravel() for a in arrays]))
    assert [a.shape for a in arrays] == shapes and 0.015 < float(flat.std()) < 0.025
    cfg = mp.dotdict(mp.DEFAULT_CONFIG, n_embd=8, n_head=2, n_layer=2)
    model = mp.LMModel(cfg, vocab=30 + 12, n_ctx=12)
    mp.load_openai_pretrained_model(model, n_ctx=12, n_special=0, path=str(tmp_path / 'ckpt'))
    np.testing.assert_array_equal(model.transformer.embed.weight[:30].detach().numpy(), arrays[1])
