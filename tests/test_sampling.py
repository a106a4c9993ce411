"""The next-token choice: the release's top-k / top-p rule against a numpy rendering of GPT-2's
sample.py, the 'smallest' rule, the order of the steps and the draw's distribution."""
import numpy as np
import pytest
import torch

from errors import InputError
from sampling import check_sampling_args, filter_logits, sample_next

TOKEN_LOGITS = [3.0, 2.5, 2.0, 1.0, 0.5, 0.0, -1.0, -2.0]  # cumulative probs .441 .709 .871 .931 .967 .989 .997 1


def release_kept(logits, temperature, top_k, top_p):
    """The tokens OpenAI's GPT-2 sample.py leaves finite, step by step as its TF ops do, in numpy
    float32: logits / temperature; top_k_logits (mask logits below the k-th largest value);
    top_p_logits (sort descending, cumulative softmax, index max(count(cum <= p) - 1, 0), mask
    logits below the sorted logit there)."""
    z = np.asarray(logits, np.float32) / np.float32(temperature)
    if top_k:
        kth = np.sort(z)[::-1][top_k - 1]
        z = np.where(z < kth, np.float32(-1e10), z)
    if top_p < 1:
        s = np.sort(z)[::-1]
        e = np.exp(s - s.max())
        cum = np.cumsum(e / e.sum())
        index = max(int((cum <= np.float32(top_p)).sum()) - 1, 0)
        z = np.where(z < s[index], np.float32(-1e10), z)
    return set(np.flatnonzero(z > -1e9).tolist())


def kept(logits, temperature, top_k, top_p, rule):
    """The tokens sample_next can draw: filter_logits after the temperature."""
    z = torch.as_tensor(logits, dtype=torch.float32)[None] / temperature
    return set(torch.isfinite(filter_logits(z, top_k, top_p, rule)[0]).nonzero().flatten().tolist())


@pytest.mark.parametrize('top_k,top_p,temperature,release,smallest', [
    (0, 0.5, 1.0, {0}, {0, 1}),           # the release stops below p, smallest reaches it
    (0, 0.3, 1.0, {0}, {0}),              # at least the most likely token
    (0, 0.95, 1.0, {0, 1, 2, 3}, {0, 1, 2, 3, 4}),
    (3, 1.0, 1.0, {0, 1, 2}, {0, 1, 2}),
    (5, 0.95, 1.0, {0, 1, 2}, {0, 1, 2, 3}),  # top_p over the top-k renormalised: cumulative .456 .733 .901 .963
    (0, 0.8, 0.5, {0}, {0, 1}),           # temperature first: cumulative .653 .893 ...
])
def test_the_two_rules_on_known_logits(top_k, top_p, temperature, release, smallest):
    assert release_kept(TOKEN_LOGITS, temperature, top_k, top_p) == release
    assert kept(TOKEN_LOGITS, temperature, top_k, top_p, 'release') == release
    assert kept(TOKEN_LOGITS, temperature, top_k, top_p, 'smallest') == smallest


def test_release_rule_keeps_ties_at_the_kth_logit_and_smallest_keeps_k():
    logits = [2.0, 1.0, 1.0, 1.0, 0.0]
    assert kept(logits, 1.0, 2, 1.0, 'release') == release_kept(logits, 1.0, 2, 1.0) == {0, 1, 2, 3}
    assert len(kept(logits, 1.0, 2, 1.0, 'smallest')) == 2


def test_release_rule_matches_sample_py_on_random_rows():
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        logits = (torch.randn(40, generator=g) * 3).round(decimals=1)  # rounding makes ties
        top_k = int(torch.randint(0, 41, (1,), generator=g))
        top_p = float(torch.rand(1, generator=g)) * 0.98 + 0.01
        temperature = float(torch.rand(1, generator=g)) * 2 + 0.1
        assert kept(logits.numpy(), temperature, top_k, top_p, 'release') == \
            release_kept(logits.numpy(), temperature, top_k, top_p), (top_k, top_p, temperature)


@pytest.mark.parametrize('rule', ['release', 'smallest'])
def test_draws_follow_the_softmax_of_the_kept_logits(rule):
    """One draw from the renormalised probabilities of what is left: 20,000 draws within 4 standard errors."""
    logits = torch.tensor([TOKEN_LOGITS] * 20000)
    temperature, top_k, top_p = 0.7, 6, 0.97
    draws = sample_next(logits, temperature, top_k, top_p, generator=torch.Generator().manual_seed(0), rule=rule)
    allowed = sorted(kept(TOKEN_LOGITS, temperature, top_k, top_p, rule))
    p = torch.softmax(torch.tensor(TOKEN_LOGITS)[allowed] / temperature, 0).double()
    freq = torch.bincount(draws, minlength=8).double() / len(draws)
    assert set(draws.unique().tolist()) <= set(allowed)
    se = (p * (1 - p) / len(draws)).sqrt()
    assert ((freq[allowed] - p).abs() <= 4 * se + 1e-12).all(), (freq[allowed], p)


def test_an_unknown_rule_is_refused():
    with pytest.raises(InputError, match=r"filter_rule='nucleus': expected one of smallest, release"):
        check_sampling_args(5, filter_rule='nucleus')
