"""Choosing the next token from a model's logits: temperature, top-k, nucleus (top-p), one draw.

The order is OpenAI's GPT-2 sampler's (`src/sample.py`): the logits divided by the temperature,
then top-k, then top-p, then one draw from the softmax of what is left. Two rules say which
tokens top-k and top-p keep (`filter_rule`):

- 'smallest' (GPT-1's default here, and transformers' top-p): exactly the k largest logits; then
  the smallest set of the most likely tokens whose probabilities sum to at least top_p.
- 'release' (GPT-2's sample.py): every token whose logit is at least the k-th largest (ties with
  it kept); then every token whose logit is at least that of the last token in the sorted order
  whose cumulative probability is at most top_p (at least the most likely one).

The two differ only at the edges: ties at the k-th logit, and the token that carries the
cumulative probability past top_p, which 'smallest' keeps and 'release' drops.
"""
import numbers
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

from errors import InputError

FILTER_RULES = ('smallest', 'release')

__all__ = ['Sampling', 'FILTER_RULES', 'check_sampling_args', 'filter_logits', 'sample_next']


class Sampling(NamedTuple):
    """How each next token is chosen: greedy (the argmax), else the logits divided by temperature,
    filtered by top_k (0: off) and top_p (1: off) under filter_rule, then one draw with a generator
    seeded by seed (None: torch's global RNG)."""
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    greedy: bool = False
    seed: Optional[int] = None
    filter_rule: str = 'smallest'


def check_sampling_args(gen_len, temperature=1.0, top_k=0, top_p=1.0, n_vocab=None, filter_rule='smallest'):
    """Raise InputError (a ValueError) with a one-line message for an unusable setting.

    gen_len: number of new tokens, an int >= 0. temperature: > 0 (also with
    greedy, where it has no effect). top_k: 0 (off) up to n_vocab. top_p: in (0, 1]
    (1 = off). filter_rule: one of FILTER_RULES."""
    if isinstance(gen_len, bool) or not isinstance(gen_len, numbers.Integral) or gen_len < 0:
        raise InputError(f"gen_len={gen_len!r}: expected an integer >= 0 (the number of new tokens)")
    if not isinstance(temperature, numbers.Real) or not temperature > 0 or temperature == float('inf'):
        raise InputError(f"temperature={temperature!r}: expected a finite number > 0")
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0:
        raise InputError(f"top_k={top_k!r}: expected an integer >= 0 (0 turns top-k filtering off)")
    if n_vocab is not None and top_k > n_vocab:
        raise InputError(f"top_k={top_k} exceeds the vocabulary of {n_vocab} tokens: expected 0 (off) to {n_vocab}")
    if not isinstance(top_p, numbers.Real) or not 0 < top_p <= 1:
        raise InputError(f"top_p={top_p!r}: expected a number in (0, 1] (1 turns nucleus filtering off)")
    if filter_rule not in FILTER_RULES:
        raise InputError(f"filter_rule={filter_rule!r}: expected one of {', '.join(FILTER_RULES)}")


def _smallest(logits, top_k, top_p):
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).indices
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, kth, True)
        logits.masked_fill_(~keep, float('-inf'))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = F.softmax(sorted_logits, dim=-1)
        # mass of the tokens strictly before each one; drop those after the set is full
        before = torch.cumsum(probs, dim=-1) - probs
        drop_sorted = before >= top_p
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
        logits.masked_fill_(drop, float('-inf'))
    return logits


def _release(logits, top_k, top_p):
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits.masked_fill_(logits < kth, float('-inf'))
    if top_p < 1.0:
        sorted_logits = torch.sort(logits, dim=-1, descending=True).values
        cumulative = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
        n_keep = (cumulative <= top_p).sum(dim=-1, keepdim=True).clamp_(min=1)
        logits.masked_fill_(logits < sorted_logits.gather(-1, n_keep - 1), float('-inf'))
    return logits


def filter_logits(logits, top_k=0, top_p=1.0, rule='smallest'):
    """logits (B, V) -> a copy with every token outside the top-k / nucleus set at -inf.

    top_k: keep the k largest logits of each row (0: all). top_p: then keep the most likely
    tokens up to a probability mass of top_p (1.0: all); `rule` ('smallest' or 'release', see
    the module's docstring) says which tokens at the edges; the most likely token is always kept."""
    return (_release if rule == 'release' else _smallest)(logits.clone(), top_k, top_p)


def sample_next(logits, temperature=1.0, top_k=0, top_p=1.0, greedy=False, generator=None, rule='smallest'):
    """logits (B, V) -> LongTensor (B,) of the chosen ids.

    greedy: the argmax. Otherwise divide by temperature, filter (see
    filter_logits) and draw from the softmax with `generator` (a torch.Generator
    on the logits' device, or None for the global RNG). Any temperature > 0
    works: a tiny one leaves the most likely token(s) only, like greedy."""
    if greedy:
        return logits.argmax(dim=-1)
    logits = logits.float()
    shifted = logits - logits.amax(dim=-1, keepdim=True)
    # The max is 0 and must stay 0: a temperature that underflows float32 (1e-46) would
    # make it 0 / 0 = NaN, and an unshifted logit / 1e-45 overflows to inf (softmax NaN).
    scores = filter_logits(torch.where(shifted == 0, shifted, shifted / temperature), top_k, top_p, rule)
    probs = F.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
