"""OpenAI's TF releases. GPT-1's (the `model/` folder of finetune-transformer-lm): its variable
names, its checkpoint (params_shapes.json and the shards params_0.npy ... params_9.npy) read
one memory-mapped shard at a time, checked against a model's layout, copied into it, and
written (random weights of any size, for trying the loaders without OpenAI's files). GPT-2's
(openai/gpt-2's models/124M/ ...: hparams.json and a TF tensor bundle, read through tf_bundle)
the same way: load_gpt2_checkpoint, gpt2_checkpoint_sizes, write_gpt2_checkpoint.

The model side is duck-typed (a TransformerModel's `embed`, `h`, `vocab`, `n_ctx`, `n_embd`,
`arch`, `causal`), so this module does not import model_pytorch, which imports it.
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

from errors import CheckpointError, InputError, MissingFileError
from tf_bundle import DT_FLOAT, TensorBundle, dtype_name, write_bundle

N_CTX_MAX = 512  # position rows in OpenAI's checkpoint
GPT2_N_CTX = 1024  # position rows in each of OpenAI's GPT-2 checkpoints

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


def tf_checkpoint_sizes(path):
    """The sizes of the TF release's checkpoint in `path`, read without its values (and the shards'
    sizes checked against params_shapes.json): dict(n_ctx, n_embd, n_layer, n_head (None: the
    release does not record it), arch 'gpt1', causal True)."""
    shapes = _Shards(path).shapes
    return dict(n_ctx=shapes[0][0], n_embd=shapes[0][-1], n_layer=(len(shapes) - 2) // len(LAYER_VARS), n_head=None,
                arch='gpt1', causal=True)


def tf_checkpoint_vocab(path):
    """The token rows of the TF release's checkpoint in `path` (params_shapes.json's second array)."""
    return _read_shapes(path)[1][0]


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class Layout(NamedTuple):
    """What a load copies: n_ctx position rows, n_special rows left between tokens and positions,
    n_transfer layers (-1 or 0: the embeddings only)."""
    n_ctx: int
    n_special: int
    n_transfer: int


def check_layout(transformer, n_vocab, n_pos, n_layer, n_ctx, n_special, n_transfer, source):
    """Resolve n_ctx and n_special (-1: from the model) and n_transfer (None: all the
    model's layers) against a checkpoint of n_vocab tokens, n_pos positions and n_layer
    layers described by `source`; raise InputError for an argument that cannot work,
    CheckpointError for a checkpoint that does not fit the model.
    Returns a Layout."""
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
    return Layout(n_ctx, n_special, n_transfer)


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


def load_tf_checkpoint(transformer, path, n_ctx=-1, n_special=-1, n_transfer=None, n_embd=None):
    """Copy the TF release's checkpoint in folder `path` into `transformer` (a TransformerModel;
    model_pytorch.load_openai_pretrained_model takes any model holding one).

    n_ctx: position rows to keep (-1: the model's n_ctx), at most 512. n_special: rows between
    tokens and positions (-1: what the vocabulary leaves), kept at their N(0, 0.02) initialisation.
    n_transfer: layers to load (None: all the model's; -1: the embeddings only); more than the
    checkpoint holds is an error. n_embd: the earlier port's argument, an InputError unless the
    model's width. Every array is checked (shape, finite values) before the model is touched; a
    mismatch or a NaN/inf raises CheckpointError naming the file and the variable."""
    _check_gpt1(transformer, path)
    shards = _Shards(path)
    shapes = shards.shapes
    _check_width(transformer, shapes, n_embd)
    layout = check_layout(transformer, shapes[1][0], shapes[0][0], (len(shapes) - 2) // len(LAYER_VARS), n_ctx,
                          n_special, n_transfer, f"{path}'s checkpoint")
    plan = _tf_plan(transformer, shards, shapes[1][0], layout.n_special, layout.n_ctx, layout.n_transfer)
    _check_tf_plan(plan, shards)
    with torch.no_grad():
        for c in plan:
            c.target.copy_(torch.from_numpy(shards.read(c.index, c.n).reshape(c.shape)))
    shards.close()
    return transformer


def _check_gpt1(transformer, path):
    """CheckpointError unless the model is GPT-1's kind: post-LN blocks, causal attention."""
    if transformer.arch != 'gpt1':
        raise CheckpointError(f"{path}: the TF release's checkpoint is GPT-1 (post-LN blocks) but the model has "
                              f"arch={transformer.arch!r}: expected arch 'gpt1' (--arch gpt1)")
    if not transformer.causal:
        raise CheckpointError(f"{path}: the TF release's checkpoint has causal attention but the model has "
                              f"causal=False (bidirectional): expected causal=True")


def _check_width(transformer, shapes, n_embd):
    """CheckpointError unless the checkpoint's embeddings are as wide as the model; InputError for
    an n_embd argument other than the model's width."""
    width = transformer.n_embd
    if any(s[-1] != width for s in shapes[:2]):
        given = '' if n_embd is None else f", n_embd={n_embd}"
        raise CheckpointError(f"embed.weight: checkpoint embeddings have width {shapes[1][-1]}{given}, the model has "
                              f"{width}: expected equal widths")
    if n_embd is not None and n_embd != width:
        raise InputError(f"n_embd={n_embd!r}: the model's width is {width}; leave n_embd out, it is read from the "
                         f"model")


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


# ---------------------------------------------------------------- GPT-2's release

GPT2_HPARAMS = 'hparams.json'
GPT2_CHECKPOINT = 'checkpoint'  # names the bundle's prefix: model_checkpoint_path: "model.ckpt"
GPT2_PREFIX = 'model.ckpt'
GPT2_SOURCE_HINT = ("the files come from openai/gpt-2's download_model.py (models/124M/: hparams.json, checkpoint, "
                    "model.ckpt.index, model.ckpt.data-00000-of-00001)")
# Sizes beyond any GPT-2 (vocab 50257, 1024 positions, width 1600, 48 layers, 25 heads) by far
GPT2_SIZE_MAX = {'n_vocab': 2 ** 22, 'n_ctx': 2 ** 20, 'n_embd': 2 ** 16, 'n_head': 2 ** 10, 'n_layer': 2 ** 10}


def gpt2_variable_shapes(n_vocab, n_ctx, n_embd, n_layer, **_):
    """{TF variable name: shape} of GPT-2's release for these hparams.json sizes: model/wte,
    model/wpe, the 12 variables of each block model/h{i}/..., and model/ln_f/{g,b}."""
    layer = dict(zip(LAYER_VARS, tf_shapes(1, n_embd, 0)[2:]))
    shapes = {'model/wte': (n_vocab, n_embd), 'model/wpe': (n_ctx, n_embd), 'model/ln_f/g': (n_embd,),
              'model/ln_f/b': (n_embd,)}
    shapes.update({f'model/h{i}/{v}': s for i in range(n_layer) for v, s in layer.items()})
    return shapes


def is_gpt2_release(path):
    """Whether folder `path` holds GPT-2's release: hparams.json beside a `checkpoint` file or model.ckpt.index."""
    return os.path.isfile(os.path.join(path, GPT2_HPARAMS)) and any(
        os.path.isfile(os.path.join(path, f)) for f in (GPT2_CHECKPOINT, GPT2_PREFIX + '.index'))


def read_hparams(path):
    """hparams.json of GPT-2's release in folder `path` as a dict, checked: n_vocab, n_ctx, n_embd,
    n_head and n_layer positive integers (within GPT2_SIZE_MAX), n_head dividing n_embd."""
    p = os.path.join(path, GPT2_HPARAMS)
    try:
        with open(p, encoding='utf-8') as f:
            hparams = json.load(f)
    except FileNotFoundError:
        raise MissingFileError(f"{p} is missing: {GPT2_SOURCE_HINT}") from None
    except ValueError as err:
        raise CheckpointError(f"{p} is not valid JSON ({err}): expected an object of n_vocab, n_ctx, n_embd, "
                              f"n_head, n_layer") from None
    if not isinstance(hparams, dict):
        raise CheckpointError(f"{p} holds a JSON {type(hparams).__name__}: expected an object of n_vocab, n_ctx, "
                              f"n_embd, n_head, n_layer")
    for field, most in GPT2_SIZE_MAX.items():
        value = hparams.get(field)
        if not _is_int(value) or not 1 <= value <= most:
            raise CheckpointError(f"{p}: {field} is {value!r}: expected an integer from 1 to {most}")
    if hparams['n_embd'] % hparams['n_head']:
        raise CheckpointError(f"{p}: n_head {hparams['n_head']} does not divide n_embd {hparams['n_embd']}: "
                              f"expected a divisor")
    return {k: hparams[k] for k in GPT2_SIZE_MAX}


def gpt2_bundle_prefix(path):
    """The tensor bundle's prefix in folder `path`: the file `checkpoint`'s model_checkpoint_path
    (its base name, taken inside `path`, so that a moved folder still loads), else model.ckpt."""
    p = os.path.join(path, GPT2_CHECKPOINT)
    if not os.path.isfile(p):
        return os.path.join(path, GPT2_PREFIX)
    with open(p, encoding='utf-8', errors='replace') as f:
        m = re.search(r'^model_checkpoint_path:\s*"([^"]+)"\s*$', f.read(), re.M)
    if not m:
        raise CheckpointError(f"{p} names no model_checkpoint_path: expected a line model_checkpoint_path: "
                              f"\"model.ckpt\"")
    return os.path.join(path, os.path.basename(m.group(1).replace('\\', '/')))


class _Release(NamedTuple):
    """GPT-2's release in a folder, its index checked against hparams.json."""
    hparams: dict
    bundle: TensorBundle
    hparams_path: str


def open_gpt2_release(path):
    """hparams.json and the tensor bundle of GPT-2's release in folder `path`, checked without reading
    the values: exactly the variables hparams.json describes, each float32 of the shape it gives.
    CheckpointError naming the file, the variable and what was expected otherwise."""
    if not os.path.isdir(path):
        raise MissingFileError(f"checkpoint folder {path!r} does not exist: {GPT2_SOURCE_HINT}")
    hparams = read_hparams(path)
    hp_path = os.path.join(path, GPT2_HPARAMS)
    bundle = TensorBundle(gpt2_bundle_prefix(path))
    want = gpt2_variable_shapes(**hparams)
    missing = [n for n in want if n not in bundle.entries]
    extra = [n for n in bundle.names if n not in want]
    if missing or extra:
        parts = ([f"missing {_listing(missing)}"] if missing else []) + \
                ([f"unexpected {_listing(extra)}"] if extra else [])
        raise CheckpointError(f"{bundle.index_path}: {'; '.join(parts)}: expected the variables of "
                              f"{hparams['n_layer']} layers that {hp_path} describes")
    for name, shape in want.items():
        e = bundle.entries[name]
        if e.shape != shape:
            sizes = ', '.join(f'{k} {v}' for k, v in hparams.items() if k != 'n_head')
            raise CheckpointError(f"{bundle.index_path}: {name} has shape {list(e.shape)}, expected {list(shape)} "
                                  f"from {hp_path} ({sizes})")
        if e.dtype != DT_FLOAT:
            raise CheckpointError(f"{bundle.index_path}: {name} has dtype {dtype_name(e.dtype)}, expected float32")
    return _Release(hparams, bundle, hp_path)


def _listing(names, most=6):
    """'a, b, c' for a few names; the first `most` and how many more for many."""
    shown = ', '.join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


def gpt2_checkpoint_sizes(path):
    """The sizes of GPT-2's release in `path` (hparams.json, checked against the index): dict(n_ctx,
    n_embd, n_layer, n_head, arch 'gpt2', causal True)."""
    hp = open_gpt2_release(path).hparams
    return dict(n_ctx=hp['n_ctx'], n_embd=hp['n_embd'], n_layer=hp['n_layer'], n_head=hp['n_head'], arch='gpt2',
                causal=True)


def _check_gpt2(transformer, release):
    """CheckpointError unless the model has GPT-2's blocks, causal attention and hparams.json's width,
    heads and activation."""
    where, hp, cfg = release.hparams_path, release.hparams, transformer.config
    if transformer.arch != 'gpt2':
        raise CheckpointError(f"{where}: GPT-2's release has pre-LN blocks and a final ln_f but the model has "
                              f"arch={transformer.arch!r}: expected arch 'gpt2' (--arch gpt2)")
    if not transformer.causal:
        raise CheckpointError(f"{where}: GPT-2's release has causal attention but the model has causal=False: "
                              f"expected causal=True")
    for field in ('n_embd', 'n_head'):
        if hp[field] != getattr(cfg, field):
            raise CheckpointError(f"{where}: {field} is {hp[field]} but the model has {field}={getattr(cfg, field)}: "
                                  f"expected equal")
    if cfg.afn != 'gelu':
        raise CheckpointError(f"{where}: GPT-2's release uses the tanh GELU but the model has afn={cfg.afn!r}: "
                              f"expected afn 'gelu'")


def _gpt2_plan(transformer, hparams, layout):
    """[(TF name, target tensor, rows to read or None)]: what a load of GPT-2's release copies where;
    ln_f goes with the last layer, so only when every layer is loaded."""
    emb, n_vocab = transformer.embed.weight, hparams['n_vocab']
    plan = [('model/wte', emb[:n_vocab], None), ('model/wpe', emb[n_vocab + layout.n_special:], layout.n_ctx)]
    params = dict(transformer.named_parameters())
    names = [f'h{i}/{v}' for i in range(max(layout.n_transfer, 0)) for v in LAYER_VARS]
    if layout.n_transfer == hparams['n_layer']:
        names += ['ln_f/g', 'ln_f/b']
    for name in names:
        target = params[tf_to_torch_name(f'model/{name}:0') if name[0] == 'h' else name.replace('/', '.')]
        plan.append((f'model/{name}', target, None))
    return plan


def _check_gpt2_plan(plan, bundle):
    """CheckpointError for a tensor of the plan that does not fill its target, or whose CRC32C or
    values are bad (NaN or inf among the values loaded), before anything is copied. The tensors
    are read in pieces, so that at most two pieces are mapped at a time."""
    for name, target, rows in plan:
        shape = bundle.entries[name].shape
        if rows is not None:
            shape = (rows,) + shape[1:]
        elif len(shape) == 3:  # conv weights [1, nx, nf]
            shape = shape[1:]
        if tuple(target.shape) != shape:
            raise CheckpointError(f"{bundle.index_path}: {name} gives {list(shape)} but the model's parameter has "
                                  f"shape {list(target.shape)}")
        n, bad = target.numel(), 0
        for start, values in bundle.pieces(name):
            bad += count_nonfinite(values[:max(n - start, 0)])
        if bad:
            raise CheckpointError(f"{bundle.data_path(bundle.entries[name].shard_id)}: {name} holds {bad} non-finite "
                                  f"values (NaN or inf) of {n}: expected finite floats; the checkpoint is damaged")


def _copy_gpt2_plan(plan, bundle):
    """Copy each tensor of the plan (its first target.numel() values) into its target, piece by piece."""
    with torch.no_grad():
        for name, target, _ in plan:
            flat, n = target.detach().view(-1), target.numel()
            # numpy copies into a float32 CPU model on one thread: torch's parallel copy_ runs
            # several times slower when other processes share the cores
            dest = flat.numpy() if flat.device.type == 'cpu' and flat.dtype == torch.float32 else None
            for start, values in bundle.pieces(name, check_crc=False):
                if start >= n:
                    break
                piece = values[:n - start]
                if dest is not None:
                    dest[start:start + len(piece)] = piece
                else:
                    flat[start:start + len(piece)].copy_(torch.from_numpy(piece))


def load_gpt2_checkpoint(transformer, path, n_ctx=-1, n_special=-1, n_transfer=None):
    """Copy GPT-2's release in folder `path` (hparams.json, checkpoint, model.ckpt.index and
    model.ckpt.data-00000-of-00001: a TF tensor bundle, read without TensorFlow, memory-mapped a
    piece of a tensor at a time) into `transformer`, a TransformerModel built with arch='gpt2' and
    hparams.json's n_embd and n_head.

    model/wte fills the n_vocab token rows of `embed`, model/wpe its n_ctx position rows (after
    n_special rows kept at their initialisation); n_ctx, n_special and n_transfer as for
    load_tf_checkpoint (n_ctx at most hparams.json's); model/ln_f loads with the last layer. Every
    tensor is checked before the model is touched: its dtype and shape against hparams.json, its
    bytes' CRC32C against the index, its values finite. Returns the transformer."""
    release = open_gpt2_release(path)
    hp, bundle = release.hparams, release.bundle
    _check_gpt2(transformer, release)
    layout = check_layout(transformer, hp['n_vocab'], hp['n_ctx'], hp['n_layer'], n_ctx, n_special, n_transfer,
                          release.hparams_path)
    plan = _gpt2_plan(transformer, hp, layout)
    _check_gpt2_plan(plan, bundle)
    _copy_gpt2_plan(plan, bundle)
    return transformer


def write_gpt2_checkpoint(path, hparams, seed=0, std=0.02, arrays=None, block_size=262144):
    """Write GPT-2's release format to folder `path`: the model.ckpt tensor bundle
    (tf_bundle.write_bundle), `checkpoint`, and hparams.json last, so that a folder cut short is
    not taken for a release. `arrays` {TF name: float32 array} are the values, else N(0, std)
    float32 (1 + N(0, std) for LayerNorm gains) of gpt2_variable_shapes(**hparams): for trying
    the loader without OpenAI's files. Returns the arrays."""
    if arrays is None:
        rng = np.random.default_rng(seed)
        arrays = {}
        for name, shape in gpt2_variable_shapes(**hparams).items():
            values = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
            arrays[name] = values + np.float32(1) if name.endswith('/g') else values
    os.makedirs(path, exist_ok=True)
    write_bundle(os.path.join(path, GPT2_PREFIX), arrays, block_size=block_size)
    _save_atomically(os.path.join(path, GPT2_CHECKPOINT), lambda f: f.write(
        f'model_checkpoint_path: "{GPT2_PREFIX}"\nall_model_checkpoint_paths: "{GPT2_PREFIX}"\n'.encode()))
    _save_atomically(os.path.join(path, GPT2_HPARAMS), lambda f: f.write(json.dumps(hparams, indent=2).encode()))
    return arrays
