"""Each multiple-choice example's shared context computed once.

A multiple-choice example repeats its context in every choice: `[_start_] story
[_delimiter_]` is the same for both ROCStories endings. With causal attention the
hidden states of those first tokens do not depend on what follows, so
`SharedPrefixModel` runs them once per example, keeps every layer's keys and values
(the cache generation uses) and runs each choice's remainder against them, its
positions continuing the prefix's (they come with the input's position ids). With
dropout off the classifier logits, the LM loss and every gradient equal
`DoubleHeadModel`'s (to float rounding); with dropout on the choices share the
prefix's dropout masks, where TF drew one per choice.

The shared prefix of an example is its longest run of first positions where every
choice has the same token and position id and a real token (M > 0), stopped before
the first `_classify_` of any choice, so that the classifier reads each choice's own
state. No delimiter id is needed: an example whose choices differ before the
delimiter (user data) shares fewer tokens, and one whose choices differ at the first
token shares none and is computed as the plain path computes it. Both are exact.

The LM loss is the TF objective's mean over sequences of each sequence's mean
next-token loss: a shared position's loss, computed once, counts once per choice,
each time with its choice's weight M / (that choice's real next tokens).
"""
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from errors import InputError
from model_pytorch import MultipleChoiceHead, _clf_states


class PrefixSplit(NamedTuple):
    """A batch cut into prefixes and remainders; P (B,) shared positions per example.
    xp (B, Pm, 2): choice 0's first Pm = max(P) positions; kp (B, Pm) bool: True at an
    example's own P shared positions. xr (B, C, R, 2): each choice's positions from its
    example's P on, right-padded to R; mr (B, C, R): their mask (0 at the padding)."""
    P: torch.Tensor
    xp: torch.Tensor
    kp: torch.Tensor
    xr: torch.Tensor
    mr: torch.Tensor


def shared_prefix_lengths(X, M, clf_token):
    """X (B, C, T, 2) long, M (B, C, T) -> (B,) long: how many first positions the choices
    of each example share (same token and position, real in every choice), stopped before
    the first `clf_token` of any of its choices."""
    T = X.size(2)
    same = (X == X[:, :1]).all(-1).all(1) & (M > 0).all(1)  # (B, T)
    P = same.long().cumprod(-1).sum(-1)
    is_clf = X[..., 0] == clf_token
    first_clf = torch.where(is_clf.any(-1), is_clf.int().argmax(-1), T)  # (B, C); T: none, the head says so
    return torch.minimum(P, first_clf.amin(1))


def split_choices(X, M, P):
    """X (B, C, T, 2), M (B, C, T), P (B,) from shared_prefix_lengths -> PrefixSplit."""
    B, C, T = M.shape
    Pm = int(P.max())
    steps = torch.arange(1, T + 1, device=M.device)
    ends = ((M > 0) * steps).amax(-1)  # (B, C): one past each sequence's last real token
    R = max(int((ends - P[:, None]).max()), 1)
    pos = P[:, None, None] + torch.arange(R, device=M.device)  # (B, 1, R)
    idx = pos.clamp(max=T - 1).expand(B, C, R)
    xr = X.gather(2, idx[..., None].expand(B, C, R, 2))
    mr = M.gather(2, idx) * (pos < T)
    kp = torch.arange(Pm, device=M.device) < P[:, None]
    return PrefixSplit(P, X[:, 0, :Pm], kp, xr, mr)


def run_split(transformer, s):
    """The transformer over a PrefixSplit: hidden states (hp (B, Pm, n_embd) or None when no
    example shares a position, hr (B * C, R, n_embd)). The embeddings of both calls come
    from one embed_input call, so a row gets one embedding dropout mask per batch, as in
    one plain forward."""
    B, C, R = s.mr.shape
    Pm = s.xp.size(1)
    if Pm == 0:
        return None, transformer(s.xr)
    e = transformer.embed_input(torch.cat((s.xp.reshape(-1, 2), s.xr.reshape(-1, 2))))
    ep, er = e.split((B * Pm, B * C * R))
    hp, past = transformer(s.xp, use_cache=True, embedded=ep.view(B, Pm, -1))
    past = [(k.repeat_interleave(C, 0), v.repeat_interleave(C, 0)) for k, v in past]
    key_mask = torch.cat((s.kp.repeat_interleave(C, 0), s.kp.new_ones(B * C, R)), 1)
    hr = transformer(s.xr, past=past, key_mask=key_mask, embedded=er.view(B * C, R, -1))
    return hp, hr


def lm_loss(decoder, X, M, s, hp, hr):
    """The mean over the B * C sequences of each one's LM loss (loss.py's
    `lm_losses(...).mean()`), from run_split's states. The prefix's last position predicts
    each choice's first own token, so every prefix row is scored against each choice's
    next token (the same token but at that last row). decoder: the tied LM projection."""
    B, C, T = M.shape
    R = s.mr.size(-1)
    W = M[..., 1:].sum(-1).clamp_min(torch.finfo(torch.float32).tiny)  # (B, C) each sequence's next tokens
    rem = s.mr[..., 1:] > 0  # (B, C, R - 1): remainder rows whose next token is real
    rows = [hr.view(B, C, R, -1)[:, :, :-1][rem]]
    targets = [s.xr[:, :, 1:, 0][rem][:, None]]
    weights = [(s.mr[..., 1:] / W[..., None])[rem][:, None]]
    if hp is not None:
        Pm = hp.size(1)
        rows.insert(0, hp[s.kp])
        targets.insert(0, X[:, :, 1:Pm + 1, 0].transpose(1, 2)[s.kp])  # (rows, C)
        weights.insert(0, (M[:, :, 1:Pm + 1] / W[..., None]).transpose(1, 2)[s.kp])
    logp = F.log_softmax(decoder(torch.cat(rows)).float(), -1)
    total = logp.new_zeros(())
    for lp, tgt, w in zip(logp.split([len(r) for r in rows]), targets, weights):
        total = total - (lp.gather(1, tgt) * w).sum()
    return total / (B * C)


def token_batches(lengths, budget):
    """Indices (long tensors) that cover `lengths` (n,) in order of length, cut where a batch
    would hold more than `budget` tokens counting its padding (at least one item a batch):
    passes as large as the memory they are given, with little padding."""
    order = torch.argsort(lengths, stable=True)
    sizes, start = [], 0
    longest = lengths[order].clamp_min(1).tolist()
    while start < len(longest):
        end = start + 1
        while end < len(longest) and (end + 1 - start) * longest[end] <= budget:
            end += 1
        sizes.append(end - start)
        start = end
    return list(order.split(sizes))


def _prefix_cache(transformer, s, budget):
    """Every layer's keys and values of the prefixes of PrefixSplit `s`, computed in order of
    prefix length, at most `budget` tokens a pass: a list of (k, v), each
    (B, n_head, Pm, head_dim), zero past its pass's longest prefix (the positions past an
    example's own prefix are masked by the PrefixSplit's kp)."""
    cache = None
    for idx in token_batches(s.P, budget):
        n = int(s.P[idx].max())
        if n == 0:
            continue
        _, past = transformer(s.xp[idx, :n], use_cache=True)
        if cache is None:
            cache = [tuple(t.new_zeros(len(s.P), t.size(1), s.xp.size(1), t.size(3)) for t in kv) for kv in past]
        for (k, v), (pk, pv) in zip(cache, past):
            k[idx, :, :n], v[idx, :, :n] = pk, pv
    return cache


class GatheredPast:
    """The cache's keys and values of examples `ex`, first n positions, gathered one layer at a
    time as the transformer reads them: all layers at once would hold a copy of the cache's
    rows for every layer together."""

    def __init__(self, cache, ex, n):
        self.cache, self.ex, self.n = cache, ex, n

    def __getitem__(self, i):
        k, v = self.cache[i]
        return k[self.ex, :, :self.n], v[self.ex, :, :self.n]


def grouped_clf_logits(model, X, M, n_batch):
    """Classifier logits (B, C) of a DoubleHeadModel in eval mode for X (B, C, T, 2), M (B, C, T),
    with little padding in either pass: the prefixes run in order of prefix length, then the
    B * C remainders in order of remainder length, each against its example's keys and values
    cut to its batch's longest prefix. A pass holds as many sequences as fit in the tokens of
    a plain batch, n_batch * C * T, so that the short remainders make matrix products of a
    size that runs at full speed. Equal to SharedPrefixModel's logits (to float rounding);
    evaluation calls it on groups of several batches."""
    B, C, T = M.shape
    budget = n_batch * C * T
    s = split_choices(X, M, shared_prefix_lengths(X, M, model.task_head.clf_token))
    cache = _prefix_cache(model.transformer, s, budget)
    R = s.mr.size(-1)
    xr, lengths = s.xr.reshape(B * C, R, 2), s.mr.reshape(B * C, R).gt(0).sum(-1)
    states = None
    for rows in token_batches(lengths, budget):
        ex, r, n = rows // C, int(lengths[rows].max()), int(s.P[rows // C].max())
        x = xr[rows, :max(r, 1)]
        if n == 0:
            h = model.transformer(x)
        else:
            key_mask = torch.cat((s.kp[ex, :n], s.kp.new_ones(x.shape[:2])), 1)
            h = model.transformer(x, past=GatheredPast(cache, ex, n), key_mask=key_mask)
        h = _clf_states(h, x, model.task_head.clf_token)
        states = h.new_empty(B * C, h.size(-1)) if states is None else states
        states[rows] = h
    # the head sees each choice's state alone, with its _classify_ token
    only_clf = torch.full((B, C, 1, 2), model.task_head.clf_token, dtype=X.dtype, device=X.device)
    return model.task_head(states[:, None], only_clf)


class SharedPrefixModel(nn.Module):
    """A DoubleHeadModel with a multiple-choice head, run with each example's shared
    prefix computed once. Wrap this module (not the DoubleHeadModel) in DDP for
    data-parallel training. It holds no parameters of its own."""

    def __init__(self, model):
        super().__init__()
        head = getattr(model, 'task_head', None)
        if not isinstance(head, MultipleChoiceHead):
            raise InputError(f"--share_prefix: the model's task head is {type(head).__name__}; expected a "
                             f"multiple-choice head (only its choices share a context)")
        self.model = model

    def forward(self, X, M, with_lm=True):
        """X (B, C, T, 2) long, M (B, C, T) -> (classifier logits (B, C), the mean LM loss
        over the B * C sequences (a scalar) or None when not with_lm)."""
        model = self.model
        s = split_choices(X, M, shared_prefix_lengths(X, M, model.task_head.clf_token))
        hp, hr = run_split(model.transformer, s)
        clf_logits = model.task_head(hr, s.xr)
        return clf_logits, (lm_loss(model.lm_head.decoder, X, M, s, hp, hr) if with_lm else None)


def shared_prefix_model(model):
    """`model` ready for the shared-prefix step: a SharedPrefixModel (or DDP around one)
    as it is, a plain DoubleHeadModel wrapped. DDP around a DoubleHeadModel is refused:
    its gradients would not be synchronised through another module's forward."""
    inner = getattr(model, 'module', model)
    if isinstance(inner, SharedPrefixModel):
        return model
    if inner is not model:
        raise TypeError("the shared-prefix step needs DDP around SharedPrefixModel(model), not around the model")
    return SharedPrefixModel(model)
