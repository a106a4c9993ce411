"""OpenAI's finetuned transformer LM (GPT-1) in PyTorch.

Modules and parameters carry the TensorFlow release's variable names
(`h.3.attn.c_attn.w` is `model/h3/attn/c_attn/w:0`), and the numerics follow it:
post-LayerNorm blocks, epsilon inside the square root, tanh GELU, one embedding
matrix `embed` for tokens, special tokens and positions.

Inputs are `(..., n_ctx, 2)` integer tensors: `[..., 0]` token ids, `[..., 1]`
position ids already offset into `embed` (row `n_vocab + n_special + p`).
"""
import json
import math
import os
import re

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from errors import CheckpointError, MissingFileError  # noqa: F401 (CheckpointError: importable from here as before)


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


def gelu(x):
    """The tanh form of GELU the TF release used."""
    return F.gelu(x, approximate='tanh')


def swish(x):
    return x * torch.sigmoid(x)


ACT_FNS = {'relu': F.relu, 'swish': swish, 'gelu': gelu}


def _cfg(cfg, name, default=None):
    # An argparse Namespace from train.py stands in for DEFAULT_CONFIG.
    return getattr(cfg, name, default) if not isinstance(cfg, dict) else cfg.get(name, default)


class Conv1D(nn.Module):
    """TF's 1x1 `conv1d`: y = x @ w + b with w of shape (nx, nf)."""

    def __init__(self, nx, nf):
        super().__init__()
        self.w = nn.Parameter(torch.empty(nx, nf).normal_(std=0.02))
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
    """Causal multi-head self-attention with an optional key/value cache.

    `impl='sdpa'` uses `F.scaled_dot_product_attention` (fused kernels on GPU);
    `impl='explicit'` computes TF's `w * b + -1e9 * (1 - b)` masking step by step.
    Both give the same result to float tolerance: masked scores become exactly
    zero after the softmax either way.
    """

    def __init__(self, nx, n_head, attn_pdrop, resid_pdrop, impl='sdpa'):
        super().__init__()
        if nx % n_head:
            raise ValueError(f"n_embd={nx} is not divisible by n_head={n_head}")
        self.n_head = n_head
        self.c_attn = Conv1D(nx, nx * 3)
        self.c_proj = Conv1D(nx, nx)
        self.attn_pdrop = attn_pdrop
        self.attn_dropout = nn.Dropout(attn_pdrop)
        self.resid_dropout = nn.Dropout(resid_pdrop)
        self.impl = impl

    def split_heads(self, x):
        """(B, T, C) -> (B, n_head, T, C // n_head)"""
        B, T, C = x.shape
        return x.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)

    def forward(self, x, layer_past=None, key_mask=None):
        """x (B, T, C); layer_past (k, v) each (B, n_head, T_past, C // n_head) or None;
        key_mask (B, T_past + T) bool, True for keys that may be attended to, or None.
        Returns (a (B, T, C), present (k, v) including x's positions)."""
        q, k, v = self.c_attn(x).split(x.size(-1), dim=2)
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
        if layer_past is not None:
            k = torch.cat((layer_past[0], k), dim=2)
            v = torch.cat((layer_past[1], v), dim=2)
        present = (k, v)
        T, S = q.size(2), k.size(2)
        allowed, causal = None, S == T  # no mask: square causal, or one new query that sees every key
        if key_mask is not None or 1 < T < S:
            causal = False
            # query i sits at absolute position S - T + i and sees keys up to it
            allowed = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
            if key_mask is not None:
                # a padded query still sees itself, so no row is fully masked (no NaN)
                diag = torch.zeros_like(allowed)
                diag[torch.arange(T, device=x.device), torch.arange(S - T, S, device=x.device)] = True
                allowed = (allowed & key_mask[:, None, None, :]) | diag
        if self.impl == 'sdpa':
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=allowed, is_causal=causal,
                dropout_p=self.attn_pdrop if self.training else 0.0)
        else:
            w = q @ k.transpose(-2, -1) / math.sqrt(v.size(-1))
            if allowed is None:
                allowed = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
            b = allowed.to(w.dtype)
            w = w * b + -1e9 * (1 - b)
            y = self.attn_dropout(F.softmax(w, dim=-1)) @ v
        y = y.transpose(1, 2).reshape(x.shape)
        return self.resid_dropout(self.c_proj(y)), present


class MLP(nn.Module):
    def __init__(self, n_state, nx, afn, resid_pdrop):
        super().__init__()
        if afn not in ACT_FNS:
            raise ValueError(f"afn={afn!r} is not one of {sorted(ACT_FNS)}")
        self.c_fc = Conv1D(nx, n_state)
        self.c_proj = Conv1D(n_state, nx)
        self.act = ACT_FNS[afn]
        self.dropout = nn.Dropout(resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    """Post-LN block: n = ln_1(x + attn(x)); h = ln_2(n + mlp(n))."""

    def __init__(self, cfg):
        super().__init__()
        nx = cfg.n_embd
        self.attn = Attention(nx, cfg.n_head, cfg.attn_pdrop, cfg.resid_pdrop, _cfg(cfg, 'attn_impl', 'sdpa'))
        self.ln_1 = LayerNorm(nx)
        self.mlp = MLP(4 * nx, nx, cfg.afn, cfg.resid_pdrop)
        self.ln_2 = LayerNorm(nx)

    def forward(self, x, layer_past=None, key_mask=None):
        a, present = self.attn(x, layer_past, key_mask)
        n = self.ln_1(x + a)
        return self.ln_2(n + self.mlp(n)), present


class TransformerModel(nn.Module):
    """The transformer: embeddings and `n_layer` blocks.

    vocab = n_vocab + n_special + n_ctx rows in `embed` (40478 + 0 + 512 by default).
    forward(x): x (B, T, 2) or (B, n_choices, T, 2) long -> hidden states
    (B * n_choices, T, n_embd); T may be anything up to the model's n_ctx.
    """

    def __init__(self, cfg=DEFAULT_CONFIG, vocab=40990, n_ctx=512):
        super().__init__()
        self.vocab, self.n_ctx, self.n_embd = vocab, n_ctx, cfg.n_embd
        self.embed = nn.Embedding(vocab, cfg.n_embd)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.embd_pdrop = cfg.embd_pdrop
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))

    def set_attention(self, impl):
        """Select 'sdpa' (fused kernels) or 'explicit' attention in every block."""
        if impl not in ATTN_IMPLS:
            raise ValueError(f"attention impl={impl!r} is not one of {ATTN_IMPLS}")
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
            # F.embedding rather than [inverse]: its backward sums repeated rows in a
            # fixed order, so CPU runs with several threads stay bit-identical
            e = F.embedding(inverse, F.dropout(self.embed(rows), self.embd_pdrop, True))
        else:
            e = self.embed(x)
        return e.sum(dim=-2)

    def forward(self, x, past=None, use_cache=False, key_mask=None):
        """x (..., T, 2) long; past: list of per-layer (k, v) from an earlier call
        or None; key_mask (B, T_past + T) bool or None (False marks padding keys).
        Returns h (B', T, n_embd), and the new `past` list too when use_cache."""
        if x.dim() < 3 or x.size(-1) != 2:
            raise ValueError(
                f"input of shape {tuple(x.shape)}: expected (batch, n_ctx, 2) or "
                f"(batch, n_choices, n_ctx, 2) with a trailing (token id, position id) axis")
        if x.size(-2) > self.n_ctx:
            raise ValueError(f"input has {x.size(-2)} positions, more than the model's n_ctx={self.n_ctx}")
        x = x.reshape(-1, x.size(-2), 2)
        h = self.embed_input(x)
        presents = []
        for i, block in enumerate(self.h):
            h, present = block(h, None if past is None else past[i], key_mask)
            if use_cache:
                presents.append(present)
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
        raise ValueError(f"a sequence has no classify token (id {clf_token}): every sequence must contain it")
    idx = is_clf.int().argmax(dim=1)
    return h[torch.arange(h.size(0), device=h.device), idx]


class MultipleChoiceHead(nn.Module):
    """Scores each choice: forward(h, x) with x (B, n_choices, T, 2) -> logits (B, n_choices).

    One dropout mask per example is shared by all its choices, as TF's
    noise_shape [batch, 1, n_embd]."""

    def __init__(self, clf_token, cfg=DEFAULT_CONFIG):
        super().__init__()
        self.clf_token = clf_token
        self.clf_pdrop = cfg.clf_pdrop
        self.clf = Conv1D(cfg.n_embd, 1)

    def forward(self, h, x):
        if x.dim() != 4:
            raise ValueError(f"multiple-choice input of shape {tuple(x.shape)}: expected (batch, n_choices, n_ctx, 2)")
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
        self.clf_token = clf_token
        self.dropout = nn.Dropout(cfg.clf_pdrop)
        self.clf = Conv1D(cfg.n_embd, n_class)

    def forward(self, h, x):
        return self.clf(self.dropout(_clf_states(h, x, self.clf_token)))


class SimilarityHead(nn.Module):
    """Scores a sentence pair given in both orders, as the paper does: the two
    orderings' states are added before the linear layer.

    forward(h, x) with x (B, 2, T, 2) -> logits (B,)."""

    def __init__(self, clf_token, cfg=DEFAULT_CONFIG):
        super().__init__()
        self.clf_token = clf_token
        self.dropout = nn.Dropout(cfg.clf_pdrop)
        self.clf = Conv1D(cfg.n_embd, 1)

    def forward(self, h, x):
        if x.dim() != 4 or x.size(1) != 2:
            raise ValueError(f"similarity input of shape {tuple(x.shape)}: expected (batch, 2, n_ctx, 2)")
        clf_h = _clf_states(h, x, self.clf_token).view(x.size(0), 2, -1).sum(dim=1)
        return self.clf(self.dropout(clf_h)).squeeze(-1)


TASK_HEAD_TYPES = ("'multiple_choice'", "'similarity'", "'inference'", "('classification', n_class)")


def make_task_head(clf_token, cfg, task_head_type):
    if task_head_type == 'multiple_choice':
        return MultipleChoiceHead(clf_token, cfg)
    if task_head_type == 'similarity':
        return SimilarityHead(clf_token, cfg)
    if task_head_type == 'inference':
        return ClfHead(clf_token, cfg, 3)  # entailment, neutral, contradiction
    if isinstance(task_head_type, (tuple, list)) and len(task_head_type) == 2 \
            and task_head_type[0] == 'classification' and isinstance(task_head_type[1], int) and task_head_type[1] > 0:
        return ClfHead(clf_token, cfg, task_head_type[1])
    raise ValueError(f"task_head_type={task_head_type!r} is not one of {', '.join(TASK_HEAD_TYPES)}")


class LMModel(nn.Module):
    """Transformer with the LM head: forward(x) -> logits (B, T, vocab).

    With return_probs, returns probabilities instead, with the position rows and
    the n_special rows before them masked out, so sampling never picks them."""

    def __init__(self, cfg=DEFAULT_CONFIG, vocab=40990, n_ctx=512, return_probs=False, n_special=0):
        super().__init__()
        self.transformer = TransformerModel(cfg, vocab=vocab, n_ctx=n_ctx)
        self.lm_head = LMHead(self.transformer, cfg, trunc_and_reshape=False)
        self.return_probs = return_probs
        if return_probs:
            mask = torch.zeros(vocab)
            mask[vocab - n_ctx - n_special:] = -1e12
            self.register_buffer('pos_emb_mask', mask, persistent=False)

    def forward(self, x, past=None, use_cache=False, key_mask=None):
        out = self.transformer(x, past=past, use_cache=use_cache, key_mask=key_mask)
        h, presents = out if use_cache else (out, None)
        logits = self.lm_head(h)
        if self.return_probs:
            logits = F.softmax(logits + self.pos_emb_mask.to(logits.dtype), dim=-1)
        return (logits, presents) if use_cache else logits


class DoubleHeadModel(nn.Module):
    """Transformer with the LM head and a task head.

    forward(x, lm_mask=None) -> (lm_logits, task_logits). lm_logits is
    (B * n_choices * (T - 1), vocab) for positions 0..T-2; with lm_mask
    (x.shape[:-1] bool, True where a next-token prediction is needed) it is
    (lm_mask.sum(), vocab), the rows in lm_mask's row-major order, which skips
    the vocabulary projection at padding."""

    def __init__(self, cfg, clf_token, task_head_type, vocab=40990, n_ctx=512):
        super().__init__()
        self.transformer = TransformerModel(cfg, vocab=vocab, n_ctx=n_ctx)
        self.lm_head = LMHead(self.transformer, cfg)
        self.task_head = make_task_head(clf_token, cfg, task_head_type)

    def forward(self, x, lm_mask=None):
        h = self.transformer(x)
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
        raise ValueError(f"{tf_name!r} is not a variable of OpenAI's transformer")
    return f"h.{m.group(1)}.{m.group(2).replace('/', '.')}"


def _read_shapes(path):
    shapes_path = os.path.join(path, 'params_shapes.json')
    if not os.path.isdir(path):
        raise FileNotFoundError(f"checkpoint folder {path!r} does not exist: expected params_shapes.json and "
                                f"params_0.npy ... params_9.npy there; {SOURCE_HINT}")
    if not os.path.isfile(shapes_path):
        raise FileNotFoundError(f"{shapes_path} is missing: expected params_shapes.json and params_0.npy ... "
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
            raise FileNotFoundError(f"{p} is missing: expected params_0.npy ... params_9.npy in {path}; {SOURCE_HINT}")
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


def iter_checkpoint_arrays(path):
    """Yield the checkpoint's arrays, in params_shapes.json order, as float32
    numpy arrays, reading one shard at a time so that the whole concatenation
    never sits in memory at once."""
    shapes = _read_shapes(path)
    paths = _shard_paths(path)
    sizes = [_shard_size(p) for p in paths]
    expected = sum(math.prod(s) for s in shapes)
    if sum(sizes) != expected:
        listing = ', '.join(f'{os.path.basename(p)}: {n}' for p, n in zip(paths, sizes))
        raise CheckpointError(f"the shards in {path} hold {sum(sizes)} floats but params_shapes.json expects "
                              f"{expected} ({listing})")
    shard_iter = iter(paths)
    buf, pos = np.empty(0, np.float32), 0
    for shape in shapes:
        n = math.prod(shape)
        out = np.empty(n, np.float32)
        filled = 0
        while filled < n:
            if pos == len(buf):
                p = next(shard_iter)
                try:
                    buf = np.load(p, allow_pickle=False)
                except Exception as err:
                    raise CheckpointError(f"{p} could not be read as a .npy file: {err}") from None
                pos = 0
            take = min(n - filled, len(buf) - pos)
            out[filled:filled + take] = buf[pos:pos + take]
            filled += take
            pos += take
        yield out.reshape(shape)


def _copy(param, array, name):
    if tuple(param.shape) != tuple(array.shape):
        raise CheckpointError(f"checkpoint array for {name} has shape {tuple(array.shape)} but the model's "
                              f"parameter has shape {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(array)))


def _check_layout(transformer, n_vocab, n_pos, n_layer, n_ctx, n_special, n_transfer, source):
    """Resolve n_ctx and n_special (-1: from the model) against a checkpoint of n_vocab
    tokens, n_pos positions and n_layer layers described by `source`; raise on a misfit.
    Returns (n_ctx, n_special)."""
    if n_ctx < 0:
        n_ctx = transformer.n_ctx
    if n_ctx > n_pos:
        raise ValueError(f"n_ctx={n_ctx} exceeds the {n_pos} positions in {source}: expected n_ctx <= {n_pos}")
    if n_special < 0:
        n_special = transformer.vocab - n_vocab - n_ctx
    rows = n_vocab + n_special + n_ctx
    if n_special < 0 or rows != transformer.vocab:
        raise CheckpointError(f"embed.weight: the model has {transformer.vocab} rows but {source} gives "
                              f"n_vocab {n_vocab} + n_special {n_special} + n_ctx {n_ctx} = {rows}")
    if not -1 <= n_transfer <= n_layer:
        raise ValueError(f"n_transfer={n_transfer}: expected -1 (embeddings only) up to the {n_layer} layers "
                         f"in {source}")
    if n_transfer > len(transformer.h):
        raise ValueError(f"n_transfer={n_transfer} exceeds the model's {len(transformer.h)} layers")
    return n_ctx, n_special


def load_openai_pretrained_model(model, n_ctx=-1, n_special=-1, n_transfer=12, n_embd=768, path='./model/',
                                 path_names=None):
    """Load OpenAI's released weights (the TF release's `model/` folder) into `model`.

    model: a TransformerModel, or a model with a `.transformer` (DoubleHeadModel, LMModel).
    n_ctx: position rows to keep (-1: the model's n_ctx); at most 512.
    n_special: new rows between the tokens and the positions (-1: what the model's
    vocabulary leaves room for); they keep their random N(0, 0.02) initialisation.
    n_transfer: layers to load (12: all; -1: only the embeddings).
    n_embd: the checkpoint's width (768). path_names: ignored; the earlier port read
    TF variable names from a file, here they follow from the layer count.
    Returns the TransformerModel it loaded into.
    """
    transformer = model.transformer if hasattr(model, 'transformer') else model
    if not isinstance(transformer, TransformerModel):
        raise TypeError(f"expected a TransformerModel or a model with .transformer, got {type(model).__name__}")
    shapes = _read_shapes(path)
    n_layer = (len(shapes) - 2) // len(LAYER_VARS)
    n_vocab, n_pos = shapes[1][0], shapes[0][0]
    n_ctx, n_special = _check_layout(transformer, n_vocab, n_pos, n_layer, n_ctx, n_special, n_transfer,
                                     f"{path}'s checkpoint")
    for shape in shapes[:2]:
        if shape[-1] != n_embd or transformer.n_embd != n_embd:
            raise CheckpointError(f"embed.weight: checkpoint embeddings have width {shape[-1]}, "
                                  f"n_embd={n_embd}, the model has {transformer.n_embd}")
    names = tf_variable_names(n_layer)
    params = dict(transformer.named_parameters())
    arrays = iter_checkpoint_arrays(path)
    pos_emb, tok_emb = next(arrays), next(arrays)
    emb = transformer.embed.weight
    _copy(emb[:n_vocab], tok_emb, 'embed.weight (token rows)')
    _copy(emb[n_vocab + n_special:], pos_emb[:n_ctx], 'embed.weight (position rows)')
    del pos_emb, tok_emb
    n_load = max(n_transfer, 0) * len(LAYER_VARS)
    for tf_name, array in zip(names[1:1 + n_load], arrays):
        name = tf_to_torch_name(tf_name)
        if array.ndim == 3:  # conv weights [1, nx, nf]
            array = array[0]
        _copy(params[name], array, name)
    arrays.close()
    return transformer


CHECKPOINT_FORMATS = {'tf': "TF release's checkpoint", 'hf': 'Hugging Face openai-gpt weights'}


def find_checkpoint_format(path):
    """'tf' when `path` holds the TF release's shards (params_shapes.json), 'hf' when
    it holds a Hugging Face save (config.json + model.safetensors or pytorch_model.bin,
    or the hub cache's models--openai-gpt folder); raises FileNotFoundError otherwise."""
    looked_for = ("looked for OpenAI's params_shapes.json with params_0.npy ... params_9.npy (the TF release's "
                  "model/ folder of https://github.com/openai/finetune-transformer-lm), or Hugging Face's config.json with model.safetensors or "
                  "pytorch_model.bin (e.g. ~/.cache/huggingface/hub/models--openai-gpt/snapshots/<hash>/)")
    if os.path.isfile(os.path.join(path, 'params_shapes.json')):
        return 'tf'
    if not os.path.exists(path):
        raise FileNotFoundError(f"model folder {path!r} does not exist: {looked_for}")
    try:
        folder = resolve_hf_folder(path)
    except CheckpointError as err:  # a hub cache folder with several snapshots: no one checkpoint found
        raise FileNotFoundError(str(err)) from None
    if folder is not None:
        if not _has_hf_weights(folder):
            raise FileNotFoundError(f"{folder} has config.json but neither model.safetensors nor "
                                    f"pytorch_model.bin: {looked_for}")
        return 'hf'
    raise FileNotFoundError(f"{path} holds no checkpoint: {looked_for}")


def load_pretrained(model, path, n_ctx=-1, n_special=-1, n_transfer=12):
    """Load pretrained weights from `path` in whichever format it holds.

    Returns the format found ('tf' for the TF release's shards, 'hf' for a Hugging
    Face save, see `load_hf_pretrained_model`), so that callers can say which one they used."""
    fmt = find_checkpoint_format(path)
    if fmt == 'hf':
        load_hf_pretrained_model(model, path, n_ctx=n_ctx, n_special=n_special, n_transfer=n_transfer)
        return fmt
    load_openai_pretrained_model(model, n_ctx=n_ctx, n_special=n_special, n_transfer=n_transfer,
                                 n_embd=(model.transformer if hasattr(model, 'transformer') else model).n_embd,
                                 path=path)
    return fmt


# ---------------------------------------------------------------- Hugging Face format
#
# Hugging Face's `openai-gpt` holds the same weights under other names: separate
# `tokens_embed.weight` (vocab_size rows) and `positions_embed.weight`
# (n_positions rows), `h.{i}.attn.c_attn.weight` in the same (nx, nf) layout as
# ours, `ln_1.weight/bias` for our `ln_1.g/b`; with a `transformer.` prefix when
# saved from OpenAIGPTLMHeadModel / OpenAIGPTDoubleHeadsModel, without it when
# saved from OpenAIGPTModel.

HF_CONFIG = 'config.json'
HF_WEIGHTS = ('model.safetensors', 'pytorch_model.bin')
HF_SAFETENSORS_INDEX = 'model.safetensors.index.json'
HF_PREFIX = 'transformer.'
HF_MODEL_TYPE = 'openai-gpt'
HF_HINT = ("expected config.json plus model.safetensors (or pytorch_model.bin) as saved by Hugging Face's "
           "save_pretrained, e.g. a snapshot folder of the hub cache ~/.cache/huggingface/hub/models--openai-gpt/")
HF_AFNS = {'gelu': 'gelu', 'relu': 'relu', 'swish': 'swish', 'silu': 'swish'}  # HF's gelu is the tanh form
_HF_LAYER_MAP = (  # (our name within h.{i}, HF's name within h.{i})
    ('attn.c_attn.w', 'attn.c_attn.weight'), ('attn.c_attn.b', 'attn.c_attn.bias'),
    ('attn.c_proj.w', 'attn.c_proj.weight'), ('attn.c_proj.b', 'attn.c_proj.bias'),
    ('ln_1.g', 'ln_1.weight'), ('ln_1.b', 'ln_1.bias'),
    ('mlp.c_fc.w', 'mlp.c_fc.weight'), ('mlp.c_fc.b', 'mlp.c_fc.bias'),
    ('mlp.c_proj.w', 'mlp.c_proj.weight'), ('mlp.c_proj.b', 'mlp.c_proj.bias'),
    ('ln_2.g', 'ln_2.weight'), ('ln_2.b', 'ln_2.bias'))
# Tensors a Hugging Face save may carry that hold nothing to load: DoubleHeads'
# multiple-choice head (its own task head, not ours), and old versions'
# causal-mask and position-id buffers. `lm_head.weight` is tied to tokens_embed:
# ignored, except that OpenAIGPTDoubleHeadsModel saves the tied matrix under that
# name alone (transformers 5), so it stands in when tokens_embed.weight is absent.
_HF_IGNORED = re.compile(r'multiple_choice_head\..*|position_ids|h\.\d+\.attn\.(bias|masked_bias)')
_HF_LM_HEAD = 'lm_head.weight'


def hf_tensor_names(n_layer):
    """HF's names (without the `transformer.` prefix) of every tensor the transformer holds."""
    return ['tokens_embed.weight', 'positions_embed.weight'] + [
        f'h.{i}.{hf}' for i in range(n_layer) for _, hf in _HF_LAYER_MAP]


def _has_hf_weights(folder):
    return any(os.path.isfile(os.path.join(folder, f)) for f in HF_WEIGHTS + (HF_SAFETENSORS_INDEX,))


def resolve_hf_folder(path):
    """The folder holding a Hugging Face save, or None when `path` holds none.

    Accepts the folder itself (a snapshot), the hub cache's `models--openai-gpt`
    folder (its snapshot named by refs/main, else its only snapshot), or the path
    of the weights file itself."""
    path = os.fspath(path)
    if os.path.isfile(path) and os.path.basename(path) in HF_WEIGHTS + (HF_SAFETENSORS_INDEX, HF_CONFIG):
        path = os.path.dirname(path) or '.'
    if os.path.isfile(os.path.join(path, HF_CONFIG)):
        return path
    snapshots = os.path.join(path, 'snapshots')
    if not os.path.isdir(snapshots):
        return None
    ref = os.path.join(path, 'refs', 'main')
    if os.path.isfile(ref):
        with open(ref) as f:
            main = os.path.join(snapshots, f.read().strip())
        if os.path.isfile(os.path.join(main, HF_CONFIG)):
            return main
    found = sorted(d for d in os.listdir(snapshots) if os.path.isfile(os.path.join(snapshots, d, HF_CONFIG)))
    if len(found) > 1:
        raise CheckpointError(f"{path} is a hub cache folder with {len(found)} snapshots ({', '.join(found)}) and "
                              f"no refs/main naming one: pass the snapshot folder itself")
    return os.path.join(snapshots, found[0]) if found else None


def read_hf_config(folder):
    """config.json of a Hugging Face save as a dict, checked to be an openai-gpt config."""
    p = os.path.join(folder, HF_CONFIG)
    try:
        with open(p) as f:
            config = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{p} is missing: {HF_HINT}") from None
    except ValueError as err:
        raise CheckpointError(f"{p} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{p} holds a JSON {type(config).__name__}: expected an object")
    if config.get('model_type', HF_MODEL_TYPE) != HF_MODEL_TYPE:
        raise CheckpointError(f"{p}: model_type is {config['model_type']!r}, expected {HF_MODEL_TYPE!r}")
    if 'n_positions' not in config and 'n_ctx' in config:  # configs of old transformers versions
        config['n_positions'] = config['n_ctx']
    for field in ('vocab_size', 'n_positions', 'n_embd', 'n_layer', 'n_head'):
        if not isinstance(config.get(field), int) or config[field] <= 0:
            raise CheckpointError(f"{p}: field {field} is {config.get(field)!r}, expected a positive integer")
    return config


class _HFTensors:
    """Read-only access, one tensor at a time, to the weights of a Hugging Face save:
    `safe_open` on model.safetensors (or the shards of model.safetensors.index.json),
    else pytorch_model.bin through `torch.load(weights_only=True)`, memory-mapped
    when possible. `keys()` are the names as stored; `shape(k)`, `get(k, rows=None)`."""

    def __init__(self, folder):
        from safetensors import safe_open
        self.handles, self.where, self.state = [], {}, None
        index = os.path.join(folder, HF_SAFETENSORS_INDEX)
        single = os.path.join(folder, HF_WEIGHTS[0])
        if os.path.isfile(single) or os.path.isfile(index):
            if os.path.isfile(single):
                files = [single]
            else:
                try:
                    with open(index) as f:
                        weight_map = json.load(f)['weight_map']
                except (ValueError, KeyError, TypeError) as err:
                    raise CheckpointError(f"{index} is not a safetensors index with a weight_map: {err}") from None
                files = [os.path.join(folder, n) for n in sorted(set(weight_map.values()))]
            for p in files:
                try:
                    h = safe_open(p, framework='pt', device='cpu')
                except FileNotFoundError:
                    raise FileNotFoundError(f"{p} is missing: {HF_HINT}") from None
                except Exception as err:  # safetensors' SafetensorError on a truncated or corrupt file
                    raise CheckpointError(f"{p} is not a valid safetensors file (truncated or corrupt?): "
                                          f"{err}") from None
                self.handles.append((p, h))
                for k in h.keys():
                    self.where[k] = (p, h)
            self.path = files[0] if len(files) == 1 else index
            return
        p = os.path.join(folder, HF_WEIGHTS[1])
        self.path = p
        if not os.path.isfile(p):
            raise FileNotFoundError(f"{folder} has config.json but neither model.safetensors nor "
                                    f"pytorch_model.bin: {HF_HINT}")
        state = None
        for mmap in (True, False):  # mmap needs torch's zip format; older pickles load whole
            try:
                state = torch.load(p, map_location='cpu', weights_only=True, mmap=mmap)
                break
            except Exception as err:
                last = err
        if state is None:
            raise CheckpointError(f"{p} could not be read as a PyTorch state dict with weights_only=True "
                                  f"(truncated, corrupt, or not plain tensors): {last}")
        if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
            state = state['state_dict']
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{p} does not hold a state dict of tensors")
        self.state = state

    def keys(self):
        return list(self.where) if self.state is None else list(self.state)

    def shape(self, key):
        if self.state is not None:
            return tuple(self.state[key].shape)
        return tuple(self.where[key][1].get_slice(key).get_shape())

    def get(self, key, rows=None):
        """The tensor (its first `rows` rows only when rows is given)."""
        if self.state is not None:
            t = self.state[key]
            return t if rows is None else t[:rows]
        p, h = self.where[key]
        try:
            return h.get_tensor(key) if rows is None else h.get_slice(key)[:rows]
        except Exception as err:
            raise CheckpointError(f"{p}: tensor {key} could not be read (truncated or corrupt file?): {err}") from None


def _hf_model_settings(transformer):
    """The sizes and settings of our transformer, in the HF config's field names."""
    block = transformer.h[0] if len(transformer.h) else None
    afn = None
    if block is not None:
        afn = next((name for name, fn in ACT_FNS.items() if fn is block.mlp.act), None)
    return dict(n_embd=transformer.n_embd, n_layer=len(transformer.h),
                n_head=block.attn.n_head if block is not None else None, afn=afn)


def load_hf_pretrained_model(model, path, n_ctx=-1, n_special=-1, n_transfer=12):
    """Load a Hugging Face `openai-gpt` save (config.json + model.safetensors or
    pytorch_model.bin) into `model`, as `load_openai_pretrained_model` loads the TF release.

    model: a TransformerModel, or a model with a `.transformer` (DoubleHeadModel, LMModel).
    path: the folder (a hub-cache snapshot such as
    ~/.cache/huggingface/hub/models--openai-gpt/snapshots/<hash>/), or the
    `models--openai-gpt` cache folder itself (its refs/main or only snapshot).
    n_ctx: position rows to keep (-1: the model's n_ctx); at most the config's n_positions.
    n_special: new rows between the tokens and the positions (-1: what the model's
    vocabulary leaves room for); they keep their random initialisation. The token
    rows are HF's tokens_embed (vocab_size rows; a folder written by `export_hf`
    already holds its special rows there, so reload it with n_special=0).
    n_transfer: layers to load (12: all; -1 or 0: only the embeddings).
    Tensor names are accepted with or without the `transformer.` prefix. Ignored:
    `lm_head.weight` (tied to tokens_embed; read as tokens_embed only when that is
    absent, as in OpenAIGPTDoubleHeadsModel's saves), OpenAIGPTDoubleHeadsModel's
    `multiple_choice_head.*` (HF's own task head, not ours), and the causal-mask /
    position-id buffers older versions saved. Any other missing or unexpected tensor
    is an error. Safetensors are read tensor by tensor; a .bin goes through
    torch.load(weights_only=True), which never runs pickled code.
    Everything is checked before the model is touched. Returns the TransformerModel.
    """
    transformer = model.transformer if hasattr(model, 'transformer') else model
    if not isinstance(transformer, TransformerModel):
        raise TypeError(f"expected a TransformerModel or a model with .transformer, got {type(model).__name__}")
    folder = resolve_hf_folder(path)
    if folder is None:
        raise FileNotFoundError(f"{path} holds no Hugging Face save: {HF_HINT}")
    config = read_hf_config(folder)
    cfg_path = os.path.join(folder, HF_CONFIG)
    ours = _hf_model_settings(transformer)
    for field in ('n_embd', 'n_head'):
        if config[field] != ours[field]:
            raise CheckpointError(f"{cfg_path}: {field} is {config[field]} but the model has {field}={ours[field]}")
    afn = config.get('afn', 'gelu')
    if HF_AFNS.get(afn, afn) != ours['afn']:
        raise CheckpointError(f"{cfg_path}: afn is {afn!r} but the model uses afn={ours['afn']!r}")
    eps = config.get('layer_norm_epsilon', 1e-5)
    if not math.isclose(eps, 1e-5, rel_tol=1e-6):
        raise CheckpointError(f"{cfg_path}: layer_norm_epsilon is {eps} but the model's LayerNorm uses 1e-05")
    n_vocab, n_pos, n_layer = config['vocab_size'], config['n_positions'], config['n_layer']
    n_ctx, n_special = _check_layout(transformer, n_vocab, n_pos, n_layer, n_ctx, n_special, n_transfer, cfg_path)

    tensors = _HFTensors(folder)
    stored = {}  # name without prefix -> name as stored
    unexpected, lm_head = [], None
    for key in tensors.keys():
        name = key[len(HF_PREFIX):] if key.startswith(HF_PREFIX) else key
        if _HF_IGNORED.fullmatch(name):
            continue
        if key == _HF_LM_HEAD:
            lm_head = key
            continue
        if name in stored:
            unexpected.append(key)
        else:
            stored[name] = key
    if 'tokens_embed.weight' not in stored and lm_head is not None:
        stored['tokens_embed.weight'] = lm_head  # the tied matrix, as OpenAIGPTDoubleHeadsModel saves it
    expected = hf_tensor_names(n_layer)
    missing = [n for n in expected if n not in stored]
    unexpected += [stored[n] for n in stored if n not in set(expected)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing tensors: {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected tensors: {', '.join(sorted(unexpected))}")
        raise CheckpointError(f"{tensors.path} does not match {cfg_path} (n_layer={n_layer}): {'; '.join(parts)}")
    params = dict(transformer.named_parameters())
    plan = [('tokens_embed.weight', transformer.embed.weight[:n_vocab], None),
            ('positions_embed.weight', transformer.embed.weight[n_vocab + n_special:], n_ctx)]
    want = {'tokens_embed.weight': (n_vocab, config['n_embd']), 'positions_embed.weight': (n_pos, config['n_embd'])}
    for i in range(max(n_transfer, 0)):
        for our, hf in _HF_LAYER_MAP:
            p = params[f'h.{i}.{our}']
            plan.append((f'h.{i}.{hf}', p, None))
            want[f'h.{i}.{hf}'] = tuple(p.shape)
    for name, _, _ in plan:
        shape = tensors.shape(stored[name])
        if shape != want[name]:
            raise CheckpointError(f"{tensors.path}: tensor {stored[name]} has shape {shape}, expected "
                                  f"{want[name]} from {cfg_path} and the model")
    with torch.no_grad():
        for name, target, rows in plan:
            target.copy_(tensors.get(stored[name], rows))
    return transformer


def _write_atomically(folder, files):
    """Write {file name: writer(path)} into `folder`: everything goes to a temporary
    folder beside it first; a new folder is then renamed into place, an existing one
    gets each file by an atomic os.replace (other files in it are left alone)."""
    import shutil
    import uuid
    folder = os.path.abspath(os.fspath(folder))
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f'.{os.path.basename(folder)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}')
    os.mkdir(tmp)  # the umask's permissions, unlike mkdtemp's 0700
    try:
        for name, write in files.items():
            write(os.path.join(tmp, name))
        if not os.path.exists(folder):
            try:
                os.rename(tmp, folder)
                return folder
            except OSError:
                if not os.path.isdir(folder):  # not a lost race with another writer
                    raise
        if not os.path.isdir(folder):
            raise NotADirectoryError(f"cannot export to {folder}: it exists and is not a folder")
        for name in files:
            os.replace(os.path.join(tmp, name), os.path.join(folder, name))
        return folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def hf_config(model, n_vocab=40478, n_special=-1):
    """The config.json dict `export_hf` writes for `model` (see there)."""
    transformer = model.transformer if hasattr(model, 'transformer') else model
    if not isinstance(transformer, TransformerModel):
        raise TypeError(f"expected a TransformerModel or a model with .transformer, got {type(model).__name__}")
    if n_special < 0:
        n_special = transformer.vocab - n_vocab - transformer.n_ctx
    if n_special < 0 or n_vocab + n_special + transformer.n_ctx != transformer.vocab:
        raise ValueError(f"embed.weight has {transformer.vocab} rows but n_vocab {n_vocab} + n_special {n_special} "
                         f"+ n_ctx {transformer.n_ctx} = {n_vocab + n_special + transformer.n_ctx}")
    ours = _hf_model_settings(transformer)
    if ours['afn'] is None:
        raise ValueError("the model's activation is none of " + ', '.join(sorted(ACT_FNS)))
    block = transformer.h[0] if len(transformer.h) else None
    return {
        'architectures': ['OpenAIGPTLMHeadModel'],
        'model_type': HF_MODEL_TYPE,
        'vocab_size': n_vocab + n_special,
        'n_positions': transformer.n_ctx,
        'n_embd': ours['n_embd'],
        'n_layer': ours['n_layer'],
        'n_head': ours['n_head'] if ours['n_head'] is not None else 12,
        'afn': ours['afn'],
        'embd_pdrop': float(transformer.embd_pdrop),
        'attn_pdrop': float(block.attn.attn_pdrop) if block is not None else 0.1,
        'resid_pdrop': float(block.attn.resid_dropout.p) if block is not None else 0.1,
        'layer_norm_epsilon': 1e-5,
        'initializer_range': 0.02,
        'tie_word_embeddings': True,
        'dtype': str(transformer.embed.weight.dtype).replace('torch.', ''),
        'n_special': n_special,  # informational: the last n_special token rows are the special tokens
    }


def export_hf(model, folder, n_vocab=40478, n_special=-1):
    """Write `model`'s transformer (and its tied LM head) as a Hugging Face
    `openai-gpt` folder that `transformers.OpenAIGPTLMHeadModel.from_pretrained(folder)`
    loads: config.json and model.safetensors, written atomically.

    model: a TransformerModel, LMModel or DoubleHeadModel; a task head is not exported.
    n_vocab: the BPE vocabulary's size (40478); n_special: the special-token rows
    after it (-1: what the model's embedding leaves between tokens and positions).
    HF keeps tokens and positions apart, so the special rows become extra token rows:
    config.json has vocab_size = n_vocab + n_special (token id n_vocab + k is special
    token k, as here), n_positions = the model's n_ctx, n_embd, n_layer, n_head, afn,
    the dropouts, layer_norm_epsilon 1e-5, architectures ['OpenAIGPTLMHeadModel'],
    tie_word_embeddings, and n_special for reference. Tensors are named as
    OpenAIGPTLMHeadModel saves them (`transformer.tokens_embed.weight`, ...);
    lm_head.weight is left out because it is tied. Returns the folder.
    """
    from safetensors.torch import save_file
    transformer = model.transformer if hasattr(model, 'transformer') else model
    config = hf_config(model, n_vocab=n_vocab, n_special=n_special)
    n_tok = config['vocab_size']
    emb = transformer.embed.weight.detach()
    tensors = {HF_PREFIX + 'tokens_embed.weight': emb[:n_tok],
               HF_PREFIX + 'positions_embed.weight': emb[n_tok:]}
    params = dict(transformer.named_parameters())
    for i in range(len(transformer.h)):
        for our, hf in _HF_LAYER_MAP:
            tensors[f'{HF_PREFIX}h.{i}.{hf}'] = params[f'h.{i}.{our}'].detach()
    # the two embedding tables are views of one matrix: safetensors wants them apart
    tensors = {k: (v.to('cpu').clone() if 'embed' in k else v.to('cpu').contiguous()) for k, v in tensors.items()}

    def write_config(p):
        with open(p, 'w') as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write('\n')

    def write_weights(p):
        save_file(tensors, p, metadata={'format': 'pt'})

    return _write_atomically(folder, {HF_WEIGHTS[0]: write_weights, HF_CONFIG: write_config})
