"""OpenAIAdam against the update rule of the TensorFlow release, re-derived in float64 numpy; AdamConfig."""
import io
import math
import warnings

import numpy as np
import pytest
import torch

from errors import ConfigError
from opt import SCHEDULES, AdamConfig, OpenAIAdam, warmup_constant, warmup_cosine, warmup_linear

SHAPES = [(4, 3), (5,), (2, 3, 2), (1, 6)]  # matrices, a vector, a 3-D tensor


# ---------------------------------------------------------------- numpy reference (float64)

def ref_schedule(name, x, warmup):
    s = 1.0 if x <= warmup else 0.0
    if name == 'warmup_cosine':
        return s * (x / warmup) + (1 - s) * 0.5 * (1 + math.cos(math.pi * x))
    if name == 'warmup_constant':
        return s * (x / warmup) + (1 - s)
    if name == 'warmup_linear':
        return (s * (x / warmup) + (1 - s)) * (1 - x)
    raise AssertionError(name)


def ref_global_clip(grads, max_grad_norm):
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
    return [g * (max_grad_norm / max(norm, max_grad_norm)) for g in grads]


def ref_per_param_clip(grads, max_grad_norm):
    return [g * (max_grad_norm / max(float(np.sqrt((g ** 2).sum())), max_grad_norm))
            for g in grads]


def ref_adam(p0, grad_seq, lr, schedule, warmup, t_total, b1=0.9, b2=0.999, e=1e-8, l2=0.0,
             vector_l2=False, max_grad_norm=-1, clip=ref_global_clip):
    """The SPEC's rule step by step in float64; returns (params, m, v) after each step."""
    p = [x.astype(np.float64) for x in p0]
    m = [np.zeros_like(x) for x in p]
    v = [np.zeros_like(x) for x in p]
    history = []
    for t, grads in enumerate(grad_seq, start=1):
        g = [x.astype(np.float64) for x in grads]
        if max_grad_norm > 0:
            g = clip(g, max_grad_norm)
        lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * ref_schedule(
            schedule, (t - 1) / t_total, warmup)
        new_p = []
        for i in range(len(p)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            update = m[i] / (np.sqrt(v[i]) + e)
            if l2 > 0 and (p[i].ndim > 1 or vector_l2):
                update = update + l2 * p[i]  # the value before this step
            new_p.append(p[i] - lr_t * update)
        p = new_p
        history.append(([x.copy() for x in p], [x.copy() for x in m], [x.copy() for x in v]))
    return history


def make_problem(seed, n_steps, shapes=SHAPES, grad_scale=1.0):
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    # Gradients whose size swings from step to step, so that clipping changes the direction
    # Adam takes rather than just a common scale.
    grad_seq = [[(rng.standard_normal(s) * grad_scale * (0.2 + 3.0 * (k % 3 == 0))).astype(np.float32)
                 for s in shapes] for k in range(n_steps)]
    return p0, grad_seq


def run_torch(p0, grad_seq, **kw):
    params = [torch.nn.Parameter(torch.tensor(x)) for x in p0]
    opt = OpenAIAdam(params, **kw)
    history = []
    for grads in grad_seq:
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        opt.step()
        history.append(([p.detach().numpy().copy() for p in params],
                        [opt.state[p]['exp_avg'].numpy().copy() for p in params],
                        [opt.state[p]['exp_avg_sq'].numpy().copy() for p in params]))
    return history, params, opt


def assert_histories_close(got, want, rtol=1e-6):
    for step, ((gp, gm, gv), (wp, wm, wv)) in enumerate(zip(got, want), start=1):
        for i in range(len(gp)):
            np.testing.assert_allclose(gp[i], wp[i], rtol=rtol, atol=1e-7,
                                       err_msg=f"param {i} after step {step}")
            # m is a sum of float32 terms that can cancel: judge it against its own scale.
            np.testing.assert_allclose(gm[i], wm[i], rtol=1e-6, atol=1e-6 * np.abs(wm[i]).max(),
                                       err_msg=f"m {i} after step {step}")
            np.testing.assert_allclose(gv[i], wv[i], rtol=1e-6, atol=1e-6 * np.abs(wv[i]).max(),
                                       err_msg=f"v {i} after step {step}")


# ---------------------------------------------------------------- the update rule

@pytest.mark.parametrize('schedule', ['warmup_cosine', 'warmup_constant', 'warmup_linear'])
@pytest.mark.parametrize('vector_l2', [False, True])
@pytest.mark.parametrize('max_grad_norm', [-1, 1.0, 1e3])
def test_matches_reference(schedule, vector_l2, max_grad_norm):
    # t_total 8, warmup 0.25: progress 0, 1/8, 2/8 == warmup (still warming up), 3/8, ... 7/8.
    p0, grad_seq = make_problem(seed=hash((schedule, vector_l2, max_grad_norm)) % 2**32, n_steps=8)
    kw = dict(lr=0.05, schedule=schedule, warmup=0.25, t_total=8, b1=0.9, b2=0.99, e=1e-6,
              l2=0.3, vector_l2=vector_l2, max_grad_norm=max_grad_norm)
    want = ref_adam(p0, grad_seq, **kw)
    got, _, _ = run_torch(p0, grad_seq, **kw)
    assert_histories_close(got, want)

    norms = [math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in gs)) for gs in grad_seq]
    if max_grad_norm == 1.0:
        # Clipping was active on some steps and not on others, and it mattered.
        assert max(norms) > 1.0 and min(norms) < max(norms) / 2
        unclipped = ref_adam(p0, grad_seq, **{**kw, 'max_grad_norm': -1})
        assert not np.allclose(unclipped[-1][0][0], want[-1][0][0], rtol=1e-4)
    elif max_grad_norm == 1e3:
        assert max(norms) < 1e3  # a bound that is never reached changes nothing
        unclipped = ref_adam(p0, grad_seq, **{**kw, 'max_grad_norm': -1})
        assert_histories_close(got, unclipped)


def test_vector_l2_matters():
    p0, grad_seq = make_problem(seed=1, n_steps=4)
    kw = dict(lr=0.05, schedule='warmup_constant', warmup=0.25, t_total=4, l2=0.5)
    off, _, _ = run_torch(p0, grad_seq, vector_l2=False, **kw)
    on, _, _ = run_torch(p0, grad_seq, vector_l2=True, **kw)
    np.testing.assert_array_equal(off[-1][0][0], on[-1][0][0])  # a matrix: decayed either way
    assert not np.allclose(off[-1][0][1], on[-1][0][1], rtol=1e-5)  # the vector: only when on


def test_default_betas_and_epsilon():
    p0, grad_seq = make_problem(seed=2, n_steps=6, grad_scale=1e-3)
    kw = dict(lr=6.25e-5 * 1000, schedule='warmup_linear', warmup=0.2, t_total=6, l2=0.01,
              max_grad_norm=1)
    assert_histories_close(run_torch(p0, grad_seq, **kw)[0], ref_adam(p0, grad_seq, **kw))


def test_first_step_moves_nothing_but_fills_moments():
    # schedule(0) == 0 for every schedule: TF's first update is a no-op on the parameters.
    for schedule in ['warmup_cosine', 'warmup_constant', 'warmup_linear']:
        p0, grad_seq = make_problem(seed=3, n_steps=2)
        hist, _, _ = run_torch(p0, grad_seq, lr=0.1, schedule=schedule, warmup=0.5, t_total=4,
                               l2=0.1, vector_l2=True, max_grad_norm=1)
        (p1, m1, v1), (p2, _, _) = hist
        for a, b in zip(p1, p0):
            np.testing.assert_array_equal(a, b)
        assert all(np.abs(m).sum() > 0 and np.abs(v).sum() > 0 for m, v in zip(m1, v1))
        assert all(not np.array_equal(a, b) for a, b in zip(p2, p0))


def test_past_t_total_holds_schedule_at_one_and_warns():
    p0, grad_seq = make_problem(seed=4, n_steps=5)
    params = [torch.nn.Parameter(torch.tensor(x)) for x in p0]
    opt = OpenAIAdam(params, lr=0.1, schedule='warmup_linear', warmup=0.25, t_total=3)
    for k, grads in enumerate(grad_seq):
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        before = [p.detach().clone() for p in params]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            opt.step()
        past = k + 1 > 3  # t - 1 >= t_total
        assert any('past t_total' in str(w.message) for w in caught) == (k + 1 == 4)
        if past:  # warmup_linear(1) == 0: no step, in particular no ascent
            assert all(torch.equal(a, b) for a, b in zip(before, params))


# ---------------------------------------------------------------- clipping

def test_clipping_is_global_not_per_parameter():
    g = [np.full((2, 2), 1.5, np.float32), np.full((4,), 2.0, np.float32)]  # norms 3 and 4
    p0 = [np.zeros((2, 2), np.float32), np.zeros(4, np.float32)]
    _, params, opt = run_torch(p0, [g], lr=0.1, schedule='warmup_constant', warmup=0.5,
                               t_total=10, b1=0.9, max_grad_norm=1.0)
    # m after one step is (1 - b1) times the gradient Adam saw: both scaled by 1/5.
    for p, gi in zip(params, g):
        np.testing.assert_allclose(opt.state[p]['exp_avg'].numpy(), 0.1 * gi / 5, rtol=1e-6)
        np.testing.assert_array_equal(p.grad.numpy(), gi)  # p.grad itself is not clipped
    per_param = ref_per_param_clip([x.astype(np.float64) for x in g], 1.0)
    assert not np.allclose(opt.state[params[0]]['exp_avg'].numpy(), 0.1 * per_param[0], rtol=1e-3)

    # Over several steps the whole trajectory follows global, not per-parameter, clipping.
    p0, grad_seq = make_problem(seed=5, n_steps=6, shapes=[(3, 3), (7,)])
    grad_seq = [[g[0] * 10, g[1] * 0.1] for g in grad_seq]  # very unequal per-parameter norms
    kw = dict(lr=0.05, schedule='warmup_cosine', warmup=0.25, t_total=6, max_grad_norm=1.0)
    got, _, _ = run_torch(p0, grad_seq, **kw)
    assert_histories_close(got, ref_adam(p0, grad_seq, **kw))
    per = ref_adam(p0, grad_seq, clip=ref_per_param_clip, **kw)
    assert not np.allclose(got[-1][0][1], per[-1][0][1], rtol=1e-3)


def test_clipping_spans_param_groups():
    g = [np.full((2, 2), 1.5, np.float32), np.full((4,), 2.0, np.float32)]
    params = [torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(4))]
    opt = OpenAIAdam([{'params': [params[0]]}, {'params': [params[1]], 'lr': 0.5}], lr=0.1,
                     schedule='warmup_constant', warmup=0.5, t_total=10, max_grad_norm=1.0)
    for p, gi in zip(params, g):
        p.grad = torch.tensor(gi)
    opt.step()
    for p, gi in zip(params, g):
        np.testing.assert_allclose(opt.state[p]['exp_avg'].numpy(), 0.1 * gi / 5, rtol=1e-6)


def test_non_finite_norm_gives_nan_like_tf():
    p = torch.nn.Parameter(torch.ones(3))
    q = torch.nn.Parameter(torch.ones(3))
    opt = OpenAIAdam([p, q], lr=0.1, schedule='warmup_constant', warmup=0.5, t_total=10,
                     max_grad_norm=1.0)
    p.grad = torch.tensor([1.0, float('inf'), 0.0])
    q.grad = torch.ones(3)
    opt.step()
    assert torch.isnan(opt.state[q]['exp_avg']).all()


# ---------------------------------------------------------------- schedules

@pytest.mark.parametrize('warmup', [0.002, 0.1, 0.25, 1.0])
def test_schedules_match_formulas(warmup):
    xs = [0.0, warmup / 2, warmup, min(warmup * 1.5, 1.0), 0.5, 0.9, 1.0]
    for x in xs:
        s = 1.0 if x <= warmup else 0.0
        assert warmup_cosine(x, warmup) == pytest.approx(
            s * (x / warmup) + (1 - s) * 0.5 * (1 + math.cos(math.pi * x)), rel=1e-12, abs=1e-15)
        assert warmup_constant(x, warmup) == pytest.approx(s * (x / warmup) + (1 - s), rel=1e-12)
        assert warmup_linear(x, warmup) == pytest.approx((s * (x / warmup) + (1 - s)) * (1 - x),
                                                         rel=1e-12, abs=1e-15)
    # Exactly at x == warmup the warm-up branch applies: x / warmup == 1.
    assert warmup_constant(warmup, warmup) == 1.0
    assert warmup_cosine(warmup, warmup) == 1.0
    assert warmup_linear(warmup, warmup) == pytest.approx(1 - warmup)
    for f in (warmup_cosine, warmup_constant, warmup_linear):
        assert f(0.0, warmup) == 0.0
    if warmup < 1:
        assert warmup_cosine(1.0, warmup) == pytest.approx(0.0, abs=1e-15)
        assert warmup_constant(1.0, warmup) == 1.0
        assert warmup_linear(1.0, warmup) == 0.0


def test_schedules_default_warmup_and_array_inputs():
    assert warmup_linear(0.001) == pytest.approx(0.5 * 0.999)
    xs = np.linspace(0, 1, 11)
    for name in ('warmup_cosine', 'warmup_constant', 'warmup_linear'):
        f = SCHEDULES[name]
        scalar = np.array([f(float(x), 0.25) for x in xs])
        np.testing.assert_allclose(f(xs, 0.25), scalar, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(f(torch.tensor(xs), 0.25).numpy(), scalar, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose([ref_schedule(name, float(x), 0.25) for x in xs], scalar,
                                   rtol=1e-12, atol=1e-15)
    assert SCHEDULES['none'](0.3, 0.1) == 1.0


# ---------------------------------------------------------------- torch.optim behaviour

def _model_and_loss(seed=0):
    torch.manual_seed(0)
    x, y = torch.randn(16, 5), torch.randn(16, 2)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    return model, lambda: torch.nn.functional.mse_loss(model(x), y)


def _train(model, opt, loss_fn, n):
    for _ in range(n):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()


KW = dict(lr=0.01, schedule='warmup_linear', warmup=0.2, t_total=10, l2=0.01, max_grad_norm=0.5)


def test_state_dict_round_trip_continues_identically():
    model_a, loss_a = _model_and_loss()
    opt_a = OpenAIAdam(model_a.parameters(), **KW)
    _train(model_a, opt_a, loss_a, 7)

    model_b, loss_b = _model_and_loss()
    opt_b = OpenAIAdam(model_b.parameters(), **KW)
    _train(model_b, opt_b, loss_b, 3)
    buf = io.BytesIO()
    torch.save({'model': model_b.state_dict(), 'opt': opt_b.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)

    model_c, loss_c = _model_and_loss(seed=123)  # different weights, overwritten by the load
    opt_c = OpenAIAdam(model_c.parameters(), lr=1.0, schedule='warmup_cosine', warmup=0.5,
                       t_total=99)  # settings come from the saved state
    model_c.load_state_dict(saved['model'])
    opt_c.load_state_dict(saved['opt'])
    assert opt_c.param_groups[0]['schedule'] == 'warmup_linear'
    assert opt_c.state[next(model_c.parameters())]['step'] == 3
    _train(model_c, opt_c, loss_c, 4)
    for a, c in zip(model_a.parameters(), model_c.parameters()):
        assert torch.equal(a, c)
    assert opt_a.state_dict()['state'][0]['step'] == 7


def test_zero_grad_and_params_without_grad_are_skipped():
    used = torch.nn.Parameter(torch.ones(2, 2))
    unused = torch.nn.Parameter(torch.full((3,), 2.0))
    opt = OpenAIAdam([used, unused], lr=0.1, schedule='warmup_constant', warmup=0.5, t_total=4,
                     l2=0.1, vector_l2=True, max_grad_norm=1.0)
    for _ in range(3):
        opt.zero_grad()
        assert used.grad is None
        (used ** 2).sum().backward()
        opt.step()
    assert torch.equal(unused, torch.full((3,), 2.0))
    assert unused not in opt.state and opt.state[used]['step'] == 3

    # With every grad None a step changes nothing.
    opt.zero_grad()
    snapshot = used.detach().clone()
    opt.step()
    assert torch.equal(used, snapshot) and opt.state[used]['step'] == 3


def test_param_without_grad_does_not_enter_the_clip_norm():
    a = torch.nn.Parameter(torch.zeros(4))
    b = torch.nn.Parameter(torch.zeros(4))
    opt = OpenAIAdam([a, b], lr=0.1, schedule='warmup_constant', warmup=0.5, t_total=4,
                     max_grad_norm=1.0)
    a.grad = torch.full((4,), 0.25)  # norm 0.5 < 1: not clipped
    opt.step()
    np.testing.assert_allclose(opt.state[a]['exp_avg'].numpy(), 0.1 * 0.25, rtol=1e-6)


def test_closure_is_called_with_grad_and_its_loss_returned():
    model, loss_fn = _model_and_loss()
    opt = OpenAIAdam(model.parameters(), **KW)

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    first = opt.step(closure)
    assert isinstance(first, torch.Tensor) and first.requires_grad
    losses = [opt.step(closure).item() for _ in range(8)]
    assert losses[-1] < first.item()
    assert opt.step() is None


def test_param_groups_use_their_own_settings():
    p0, grad_seq = make_problem(seed=6, n_steps=5, shapes=[(3, 2), (4,)])
    params = [torch.nn.Parameter(torch.tensor(x)) for x in p0]
    common = dict(schedule='warmup_cosine', warmup=0.25, t_total=5, max_grad_norm=2.0)
    opt = OpenAIAdam([{'params': [params[0]], 'l2': 0.2},
                      {'params': [params[1]], 'lr': 0.02, 'schedule': 'warmup_linear',
                       'vector_l2': True, 'l2': 0.5}], lr=0.05, **common)
    for grads in grad_seq:
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        opt.step()
    # The clip is global, so each group's reference sees the clipped pair of gradients.
    clipped = [ref_global_clip([g.astype(np.float64) for g in gs], 2.0) for gs in grad_seq]
    want0 = ref_adam([p0[0]], [[c[0]] for c in clipped], lr=0.05, schedule='warmup_cosine',
                     warmup=0.25, t_total=5, l2=0.2)
    want1 = ref_adam([p0[1]], [[c[1]] for c in clipped], lr=0.02, schedule='warmup_linear',
                     warmup=0.25, t_total=5, l2=0.5, vector_l2=True)
    np.testing.assert_allclose(params[0].detach().numpy(), want0[-1][0][0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(params[1].detach().numpy(), want1[-1][0][0], rtol=1e-6, atol=1e-7)


def test_bfloat16_params_run():
    p = torch.nn.Parameter(torch.ones(3, 3, dtype=torch.bfloat16))
    opt = OpenAIAdam([p], lr=0.1, schedule='warmup_constant', warmup=0.3, t_total=4,
                     l2=0.01, max_grad_norm=1.0)
    for _ in range(3):
        p.grad = torch.ones_like(p)
        opt.step()
    assert p.dtype == torch.bfloat16 and opt.state[p]['exp_avg'].dtype == torch.bfloat16
    assert (p < 1).all() and torch.isfinite(p).all()


def test_sparse_gradients_are_refused():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = OpenAIAdam(emb.parameters(), **KW)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match='sparse'):
        opt.step()


# ---------------------------------------------------------------- argument checks

GOOD = dict(lr=0.01, schedule='warmup_linear', warmup=0.002, t_total=100)


@pytest.mark.parametrize('name, value', [
    ('lr', -1e-3), ('lr', float('nan')), ('lr', 'fast'),
    ('schedule', 'cosine'), ('schedule', None),
    ('warmup', 0), ('warmup', -0.1), ('warmup', 1.5),
    ('t_total', 0), ('t_total', -5), ('t_total', float('inf')),
    ('b1', 1.0), ('b1', -0.1), ('b2', 1.0), ('b2', 1.2),
    ('e', -1e-8), ('l2', -0.01), ('vector_l2', 'yes'), ('max_grad_norm', float('nan')),
])
def test_bad_arguments_raise_value_error_naming_them(name, value):
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError) as info:
        OpenAIAdam([p], **{**GOOD, name: value})
    msg = str(info.value)
    assert name in msg and repr(value) in msg and '\n' not in msg
    if name == 'schedule':
        assert all(repr(s) in msg for s in ('warmup_cosine', 'warmup_constant', 'warmup_linear'))


def test_bad_group_settings_raise():
    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="b2 1.5"):
        OpenAIAdam([{'params': [p]}, {'params': [q], 'b2': 1.5}], **GOOD)
    with pytest.raises(ValueError, match="max_grad_norm 2"):
        OpenAIAdam([{'params': [p]}, {'params': [q], 'max_grad_norm': 2}], **GOOD,
                   max_grad_norm=1)
    opt = OpenAIAdam([p], **GOOD)
    with pytest.raises(ValueError, match="schedule 'linear'"):
        opt.add_param_group({'params': [q], 'schedule': 'linear'})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize('max_grad_norm', [1.0, -1])
def test_cpu_loop_equals_the_foreach_update_bit_for_bit(monkeypatch, max_grad_norm):
    """CPU steps run opt._adam_update_loop, other devices opt._adam_update_foreach; CI has
    no GPU, so the foreach update is run here on CPU in the loop's place and compared."""
    import opt as opt_module
    p0, grad_seq = make_problem(seed=11, n_steps=6, shapes=[(7, 5), (5,), (3, 4, 2)])
    kw = dict(lr=0.05, schedule='warmup_cosine', warmup=0.3, t_total=6, l2=0.1,
              max_grad_norm=max_grad_norm)
    loop, _, _ = run_torch(p0, grad_seq, **kw)
    monkeypatch.setattr(opt_module, '_adam_update_loop',
                        lambda *args: opt_module._adam_update_foreach(*args[:-1]))  # no scratch buffer
    foreach, _, _ = run_torch(p0, grad_seq, **kw)
    for (lp, lm, lv), (fp, fm, fv) in zip(loop, foreach):
        for a, b in zip(lp + lm + lv, fp + fm + fv):
            np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    p0, grad_seq = make_problem(seed=7, n_steps=5)
    kw = dict(lr=0.05, schedule='warmup_linear', warmup=0.25, t_total=5, l2=0.1,
              max_grad_norm=1.0)
    want = ref_adam(p0, grad_seq, **kw)
    params = [torch.nn.Parameter(torch.tensor(x, device='cuda')) for x in p0]
    opt = OpenAIAdam(params, **kw)
    for grads in grad_seq:
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g, device='cuda')
        opt.step()
    for p, w in zip(params, want[-1][0]):
        np.testing.assert_allclose(p.detach().cpu().numpy(), w, rtol=1e-6, atol=1e-7)


INF, NAN = float('inf'), float('nan')


@pytest.mark.parametrize('name, value, expected', [
    ('lr', 0, 'a finite number > 0'), ('lr', -1e-3, 'a finite number > 0'), ('lr', INF, 'a finite number > 0'),
    ('lr', NAN, 'a finite number > 0'),
    ('schedule', 'cosine', "one of 'warmup_cosine', 'warmup_constant', 'warmup_linear', 'none'"),
    ('warmup', 0, "(0, 1] for schedule 'warmup_linear'"), ('warmup', -0.1, '(0, 1]'), ('warmup', 1.5, '(0, 1]'),
    ('t_total', 0, 'steps >= 1'), ('t_total', 0.5, 'steps >= 1'), ('t_total', INF, 'finite number of steps'),
    ('b1', 2, '[0, 1)'), ('b1', 1.0, '[0, 1)'), ('b2', -0.5, '[0, 1)'), ('b2', 1.0, '[0, 1)'),
    ('e', -1e-8, 'a finite number >= 0'), ('e', INF, 'a finite number >= 0'),
    ('l2', -0.01, 'a finite number >= 0'), ('l2', INF, 'a finite number >= 0'),
    ('max_grad_norm', INF, 'a finite number (<= 0 turns clipping off)'),
    ('max_grad_norm', NAN, 'a finite number'),
])
def test_hyperparameters_that_cannot_work_raise_input_error(name, value, expected):
    from errors import InputError
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(InputError) as info:
        OpenAIAdam([p], **{**GOOD, name: value})
    msg = str(info.value)
    assert msg.startswith(f"OpenAIAdam: invalid {name} {value!r}: expected ") and expected in msg, msg
    q = torch.nn.Parameter(torch.zeros(2))
    opt = OpenAIAdam([p], **GOOD)
    if name != 'max_grad_norm':  # a group may not set its own bound at all
        with pytest.raises(InputError, match=f"invalid {name} "):
            opt.add_param_group({'params': [q], name: value})


def test_warmup_is_not_read_by_the_none_schedule():
    # warmup=0 would be 0/0 in the warm-up schedules; 'none' never divides by it.
    p0, grad_seq = make_problem(seed=8, n_steps=3)
    kw = dict(lr=0.05, schedule='none', t_total=3, l2=0.1, max_grad_norm=1.0)
    got, _, _ = run_torch(p0, grad_seq, warmup=0, **kw)
    want, _, _ = run_torch(p0, grad_seq, warmup=0.5, **kw)
    assert_histories_close(got, want, rtol=0)
    assert not np.array_equal(got[0][0][0], p0[0])  # 'none' moves the parameters from the first step


# ---------------------------------------------------------------- AdamConfig

def test_config_builds_the_optimizer_the_flags_describe():
    cfg = AdamConfig(lr=0.05, lr_schedule='warmup_cosine', lr_warmup=0.25, b1=0.8, b2=0.99, e=1e-6, l2=0.3,
                     vector_l2=True, max_grad_norm=1.0)
    p0, grad_seq = make_problem(seed=12, n_steps=8)
    kw = dict(lr=0.05, schedule='warmup_cosine', warmup=0.25, t_total=8, b1=0.8, b2=0.99, e=1e-6, l2=0.3,
              vector_l2=True, max_grad_norm=1.0)
    params = [torch.nn.Parameter(torch.tensor(x)) for x in p0]
    opt = cfg.build(params, t_total=8)
    assert isinstance(opt, OpenAIAdam) and opt.defaults == kw
    for grads in grad_seq:
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        opt.step()
    want, _, _ = run_torch(p0, grad_seq, **kw)
    for p, w in zip(params, want[-1][0]):
        np.testing.assert_array_equal(p.detach().numpy(), w)


def test_config_defaults_are_the_papers_finetuning():
    opt = AdamConfig().build([torch.nn.Parameter(torch.zeros(2))], t_total=10)
    assert opt.defaults == dict(lr=6.25e-5, schedule='warmup_linear', warmup=0.002, t_total=10, b1=0.9, b2=0.999,
                                e=1e-8, l2=0.01, vector_l2=False, max_grad_norm=1)


@pytest.mark.parametrize('name, value, expected', [
    ('lr', 0, 'a finite number > 0'), ('lr', NAN, 'a finite number > 0'), ('lr', 'fast', 'a finite number > 0'),
    ('lr', True, 'a finite number > 0'),
    ('lr_schedule', 'cosine', "one of 'warmup_cosine', 'warmup_constant', 'warmup_linear', 'none'"),
    ('lr_warmup', 0, "a fraction of t_total in (0, 1] for schedule 'warmup_linear'"), ('lr_warmup', 1.5, '(0, 1]'),
    ('b1', 1.0, '[0, 1)'), ('b2', -0.5, '[0, 1)'), ('e', -1e-8, 'a finite number >= 0'),
    ('l2', INF, 'a finite number >= 0'), ('vector_l2', 'yes', 'a bool'),
    ('max_grad_norm', NAN, 'a finite number (<= 0 turns clipping off)'),
])
def test_a_bad_field_is_a_config_error_naming_it(name, value, expected):
    with pytest.raises(ConfigError) as info:
        AdamConfig(**{name: value})
    err = info.value
    assert err.field == name and err.value is value and expected in err.expected
    assert str(err) == f"{name}={value!r}: expected {err.expected}"
    cfg = AdamConfig()
    setattr(cfg, name, value)  # a field changed after construction is checked again on request
    with pytest.raises(ConfigError, match=f"^{name}="):
        cfg.check()


def test_the_none_schedule_does_not_read_the_warmup():
    assert AdamConfig(lr_schedule='none', lr_warmup=0).lr_warmup == 0


def test_config_json_round_trip():
    import json
    cfg = AdamConfig(lr=2.5e-4, lr_schedule='warmup_cosine', vector_l2=True)
    assert AdamConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert list(cfg.to_dict()) == ['lr', 'lr_schedule', 'lr_warmup', 'b1', 'b2', 'e', 'l2', 'vector_l2',
                                   'max_grad_norm']
    with pytest.raises(ConfigError, match=r"^schedule='none': expected a field of AdamConfig \(lr, lr_schedule"):
        AdamConfig.from_dict({'schedule': 'none'})  # OpenAIAdam's name, not the config's
