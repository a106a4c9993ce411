"""Hugging Face `openai-gpt` (and `gpt2`) interop: load its saves into our model, export ours to it.

Hugging Face's `openai-gpt` holds the same weights as OpenAI's TF release under other
names: separate `tokens_embed.weight` (vocab_size rows) and `positions_embed.weight`
(n_positions rows), `h.{i}.attn.c_attn.weight` in the same (nx, nf) layout as ours,
`ln_1.weight/bias` for our `ln_1.g/b`; with a `transformer.` prefix when saved from
OpenAIGPTLMHeadModel / OpenAIGPTDoubleHeadsModel, without it when saved from
OpenAIGPTModel.

A `gpt2` save (model_type 'gpt2') loads into a model built with arch='gpt2': the same
layer names, `wte`/`wpe` for the two embeddings and the final `ln_f`; a model with
arch='gpt2' exports to one.

weights.load_pretrained chooses between this loader and the TF release's.
"""
import json
import math
import os
import re

import torch

from checkpoint import default_file_mode
from errors import CheckpointError, InputError, MissingFileError
from model_pytorch import transformer_of
from tf_checkpoint import check_layout, count_nonfinite


HF_CONFIG = 'config.json'
HF_WEIGHTS = ('model.safetensors', 'pytorch_model.bin')
HF_SAFETENSORS_INDEX = 'model.safetensors.index.json'
HF_PREFIX = 'transformer.'
HF_MODEL_TYPE = 'openai-gpt'
HF_ARCHS = {'openai-gpt': 'gpt1', 'gpt2': 'gpt2'}  # config.json's model_type -> our arch
HF_MODEL_TYPES = {arch: model_type for model_type, arch in HF_ARCHS.items()}
BPE_VOCAB_SIZES = {'gpt1': 40478, 'gpt2': 50257}  # each release's vocabulary, export_hf's default n_vocab
GPT2_EOT = '<|endoftext|>'  # GPT-2's one special token: document separator, and its tokenizer's bos/eos/unk
_HF_EMBEDS = {'gpt1': ('tokens_embed.weight', 'positions_embed.weight'), 'gpt2': ('wte.weight', 'wpe.weight')}
_HF_FINAL_LN = (('ln_f.g', 'ln_f.weight'), ('ln_f.b', 'ln_f.bias'))  # gpt2 only
# GPT-2's config names its activation in ACT2FN's words, where 'gelu' is the exact erf form
HF_GPT2_AFNS = {'gelu_new': 'gelu', 'gelu_pytorch_tanh': 'gelu', 'relu': 'relu', 'silu': 'swish', 'swish': 'swish'}
HF_HINT = ("expected config.json plus model.safetensors (or pytorch_model.bin) as saved by Hugging Face's "
           "save_pretrained, e.g. a snapshot folder of the hub cache ~/.cache/huggingface/hub/models--openai-gpt/")
# Sizes beyond any GPT-1 or GPT-2 (vocab 50257, 1024 positions, width 1600, 48 layers, 25 heads) by far:
# a config.json past them is damaged, not a model to allocate
HF_SIZE_MAX = {'vocab_size': 2 ** 22, 'n_positions': 2 ** 20, 'n_embd': 2 ** 16, 'n_layer': 2 ** 10, 'n_head': 2 ** 10}
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


def hf_tensor_names(n_layer, arch='gpt1'):
    """HF's names (without the `transformer.` prefix) of every tensor the transformer holds."""
    final = [hf for _, hf in _HF_FINAL_LN] if arch == 'gpt2' else []
    return list(_HF_EMBEDS[arch]) + [f'h.{i}.{hf}' for i in range(n_layer) for _, hf in _HF_LAYER_MAP] + final


def has_hf_weights(folder):
    """Whether `folder` holds model.safetensors, pytorch_model.bin or a safetensors index."""
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
            main = _inside(snapshots, f.read().strip(), ref)
        if os.path.isfile(os.path.join(main, HF_CONFIG)):
            return main
    found = sorted(d for d in os.listdir(snapshots) if os.path.isfile(os.path.join(snapshots, d, HF_CONFIG)))
    if len(found) > 1:
        raise MissingFileError(f"{path} is a hub cache folder with {len(found)} snapshots ({', '.join(found)}) and "
                               f"no refs/main naming one: pass the snapshot folder itself")
    return os.path.join(snapshots, found[0]) if found else None


def _inside(folder, name, source):
    """os.path.join(folder, name) for a `name` that the file `source` holds; CheckpointError when
    the path leaves `folder` (an absolute path, or '..' climbing above it). Symbolic links inside
    are followed as usual: the hub cache's snapshot files link to its blobs."""
    path = os.path.normpath(os.path.join(folder, name))
    top = os.path.normpath(folder)
    if os.path.isabs(name) or os.path.commonpath([os.path.abspath(top), os.path.abspath(path)]) != \
            os.path.abspath(top):
        raise CheckpointError(f"{source} names {name!r}, a path outside {top}: expected a file inside that folder")
    return path


def read_hf_config(folder):
    """config.json of a Hugging Face save as a dict, checked to be an openai-gpt or gpt2
    config; its 'arch' field is ours ('gpt1' or 'gpt2'), and 'causal' is False only for a
    bidirectional model this port saved (True when the key is absent)."""
    p = os.path.join(folder, HF_CONFIG)
    try:
        with open(p) as f:
            config = json.load(f)
    except FileNotFoundError:
        raise MissingFileError(f"{p} is missing: {HF_HINT}") from None
    except ValueError as err:
        raise CheckpointError(f"{p} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{p} holds a JSON {type(config).__name__}: expected an object")
    model_type = config.get('model_type', HF_MODEL_TYPE)
    if model_type not in HF_ARCHS:
        raise CheckpointError(f"{p}: model_type is {model_type!r}, expected one of {', '.join(map(repr, HF_ARCHS))}")
    config['arch'] = HF_ARCHS[model_type]
    if not isinstance(config.setdefault('causal', True), bool):  # no key: HF's own and earlier saves, causal
        raise CheckpointError(f"{p}: field causal is {config['causal']!r}, expected true or false")
    if 'n_positions' not in config and 'n_ctx' in config:  # configs of old transformers versions
        config['n_positions'] = config['n_ctx']
    for field, most in HF_SIZE_MAX.items():
        if not isinstance(config.get(field), int) or config[field] <= 0:
            raise CheckpointError(f"{p}: field {field} is {config.get(field)!r}, expected a positive integer")
        if config[field] > most:
            raise CheckpointError(f"{p}: field {field} is {config[field]}: expected 1 to {most}")
    return config


def hf_checkpoint_sizes(folder):
    """config.json of the Hugging Face save in `folder` (read_hf_config), checked against the
    weights' shapes, which the file headers give without reading the values: exactly the
    tensors of n_layer blocks, token and position embeddings of (vocab_size, n_embd) and
    (n_positions, n_embd), and n_head dividing n_embd. CheckpointError otherwise, before
    anything of the config's sizes is built. Returns the config."""
    config = read_hf_config(folder)
    cfg_path = os.path.join(folder, HF_CONFIG)
    tensors = _HFTensors(folder)
    stored = _stored_names(tensors, config['n_layer'], cfg_path, config['arch'])
    for name, rows in zip(_HF_EMBEDS[config['arch']], ('vocab_size', 'n_positions')):
        shape = tensors.shape(stored[name])
        if shape != (config[rows], config['n_embd']):
            raise CheckpointError(f"{tensors.file_of(stored[name])}: {stored[name]} has shape {shape}, but {cfg_path} "
                                  f"gives {rows} {config[rows]} and n_embd {config['n_embd']}")
    if config['n_embd'] % config['n_head']:
        raise CheckpointError(f"{cfg_path}: n_head {config['n_head']} does not divide n_embd {config['n_embd']}")
    return config


class _HFTensors:
    """Read-only access, one tensor at a time, to the weights of a Hugging Face save:
    `safe_open` on model.safetensors (or the shards of model.safetensors.index.json),
    else pytorch_model.bin through `torch.load(weights_only=True)`, memory-mapped
    when possible. `keys()` are the names as stored; `shape(k)`, `get(k, rows=None)`,
    `file_of(k)` the file that holds k."""

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
                if not isinstance(weight_map, dict) or not all(isinstance(n, str) for n in weight_map.values()):
                    raise CheckpointError(f"{index}: weight_map is not an object of file names: expected "
                                          f"{{tensor name: file name}}")
                files = [_inside(folder, n, index) for n in sorted(set(weight_map.values()))]
            for p in files:
                try:
                    h = safe_open(p, framework='pt', device='cpu')
                except FileNotFoundError:
                    raise MissingFileError(f"{p} is missing: {HF_HINT}") from None
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
            raise MissingFileError(f"{folder} has config.json but neither model.safetensors nor "
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

    def file_of(self, key):
        return self.path if self.state is not None else self.where[key][0]

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
    """The sizes and settings of our transformer (its ModelConfig), in the HF config's field names."""
    cfg = transformer.config
    return dict(n_embd=cfg.n_embd, n_layer=cfg.n_layer, n_head=cfg.n_head, afn=cfg.afn, arch=cfg.arch,
                causal=cfg.causal)


def load_hf_pretrained_model(model, path, n_ctx=-1, n_special=-1, n_transfer=None):
    """Load a Hugging Face `openai-gpt` save (config.json + model.safetensors or
    pytorch_model.bin) into `model`, as `load_openai_pretrained_model` loads the TF release;
    a `gpt2` save into a model built with arch='gpt2' (wte, wpe and ln_f besides the blocks).

    model: a TransformerModel, or a model with a `.transformer` (DoubleHeadModel, LMModel).
    path: the folder (a hub-cache snapshot such as
    ~/.cache/huggingface/hub/models--openai-gpt/snapshots/<hash>/), or the
    `models--openai-gpt` cache folder itself (its refs/main or only snapshot).
    n_ctx: position rows to keep (-1: the model's n_ctx); at most the config's n_positions.
    n_special: new rows between the tokens and the positions (-1: what the model's
    vocabulary leaves room for); they keep their random initialisation. The token
    rows are HF's tokens_embed (vocab_size rows; a folder written by `export_hf`
    already holds its special rows there, so reload it with n_special=0).
    n_transfer: layers to load (None: all the model's layers, 12 for the default model;
    -1 or 0: only the embeddings); a save with fewer layers is an error unless n_transfer
    asks for no more than it has.
    Tensor names are accepted with or without the `transformer.` prefix. Ignored:
    `lm_head.weight` (tied to tokens_embed; read as tokens_embed only when that is
    absent, as in OpenAIGPTDoubleHeadsModel's saves), OpenAIGPTDoubleHeadsModel's
    `multiple_choice_head.*` (HF's own task head, not ours), and the causal-mask /
    position-id buffers older versions saved. Any other missing or unexpected tensor
    is an error. Safetensors are read tensor by tensor; a .bin goes through
    torch.load(weights_only=True), which never runs pickled code.
    Everything is checked before the model is touched, the values too: a tensor holding
    NaN or inf raises CheckpointError naming its file and name. Returns the TransformerModel.
    """
    transformer = transformer_of(model)
    folder = resolve_hf_folder(path)
    if folder is None:
        raise MissingFileError(f"{path} holds no Hugging Face save: {HF_HINT}")
    config = read_hf_config(folder)
    cfg_path = os.path.join(folder, HF_CONFIG)
    _check_config_fits(config, transformer, cfg_path)
    n_vocab, n_pos, n_layer = config['vocab_size'], config['n_positions'], config['n_layer']
    n_ctx, n_special, n_transfer = check_layout(transformer, n_vocab, n_pos, n_layer, n_ctx, n_special, n_transfer,
                                                cfg_path)
    tensors = _HFTensors(folder)
    stored = _stored_names(tensors, n_layer, cfg_path, config['arch'])
    plan, want = _hf_plan(transformer, config, n_special, n_ctx, n_transfer)
    _check_plan(plan, want, tensors, stored, cfg_path)
    with torch.no_grad():
        for name, target, rows in plan:
            target.copy_(tensors.get(stored[name], rows))
    return transformer


def _hf_plan(transformer, config, n_special, n_ctx, n_transfer):
    """([(HF name, target tensor, rows to read or None)], {HF name: expected shape}): what
    a load copies where. GPT-2's final ln_f is loaded with the last layer, so only when
    every layer is."""
    n_vocab, n_pos, n_embd = config['vocab_size'], config['n_positions'], config['n_embd']
    tokens, positions = _HF_EMBEDS[config['arch']]
    emb = transformer.embed.weight
    plan = [(tokens, emb[:n_vocab], None), (positions, emb[n_vocab + n_special:], n_ctx)]
    want = {tokens: (n_vocab, n_embd), positions: (n_pos, n_embd)}
    params = dict(transformer.named_parameters())
    pairs = [(f'h.{i}.{our}', f'h.{i}.{hf}') for i in range(max(n_transfer, 0)) for our, hf in _HF_LAYER_MAP]
    if config['arch'] == 'gpt2' and n_transfer == config['n_layer']:
        pairs += _HF_FINAL_LN
    for our, hf in pairs:
        plan.append((hf, params[our], None))
        want[hf] = tuple(params[our].shape)
    return plan, want


def _check_config_fits(config, transformer, cfg_path):
    """Raise CheckpointError when config.json's block layout, n_embd, n_head, afn or
    LayerNorm epsilon differ from the model's, or it asks for a GPT-2 option we lack."""
    ours = _hf_model_settings(transformer)
    if config['arch'] != ours['arch']:
        raise CheckpointError(f"{cfg_path}: model_type {HF_MODEL_TYPES[config['arch']]!r} is the {config['arch']} "
                              f"block layout but the model has arch={ours['arch']!r}: expected --arch {config['arch']}")
    causal = config['causal']
    if causal != ours['causal']:
        raise CheckpointError(f"{cfg_path}: causal is {causal} ({_attention(causal)} attention) but the model has "
                              f"causal={ours['causal']} ({_attention(ours['causal'])}): expected the folder's setting "
                              f"(config field causal)")
    for field in ('n_embd', 'n_head'):
        if config[field] != ours[field]:
            raise CheckpointError(f"{cfg_path}: {field} is {config[field]} but the model has {field}={ours[field]}")
    if config['arch'] == 'gpt2':
        afn, fn_field = config.get('activation_function', 'gelu_new'), 'activation_function'
        afn_ours = HF_GPT2_AFNS.get(afn)
        _check_gpt2_options(config, cfg_path)
    else:
        afn, fn_field = config.get('afn', 'gelu'), 'afn'
        afn_ours = HF_AFNS.get(afn, afn)
    if afn_ours != ours['afn']:
        raise CheckpointError(f"{cfg_path}: {fn_field} is {afn!r} but the model uses afn={ours['afn']!r}")
    eps = config.get('layer_norm_epsilon', 1e-5)
    if not math.isclose(eps, 1e-5, rel_tol=1e-6):
        raise CheckpointError(f"{cfg_path}: layer_norm_epsilon is {eps} but the model's LayerNorm uses 1e-05")


def _attention(causal):
    return 'causal' if causal else 'bidirectional'


def _check_gpt2_options(config, cfg_path):
    """Raise CheckpointError for GPT-2 config options that change the block's math here unsupported."""
    n_inner = config.get('n_inner')
    if n_inner not in (None, 4 * config['n_embd']):
        raise CheckpointError(f"{cfg_path}: n_inner is {n_inner} but the model's MLP is 4 * n_embd = "
                              f"{4 * config['n_embd']} wide")
    for field, supported in (('scale_attn_weights', True), ('scale_attn_by_inverse_layer_idx', False)):
        if config.get(field, supported) != supported:
            raise CheckpointError(f"{cfg_path}: {field} is {config[field]!r}; only {supported} is supported")


def _stored_names(tensors, n_layer, cfg_path, arch='gpt1'):
    """{HF name without prefix: name as stored} for exactly the tensors of an n_layer
    model; raises CheckpointError listing missing and unexpected tensors."""
    stored = {}
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
    token_name = _HF_EMBEDS[arch][0]
    if token_name not in stored and lm_head is not None:
        stored[token_name] = lm_head  # the tied matrix, as OpenAIGPTDoubleHeadsModel saves it
    expected = hf_tensor_names(n_layer, arch)
    missing = [n for n in expected if n not in stored]
    unexpected += [stored[n] for n in stored if n not in set(expected)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing tensors: {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected tensors: {', '.join(sorted(unexpected))}")
        raise CheckpointError(f"{tensors.path} does not match {cfg_path} (n_layer={n_layer}): {'; '.join(parts)}")
    return stored


def _check_plan(plan, want, tensors, stored, cfg_path):
    """Raise CheckpointError for a tensor of the plan [(HF name, target, rows)] whose shape
    is not want[HF name], or that holds NaN or inf. The values are read here and again
    for the copy, rather than all held at once, so a failed load leaves the model as it was."""
    for name, _, _ in plan:
        shape = tensors.shape(stored[name])
        if shape != want[name]:
            raise CheckpointError(f"{tensors.path}: tensor {stored[name]} has shape {shape}, expected "
                                  f"{want[name]} from {cfg_path} and the model")
    for name, _, rows in plan:
        t = tensors.get(stored[name], rows)
        bad = count_nonfinite(t)
        if bad:
            raise CheckpointError(f"{tensors.file_of(stored[name])}: tensor {stored[name]} holds {bad} non-finite "
                                  f"values (NaN or inf) of {t.numel()}: expected finite floats; the save is damaged")
        del t


def _check_export_folder(folder):
    """InputError when `folder` exists as something other than a folder."""
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise InputError(f"export_hf: {folder} exists and is not a folder: expected a new or existing folder to "
                         f"write the export into")


def _write_atomically(folder, files):
    """Write {file name: writer(path)} into `folder`: everything goes to a temporary
    folder beside it first; a new folder is then renamed into place, an existing one
    gets each file by an atomic os.replace (other files in it are left alone)."""
    import shutil
    import uuid
    folder = os.path.abspath(os.fspath(folder))
    _check_export_folder(folder)
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f'.{os.path.basename(folder)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}')
    os.mkdir(tmp)  # the umask's permissions, unlike mkdtemp's 0700
    try:
        for name, write in files.items():
            write(os.path.join(tmp, name))
            os.chmod(os.path.join(tmp, name), default_file_mode())  # safetensors writes 0600
        if not os.path.exists(folder):
            try:
                os.rename(tmp, folder)
                return folder
            except OSError:
                if not os.path.isdir(folder):  # not a lost race with another writer
                    raise
        _check_export_folder(folder)  # a file that appeared meanwhile
        for name in files:
            os.replace(os.path.join(tmp, name), os.path.join(folder, name))
        return folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def hf_config(model, n_vocab=None, n_special=-1):
    """The config.json dict `export_hf` writes for `model` (see there)."""
    transformer = transformer_of(model)
    if n_vocab is None:
        n_vocab = BPE_VOCAB_SIZES[transformer.arch]
    if n_special < 0:
        n_special = transformer.vocab - n_vocab - transformer.n_ctx
    if n_special < 0 or n_vocab + n_special + transformer.n_ctx != transformer.vocab:
        raise InputError(f"embed.weight has {transformer.vocab} rows but n_vocab {n_vocab} + n_special {n_special} "
                         f"+ n_ctx {transformer.n_ctx} = {n_vocab + n_special + transformer.n_ctx}")
    ours = _hf_model_settings(transformer)
    if ours['arch'] == 'gpt2':
        afn = {'architectures': ['GPT2LMHeadModel'], 'n_inner': None, 'scale_attn_weights': True,
               'activation_function': next(k for k, v in HF_GPT2_AFNS.items() if v == ours['afn'])}
    else:
        afn = {'architectures': ['OpenAIGPTLMHeadModel'], 'afn': ours['afn']}
    return {
        **afn,
        'model_type': HF_MODEL_TYPES[ours['arch']],
        'vocab_size': n_vocab + n_special,
        'n_positions': transformer.n_ctx,
        'n_embd': ours['n_embd'],
        'n_layer': ours['n_layer'],
        'n_head': ours['n_head'],
        'embd_pdrop': float(transformer.config.embd_pdrop),
        'attn_pdrop': float(transformer.config.attn_pdrop),
        'resid_pdrop': float(transformer.config.resid_pdrop),
        'layer_norm_epsilon': 1e-5,
        'initializer_range': 0.02,
        'tie_word_embeddings': True,
        'dtype': str(transformer.embed.weight.dtype).replace('torch.', ''),
        'n_special': n_special,  # informational: the last n_special token rows are the special tokens
        # ours, ignored by transformers (which would run the model causally); load_hf_pretrained_model checks it
        'causal': transformer.causal,
    }


def bpe_tokenizer_files(encoder_path, bpe_path, n_vocab):
    """{file name: writer(path)} copying GPT-1's BPE files as a Hugging Face folder names them
    (vocab.json, merges.txt), which transformers' OpenAIGPTTokenizer reads. MissingFileError for
    a file that is not there, InputError for a vocabulary of other than n_vocab tokens."""
    import shutil
    from text_utils import HF_BPE_FILES
    for path in (encoder_path, bpe_path):
        if not os.path.isfile(path):
            raise MissingFileError(f"bpe_files: {path} does not exist: expected the BPE vocabulary and merges the "
                                   f"model was trained with")
    try:
        with open(encoder_path, encoding='utf-8') as f:
            encoder = json.load(f)
    except ValueError as err:
        raise InputError(f"bpe_files: {encoder_path} is not JSON: {err}") from None
    if not isinstance(encoder, dict) or len(encoder) != n_vocab:
        what = f"{len(encoder)} tokens" if isinstance(encoder, dict) else f"a JSON {type(encoder).__name__}"
        raise InputError(f"bpe_files: {encoder_path} holds {what}, expected n_vocab {n_vocab}, the model's token "
                         f"rows")
    return {HF_BPE_FILES[0]: lambda p: shutil.copyfile(encoder_path, p),
            HF_BPE_FILES[1]: lambda p: shutil.copyfile(bpe_path, p)}


def _gpt2_tokenizer_config(n_ctx):
    """A writer of tokenizer_config.json for GPT-2's byte-level BPE (vocab.json, merges.txt)."""
    settings = {'tokenizer_class': 'GPT2Tokenizer', 'model_max_length': n_ctx, 'add_prefix_space': False,
                'bos_token': GPT2_EOT, 'eos_token': GPT2_EOT, 'unk_token': GPT2_EOT}

    def write(p):
        with open(p, 'w', encoding='utf-8') as f:
            json.dump(settings, f, indent=2)
            f.write('\n')
    return write


def export_hf(model, folder, n_vocab=None, n_special=-1, extra_files=None, bpe_files=None):
    """Write `model`'s transformer (and its tied LM head) as a Hugging Face
    `openai-gpt` folder that `transformers.OpenAIGPTLMHeadModel.from_pretrained(folder)`
    loads: config.json and model.safetensors, written atomically. A model with
    arch='gpt2' becomes a `gpt2` folder for `GPT2LMHeadModel` (wte, wpe, ln_f).

    model: a TransformerModel, LMModel or DoubleHeadModel; a task head is not exported.
    n_vocab: the BPE vocabulary's size (None: the release's, 40478 for GPT-1, 50257 for a
    model with arch='gpt2'); n_special: the special-token rows
    after it (-1: what the model's embedding leaves between tokens and positions).
    HF keeps tokens and positions apart, so the special rows become extra token rows:
    config.json has vocab_size = n_vocab + n_special (token id n_vocab + k is special
    token k, as here), n_positions = the model's n_ctx, n_embd, n_layer, n_head, afn,
    the dropouts, layer_norm_epsilon 1e-5, architectures ['OpenAIGPTLMHeadModel'],
    tie_word_embeddings, and n_special for reference. Tensors are named as
    OpenAIGPTLMHeadModel saves them (`transformer.tokens_embed.weight`, ...);
    lm_head.weight is left out because it is tied. extra_files: {file name: writer(path)}
    written into the folder with the weights and config in the same atomic write (the
    tokenizer files beside the model). bpe_files: (encoder_path, bpe_path), GPT-1's BPE
    files of n_vocab tokens, copied as vocab.json and merges.txt so that AutoTokenizer
    finds them (without them, or a tokenizer in extra_files, the folder holds no tokenizer);
    for a gpt2 folder GPT-2's encoder.json and vocab.bpe, with a tokenizer_config.json naming
    GPT2Tokenizer, <|endoftext|> as its bos, eos and unk token, and model_max_length n_ctx.
    A finetuned model holds only the n_ctx position rows of its run, so n_positions is that.
    Returns the folder.
    """
    from safetensors.torch import save_file
    transformer = transformer_of(model)
    n_vocab = BPE_VOCAB_SIZES[transformer.arch] if n_vocab is None else n_vocab
    config = hf_config(model, n_vocab=n_vocab, n_special=n_special)
    tokenizer = {} if bpe_files is None else bpe_tokenizer_files(*bpe_files, n_vocab)
    if bpe_files is not None and transformer.arch == 'gpt2':
        tokenizer['tokenizer_config.json'] = _gpt2_tokenizer_config(config['n_positions'])
    n_tok = config['vocab_size']
    emb = transformer.embed.weight.detach()
    tokens, positions = _HF_EMBEDS[transformer.arch]
    tensors = {HF_PREFIX + tokens: emb[:n_tok], HF_PREFIX + positions: emb[n_tok:]}
    params = dict(transformer.named_parameters())
    pairs = [(f'h.{i}.{our}', f'h.{i}.{hf}') for i in range(len(transformer.h)) for our, hf in _HF_LAYER_MAP]
    for our, hf in pairs + (list(_HF_FINAL_LN) if transformer.arch == 'gpt2' else []):
        tensors[HF_PREFIX + hf] = params[our].detach()
    # the two embedding tables are views of one matrix: safetensors wants them apart
    tensors = {k: (v.to('cpu').clone() if 'embed' in k else v.to('cpu').contiguous()) for k, v in tensors.items()}

    def write_config(p):
        with open(p, 'w') as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write('\n')

    def write_weights(p):
        save_file(tensors, p, metadata={'format': 'pt'})

    return _write_atomically(folder, {**tokenizer, **(extra_files or {}), HF_WEIGHTS[0]: write_weights,
                                      HF_CONFIG: write_config})
