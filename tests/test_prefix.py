"""prefix.py: each example's shared context computed once, against the plain DoubleHeadModel.

Batches are generated multiple-choice examples over a small vocabulary: 2 or 4 choices
that share `[_start_] context [_delimiter_]` (of different lengths in one batch), plus
examples whose choices differ inside the context or at the first token (user data).
"""
from statistics import NormalDist
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import finetune
import train
from loss import lm_mask_from
from model_pytorch import DoubleHeadModel
from prefix import (SharedPrefixModel, grouped_clf_logits, shared_prefix_lengths, shared_prefix_model,
                    split_choices, token_batches)

N_VOCAB, START, DELIM, CLF = 40, 40, 41, 42
N_CTX = 40
VOCAB = N_VOCAB + 3 + N_CTX
NO_DROPOUT = ['--embd_pdrop', '0', '--attn_pdrop', '0', '--resid_pdrop', '0', '--clf_pdrop', '0']


def examples(B, C, seed=0, odd=True):
    """(X (B, C, N_CTX, 2), M (B, C, N_CTX), Y (B,)) numpy, and the expected shared lengths (B,).
    With odd, example 1's choices differ inside the context and example 2's at the first token."""
    rng = np.random.RandomState(seed)
    X = np.zeros((B, C, N_CTX, 2), np.int64)
    M = np.zeros((B, C, N_CTX), np.float32)
    X[..., 1] = N_VOCAB + 3 + np.arange(N_CTX)
    shared = []
    for b in range(B):
        context = [START] + list(rng.randint(0, N_VOCAB, rng.randint(3, 20))) + [DELIM]
        cut = len(context)
        if odd and b == 1:
            cut = 2
        if odd and b == 2:
            cut = 0
        for c in range(C):
            seq = list(context)
            seq[cut:] = [(t + c) % N_VOCAB if t < N_VOCAB else t for t in seq[cut:]]  # choice c's own context
            if cut == 0:
                seq[0] = c  # differ at the very first token
            seq += list(rng.randint(0, N_VOCAB, rng.randint(1, 8))) + [CLF]
            X[b, c, :len(seq), 0] = seq
            M[b, c, :len(seq)] = 1
        # the first position where the choices differ or one of them reads its _classify_
        shared.append(next(t for t in range(N_CTX) if len(set(X[b, :, t, 0])) > 1 or CLF in X[b, :, t, 0]))
    return X, M, rng.randint(0, C, B), np.array(shared)


def tiny_args(*extra):
    return train.parse_args(['--init', 'random', '--n_embd', '16', '--n_layer', '2', '--n_head', '2', *extra])


def make_model(args, impl='sdpa', seed=0):
    torch.manual_seed(seed)
    model = DoubleHeadModel(args, CLF, 'multiple_choice', VOCAB, N_CTX)
    with torch.no_grad():
        model.task_head.clf.w.mul_(50)  # logits of order 1, so that a wrong state shows
    return model.transformer.set_attention(impl) and model


def test_shared_lengths_stop_where_the_choices_differ_and_before_classify():
    X, M, _, shared = examples(6, 3)
    Xt, Mt = torch.as_tensor(X), torch.as_tensor(M)
    P = shared_prefix_lengths(Xt, Mt, CLF)
    np.testing.assert_array_equal(P.numpy(), shared)
    assert shared[1] == 2 and shared[2] == 0 and all(shared[3:] >= 5)
    # identical choices share all but their _classify_, which each reads in its own remainder
    same = Xt[:, :1].expand(-1, 3, -1, -1)
    np.testing.assert_array_equal(shared_prefix_lengths(same, Mt[:, :1].expand(-1, 3, -1), CLF).numpy(),
                                  M[:, 0].sum(-1) - 1)
    s = split_choices(Xt, Mt, P)
    for b in range(6):
        for c in range(3):
            n = int(M[b, c].sum())
            np.testing.assert_array_equal(s.xr[b, c, :n - shared[b]].numpy(), X[b, c, shared[b]:n])
            assert s.mr[b, c].sum() == n - shared[b]
        np.testing.assert_array_equal(s.xp[b, :shared[b]].numpy(), X[b, 0, :shared[b]])
        assert s.kp[b].sum() == shared[b]


@pytest.mark.parametrize('impl', ['sdpa', 'explicit'])
@pytest.mark.parametrize('C', [2, 4])
def test_shared_prefix_logits_and_lm_loss_equal_the_plain_forward(C, impl):
    X, M, Y, shared = examples(7, C, seed=C)
    assert len(set(shared)) > 3  # prefixes of different lengths in one batch
    args = tiny_args(*NO_DROPOUT)
    model = make_model(args, impl).eval()
    Xt, Mt, _ = finetune.to_batch(X, M)
    with torch.no_grad():
        lm_ref, clf_ref = model(Xt)
        clf, lm = SharedPrefixModel(model)(Xt, Mt)
    assert clf_ref.abs().max() > 0.3
    torch.testing.assert_close(clf, clf_ref, rtol=1e-5, atol=1e-5)
    for n_batch in (1, 3, 7):  # evaluation's regrouped passes
        with torch.no_grad():
            torch.testing.assert_close(grouped_clf_logits(model, Xt, Mt, n_batch), clf_ref, rtol=1e-5, atol=1e-5)
    ref = finetune.make_loss_compute(args).lm_losses(Xt, Mt, lm_ref).mean()
    torch.testing.assert_close(lm, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('impl', ['sdpa', 'explicit'])
@pytest.mark.parametrize('C,lm_coef,trim', [(2, '0.5', True), (4, '0.5', False), (4, '0', True)])
def test_shared_prefix_step_gives_the_default_objective_and_gradients(C, lm_coef, trim, impl):
    X, M, Y, _ = examples(6, C, seed=10 + C)
    args = tiny_args(*NO_DROPOUT, '--lm_coef', lm_coef)
    default, shared = make_model(args, impl), make_model(args, impl)
    loss = finetune.train_step(default, finetune.make_loss_compute(args), X, M, Y, trim=trim)
    loss_shared = finetune.train_step(shared, finetune.make_loss_compute(args), X, M, Y, trim=trim, share_prefix=True)
    assert loss_shared == pytest.approx(loss, rel=1e-5, abs=1e-5)
    for (name, p), q in zip(default.named_parameters(), shared.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-5, msg=name)


def roc_like(n, seed=0):
    """RocData-shaped arrays from examples(): 2 choices sharing their context."""
    X, M, Y, _ = examples(n, 2, seed=seed, odd=False)
    return X.astype(np.int32), M, Y


def test_share_prefix_training_equals_the_default_after_several_updates_with_n_acc():
    X, M, Y = roc_like(24, seed=3)
    params = []
    for extra in ([], ['--share_prefix']):
        args = tiny_args(*NO_DROPOUT, '--n_batch', '4', '--n_acc', '2', '--lr', '1e-3', '--lr_schedule', 'none',
                         *extra)
        model = make_model(args)
        opt = finetune.make_optimizer(args, model, finetune.n_updates_total(len(Y), args))
        state = train.TrainState()
        ctx = finetune.RunContext(args, model, SimpleNamespace(trX=X, trM=M, trY=Y), verbose=False)
        loss = finetune.train_epoch(ctx, model, finetune.make_loss_compute(args, opt), state)
        assert state.n_updates == 3
        params.append((loss, {k: v.detach().clone() for k, v in model.named_parameters()}))
    (loss, ref), (loss_shared, got) = params
    assert loss_shared == pytest.approx(loss, rel=1e-5)
    initial = dict(make_model(args).named_parameters())
    assert not torch.equal(ref['transformer.embed.weight'], initial['transformer.embed.weight'])
    for k in ref:
        if k == 'task_head.clf.b':
            # a bias shared by the choices of a softmax: zero gradient but for float noise, which
            # Adam divides by its own size (see test_train's accumulation test)
            assert (got[k] - initial[k]).abs().max() <= 3 * 1e-3 * 1.01
            continue
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-5, msg=k)


def test_evaluate_and_predict_use_the_shared_prefix_and_equal_the_plain_forward(monkeypatch):
    X, M, Y, _ = examples(9, 4, seed=5)
    args = tiny_args(*NO_DROPOUT)
    model = make_model(args, 'explicit')
    calls = []
    monkeypatch.setattr(finetune, 'EVAL_GROUP', 2)
    monkeypatch.setattr(finetune, 'grouped_clf_logits', lambda *a: calls.append(a[3]) or grouped_clf_logits(*a))
    logits, _, _ = finetune.evaluate(model, X, M, Y, n_batch=2, verbose=False)
    assert calls == [2, 2, 2]  # groups of 2 batches of 2: 4, 4 and 1 examples
    model.eval()
    with torch.no_grad():
        ref = model(torch.as_tensor(X))[1].numpy()
    np.testing.assert_allclose(logits, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(finetune.predict(model, X, M, n_batch=2, verbose=False), ref.argmax(1))


def test_token_batches_cover_every_item_in_length_order_within_the_budget():
    lengths = torch.tensor([5, 0, 9, 3, 3, 12, 7, 1, 30])
    batches = token_batches(lengths, budget=20)
    flat = torch.cat(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert lengths[flat].tolist() == sorted(lengths.tolist())
    for b in batches:
        # padded to the batch's longest (an empty item counted as 1); an item longer than the
        # budget goes alone
        assert len(b) * max(int(lengths[b].max()), 1) <= 20 or len(b) == 1
    # each batch is as large as the budget allows: one more item would not fit
    for b, nxt in zip(batches, batches[1:]):
        assert (len(b) + 1) * int(lengths[nxt[0]]) > 20
    assert [len(b) for b in token_batches(torch.tensor([4, 4, 4, 4]), budget=8)] == [2, 2]


def test_share_prefix_needs_a_multiple_choice_head_and_ddp_around_the_wrapper():
    args = tiny_args()
    clf = DoubleHeadModel(args, CLF, ('classification', 3), VOCAB, N_CTX)
    with pytest.raises(train.InputError, match=r"^--share_prefix: the model's task head is ClfHead; expected a "
                                                r"multiple-choice head"):
        SharedPrefixModel(clf)
    model = make_model(args)
    wrapped = SharedPrefixModel(model)
    assert shared_prefix_model(wrapped) is wrapped and shared_prefix_model(model).model is model

    class FakeDDP(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module
    assert shared_prefix_model(FakeDDP(wrapped)).module is wrapped
    with pytest.raises(TypeError, match='DDP around SharedPrefixModel'):
        shared_prefix_model(FakeDDP(model))


def test_help_says_what_share_prefix_changes(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert '--share_prefix' in text
    assert "the choices share the context's dropout masks (the TF release drew one per choice)" in text
    assert tiny_args().tuning.share_prefix is False


# ------------------------------------------------------------------ with dropout on

def _lm_gradients(model, X, M, seeds, objective):
    """(len(seeds), n_params) gradients of objective(model, X, M) for the transformer's parameters,
    one per dropout seed."""
    model.train()
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        model.zero_grad()
        objective(model, X, M).backward()
        out.append(torch.cat([p.grad.reshape(-1) for p in model.transformer.parameters()]))
    return torch.stack(out).double()


def _default_lm(prefix_once=False):
    """The default path's mean LM loss; prefix_once: a wrong objective that counts each shared
    position once per example (only choice 0 keeps its weight there), to show the test can fail."""
    def objective(model, X, M):
        lm_logits, _ = model(X, lm_mask=lm_mask_from(M))
        weights = M.clone()
        if prefix_once:
            P = shared_prefix_lengths(X, M, CLF)
            weights[:, 1:] *= (torch.arange(M.size(-1)) >= P[:, None])[:, None]  # tokens 1 .. P - 1
        mask = lm_mask_from(M)
        per_pos = torch.zeros(M.shape)
        per_pos[mask] = torch.nn.functional.cross_entropy(lm_logits, X[..., 1:, 0][mask[..., :-1]], reduction='none')
        return ((per_pos[..., :-1] * weights[..., 1:]).sum(-1) / M[..., 1:].sum(-1)).mean()
    return objective


def _shared_lm(model, X, M):
    return SharedPrefixModel(model)(X, M)[1]


@pytest.mark.slow
def test_with_dropout_the_shared_lm_gradient_has_the_default_expectation():
    """The LM loss is a sum of per-sequence terms, and each sequence sees masks of the same
    distribution on both paths (shared masks only tie the choices together), so the expected
    gradients are equal. Over 300 dropout seeds, K fixed random projections of the mean
    gradients differ by less than the two-sided z bound of a family-wise false-alarm rate of
    1e-3 (Bonferroni over K), their standard errors estimated from the samples (disjoint seeds); the same
    statistic rejects an objective that counts the shared positions once per example.
    (The classifier loss couples the choices through its softmax, so shared masks do change
    its expectation: the documented difference.)"""
    X, M, _, _ = examples(4, 2, seed=7, odd=False)
    Xt, Mt, _ = finetune.to_batch(X, M)
    args = tiny_args('--embd_pdrop', '0.1', '--attn_pdrop', '0.1', '--resid_pdrop', '0.1')
    model = make_model(args)
    n, K = 300, 8
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny steps: a second thread only adds contention
    try:
        # disjoint seeds: independent samples, as the standard error below assumes
        shared = _lm_gradients(model, Xt, Mt, range(n), _shared_lm)
        default = _lm_gradients(model, Xt, Mt, range(n, 2 * n), _default_lm())
        wrong = _lm_gradients(model, Xt, Mt, range(2 * n, 3 * n), _default_lm(prefix_once=True))
    finally:
        torch.set_num_threads(n_threads)
    directions = torch.randn(shared.size(1), K, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    bound = NormalDist().inv_cdf(1 - 1e-3 / (2 * K))

    def z(a, b):
        pa, pb = a @ directions, b @ directions
        se = (pa.var(0) / len(pa) + pb.var(0) / len(pb)).sqrt()
        return ((pa.mean(0) - pb.mean(0)) / se).abs()
    assert (shared - default).abs().max() > 1e-4  # the masks differ: not the same samples
    assert z(shared, default).max() < bound
    assert z(wrong, default).max() > bound
