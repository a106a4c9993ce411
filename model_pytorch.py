"""OpenAI's finetuned transformer LM (GPT-1) in PyTorch: its config, its modules and heads, and the
loader of OpenAI's released weights.

Parameters carry the TF release's variable names (`h.3.attn.c_attn.w` is `model/h3/attn/c_attn/w:0`)
and the numerics follow it: post-LayerNorm blocks, epsilon inside the square root, tanh GELU, one
embedding matrix `embed` for tokens, special tokens and positions. `arch='gpt2'` selects GPT-2's
blocks instead (LayerNorm at each sub-block's input, a final `ln_f`, residual projections
initialised with std 0.02/sqrt(2 n_layer)); `causal=False` makes attention bidirectional, for
encoders pre-trained with a masked LM or ELECTRA (electra.py).

Inputs are `(..., n_ctx, 2)` integer tensors: `[..., 0]` token ids, `[..., 1]` position ids already
offset into `embed` (row `n_vocab + n_special + p`).
"""
import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from errors import CheckpointError, ConfigError, InputError
from flags import Config
from loss import ChunkBuffer, chunked_lm_loss
from tf_checkpoint import load_tf_checkpoint

AFNS = ('gelu', 'relu', 'swish')
ARCHS = ('gpt1', 'gpt2')
ATTN_IMPLS = ('sdpa', 'explicit')
DROPOUT_MASKS = ('bernoulli', 'int')


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass
class ModelConfig(Config):
    """The transformer's sizes and settings; GPT-1's by default. Checked when built (ConfigError
    naming the field); `to_dict`/`from_dict` round-trip it through JSON."""
    n_embd: int = field(default=768, metadata={'help': 'width of the hidden states'})
    n_head: int = field(default=12, metadata={'help': 'attention heads per block (divides n_embd)'})
    n_layer: int = field(default=12, metadata={'help': 'number of blocks'})
    embd_pdrop: float = field(default=0.1, metadata={'help': 'dropout probability on the embeddings'})
    attn_pdrop: float = field(default=0.1, metadata={'help': 'dropout probability on the attention weights'})
    resid_pdrop: float = field(default=0.1, metadata={'help': 'dropout probability on each sub-block output'})
    clf_pdrop: float = field(default=0.1, metadata={'help': 'dropout probability before the task head'})
    afn: str = field(default='gelu', metadata={'help': 'activation of the MLP', 'choices': AFNS})
    arch: str = field(default='gpt1', metadata={'help': "block layout: gpt1 (post-LayerNorm: the paper's, OpenAI's "
                                                        "checkpoint) or gpt2 (pre-LayerNorm and a final ln_f)",
                                                'choices': ARCHS})
    causal: bool = field(default=True, metadata={'help': 'causal attention (False: bidirectional, for encoders)'})
    attn_impl: str = field(default='sdpa', metadata={'help': "F.scaled_dot_product_attention or TF's steps",
                                                     'choices': ATTN_IMPLS})
    dropout_masks: str = field(default='bernoulli', metadata={'help': "CPU dropout masks: bernoulli (torch's own) or "
                                                              "int (from 31-bit random integers: the same "
                                                              "distribution, about 9% faster at full size)",
                                                              'choices': DROPOUT_MASKS})

    def check(self):
        """Raise ConfigError for the first field the model cannot be built with."""
        for name, what in (('n_layer', 'the number of blocks'), ('n_embd', 'the width of the hidden states'),
                           ('n_head', 'the number of attention heads')):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), f"a positive integer, {what}")
        if self.n_embd % self.n_head:
            raise ConfigError('n_head', self.n_head, f"a divisor of n_embd {self.n_embd}")
        for name in ('embd_pdrop', 'attn_pdrop', 'resid_pdrop', 'clf_pdrop'):
            p = getattr(self, name)
            if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
                raise ConfigError(name, p, 'a dropout probability in [0, 1)')
        for name, f in CONFIG_FIELDS.items():
            if 'choices' in f.metadata and getattr(self, name) not in f.metadata['choices']:
                raise ConfigError(name, getattr(self, name), f"one of {', '.join(f.metadata['choices'])}")
        if not isinstance(self.causal, bool):
            raise ConfigError('causal', self.causal, "True (GPT-1's causal attention) or False (bidirectional)")

    def check_sizes(self, vocab, n_ctx):
        """Raise ConfigError unless n_ctx is a positive integer (more than the checkpoint's 512 is the
        loaders' error) and vocab an integer with a token row besides the n_ctx position rows."""
        if not _is_int(n_ctx) or n_ctx < 1:
            raise ConfigError('n_ctx', n_ctx, 'a positive integer, the number of positions')
        if not _is_int(vocab) or vocab <= n_ctx:
            raise ConfigError('vocab', vocab, f"an integer above n_ctx={n_ctx}: embed has n_vocab + n_special + "
                                              f"n_ctx rows (tokens, special tokens, then one row per position)")
        return self


CONFIG_FIELDS = {f.name: f for f in dataclasses.fields(ModelConfig)}


class dotdict(dict):
    """A dict whose keys are also attributes (`cfg.n_embd`); a missing key is an AttributeError."""

    def __getattr__(self, name):
        if name not in self:
            raise AttributeError(f"no config field {name!r}")
        return self[name]

    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__


# The earlier port's config: `args = DEFAULT_CONFIG; model = TransformerModel(args)`.
DEFAULT_CONFIG = dotdict(n_embd=768, n_head=12, n_layer=12, embd_pdrop=0.1, attn_pdrop=0.1, resid_pdrop=0.1,
                         clf_pdrop=0.1, afn='gelu')


# ---------------------------------------------------------------- activations and dropout

def gelu(x):
    """The tanh form of GELU the TF release used."""
    return F.gelu(x, approximate='tanh')


def swish(x):
    return x * torch.sigmoid(x)


ACT_FNS = {'relu': F.relu, 'swish': swish, 'gelu': gelu}


def dropout(x, p, training, int_masks):
    """F.dropout, or, on the CPU when int_masks (ModelConfig.dropout_masks 'int'), int_dropout."""
    if int_masks and x.device.type == 'cpu':
        return int_dropout(x, p, training)
    return F.dropout(x, p, training)


def int_dropout(x, p, training=True):
    """Dropout with a mask drawn from 31-bit random integers (an int32 tensor's random_), not bernoulli_,
    which on the CPU runs on one thread at about 2.5x the cost: the same distribution (each entry
    kept with probability 1 - p, to 2^-31, scaled by 1 / (1 - p)). x any shape -> the same shape."""
    if not training or p == 0:
        return x
    draws = torch.empty(x.shape, dtype=torch.int32, device=x.device).random_()  # uniform on [0, 2^31)
    scale, zero = (torch.tensor(v, dtype=x.dtype, device=x.device) for v in (1 / (1 - p), 0.0))
    return x * torch.where(draws < round((1 - p) * 2 ** 31), scale, zero)


class Dropout(nn.Dropout):
    """nn.Dropout whose masks `dropout` draws as `int_masks` says (TransformerModel.set_dropout_masks)."""
    int_masks = False

    def forward(self, x):
        return dropout(x, self.p, self.training, self.int_masks)


# ---------------------------------------------------------------- the modules

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


class LayerOutput(NamedTuple):
    """An attention layer's or a block's y (B, T, C), and present: its (k, v) for a key/value cache, or
    the LayerCache it extended."""
    y: torch.Tensor
    present: tuple


class LayerCache:
    """One layer's keys and values for decoding, allocated once: k and v (B, n_head, capacity, d), the
    first `length` positions filled. Attention writes a step's new positions in place and attends to
    the filled part, where a (k, v) past would be concatenated anew, a copy of the whole cache, at
    every step. TransformerModel.new_cache makes one per block."""

    def __init__(self, k, v):
        self.k, self.v, self.length = k, v, 0

    def extend(self, k, v):
        """Append k and v (B, n_head, T, d) -> (k, v) of all filled positions, views of the buffers."""
        end = self.length + k.size(2)
        if end > self.k.size(2):
            raise InputError(f"{end} positions in a key/value cache made for {self.k.size(2)}")
        self.k[:, :, self.length:end] = k
        self.v[:, :, self.length:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class KeyMask(NamedTuple):
    """The keys each query sees: allowed (T, S) or (B, 1, T, S) bool, or None (all keys, or the causal
    triangle when is_causal); is_causal: sdpa's is_causal stands for the mask."""
    allowed: Optional[torch.Tensor]
    is_causal: bool


class Attention(nn.Module):
    """Multi-head self-attention, causal (GPT-1's) or bidirectional (`causal=False`), with an optional
    key/value cache (causal only). `attend_explicit` is TF's computation; `attend_sdpa` (impl 'sdpa',
    the default) the same by F.scaled_dot_product_attention (fused kernels on GPU), to float tolerance;
    `attend_int_dropout` SDPA's CPU computation with integer dropout masks (ModelConfig.dropout_masks)."""

    def __init__(self, nx, n_head, attn_pdrop, resid_pdrop, impl='sdpa', proj_std=0.02, causal=True):
        super().__init__()
        ModelConfig(n_embd=nx, n_head=n_head, attn_pdrop=attn_pdrop, resid_pdrop=resid_pdrop, attn_impl=impl,
                    causal=causal)  # checks the arguments
        self.n_head, self.attn_pdrop, self.impl, self.causal = n_head, attn_pdrop, impl, causal
        self.c_attn = Conv1D(nx, nx * 3)
        self.c_proj = Conv1D(nx, nx, std=proj_std)
        self.attn_dropout = Dropout(attn_pdrop)
        self.resid_dropout = Dropout(resid_pdrop)

    def forward(self, x, layer_past=None, key_mask=None):
        """x (B, T, C); layer_past (k, v) each (B, n_head, T_past, C // n_head), a LayerCache, or None;
        key_mask (B, T_past + T) bool, True for keys that may be attended to, or None.
        Returns LayerOutput(y (B, T, C), present: (k, v) including x's positions, or the LayerCache
        extended by them)."""
        if layer_past is not None and not self.causal:
            raise InputError("a key/value cache was given to bidirectional attention (causal=False): each position "
                             "sees the later ones, so a cache of earlier positions cannot stand for them")
        q, k, v = map(self.split_heads, self.c_attn(x).split(x.size(-1), dim=2))
        if isinstance(layer_past, LayerCache):
            k, v = layer_past.extend(k, v)
            present = layer_past
        else:
            if layer_past is not None:
                k, v = torch.cat((layer_past[0], k), dim=2), torch.cat((layer_past[1], v), dim=2)
            present = (k, v)
        mask = (causal_mask if self.causal else bidirectional_mask)(q.size(2), k.size(2), key_mask, x.device)
        y = self.attend(q, k, v, mask).transpose(1, 2).reshape(x.shape)
        return LayerOutput(self.resid_dropout(self.c_proj(y)), present)

    def split_heads(self, x):
        """(B, T, C) -> (B, n_head, T, C // n_head)"""
        B, T, C = x.shape
        return x.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)

    def attend(self, q, k, v, mask):
        """softmax(q k^T / sqrt(d), masked by `mask`, a KeyMask), dropped out while training, @ v:
        q (B, H, T, d), k and v (B, H, S, d) -> (B, H, T, d), by the path `impl` names."""
        if self.training and self.attn_pdrop > 0 and self.attn_dropout.int_masks and q.device.type == 'cpu':
            return self.attend_int_dropout(q, k, v, mask)  # the CPU speed path
        if self.impl == 'sdpa':
            return self.attend_sdpa(q, k, v, mask)
        return self.attend_explicit(q, k, v, mask)

    def attend_explicit(self, q, k, v, mask):
        """TF's attention, step by step (attend's arguments)."""
        w = q @ k.transpose(-2, -1) / math.sqrt(v.size(-1))
        allowed = mask.allowed
        if allowed is None and self.causal:
            allowed = torch.ones(w.shape[-2:], dtype=torch.bool, device=w.device).tril(k.size(2) - q.size(2))
        if allowed is not None:
            b = allowed.to(w.dtype)
            w = w * b + -1e9 * (1 - b)
        return self.attn_dropout(F.softmax(w, dim=-1)) @ v

    def attend_sdpa(self, q, k, v, mask):
        """F.scaled_dot_product_attention (attend's arguments)."""
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.allowed, is_causal=mask.is_causal,
                                              dropout_p=self.attn_pdrop if self.training else 0.0)

    def attend_int_dropout(self, q, k, v, mask):
        """What SDPA computes when it drops (its math fallback on the CPU), with int_dropout on
        the weights instead of bernoulli_ (attend's arguments)."""
        w = (q * (1 / math.sqrt(q.size(-1)))) @ k.transpose(-2, -1)
        allowed = mask.allowed
        if mask.is_causal:
            allowed = torch.ones(w.shape[-2:], dtype=torch.bool, device=w.device).tril(k.size(2) - q.size(2))
        if allowed is not None:
            w = w.masked_fill(~allowed, float('-inf'))  # no row is fully masked
        return int_dropout(torch.softmax(w, dim=-1), self.attn_pdrop) @ v


def causal_mask(T, S, key_mask, device):
    """The KeyMask of T queries, the last of S positions, each seeing the keys up to its own, and
    only those key_mask (B, S) bool allows (None: all)."""
    if key_mask is None and not 1 < T < S:
        return KeyMask(None, S == T)  # square causal, or one new query that sees every key
    # query i sits at absolute position S - T + i and sees keys up to it
    allowed = torch.ones(T, S, dtype=torch.bool, device=device).tril(S - T)
    if key_mask is not None:
        # a padded query still sees itself, so no row is fully masked (no NaN)
        diag = torch.zeros_like(allowed)
        diag[torch.arange(T, device=device), torch.arange(S - T, S, device=device)] = True
        allowed = (allowed & key_mask[:, None, None, :]) | diag
    return KeyMask(allowed, False)


def bidirectional_mask(T, S, key_mask, device):
    """The KeyMask of T queries each seeing all S = T keys that key_mask (B, S) bool allows (None: all)."""
    if key_mask is None:
        return KeyMask(None, False)
    # a padded query still sees itself, so no row is fully masked (no NaN)
    return KeyMask(key_mask[:, None, None, :] | torch.eye(T, dtype=torch.bool, device=device), False)


class MLP(nn.Module):
    def __init__(self, cfg, proj_std=0.02):
        super().__init__()
        nx = cfg.n_embd
        self.c_fc = Conv1D(nx, 4 * nx)
        self.c_proj = Conv1D(4 * nx, nx, std=proj_std)
        self.act = ACT_FNS[cfg.afn]
        self.dropout = Dropout(cfg.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    """GPT-1's post-LN block: n = ln_1(x + attn(x)); h = ln_2(n + mlp(n)).
    With cfg.arch 'gpt2', GPT-2's pre-LN block: n = x + attn(ln_1(x)); h = n + mlp(ln_2(n))."""

    def __init__(self, cfg):
        super().__init__()
        nx = cfg.n_embd
        self.pre_ln = cfg.arch == 'gpt2'
        # GPT-2 scales the projections into the residual stream by the number of them
        proj_std = 0.02 / math.sqrt(2 * cfg.n_layer) if self.pre_ln else 0.02
        self.attn = Attention(nx, cfg.n_head, cfg.attn_pdrop, cfg.resid_pdrop, cfg.attn_impl, proj_std=proj_std,
                              causal=cfg.causal)
        self.ln_1 = LayerNorm(nx)
        self.mlp = MLP(cfg, proj_std=proj_std)
        self.ln_2 = LayerNorm(nx)

    def forward(self, x, layer_past=None, key_mask=None):
        """x (B, T, C) -> LayerOutput(h (B, T, C), present), Attention.forward's arguments."""
        if self.pre_ln:
            a, present = self.attn(self.ln_1(x), layer_past, key_mask)
            n = x + a
            return LayerOutput(n + self.mlp(self.ln_2(n)), present)
        a, present = self.attn(x, layer_past, key_mask)
        n = self.ln_1(x + a)
        return LayerOutput(self.ln_2(n + self.mlp(n)), present)


class CachedOutput(NamedTuple):
    """A forward's output with use_cache: out, and presents (one (k, v) per block) to pass as `past`."""
    out: torch.Tensor
    presents: list


class TransformerModel(nn.Module):
    """The embeddings and `n_layer` blocks (and GPT-2's final `ln_f` with arch 'gpt2'). cfg: a ModelConfig,
    a dict of its fields (DEFAULT_CONFIG) or a Namespace carrying them, kept as `self.config`.
    vocab = n_vocab + n_special + n_ctx rows in `embed` (40478 + 0 + 512 by default)."""

    def __init__(self, cfg=DEFAULT_CONFIG, vocab=40990, n_ctx=512):
        super().__init__()
        self.config = cfg = ModelConfig.from_any(cfg).check_sizes(vocab, n_ctx)
        self.vocab, self.n_ctx, self.n_embd, self.embd_pdrop = vocab, n_ctx, cfg.n_embd, cfg.embd_pdrop
        self.embed = nn.Embedding(vocab, cfg.n_embd)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.arch, self.causal = cfg.arch, cfg.causal
        if self.arch == 'gpt2':
            self.ln_f = LayerNorm(cfg.n_embd)
        self.set_dropout_masks(cfg.dropout_masks)

    def forward(self, x, past=None, use_cache=False, key_mask=None, embedded=None):
        """x (B, T, 2) or (B, n_choices, T, 2) long, T up to n_ctx; past: per-layer (k, v) from an
        earlier call, new_cache's list, or None; key_mask (B, T_past + T) bool (False at padding keys) or None;
        embedded: embed_input(x) as (B', T, n_embd) when the caller drew it, so that several calls
        share one embedding dropout mask (prefix.py). Returns h (B', T, n_embd) with
        B' = B * n_choices, or CachedOutput(h, presents) with use_cache."""
        if x.dim() < 3 or x.size(-1) != 2:
            raise InputError(f"input of shape {tuple(x.shape)}: expected (batch, n_ctx, 2) or (batch, n_choices, "
                             f"n_ctx, 2) with a trailing (token id, position id) axis")
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
        return CachedOutput(h, presents) if use_cache else h

    def new_cache(self, batch, capacity=None):
        """An empty key/value cache for `batch` rows of up to `capacity` positions (default n_ctx),
        in the model's dtype and device: a list of LayerCache, one per block, to pass as `past` with
        use_cache; each forward extends it in place and returns it as presents."""
        w = self.h[0].attn.c_attn.w
        d = self.n_embd // self.h[0].attn.n_head
        shape = (batch, self.h[0].attn.n_head, capacity or self.n_ctx, d)
        return [LayerCache(w.new_empty(shape), w.new_empty(shape)) for _ in self.h]

    def embed_input(self, x):
        """x (..., T, 2) -> summed embeddings (..., T, n_embd). TF drops entries of the embedding matrix
        itself, so a row that occurs twice in a batch gets the same mask; dropping only the rows in
        use draws the same distribution without touching all 40k rows."""
        if self.training and self.embd_pdrop > 0:
            rows, inverse = torch.unique(x, return_inverse=True)
            used = dropout(self.embed(rows), self.embd_pdrop, True, self.int_masks)
            # F.embedding rather than [inverse]: its backward sums repeated rows in a
            # fixed order, so CPU runs with several threads stay bit-identical
            e = F.embedding(inverse, used)
        else:
            e = self.embed(x)
        return e.sum(dim=-2)

    def set_dropout_masks(self, kind):
        """Draw every dropout mask on the CPU with torch's bernoulli_ ('bernoulli', the default) or
        from 31-bit random integers ('int': int_dropout, pretrain.py's default). Returns self."""
        self.config = dataclasses.replace(self.config, dropout_masks=kind)
        self.int_masks = kind == 'int'
        for m in self.modules():
            if isinstance(m, Dropout):
                m.int_masks = self.int_masks
        return self

    def set_attention(self, impl):
        """Select 'sdpa' (fused kernels) or 'explicit' attention in every block. Returns self."""
        self.config = dataclasses.replace(self.config, attn_impl=impl)
        for block in self.h:
            block.attn.impl = impl
        return self


class LMHead(nn.Module):
    """Language model head, tied to the transformer's embedding matrix. forward(h): h (B, T, n_embd) ->
    logits (B * (T - 1), vocab) for positions 0..T-2 when trunc_and_reshape, else (B, T, vocab)."""

    def __init__(self, model, cfg=DEFAULT_CONFIG, trunc_and_reshape=True):
        super().__init__()
        cfg = ModelConfig.from_any(cfg)
        self.n_embd = cfg.n_embd
        self.decoder = nn.Linear(cfg.n_embd, model.embed.weight.size(0), bias=False)
        self.decoder.weight = model.embed.weight
        self.trunc_and_reshape = trunc_and_reshape

    def forward(self, h):
        if self.trunc_and_reshape:
            h = h[:, :-1].reshape(-1, self.n_embd)
        return self.decoder(h)


def _clf_states(h, x, clf_token):
    """Hidden state at each sequence's first `clf_token`: h (N, T, n_embd), x (..., T, 2) -> (N, n_embd)."""
    is_clf = x[..., 0].reshape(-1, x.size(-2)) == clf_token
    if not bool(is_clf.any(dim=1).all()):
        raise InputError(f"a sequence has no classify token (id {clf_token}): every sequence must contain it")
    return h[torch.arange(h.size(0), device=h.device), is_clf.int().argmax(dim=1)]


class MultipleChoiceHead(nn.Module):
    """Scores each choice: forward(h, x) with x (B, n_choices, T, 2) -> logits (B, n_choices). One
    dropout mask per example is shared by all its choices, as TF's noise_shape [batch, 1, n_embd]."""

    def __init__(self, clf_token, cfg=DEFAULT_CONFIG):
        super().__init__()
        cfg = ModelConfig.from_any(cfg)
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
        cfg = ModelConfig.from_any(cfg)
        self.clf_token = clf_token
        self.dropout = nn.Dropout(cfg.clf_pdrop)
        self.clf = Conv1D(cfg.n_embd, n_class)

    def forward(self, h, x):
        return self.clf(self.dropout(_clf_states(h, x, self.clf_token)))


class SimilarityHead(ClfHead):
    """Scores a sentence pair given in both orders, as the paper does: the two orderings' states are
    added before the linear layer. forward(h, x) with x (B, 2, T, 2) -> logits (B,) with one output
    (a graded score, STS-B), else (B, n_class) (paraphrase classes, MRPC and QQP)."""

    def __init__(self, clf_token, cfg=DEFAULT_CONFIG, n_class=1):
        super().__init__(clf_token, cfg, n_class)

    def forward(self, h, x):
        if x.dim() != 4 or x.size(1) != 2:
            raise InputError(f"similarity input of shape {tuple(x.shape)}: expected (batch, 2, n_ctx, 2)")
        clf_h = _clf_states(h, x, self.clf_token).view(x.size(0), 2, -1).sum(dim=1)
        logits = self.clf(self.dropout(clf_h))
        return logits.squeeze(-1) if logits.size(-1) == 1 else logits


TASK_HEAD_TYPES = ("'multiple_choice'", "'similarity'", "'inference'", "('classification', n_class)",
                   "('similarity', n_class)")


def make_task_head(clf_token, cfg, task_head_type):
    """The task head `task_head_type` names (one of TASK_HEAD_TYPES) for a model of config `cfg`."""
    if task_head_type == 'multiple_choice':
        return MultipleChoiceHead(clf_token, cfg)
    if task_head_type in ('similarity', 'inference'):  # inference: entailment, neutral, contradiction
        task_head_type = ('similarity', 1) if task_head_type == 'similarity' else ('classification', 3)
    if isinstance(task_head_type, (tuple, list)) and len(task_head_type) == 2 and _is_int(task_head_type[1]) \
            and task_head_type[1] > 0 and task_head_type[0] in ('classification', 'similarity'):
        return (ClfHead if task_head_type[0] == 'classification' else SimilarityHead)(clf_token, cfg, task_head_type[1])
    raise InputError(f"task_head_type={task_head_type!r} is not one of {', '.join(TASK_HEAD_TYPES)}")


def _same_matrix(a, b):
    """Whether two state-dict entries hold the same values."""
    return a is b or (a.shape == b.shape and torch.equal(a, b.to(a.device, a.dtype)))


def _retie_lm_head(model, incompatible_keys):
    # load_state_dict(assign=True) gives each name its own new Parameter: tie them again
    model.lm_head.decoder.weight = model.transformer.embed.weight


class _TiedLMHeadModel(nn.Module):
    """A model whose `lm_head.decoder.weight` is `transformer.embed.weight` itself. Its load_state_dict
    (also inside DDP) takes a state dict with or without the tied key (train.py saves none); one
    that holds other values than the embedding's is a CheckpointError. state_dict() lists both."""

    def __init__(self):
        super().__init__()
        self.register_load_state_dict_post_hook(_retie_lm_head)

    @property
    def config(self):
        return self.transformer.config

    def _load_from_state_dict(self, state_dict, prefix, *args):
        # runs before the submodules load, on the dict they are then given
        head, embed = prefix + 'lm_head.decoder.weight', prefix + 'transformer.embed.weight'
        if isinstance(state_dict.get(embed), torch.Tensor):
            if head not in state_dict:
                state_dict[head] = state_dict[embed]
            elif isinstance(state_dict[head], torch.Tensor) and not _same_matrix(state_dict[head], state_dict[embed]):
                raise CheckpointError(f"state dict: {head} differs from {embed}, but the LM head is tied to the "
                                      f"embedding: expected the same matrix under both names, or {head} left out")
        super()._load_from_state_dict(state_dict, prefix, *args)


class LMModel(_TiedLMHeadModel):
    """Transformer with the LM head: forward(x) -> logits (B, T, vocab); with return_probs,
    probabilities with the position rows and the n_special rows before them masked out."""

    def __init__(self, cfg=DEFAULT_CONFIG, vocab=40990, n_ctx=512, return_probs=False, n_special=0):
        super().__init__()
        cfg = ModelConfig.from_any(cfg)
        self.transformer = TransformerModel(cfg, vocab=vocab, n_ctx=n_ctx)
        if not _is_int(n_special) or not 0 <= n_special < vocab - n_ctx:
            raise InputError(f"n_special={n_special!r}: expected 0 up to vocab - n_ctx - 1 = {vocab - n_ctx - 1} "
                             f"special rows between the token rows and the position rows")
        self.lm_head = LMHead(self.transformer, cfg, trunc_and_reshape=False)
        self.lm_loss_buffer = ChunkBuffer()  # see lm_loss; not in the state dict
        self.return_probs = return_probs
        if return_probs:
            mask = torch.zeros(vocab)
            mask[vocab - n_ctx - n_special:] = -1e12
            self.register_buffer('pos_emb_mask', mask, persistent=False)

    def forward(self, x, past=None, use_cache=False, key_mask=None, lm_targets=None, reduction='mean'):
        """x (B, T, 2) -> logits (B, T, vocab), or CachedOutput(logits, presents) with use_cache.
        Given lm_targets (B, T) long token ids (-100: no loss), the cross entropy of the logits
        against them instead ('mean', 'sum', or 'none': (B, T)), by loss.chunked_lm_loss,
        which never holds the whole (B, T, vocab) logits."""
        out = self.transformer(x, past=past, use_cache=use_cache, key_mask=key_mask)
        h, presents = out if use_cache else (out, None)
        if lm_targets is not None:
            if use_cache or self.return_probs:
                raise InputError("lm_targets: expected use_cache=False and return_probs=False (a loss has no "
                                 "presents or probabilities)")
            return self.lm_loss(h, lm_targets, reduction)
        logits = self.lm_head(h)
        if self.return_probs:
            logits = F.softmax(logits + self.pos_emb_mask.to(logits.dtype), dim=-1)
        return CachedOutput(logits, presents) if use_cache else logits

    def lm_loss(self, h, lm_targets, reduction):
        """loss.chunked_lm_loss of h (B, T, n_embd) against lm_targets (B, T) through the chunk buffer
        this model keeps, so that training on the CPU allocates the chunks' logits once."""
        return chunked_lm_loss(h, self.lm_head.decoder.weight, lm_targets, reduction, buffer=self.lm_loss_buffer)


class DoubleHeadOutput(NamedTuple):
    """DoubleHeadModel's output: lm_logits (N, vocab) and task_logits (the task head's)."""
    lm_logits: torch.Tensor
    task_logits: torch.Tensor


class DoubleHeadModel(_TiedLMHeadModel):
    """Transformer with the LM head and a task head: forward(x, lm_mask=None, key_mask=None) ->
    DoubleHeadOutput(lm_logits, task_logits). lm_logits is (B * n_choices * (T - 1), vocab) for
    positions 0..T-2; with lm_mask (x.shape[:-1] bool, True where a next-token prediction is
    needed), (lm_mask.sum(), vocab) in row-major order, skipping the projection at padding.
    key_mask (B * n_choices, T) bool, False at padding: a bidirectional model needs it."""

    def __init__(self, cfg, clf_token, task_head_type, vocab=40990, n_ctx=512):
        super().__init__()
        cfg = ModelConfig.from_any(cfg)
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
        return DoubleHeadOutput(lm_logits, self.task_head(h, x))


# ---------------------------------------------------------------- GPT-1's weights

def transformer_of(model):
    """The TransformerModel of `model` (a TransformerModel, or a model with `.transformer`)."""
    transformer = model.transformer if hasattr(model, 'transformer') else model
    if not isinstance(transformer, TransformerModel):
        raise TypeError(f"expected a TransformerModel or a model with .transformer, got {type(model).__name__}")
    return transformer


def load_openai_pretrained_model(model, n_ctx=-1, n_special=-1, n_transfer=None, n_embd=None, path='./model/',
                                 path_names=None):
    """Load OpenAI's released weights (the TF release's `model/` folder at `path`) into `model`, a
    TransformerModel or a model with a `.transformer`, as tf_checkpoint.load_tf_checkpoint says;
    path_names is ignored (the TF names follow from the layer count). Returns the TransformerModel."""
    transformer = transformer_of(model)
    load_tf_checkpoint(transformer, path, n_ctx=n_ctx, n_special=n_special, n_transfer=n_transfer, n_embd=n_embd)
    return transformer
