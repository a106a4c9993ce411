"""loss.py: the finetuning objective against a direct formula, both LM-logit layouts,
where backward / step / zero_grad happen (gradient accumulation), and the chunked
tied-head cross entropy against a numpy derivation and the dense loss."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from loss import (IGNORE_INDEX, ClassificationLossCompute, MultipleChoiceLossCompute, chunk_rows, chunked_lm_loss,
                  lm_mask_from)
from tests.helpers import CountingOpt

CE = nn.CrossEntropyLoss(reduction='none')


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _example(B=3, C=2, T=7, V=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, V, (B, C, T, 2), generator=g)
    lengths = torch.randint(2, T + 1, (B, C), generator=g)
    lengths[0, 0] = T  # one full-length sequence
    M = (torch.arange(T)[None, None, :] < lengths[..., None]).float()
    Y = torch.randint(0, C, (B,), generator=g)
    clf_logits = torch.randn(B, C, generator=g, dtype=torch.float64).float()
    lm_logits = torch.randn(B * C * (T - 1), V, generator=g)
    return X, M, Y, clf_logits, lm_logits


def _direct(X, M, Y, clf_logits, lm_logits, lm_coef):
    """mean over examples of -log softmax(clf)[y] + lm_coef * mean over sequences of
    (sum over real next tokens of -log p) / (number of real next tokens), in numpy float64."""
    X, M, Y = X.numpy(), M.numpy().astype(np.float64), Y.numpy()
    B, C, T = M.shape
    clf = -_log_softmax(clf_logits.numpy().astype(np.float64))[np.arange(B), Y]
    lp = _log_softmax(lm_logits.numpy().astype(np.float64)).reshape(B, C, T - 1, -1)
    lm = np.zeros((B, C))
    for b in range(B):
        for c in range(C):
            num = den = 0.0
            for t in range(1, T):
                num += -lp[b, c, t - 1, X[b, c, t, 0]] * M[b, c, t]
                den += M[b, c, t]
            lm[b, c] = num / den
    return clf, lm, clf.mean() + lm_coef * lm.mean()


@pytest.mark.parametrize('lm_coef', [0.5, 0.0, 2.0])
def test_multiple_choice_loss_matches_direct_formula(lm_coef):
    X, M, Y, clf_logits, lm_logits = _example()
    lc = MultipleChoiceLossCompute(CE, CE, lm_coef)
    clf_ref, lm_ref, total_ref = _direct(X, M, Y, clf_logits, lm_logits, lm_coef)
    clf, lm = lc(X, Y, M, clf_logits, lm_logits, only_return_losses=True)
    assert clf.shape == (3,) and lm.shape == (3, 2)
    np.testing.assert_allclose(clf.numpy(), clf_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lm.numpy(), lm_ref, rtol=1e-5, atol=1e-6)
    assert lc.loss(X, Y, M, clf_logits, lm_logits).item() == pytest.approx(total_ref, rel=1e-5)
    # the earlier port's call: backward, returns the objective
    clf_logits = clf_logits.clone().requires_grad_()
    lm_logits = lm_logits.clone().requires_grad_()
    assert lc(X, Y, M, clf_logits, lm_logits) == pytest.approx(total_ref, rel=1e-5)
    assert clf_logits.grad is not None
    assert (lm_logits.grad is not None) == (lm_coef != 0)


def test_classifier_only_without_lm_logits():
    X, M, Y, clf_logits, lm_logits = _example()
    lc = MultipleChoiceLossCompute(CE, CE, 0.5)
    clf_ref, _, _ = _direct(X, M, Y, clf_logits, lm_logits, 0.5)
    clf = lc(X, Y, M, clf_logits, only_return_losses=True)
    np.testing.assert_allclose(clf.numpy(), clf_ref, rtol=1e-5)
    assert lc.loss(X, Y, M, clf_logits).item() == pytest.approx(clf_ref.mean(), rel=1e-5)


def test_sparse_lm_rows_give_the_same_losses():
    X, M, Y, clf_logits, lm_logits = _example(B=4, T=9)
    lc = MultipleChoiceLossCompute(CE, CE, 0.5)
    lm_mask = lm_mask_from(M)
    assert lm_mask.shape == M.shape and not lm_mask[..., -1].any()
    assert torch.equal(lm_mask[..., :-1], M[..., 1:] > 0)
    sparse = lm_logits.view(4, 2, 8, -1)[lm_mask[..., :-1]]
    assert sparse.shape[0] == int(M[..., 1:].sum())
    dense_losses = lc.losses(X, Y, M, clf_logits, lm_logits)
    sparse_losses = lc.losses(X, Y, M, clf_logits, sparse, lm_mask=lm_mask)
    for a, b in zip(dense_losses, sparse_losses):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert lc.loss(X, Y, M, clf_logits, sparse, lm_mask).item() == pytest.approx(
        lc.loss(X, Y, M, clf_logits, lm_logits).item(), rel=1e-6)


def test_row_count_mismatch_is_a_clear_error():
    X, M, Y, clf_logits, lm_logits = _example()
    lc = MultipleChoiceLossCompute(CE, CE, 0.5)
    with pytest.raises(ValueError, match='rows'):
        lc.losses(X, Y, M, clf_logits, lm_logits[:-1])
    with pytest.raises(ValueError, match='lm_mask selects'):
        lc.losses(X, Y, M, clf_logits, lm_logits, lm_mask=lm_mask_from(M))
    with pytest.raises(ValueError, match='n_acc'):
        MultipleChoiceLossCompute(CE, CE, 0.5, n_acc=0)


def test_classification_loss_matches_direct_formula():
    X, M, Y, _, lm_logits = _example(B=5, C=1, T=6)
    X, M = X[:, 0], M[:, 0]
    clf_logits = torch.randn(5, 3)
    Y = torch.tensor([0, 2, 1, 1, 0])
    lc = ClassificationLossCompute(CE, CE, 0.5)
    clf_ref = -_log_softmax(clf_logits.double().numpy())[np.arange(5), Y.numpy()]
    _, lm_ref, _ = _direct(X[:, None], M[:, None], torch.zeros(5, dtype=torch.long), torch.zeros(5, 1),
                           lm_logits, 0.5)
    clf, lm = lc(X, Y, M, clf_logits, lm_logits, only_return_losses=True)
    np.testing.assert_allclose(clf.numpy(), clf_ref, rtol=1e-5)
    np.testing.assert_allclose(lm.numpy(), lm_ref[:, 0], rtol=1e-5)
    sparse = lm_logits.view(5, 5, -1)[lm_mask_from(M)[:, :-1]]
    assert lc.loss(X, Y, M, clf_logits, sparse, lm_mask_from(M)).item() == pytest.approx(
        clf_ref.mean() + 0.5 * lm_ref.mean(), rel=1e-5)


def test_step_every_n_acc_calls():
    X, M, Y, clf_logits, lm_logits = _example()
    opt = CountingOpt()
    lc = MultipleChoiceLossCompute(CE, CE, 0.5, opt, n_acc=3)
    for i in range(7):
        lc(X, Y, M, clf_logits.clone().requires_grad_(), lm_logits.clone().requires_grad_())
        assert opt.steps == (i + 1) // 3 and opt.zeros == opt.steps
    assert lc.n_pending == 1
    assert lc.step() and opt.steps == 3 and lc.n_pending == 0
    assert not lc.step()


def test_accumulated_gradient_equals_big_batch_gradient():
    """Two halves with n_acc=2 leave the same gradient as the whole batch at once."""
    torch.manual_seed(0)
    X, M, Y, _, _ = _example(B=4, C=2, T=6, V=13)
    lin = nn.Linear(5, 13)
    clf_lin = nn.Linear(5, 1)
    feats = torch.randn(4, 2, 6, 5)

    def logits(sl):
        f = feats[sl]
        return lin(f[:, :, :-1]).reshape(-1, 13), clf_lin(f[:, :, -1]).squeeze(-1)

    def grads():
        return [p.grad.clone() for p in (*lin.parameters(), *clf_lin.parameters())]

    lc = MultipleChoiceLossCompute(CE, CE, 0.5, None)
    lm, clf = logits(slice(0, 4))
    lc(X, Y, M, clf, lm)
    g_full = grads()
    for p in (*lin.parameters(), *clf_lin.parameters()):
        p.grad = None
    lc2 = MultipleChoiceLossCompute(CE, CE, 0.5, None, n_acc=2)
    for sl in (slice(0, 2), slice(2, 4)):
        lm, clf = logits(sl)
        lc2(X[sl], Y[sl], M[sl], clf, lm)
    for a, b in zip(g_full, grads()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- chunked_lm_loss

def _chunked_case(N=23, d=6, V=17, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, d, generator=g, dtype=dtype).requires_grad_()
    we = torch.randn(V, d, generator=g, dtype=dtype).requires_grad_()
    targets = torch.randint(0, V, (N,), generator=g)
    targets[[2, 9, N - 1]] = IGNORE_INDEX
    return h, we, targets


def _numpy_lm_loss(h, we, targets):
    """The summed cross entropy of h @ we.T, its per-target values and its gradients,
    re-derived in numpy: d/dlogits = softmax - one_hot at the kept rows, 0 elsewhere."""
    h, we, t = h.detach().numpy(), we.detach().numpy(), targets.numpy()
    keep = t != IGNORE_INDEX
    lp = _log_softmax(h @ we.T)
    per = np.where(keep, -lp[np.arange(len(t)), np.where(keep, t, 0)], 0.0)
    g = np.exp(lp)
    g[np.arange(len(t))[keep], t[keep]] -= 1
    g[~keep] = 0
    return per.sum(), per, g @ we, g.T @ h


@pytest.mark.parametrize('rows', [1, 5, 23, 100])
@pytest.mark.parametrize('reduction', ['mean', 'sum'])
def test_chunked_lm_loss_and_gradients_equal_a_numpy_derivation(rows, reduction):
    h, we, targets = _chunked_case()
    total, _, dh, dwe = _numpy_lm_loss(h, we, targets)
    scale = 1 / (targets != IGNORE_INDEX).sum().item() if reduction == 'mean' else 1.0
    out = chunked_lm_loss(h, we, targets, reduction, rows=rows)
    (out * 3.0).backward()
    np.testing.assert_allclose(out.item(), total * scale, rtol=1e-12)
    np.testing.assert_allclose(h.grad.numpy(), 3.0 * scale * dh, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(we.grad.numpy(), 3.0 * scale * dwe, rtol=1e-10, atol=1e-12)


def test_chunked_lm_loss_per_target_values_with_and_without_a_gradient():
    h, we, targets = _chunked_case()
    _, per, _, dwe = _numpy_lm_loss(h, we, targets)
    with torch.no_grad():
        np.testing.assert_allclose(chunked_lm_loss(h, we, targets, 'none', rows=4).numpy(), per, rtol=1e-12)
    out = chunked_lm_loss(h, we, targets.view(1, -1), 'none', rows=4)
    assert out.shape == (1, len(targets))
    out.sum().backward()
    np.testing.assert_allclose(we.grad.numpy(), dwe, rtol=1e-10, atol=1e-12)


def test_chunked_lm_loss_matches_dense_cross_entropy_in_float32_and_keeps_no_logits():
    h, we, targets = _chunked_case(N=64, d=32, V=300, dtype=torch.float32)
    ref = nn.functional.cross_entropy(h @ we.t(), targets)
    ref_grads = torch.autograd.grad(ref, (h, we))
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        out = chunked_lm_loss(h, we, targets, rows=7)
    grads = torch.autograd.grad(out, (h, we))
    assert abs(out.item() - ref.item()) < 1e-5
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    assert max(sizes, default=0) < 64 * 300  # the dense path saves its (N, vocab) log-softmax


def test_chunked_lm_loss_under_bfloat16_autocast_is_the_autocast_dense_loss():
    h, we, targets = _chunked_case(N=40, d=32, V=200, dtype=torch.float32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ref = nn.functional.cross_entropy((h @ we.t()).float(), targets)
        out = chunked_lm_loss(h, we, targets, rows=9)
    ref_grads = torch.autograd.grad(ref, (h, we))
    grads = torch.autograd.grad(out, (h, we))
    assert out.dtype == torch.float32 and abs(out.item() - ref.item()) < 1e-5  # the same bfloat16 logits
    for got, want in zip(grads, ref_grads):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=2e-3, rtol=2e-2)  # bfloat16 matmuls of the gradient


def test_chunked_lm_loss_bad_arguments_are_clear_errors():
    h, we, targets = _chunked_case()
    with pytest.raises(ValueError, match="reduction='avg'"):
        chunked_lm_loss(h, we, targets, 'avg')
    with pytest.raises(ValueError, match='h has 23 rows but targets 22'):
        chunked_lm_loss(h, we, targets[:-1])


def test_chunked_lm_loss_refuses_a_second_backward_through_the_same_loss():
    h, we, targets = _chunked_case()
    out = chunked_lm_loss(h, we, targets, rows=5)
    out.backward(retain_graph=True)
    first = we.grad.clone()
    with pytest.raises(RuntimeError, match='second backward pass through the same loss'):
        out.backward()
    torch.testing.assert_close(we.grad, first, rtol=0, atol=0)  # nothing half-added


def test_chunk_rows_are_a_multiple_of_256_within_128_mb_of_float32_logits():
    for n_vocab in (200, 40606, 40990, 131_072, 10 ** 6):
        rows = chunk_rows(n_vocab)
        assert rows % 256 == 0 and rows >= 256
        assert rows == 256 or rows * n_vocab * 4 <= 1 << 27
    assert chunk_rows(40990) == 768  # measured fastest at the GPT-1 vocabulary (see its docstring)


def test_chunked_lm_loss_of_no_rows_is_zero_with_zero_gradients():
    h, we, _ = _chunked_case()
    out = chunked_lm_loss(h[:0], we, torch.zeros(0, dtype=torch.long), 'sum')
    out.backward()
    assert out.item() == 0 and not we.grad.any() and h.grad.shape == h.shape
