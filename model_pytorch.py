"""OpenAI's finetuned transformer LM (GPT-1) in PyTorch.

Modules and parameters carry the TensorFlow release's variable names
(`h.3.attn.c_attn.w` is `model/h3/attn/c_attn/w:0`), and the numerics follow it:
post-LayerNorm blocks, epsilon inside the square root, tanh GELU, one embedding
matrix `embed` for tokens, special tokens and positions.

`arch='gpt2'` in the config selects GPT-2's block layout instead: LayerNorm at the
input of each sub-block, a final LayerNorm `ln_f` after the last block (GPT-2's TF
name), and the residual output projections initialised with std 0.02/sqrt(2 n_layer).
Everything else (embeddings, attention, GELU, the LM head) is shared.

`causal=False` in the config makes every block's attention bidirectional (each position
sees every other), for encoders pre-trained with a masked LM or ELECTRA (electra.py).
GPT-1's causal attention is the default and unchanged.

Inputs are `(..., n_ctx, 2)` integer tensors: `[..., 0]` token ids, `[..., 1]`
position ids already offset into `embed` (row `n_vocab + n_special + p`).
"""
import bisect
import json
import math
import numbers
import os
import re
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from errors import CheckpointError, InputError, MissingFileError  # CheckpointError: importable from here as before
from loss import ChunkBuffer, chunked_lm_loss


class dotdict(dict):
    """A dict whose keys are also attributes (`cfg.n_embd`)."""
    __getattr__ = dict.get
    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__


DEFAULT_CONFIG = dotdict(
    n_embd=768, n_head=12, n_layer=12,
    embd_pdrop=0.1, attn_pdrop=0.1, resid_pdrop=0.1, clf_pdrop=0.1,
    afn='gelu',
)

N_CTX_MAX = 512  # position rows in OpenAI's checkpoint
ATTN_IMPLS = ('sdpa', 'explicit')
DROPOUT_MASKS = ('bernoulli', 'int')
ARCHS = ('gpt1', 'gpt2')


def int_dropout(x, p, training=True):
    """Dropout whose mask is drawn from 31-bit random integers (an int32 tensor's random_)
    instead of bernoulli_, which on the CPU runs on one thread at about 2.5x the cost:
    the same distribution (each entry kept with probability 1 - p, to 2^-31, and scaled
    by 1 / (1 - p)), another random stream. x any shape -> the same shape."""
    if not training or p == 0:
        return x
    draws = torch.empty(x.shape, dtype=torch.int32, device=x.device).random_()  # uniform on [0, 2^31)
    scale, zero = (torch.tensor(v, dtype=x.dtype, device=x.device) for v in (1 / (1 - p), 0.0))
    return x * torch.where(draws < round((1 - p) * 2 ** 31), scale, zero)


def dropout(x, p, training, int_masks):
    """F.dropout, or int_dropout on the CPU when int_masks (TransformerModel.set_dropout_masks)."""
    if int_masks and x.device.type == 'cpu':
        return int_dropout(x, p, training)
    return F.dropout(x, p, training)


class Dropout(nn.Dropout):
    """nn.Dropout whose masks `dropout` draws as `int_masks` says (set by
    TransformerModel.set_dropout_masks)."""
    int_masks = False

    def forward(self, x):
        return dropout(x, self.p, self.training, self.int_masks)


def gelu(x):
    """The tanh form of GELU the TF release used."""
    return F.gelu(x, approximate='tanh')


def swish(x):
    return x * torch.sigmoid(x)


ACT_FNS = {'relu': F.relu, 'swish': swish, 'gelu': gelu}


def _cfg(cfg, name, default=None):
    # An argparse Namespace from train.py stands in for DEFAULT_CONFIG.
    return getattr(cfg, name, default) if not isinstance(cfg, dict) else cfg.get(name, default)


# ---------------------------------------------------------------- configuration checks
#
# The config's fields are train.py's flags, so the messages name them as flags.

def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_positive_int(flag, value, what):
    if not _is_int(value) or value < 1:
        raise InputError(f"--{flag} {value!r}: expected a positive integer, the {what}")


def _check_heads(n_embd, n_head):
    _check_positive_int('n_head', n_head, 'number of attention heads')
    if n_embd % n_head:
        raise InputError(f"--n_head {n_head}: n_embd {n_embd} is not divisible by it")


def _check_pdrop(flag, p):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
        raise InputError(f"--{flag} {p!r}: expected a dropout probability in [0, 1)")


def _check_afn(afn):
    if not isinstance(afn, str) or afn not in ACT_FNS:
        raise InputError(f"--afn {afn}: afn={afn!r} is not one of {', '.join(sorted(ACT_FNS))}")


def _check_attn_impl(impl):
    if impl not in ATTN_IMPLS:
        raise InputError(f"--attn_impl {impl}: attention impl={impl!r} is not one of {', '.join(ATTN_IMPLS)}")


def _check_arch(arch):
    if arch not in ARCHS:
        raise InputError(f"--arch {arch}: arch={arch!r} is not one of {', '.join(ARCHS)}")


def _check_causal(causal):
    if not isinstance(causal, bool):
        raise InputError(f"causal={causal!r}: expected True (GPT-1's causal attention) or False (bidirectional)")


def check_config(cfg, vocab, n_ctx):
    """Raise InputError, naming the field as its train.py flag, for a configuration
    TransformerModel cannot be built with: n_layer, n_embd, n_head positive integers with
    n_head dividing n_embd; embd_pdrop, attn_pdrop, resid_pdrop (and clf_pdrop, when set) in [0, 1); afn one of
    ACT_FNS; attn_impl (when set) one of ATTN_IMPLS; arch (when set) one of ARCHS; causal (when
    set) a bool; n_ctx a positive integer and vocab
    an integer with room for a token row besides the n_ctx position rows. n_ctx may exceed
    the 512 positions of OpenAI's checkpoint here; the loaders refuse that."""
    _check_positive_int('n_layer', _cfg(cfg, 'n_layer'), 'number of blocks')
    _check_positive_int('n_embd', _cfg(cfg, 'n_embd'), 'width of the hidden states')
    _check_heads(cfg.n_embd, _cfg(cfg, 'n_head'))
    for flag in ('embd_pdrop', 'attn_pdrop', 'resid_pdrop'):
        _check_pdrop(flag, _cfg(cfg, flag))
    _check_pdrop('clf_pdrop', _cfg(cfg, 'clf_pdrop', 0.0))  # read by the task heads only
    _check_afn(_cfg(cfg, 'afn'))
    _check_attn_impl(_cfg(cfg, 'attn_impl', 'sdpa'))
    _check_arch(_cfg(cfg, 'arch', 'gpt1'))
    _check_causal(_cfg(cfg, 'causal', True))
    _check_positive_int('n_ctx', n_ctx, 'number of positions')
    if not _is_int(vocab) or vocab <= n_ctx:
        raise InputError(f"vocab={vocab!r}: expected an integer above n_ctx={n_ctx}: embed has n_vocab + n_special "
                         f"+ n_ctx rows (tokens, special tokens, then one row per position)")


class Conv1D(nn.Module):
    """TF's 1x1 `conv1d`: y = x @ w + b with w of shape (nx, nf)."""

    def __init__(self, nx, nf, std=0.02):
        super().__init__()
        self.w = nn.Parameter(torch.empty(nx, nf).normal_(std=std))
        self.b = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return torch.addmm(self.b, x.reshape(-1, x.size(-1)), self.w).view(*x.shape[:-1], self.w.size(1))


class LayerNorm(nn.Module):
    """(x - mean) / sqrt(var + e) * g + b over the last axis, biased variance."""

    def __init__(self, n_state, e=1e-5):
        super().__init__()
        self.g = nn.Parameter(torch.ones(n_state))
        self.b = nn.Parameter(torch.zeros(n_state))
        self.e = e

    def forward(self, x):
        return F.layer_norm(x, self.g.shape, self.g, self.b, self.e)


class Attention(nn.Module):
    """Multi-head self-attention, causal (GPT-1's) or bidirectional (`causal=False`), with
    an optional key/value cache (causal only).

    `impl='sdpa'` uses `F.scaled_dot_product_attention` (fused kernels on GPU);
    `impl='explicit'` computes TF's `w * b + -1e9 * (1 - b)` masking step by step.
    Both give the same result to float tolerance: masked scores become exactly
    zero after the softmax either way.
    """

    def __init__(self, nx, n_head, attn_pdrop, resid_pdrop, impl='sdpa', proj_std=0.02, causal=True):
        super().__init__()
        _check_heads(nx, n_head)
        _check_pdrop('attn_pdrop', attn_pdrop)
        _check_pdrop('resid_pdrop', resid_pdrop)
        _check_attn_impl(impl)
        _check_causal(causal)
        self.n_head = n_head
        self.c_attn = Conv1D(nx, nx * 3)
        self.c_proj = Conv1D(nx, nx, std=proj_std)
        self.attn_pdrop = attn_pdrop
        self.attn_dropout = Dropout(attn_pdrop)
        self.resid_dropout = Dropout(resid_pdrop)
        self.impl = impl
        self.causal = causal

    def split_heads(self, x):
        """(B, T, C) -> (B, n_head, T, C // n_head)"""
        B, T, C = x.shape
        return x.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)

    @staticmethod
    def _causal_mask(T, S, key_mask, device):
        """(allowed (T, S) or (B, 1, T, S) bool or None, whether sdpa's is_causal stands for it)."""
        allowed, causal = None, S == T  # no mask: square causal, or one new query that sees every key
        if key_mask is not None or 1 < T < S:
            causal = False
            # query i sits at absolute position S - T + i and sees keys up to it
            allowed = torch.ones(T, S, dtype=torch.bool, device=device).tril(S - T)
            if key_mask is not None:
                # a padded query still sees itself, so no row is fully masked (no NaN)
                diag = torch.zeros_like(allowed)
                diag[torch.arange(T, device=device), torch.arange(S - T, S, device=device)] = True
                allowed = (allowed & key_mask[:, None, None, :]) | diag
        return allowed, causal

    @staticmethod
    def _bidirectional_mask(T, key_mask, device):
        """allowed (B, 1, T, T) bool, or None when every key may be attended to."""
        if key_mask is None:
            return None
        # a padded query still sees itself, so no row is fully masked (no NaN)
        return key_mask[:, None, None, :] | torch.eye(T, dtype=torch.bool, device=device)

    def _attend_int_dropout(self, q, k, v, allowed, causal):
        """softmax(q k^T / sqrt(d), masked) @ v with int_dropout on the weights: what SDPA
        computes when it drops (its math fallback on the CPU), without bernoulli_.
        q (B, H, T, d), k and v (B, H, S, d); allowed (T, S) or (B, 1, T, S) bool or None,
        causal as _causal_mask says. Returns (B, H, T, d)."""
        w = (q * (1 / math.sqrt(q.size(-1)))) @ k.transpose(-2, -1)
        if causal:
            allowed = torch.ones(w.shape[-2:], dtype=torch.bool, device=w.device).tril(k.size(2) - q.size(2))
        if allowed is not None:
            w = w.masked_fill(~allowed, float('-inf'))  # no row is fully masked
        return int_dropout(torch.softmax(w, dim=-1), self.attn_pdrop) @ v

    def forward(self, x, layer_past=None, key_mask=None):
        """x (B, T, C); layer_past (k, v) each (B, n_head, T_past, C // n_head) or None;
        key_mask (B, T_past + T) bool, True for keys that may be attended to, or None.
        Returns (a (B, T, C), present (k, v) including x's positions)."""
        if layer_past is not None and not self.causal:
            raise InputError("a key/value cache was given to bidirectional attention (causal=False): each position "
                             "sees the later ones, so a cache of earlier positions cannot stand for them")
        q, k, v = self.c_attn(x).split(x.size(-1), dim=2)
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
        if layer_past is not None:
            k = torch.cat((layer_past[0], k), dim=2)
            v = torch.cat((layer_past[1], v), dim=2)
        present = (k, v)
        T, S = q.size(2), k.size(2)
        if self.causal:
            allowed, causal = self._causal_mask(T, S, key_mask, x.device)
        else:
            allowed, causal = self._bidirectional_mask(T, key_mask, x.device), False
        if self.training and self.attn_pdrop > 0 and self.attn_dropout.int_masks and x.device.type == 'cpu':
            y = self._attend_int_dropout(q, k, v, allowed, causal)
        elif self.impl == 'sdpa':
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=allowed, is_causal=causal,
                dropout_p=self.attn_pdrop if self.training else 0.0)
        else:
            w = q @ k.transpose(-2, -1) / math.sqrt(v.size(-1))
            if allowed is None and self.causal:
                allowed = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
            if allowed is not None:
                b = allowed.to(w.dtype)
                w = w * b + -1e9 * (1 - b)
            y = self.attn_dropout(F.softmax(w, dim=-1)) @ v
        y = y.transpose(1, 2).reshape(x.shape)
        return self.resid_dropout(self.c_proj(y)), present


class MLP(nn.Module):
    def __init__(self, n_state, nx, afn, resid_pdrop, proj_std=0.02):
        super().__init__()
        _check_afn(afn)
        _check_pdrop('resid_pdrop', resid_pdrop)
        self.c_fc = Conv1D(nx, n_state)
        self.c_proj = Conv1D(n_state, nx, std=proj_std)
        self.act = ACT_FNS[afn]
        self.dropout = Dropout(resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    """GPT-1's post-LN block: n = ln_1(x + attn(x)); h = ln_2(n + mlp(n)).
    With cfg.arch 'gpt2', GPT-2's pre-LN block: n = x + attn(ln_1(x)); h = n + mlp(ln_2(n))."""

    def __init__(self, cfg):
        super().__init__()
        nx = cfg.n_embd
        self.pre_ln = _cfg(cfg, 'arch', 'gpt1') == 'gpt2'
        # GPT-2 scales the projections into the residual stream by the number of them
        proj_std = 0.02 / math.sqrt(2 * cfg.n_layer) if self.pre_ln else 0.02
        self.attn = Attention(nx, cfg.n_head, cfg.attn_pdrop, cfg.resid_pdrop, _cfg(cfg, 'attn_impl', 'sdpa'),
                              proj_std=proj_std, causal=_cfg(cfg, 'causal', True))
        self.ln_1 = LayerNorm(nx)
        self.mlp = MLP(4 * nx, nx, cfg.afn, cfg.resid_pdrop, proj_std=proj_std)
        self.ln_2 = LayerNorm(nx)

    def forward(self, x, layer_past=None, key_mask=None):
        if self.pre_ln:
            a, present = self.attn(self.ln_1(x), layer_past, key_mask)
            n = x + a
            return n + self.mlp(self.ln_2(n)), present
        a, present = self.attn(x, layer_past, key_mask)
        n = self.ln_1(x + a)
        return self.ln_2(n + self.mlp(n)), present


class TransformerModel(nn.Module):
    """The transformer: embeddings and `n_layer` blocks (and GPT-2's final `ln_f` when
    cfg.arch is 'gpt2'); causal attention unless cfg.causal is False (bidirectional).

    vocab = n_vocab + n_special + n_ctx rows in `embed` (40478 + 0 + 512 by default).
    forward(x): x (B, T, 2) or (B, n_choices, T, 2) long -> hidden states
    (B * n_choices, T, n_embd); T may be anything up to the model's n_ctx.
    """

    def __init__(self, cfg=DEFAULT_CONFIG, vocab=40990, n_ctx=512):
        super().__init__()
        check_config(cfg, vocab, n_ctx)
        self.vocab, self.n_ctx, self.n_embd = vocab, n_ctx, cfg.n_embd
        self.embed = nn.Embedding(vocab, cfg.n_embd)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.embd_pdrop = cfg.embd_pdrop
        self.int_masks = False  # see set_dropout_masks
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.arch = _cfg(cfg, 'arch', 'gpt1')
        self.causal = _cfg(cfg, 'causal', True)
        if self.arch == 'gpt2':
            self.ln_f = LayerNorm(cfg.n_embd)

    def set_dropout_masks(self, kind):
        """Draw every dropout mask of this transformer on the CPU with torch's bernoulli_
        ('bernoulli', the default: train.py's finetuning runs keep their numbers) or from
        31-bit random integers ('int': int_dropout, pretrain.py's default; attention then
        runs _attend_int_dropout while training). Returns self."""
        if kind not in DROPOUT_MASKS:
            raise InputError(f"--dropout_masks {kind!r}: expected one of {', '.join(DROPOUT_MASKS)}")
        self.int_masks = kind == 'int'
        for m in self.modules():
            if isinstance(m, Dropout):
                m.int_masks = self.int_masks
        return self

    def set_attention(self, impl):
        """Select 'sdpa' (fused kernels) or 'explicit' attention in every block."""
        _check_attn_impl(impl)
        for block in self.h:
            block.attn.impl = impl
        return self

    def embed_input(self, x):
        """x (..., T, 2) -> summed embeddings (..., T, n_embd).

        TF drops entries of the embedding matrix itself, so a row that occurs
        twice in a batch gets the same mask; dropping only the rows in use
        draws the same distribution without touching all 40k rows."""
        if self.training and self.embd_pdrop > 0:
            rows, inverse = torch.unique(x, return_inverse=True)
            used = dropout(self.embed(rows), self.embd_pdrop, True, self.int_masks)
            # F.embedding rather than [inverse]: its backward sums repeated rows in a
            # fixed order, so CPU runs with several threads stay bit-identical
            e = F.embedding(inverse, used)
        else:
            e = self.embed(x)
        return e.sum(dim=-2)

    def forward(self, x, past=None, use_cache=False, key_mask=None, embedded=None):
        """x (..., T, 2) long; past: list of per-layer (k, v) from an earlier call
        or None; key_mask (B, T_past + T) bool or None (False marks padding keys);
        embedded: embed_input(x) reshaped to (B', T, n_embd) when the caller drew it, so that
        several calls share one embedding dropout mask (prefix.py), else None.
        Returns h (B', T, n_embd), and the new `past` list too when use_cache."""
        if x.dim() < 3 or x.size(-1) != 2:
            raise InputError(
                f"input of shape {tuple(x.shape)}: expected (batch, n_ctx, 2) or "
                f"(batch, n_choices, n_ctx, 2) with a trailing (token id, position id) axis")
        if x.size(-2) > self.n_ctx:
            raise InputError(f"input has {x.size(-2)} positions, more than the model's n_ctx={self.n_ctx}")
        x = x.reshape(-1, x.size(-2), 2)
        h = self.embed_input(x) if embedded is None else embedded
        presents = []
        for i, block in enumerate(self.h):
            h, present = block(h, None if past is None else past[i], key_mask)
            if use_cache:
                presents.append(present)
        if self.arch == 'gpt2':
            h = self.ln_f(h)
        return (h, presents) if use_cache else h


class LMHead(nn.Module):
    """Language model head, tied to the transformer's embedding matrix.

    forward(h): h (B, T, n_embd) -> logits (B * (T - 1), vocab) for positions
    0..T-2 when trunc_and_reshape (the earlier port's layout), else (B, T, vocab).
    """

    def __init__(self, model, cfg=DEFAULT_CONFIG, trunc_and_reshape=True):
        super().__init__()
        self.n_embd = cfg.n_embd
        self.decoder = nn.Linear(cfg.n_embd, model.embed.weight.size(0), bias=False)
        self.decoder.weight = model.embed.weight
        self.trunc_and_reshape = trunc_and_reshape

    def forward(self, h):
        if self.trunc_and_reshape:
            h = h[:, :-1].reshape(-1, self.n_embd)
        return self.decoder(h)


def _clf_states(h, x, clf_token):
    """Hidden state at each sequence's first `clf_token`.

    h (N, T, n_embd), x (..., T, 2) with N = prod(x.shape[:-2]) -> (N, n_embd)."""
    tokens = x[..., 0].reshape(-1, x.size(-2))
    is_clf = tokens == clf_token
    if not bool(is_clf.any(dim=1).all()):
        raise InputError(f"a sequence has no classify token (id {clf_token}): every sequence must contain it")
    idx = is_clf.int().argmax(dim=1)
    return h[torch.arange(h.size(0), device=h.device), idx]


class MultipleChoiceHead(nn.Module):
    """Scores each choice: forward(h, x) with x (B, n_choices, T, 2) -> logits (B, n_choices).

    One dropout mask per example is shared by all its choices, as TF's
    noise_shape [batch, 1, n_embd]."""

    def __init__(self, clf_token, cfg=DEFAULT_CONFIG):
        super().__init__()
        _check_pdrop('clf_pdrop', cfg.clf_pdrop)
        self.clf_token = clf_token
        self.clf_pdrop = cfg.clf_pdrop
        self.clf = Conv1D(cfg.n_embd, 1)

    def forward(self, h, x):
        if x.dim() != 4:
            raise InputError(f"multiple-choice input of shape {tuple(x.shape)}: expected (batch, n_choices, n_ctx, 2)")
        B, C = x.shape[:2]
        clf_h = _clf_states(h, x, self.clf_token).view(B, C, -1)
        if self.training and self.clf_pdrop > 0:
            keep = torch.empty(B, 1, clf_h.size(-1), device=h.device, dtype=h.dtype).bernoulli_(1 - self.clf_pdrop)
            clf_h = clf_h * keep / (1 - self.clf_pdrop)
        return self.clf(clf_h).squeeze(-1)


class ClfHead(nn.Module):
    """Classifies sequences: forward(h, x) with x (B, T, 2) -> logits (B, n_class)."""

    def __init__(self, clf_token, cfg=DEFAULT_CONFIG, n_class=2):
        super().__init__()
        _check_pdrop('clf_pdrop', cfg.clf_pdrop)
        self.clf_token = clf_token
        self.dropout = nn.Dropout(cfg.clf_pdrop)
        self.clf = Conv1D(cfg.n_embd, n_class)

    def forward(self, h, x):
        return self.clf(self.dropout(_clf_states(h, x, self.clf_token)))


class SimilarityHead(nn.Module):
    """Scores a sentence pair given in both orders, as the paper does: the two
    orderings' states are added before the linear layer.

    forward(h, x) with x (B, 2, T, 2) -> logits (B,) with one output (a graded score,
    STS-B), else (B, n_class) (paraphrase classes, MRPC and QQP)."""

    def __init__(self, clf_token, cfg=DEFAULT_CONFIG, n_class=1):
        super().__init__()
        _check_pdrop('clf_pdrop', cfg.clf_pdrop)
        self.clf_token = clf_token
        self.dropout = nn.Dropout(cfg.clf_pdrop)
        self.clf = Conv1D(cfg.n_embd, n_class)

    def forward(self, h, x):
        if x.dim() != 4 or x.size(1) != 2:
            raise InputError(f"similarity input of shape {tuple(x.shape)}: expected (batch, 2, n_ctx, 2)")
        clf_h = _clf_states(h, x, self.clf_token).view(x.size(0), 2, -1).sum(dim=1)
        logits = self.clf(self.dropout(clf_h))
        return logits.squeeze(-1) if logits.size(-1) == 1 else logits


TASK_HEAD_TYPES = ("'multiple_choice'", "'similarity'", "'inference'", "('classification', n_class)",
                   "('similarity', n_class)")


def make_task_head(clf_token, cfg, task_head_type):
    if task_head_type == 'multiple_choice':
        return MultipleChoiceHead(clf_token, cfg)
    if task_head_type == 'similarity':
        return SimilarityHead(clf_token, cfg)
    if task_head_type == 'inference':
        return ClfHead(clf_token, cfg, 3)  # entailment, neutral, contradiction
    if isinstance(task_head_type, (tuple, list)) and len(task_head_type) == 2 \
            and task_head_type[0] in ('classification', 'similarity') and _is_int(task_head_type[1]) \
            and task_head_type[1] > 0:
        head = ClfHead if task_head_type[0] == 'classification' else SimilarityHead
        return head(clf_token, cfg, task_head_type[1])
    raise InputError(f"task_head_type={task_head_type!r} is not one of {', '.join(TASK_HEAD_TYPES)}")


LM_HEAD_KEY, EMBED_KEY = 'lm_head.decoder.weight', 'transformer.embed.weight'


def _same_matrix(a, b):
    """Whether two state-dict entries hold the same values (shared storage, or equal)."""
    if a is b or (a.device == b.device and a.dtype == b.dtype and a.shape == b.shape
                  and a.stride() == b.stride() and a.data_ptr() == b.data_ptr()):
        return True
    return a.shape == b.shape and torch.equal(a, b.to(a.device, a.dtype))


def _retie_lm_head(model, incompatible_keys):
    # load_state_dict(assign=True) gives each name its own new Parameter: tie them again
    model.lm_head.decoder.weight = model.transformer.embed.weight


class _TiedLMHeadModel(nn.Module):
    """A model whose `lm_head.decoder.weight` is `transformer.embed.weight` itself.

    Its load_state_dict (strict or not, also inside a wrapper such as DDP) takes a state
    dict with or without the tied key 'lm_head.decoder.weight': train.py saves
    parameters without it. When present it must hold the embedding's values, else
    CheckpointError. The two stay one Parameter after loading; state_dict() still lists both."""

    def __init__(self):
        super().__init__()
        self.register_load_state_dict_post_hook(_retie_lm_head)

    def _load_from_state_dict(self, state_dict, prefix, *args):
        # runs before the submodules load, on the dict they are then given
        head, embed = prefix + LM_HEAD_KEY, prefix + EMBED_KEY
        if isinstance(state_dict.get(embed), torch.Tensor):
            if head not in state_dict:
                state_dict[head] = state_dict[embed]
            elif isinstance(state_dict[head], torch.Tensor) and not _same_matrix(state_dict[head], state_dict[embed]):
                raise CheckpointError(f"state dict: {head} differs from {embed}, but the LM head is tied to the "
                                      f"embedding: expected the same matrix under both names, or {head} left out")
        super()._load_from_state_dict(state_dict, prefix, *args)


class LMModel(_TiedLMHeadModel):
    """Transformer with the LM head: forward(x) -> logits (B, T, vocab).

    With return_probs, returns probabilities instead, with the position rows and
    the n_special rows before them masked out, so sampling never picks them."""

    def __init__(self, cfg=DEFAULT_CONFIG, vocab=40990, n_ctx=512, return_probs=False, n_special=0):
        super().__init__()
        self.transformer = TransformerModel(cfg, vocab=vocab, n_ctx=n_ctx)
        if not _is_int(n_special) or not 0 <= n_special < vocab - n_ctx:
            raise InputError(f"n_special={n_special!r}: expected 0 up to vocab - n_ctx - 1 = {vocab - n_ctx - 1} "
                             f"special rows between the token rows and the position rows")
        self.lm_head = LMHead(self.transformer, cfg, trunc_and_reshape=False)
        self.lm_loss_buffer = ChunkBuffer()  # reused by the lm_targets loss; not in the state dict
        self.return_probs = return_probs
        if return_probs:
            mask = torch.zeros(vocab)
            mask[vocab - n_ctx - n_special:] = -1e12
            self.register_buffer('pos_emb_mask', mask, persistent=False)

    def forward(self, x, past=None, use_cache=False, key_mask=None, lm_targets=None, reduction='mean'):
        """x (B, T, 2) -> logits (B, T, vocab) (and the presents with use_cache). Given
        lm_targets (B, T) long token ids (-100: no loss), the cross entropy of the logits
        against them instead ('mean', 'sum', or 'none': (B, T)), by loss.chunked_lm_loss,
        which never holds the whole (B, T, vocab) logits."""
        out = self.transformer(x, past=past, use_cache=use_cache, key_mask=key_mask)
        h, presents = out if use_cache else (out, None)
        if lm_targets is not None:
            if use_cache or self.return_probs:
                raise InputError("lm_targets: expected use_cache=False and return_probs=False (a loss has no "
                                 "presents or probabilities)")
            return chunked_lm_loss(h, self.lm_head.decoder.weight, lm_targets, reduction,
                                   buffer=self.lm_loss_buffer)
        logits = self.lm_head(h)
        if self.return_probs:
            logits = F.softmax(logits + self.pos_emb_mask.to(logits.dtype), dim=-1)
        return (logits, presents) if use_cache else logits


class DoubleHeadModel(_TiedLMHeadModel):
    """Transformer with the LM head and a task head.

    forward(x, lm_mask=None, key_mask=None) -> (lm_logits, task_logits). lm_logits is
    (B * n_choices * (T - 1), vocab) for positions 0..T-2; with lm_mask
    (x.shape[:-1] bool, True where a next-token prediction is needed) it is
    (lm_mask.sum(), vocab), the rows in lm_mask's row-major order, which skips
    the vocabulary projection at padding. key_mask (B * n_choices, T) bool, False at
    padding, goes to the transformer: a bidirectional model needs it to ignore padding;
    causal attention never reads the padding after a sequence."""

    def __init__(self, cfg, clf_token, task_head_type, vocab=40990, n_ctx=512):
        super().__init__()
        self.transformer = TransformerModel(cfg, vocab=vocab, n_ctx=n_ctx)
        if not _is_int(clf_token) or not 0 <= clf_token < vocab - n_ctx:
            raise InputError(f"clf_token={clf_token!r}: expected a token id in 0..{vocab - n_ctx - 1} "
                             f"(vocab - n_ctx - 1: the rows after it are positions)")
        self.lm_head = LMHead(self.transformer, cfg)
        self.task_head = make_task_head(clf_token, cfg, task_head_type)

    def forward(self, x, lm_mask=None, key_mask=None):
        h = self.transformer(x, key_mask=key_mask)
        if lm_mask is None:
            lm_logits = self.lm_head(h)
        else:
            lm_logits = self.lm_head.decoder(h[lm_mask.reshape(h.shape[:2])])
        return lm_logits, self.task_head(h, x)


# ---------------------------------------------------------------- checkpoint

LAYER_VARS = ('attn/c_attn/w', 'attn/c_attn/b', 'attn/c_proj/w', 'attn/c_proj/b', 'ln_1/g', 'ln_1/b',
              'mlp/c_fc/w', 'mlp/c_fc/b', 'mlp/c_proj/w', 'mlp/c_proj/b', 'ln_2/g', 'ln_2/b')
N_SHARDS = 10
SOURCE_HINT = "the files come from the model/ folder of https://github.com/openai/finetune-transformer-lm"


def tf_variable_names(n_layer=12):
    """The TF release's variable names, in checkpoint order: 'model/we:0', then 12 per layer."""
    return ['model/we:0'] + [f'model/h{i}/{v}:0' for i in range(n_layer) for v in LAYER_VARS]


def tf_to_torch_name(tf_name):
    """'model/h3/attn/c_attn/w:0' -> 'h.3.attn.c_attn.w'; 'model/we:0' -> 'embed.weight'."""
    if tf_name == 'model/we:0':
        return 'embed.weight'
    m = re.fullmatch(r'model/h(\d+)/(.+):0', tf_name)
    if not m:
        raise InputError(f"{tf_name!r} is not a variable of OpenAI's transformer")
    return f"h.{m.group(1)}.{m.group(2).replace('/', '.')}"


def transformer_of(model):
    """The TransformerModel of `model` (a TransformerModel, or a model with `.transformer`)."""
    transformer = model.transformer if hasattr(model, 'transformer') else model
    if not isinstance(transformer, TransformerModel):
        raise TypeError(f"expected a TransformerModel or a model with .transformer, got {type(model).__name__}")
    return transformer


def count_nonfinite(values):
    """How many entries of a numpy array or torch tensor are NaN or infinite."""
    if isinstance(values, torch.Tensor):
        return int(values.numel() - torch.isfinite(values).sum())
    return int(values.size - np.count_nonzero(np.isfinite(values)))


def _read_shapes(path):
    shapes_path = os.path.join(path, 'params_shapes.json')
    if not os.path.isdir(path):
        raise MissingFileError(f"checkpoint folder {path!r} does not exist: expected params_shapes.json and "
                               f"params_0.npy ... params_9.npy there; {SOURCE_HINT}")
    if not os.path.isfile(shapes_path):
        raise MissingFileError(f"{shapes_path} is missing: expected params_shapes.json and params_0.npy ... "
                               f"params_9.npy in {path}; {SOURCE_HINT}")
    try:
        with open(shapes_path) as f:
            shapes = json.load(f)
        shapes = [tuple(int(d) for d in s) for s in shapes]
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{shapes_path} is not a JSON list of shapes: {err}") from None
    if len(shapes) < 2 or (len(shapes) - 2) % len(LAYER_VARS):
        raise CheckpointError(f"{shapes_path} lists {len(shapes)} arrays: expected 2 embeddings + "
                              f"{len(LAYER_VARS)} per layer")
    return shapes


def _shard_paths(path):
    paths = [os.path.join(path, f'params_{i}.npy') for i in range(N_SHARDS)]
    for p in paths:
        if not os.path.isfile(p):
            raise MissingFileError(f"{p} is missing: expected params_0.npy ... params_9.npy in {path}; {SOURCE_HINT}")
    return paths


def _shard_size(p):
    """Number of floats in a shard, read from the .npy header alone."""
    try:
        header = np.load(p, mmap_mode='r', allow_pickle=False)
        shape, dtype = header.shape, header.dtype
        del header
    except Exception as err:
        raise CheckpointError(f"{p} is not a valid .npy file: {err}") from None
    if len(shape) != 1 or dtype != np.float32:
        raise CheckpointError(f"{p} holds a {dtype} array of shape {shape}: expected a 1-D float32 array")
    return shape[0]


class _Shards:
    """The TF release's checkpoint in `path`: `shapes` from params_shapes.json, and the
    arrays, read from the concatenation of params_0.npy ... params_9.npy through one
    memory map at a time, so the whole concatenation never sits in memory."""

    def __init__(self, path):
        self.shapes = _read_shapes(path)
        self.paths = _shard_paths(path)
        sizes = [_shard_size(p) for p in self.paths]
        expected = sum(math.prod(s) for s in self.shapes)
        if sum(sizes) != expected:
            listing = ', '.join(f'{os.path.basename(p)}: {n}' for p, n in zip(self.paths, sizes))
            raise CheckpointError(f"the shards in {path} hold {sum(sizes)} floats but params_shapes.json expects "
                                  f"{expected} ({listing})")
        self.starts = np.cumsum([0] + sizes).tolist()  # shard k holds flat values starts[k]:starts[k + 1]
        self.offsets = np.cumsum([0] + [math.prod(s) for s in self.shapes]).tolist()  # array i starts there
        self._mapped = (None, None)

    def _map(self, k):
        if self._mapped[0] != k:
            self._mapped = (None, None)  # unmap the previous shard first
            try:
                self._mapped = (k, np.load(self.paths[k], mmap_mode='r', allow_pickle=False))
            except Exception as err:
                raise CheckpointError(f"{self.paths[k]} could not be read as a .npy file: {err}") from None
        return self._mapped[1]

    def pieces(self, i, n=None):
        """Yield (shard path, 1-D read-only values) covering, in order, the first n values
        of array i (all of them when n is None)."""
        start = self.offsets[i]
        stop = start + (math.prod(self.shapes[i]) if n is None else n)
        k = bisect.bisect_right(self.starts, start) - 1
        while start < stop:
            end = min(stop, self.starts[k + 1])
            if end > start:
                yield self.paths[k], self._map(k)[start - self.starts[k]:end - self.starts[k]]
            start, k = end, k + 1

    def read(self, i, n=None):
        """The first n values of array i (all when None) as a new flat float32 array."""
        out = np.empty(math.prod(self.shapes[i]) if n is None else n, np.float32)
        filled = 0
        for _, values in self.pieces(i, n):
            out[filled:filled + len(values)] = values
            filled += len(values)
            del values  # so that the shard is unmapped before the next one is mapped
        return out

    def close(self):
        self._mapped = (None, None)


def iter_checkpoint_arrays(path):
    """Yield the checkpoint's arrays, in params_shapes.json order, as float32
    numpy arrays, reading one shard at a time so that the whole concatenation
    never sits in memory at once."""
    shards = _Shards(path)
    for i, shape in enumerate(shards.shapes):
        yield shards.read(i).reshape(shape)
    shards.close()


def check_layout(transformer, n_vocab, n_pos, n_layer, n_ctx, n_special, n_transfer, source):
    """Resolve n_ctx and n_special (-1: from the model) and n_transfer (None: all the
    model's layers) against a checkpoint of n_vocab tokens, n_pos positions and n_layer
    layers described by `source`; raise InputError for an argument that cannot work,
    CheckpointError for a checkpoint that does not fit the model.
    Returns (n_ctx, n_special, n_transfer)."""
    for name, value in (('n_ctx', n_ctx), ('n_special', n_special)):
        if not _is_int(value) or value < -1:
            raise InputError(f"{name}={value!r}: expected an integer, -1 to take it from the model")
    if n_transfer is not None and not _is_int(n_transfer):
        raise InputError(f"n_transfer={n_transfer!r}: expected an integer (-1: embeddings only) or None (all the "
                         f"model's layers)")
    if n_ctx < 0:
        n_ctx = transformer.n_ctx
    if n_ctx > n_pos:
        raise InputError(f"n_ctx={n_ctx} exceeds the {n_pos} positions in {source}: expected n_ctx <= {n_pos}")
    if n_special < 0:
        n_special = transformer.vocab - n_vocab - n_ctx
    rows = n_vocab + n_special + n_ctx
    if n_special < 0 or rows != transformer.vocab:
        raise CheckpointError(f"embed.weight: the model has {transformer.vocab} rows but {source} gives "
                              f"n_vocab {n_vocab} + n_special {n_special} + n_ctx {n_ctx} = {rows}")
    if n_transfer is None:
        n_transfer = len(transformer.h)
        if n_transfer > n_layer:
            raise CheckpointError(f"the model has {n_transfer} layers but {source} holds {n_layer}: pass "
                                  f"n_transfer={n_layer} (or fewer; -1: embeddings only) to load them into its first "
                                  f"layers")
    if not -1 <= n_transfer <= n_layer:
        raise InputError(f"n_transfer={n_transfer}: expected -1 (embeddings only) up to the {n_layer} layers "
                         f"in {source}")
    if n_transfer > len(transformer.h):
        raise InputError(f"n_transfer={n_transfer} exceeds the model's {len(transformer.h)} layers")
    return n_ctx, n_special, n_transfer


class _Copy(NamedTuple):
    """One copy of the TF loader: the first n values (None: all) of array `index` of the
    checkpoint, in `shape`, into `target`; `name` is ours, `tf_name` the TF variable's."""
    name: str
    tf_name: str
    index: int
    n: Optional[int]
    target: torch.Tensor
    shape: tuple


def _tf_plan(transformer, shards, n_vocab, n_special, n_ctx, n_transfer):
    """The list of _Copy that loads the embeddings and the first n_transfer layers."""
    emb = transformer.embed.weight
    width = shards.shapes[0][-1]
    plan = [_Copy('embed.weight (position rows)', 'model/we:0', 0, n_ctx * width, emb[n_vocab + n_special:],
                  (n_ctx, width)),
            _Copy('embed.weight (token rows)', 'model/we:0', 1, None, emb[:n_vocab], shards.shapes[1])]
    params = dict(transformer.named_parameters())
    n_layer = (len(shards.shapes) - 2) // len(LAYER_VARS)
    for i, tf_name in enumerate(tf_variable_names(n_layer)[1:1 + max(n_transfer, 0) * len(LAYER_VARS)], start=2):
        shape = shards.shapes[i]
        name = tf_to_torch_name(tf_name)
        squeezed = shape[1:] if len(shape) == 3 and shape[0] == 1 else shape  # conv weights [1, nx, nf]
        plan.append(_Copy(name, tf_name, i, None, params[name], squeezed))
    return plan


def _check_tf_plan(plan, shards):
    """Raise CheckpointError for an array whose shape is not its parameter's, or that
    holds NaN or inf (naming the shard(s) where those lie), before anything is copied."""
    for c in plan:
        if tuple(c.shape) != tuple(c.target.shape):
            raise CheckpointError(f"checkpoint array for {c.name} has shape {tuple(c.shape)} but the model's "
                                  f"parameter has shape {tuple(c.target.shape)}")
    for c in plan:
        bad = {}
        for p, values in shards.pieces(c.index, c.n):
            count = count_nonfinite(values)
            if count:
                bad[p] = bad.get(p, 0) + count
        if bad:
            where = '' if len(bad) == 1 else f" ({', '.join(f'{k} in {os.path.basename(p)}' for p, k in bad.items())})"
            raise CheckpointError(f"{', '.join(bad)}: {c.tf_name} ({c.name}) holds {sum(bad.values())} non-finite "
                                  f"values (NaN or inf) of {math.prod(c.shape)}{where}: expected finite floats; "
                                  f"the checkpoint is damaged")


def load_openai_pretrained_model(model, n_ctx=-1, n_special=-1, n_transfer=None, n_embd=None, path='./model/',
                                 path_names=None):
    """Load OpenAI's released weights (the TF release's `model/` folder) into `model`.

    model: a TransformerModel, or a model with a `.transformer` (DoubleHeadModel, LMModel).
    n_ctx: position rows to keep (-1: the model's n_ctx); at most 512.
    n_special: new rows between the tokens and the positions (-1: what the model's
    vocabulary leaves room for); they keep their random N(0, 0.02) initialisation.
    n_transfer: layers to load (None: all the model's layers, 12 for the default model;
    -1: only the embeddings). A checkpoint with fewer layers is an error unless
    n_transfer asks for no more than it has.
    n_embd: accepted for compatibility with the earlier port; the width is the model's,
    and a different value is an InputError. path_names: ignored; the earlier port read
    TF variable names from a file, here they follow from the layer count.
    Every array is checked (shape, and finite values) before the model is touched; a
    mismatch or a NaN/inf raises CheckpointError naming the file and the variable.
    Returns the TransformerModel it loaded into.
    """
    transformer = transformer_of(model)
    if transformer.arch != 'gpt1':
        raise CheckpointError(f"{path}: the TF release's checkpoint is GPT-1 (post-LN blocks) but the model has "
                              f"arch={transformer.arch!r}: expected arch 'gpt1' (--arch gpt1)")
    if not transformer.causal:
        raise CheckpointError(f"{path}: the TF release's checkpoint has causal attention but the model has "
                              f"causal=False (bidirectional): expected causal=True")
    shards = _Shards(path)
    shapes = shards.shapes
    width = transformer.n_embd
    if any(s[-1] != width for s in shapes[:2]):
        given = '' if n_embd is None else f", n_embd={n_embd}"
        raise CheckpointError(f"embed.weight: checkpoint embeddings have width {shapes[1][-1]}{given}, the model has "
                              f"{width}: expected equal widths")
    if n_embd is not None and n_embd != width:
        raise InputError(f"n_embd={n_embd!r}: the model's width is {width}; leave n_embd out, it is read from the "
                         f"model")
    n_layer = (len(shapes) - 2) // len(LAYER_VARS)
    n_ctx, n_special, n_transfer = check_layout(transformer, shapes[1][0], shapes[0][0], n_layer, n_ctx, n_special,
                                                n_transfer, f"{path}'s checkpoint")
    plan = _tf_plan(transformer, shards, shapes[1][0], n_special, n_ctx, n_transfer)
    _check_tf_plan(plan, shards)
    with torch.no_grad():
        for c in plan:
            c.target.copy_(torch.from_numpy(shards.read(c.index, c.n).reshape(c.shape)))
    shards.close()
    return transformer


CHECKPOINT_FORMATS = {'tf': "TF release's checkpoint", 'hf': 'Hugging Face openai-gpt weights'}

# The format dispatcher lives here, beside the TF loader, because it is the one entry point
# train.py and generate.py use to load pretrained weights; it reaches hf_interop (which
# imports this module) only when called, so neither module needs the other at import time.


def find_checkpoint_format(path):
    """'tf' when `path` holds the TF release's shards (params_shapes.json), 'hf' when
    it holds a Hugging Face save (config.json + model.safetensors or pytorch_model.bin,
    or the hub cache's models--openai-gpt folder); raises MissingFileError (a
    FileNotFoundError) otherwise."""
    import hf_interop
    looked_for = ("looked for OpenAI's params_shapes.json with params_0.npy ... params_9.npy (the TF release's "
                  "model/ folder of https://github.com/openai/finetune-transformer-lm), or Hugging Face's "
                  "config.json with model.safetensors or pytorch_model.bin "
                  "(e.g. ~/.cache/huggingface/hub/models--openai-gpt/snapshots/<hash>/)")
    if os.path.isfile(os.path.join(path, 'params_shapes.json')):
        return 'tf'
    if not os.path.exists(path):
        raise MissingFileError(f"model folder {path!r} does not exist: {looked_for}")
    folder = hf_interop.resolve_hf_folder(path)
    if folder is not None:
        if not hf_interop.has_hf_weights(folder):
            raise MissingFileError(f"{folder} has config.json but neither model.safetensors nor "
                                   f"pytorch_model.bin: {looked_for}")
        return 'hf'
    raise MissingFileError(f"{path} holds no checkpoint: {looked_for}")


def checkpoint_causal(path):
    """Whether the checkpoint in `path` has causal attention: True for the TF release's
    shards, config.json's `causal` for a Hugging Face folder (False only for a bidirectional
    model this port saved; True when the key is absent)."""
    if find_checkpoint_format(path) == 'tf':
        return True
    import hf_interop
    return hf_interop.read_hf_config(hf_interop.resolve_hf_folder(path))['causal']


def checkpoint_sizes(path):
    """The sizes of the checkpoint in `path`, read without its values: dict(n_ctx (its position
    rows), n_embd, n_layer, n_head (None for the TF release's shards, which do not record it),
    arch, causal). The TF shards' params_shapes.json is checked against the shards' sizes, a
    Hugging Face folder's config.json against its weights' shapes (hf_interop.hf_checkpoint_sizes)."""
    if find_checkpoint_format(path) == 'tf':
        shapes = _Shards(path).shapes
        return dict(n_ctx=shapes[0][0], n_embd=shapes[0][-1], n_layer=(len(shapes) - 2) // len(LAYER_VARS),
                    n_head=None, arch='gpt1', causal=True)
    import hf_interop
    config = hf_interop.hf_checkpoint_sizes(hf_interop.resolve_hf_folder(path))
    return dict(n_ctx=config['n_positions'],
                **{k: config[k] for k in ('n_embd', 'n_layer', 'n_head', 'arch', 'causal')})


def check_params_shapes(params_path, source, vocab, n_embd, n_layer):
    """CheckpointError unless the header of params_path (a model's parameters as safetensors, the
    transformer's under `transformer.`) holds an embedding of (vocab, n_embd) and n_layer blocks, the
    sizes `source` (the file they come from) describes: read without the values, before a model of
    that size is built, so a damaged size cannot ask for gigabytes."""
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(params_path, framework='pt') as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{params_path} could not be read as safetensors ({err}): expected a model's "
                              f"parameters") from None
    embed = shapes.get('transformer.embed.weight')
    if embed != (vocab, n_embd):
        raise CheckpointError(f"{params_path}: transformer.embed.weight has shape {embed}, expected "
                              f"{(vocab, n_embd)} from {source}")
    blocks = len({k.split('.')[2] for k in shapes if k.startswith('transformer.h.')})
    if blocks != n_layer:
        raise CheckpointError(f"{params_path} holds {blocks} blocks but {source} has n_layer {n_layer}")


def load_pretrained(model, path, n_ctx=-1, n_special=-1, n_transfer=None):
    """Load pretrained weights from `path` in whichever format it holds, with the
    arguments of `load_openai_pretrained_model` (n_transfer None: all the model's layers).

    Returns the format found ('tf' for the TF release's shards, 'hf' for a Hugging
    Face save, see `hf_interop.load_hf_pretrained_model`), so that callers can say which one they used."""
    fmt = find_checkpoint_format(path)
    if fmt == 'hf':
        from hf_interop import load_hf_pretrained_model
        load_hf_pretrained_model(model, path, n_ctx=n_ctx, n_special=n_special, n_transfer=n_transfer)
    else:
        load_openai_pretrained_model(model, n_ctx=n_ctx, n_special=n_special, n_transfer=n_transfer, path=path)
    return fmt


def tf_shapes(n_layer, n_embd, n_vocab, n_pos=N_CTX_MAX):
    """params_shapes.json's list for a model of this size: the position and token
    embeddings [(n_pos, n_embd), (n_vocab, n_embd)], then the 12 arrays of each layer in
    LAYER_VARS order. tf_shapes(12, 768, 40478) is the release's list."""
    layer = [(1, n_embd, 3 * n_embd), (3 * n_embd,), (1, n_embd, n_embd), (n_embd,), (n_embd,), (n_embd,),
             (1, n_embd, 4 * n_embd), (4 * n_embd,), (1, 4 * n_embd, n_embd), (n_embd,), (n_embd,), (n_embd,)]
    return [(n_pos, n_embd), (n_vocab, n_embd)] + layer * n_layer


def _save_atomically(path, write):
    """write(file object) into a temporary file beside `path`, then rename it over `path`."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, 'wb') as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_tf_checkpoint(path, shapes, seed=0, n_shards=N_SHARDS, std=0.02):
    """Write random weights in the TF release's format to folder `path`: N(0, std) float32
    arrays of `shapes` (e.g. tf_shapes(1, 16, 40478): a tiny model with the real
    vocabulary's rows), flattened, concatenated and cut into params_0.npy ...
    params_{n_shards-1}.npy, and params_shapes.json (written last, each file atomically).
    For trying the loaders and train.py without OpenAI's weights; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s, dtype=np.float32) * np.float32(std) for s in shapes]
    os.makedirs(path, exist_ok=True)
    flat = np.concatenate([a.ravel() for a in arrays])
    for i, shard in enumerate(np.array_split(flat, n_shards)):
        _save_atomically(os.path.join(path, f'params_{i}.npy'), lambda f: np.save(f, shard))
    shapes_json = json.dumps([list(s) for s in shapes]).encode()
    _save_atomically(os.path.join(path, 'params_shapes.json'), lambda f: f.write(shapes_json))
    return arrays


# Names that moved to hf_interop and stay importable from here (PEP 562).
_MOVED_TO_HF_INTEROP = frozenset((
    'HF_CONFIG', 'HF_WEIGHTS', 'HF_SAFETENSORS_INDEX', 'HF_PREFIX', 'HF_MODEL_TYPE', 'HF_HINT', 'HF_AFNS',
    '_HF_LAYER_MAP', '_HF_IGNORED', '_HF_LM_HEAD', 'hf_tensor_names', 'has_hf_weights', 'resolve_hf_folder',
    'read_hf_config', '_HFTensors', '_hf_model_settings', 'load_hf_pretrained_model', '_write_atomically',
    'hf_config', 'export_hf'))


def __getattr__(name):
    if name in _MOVED_TO_HF_INTEROP:
        import hf_interop
        return getattr(hf_interop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _MOVED_TO_HF_INTEROP)
