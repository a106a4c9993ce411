"""Hugging Face `openai-gpt` folders: loading them, exporting to them, bad input."""
import copy
import json
import os

import numpy as np
import pytest
import torch

import hf_interop
import weights
from errors import CheckpointError, InputError, MissingFileError
from hf_interop import export_hf, load_hf_pretrained_model
from model_pytorch import DEFAULT_CONFIG, DoubleHeadModel, LMModel, TransformerModel, dotdict
from weights import find_checkpoint_format, load_pretrained
from tests.helpers import tf_shapes, write_tf_checkpoint

transformers = pytest.importorskip('transformers')
from safetensors.torch import save_file  # noqa: E402  (transformers brings safetensors)

N_LAYER, N_EMBD, N_HEAD, N_VOCAB, N_POS = 2, 32, 4, 40478, 64
CFG = dotdict(DEFAULT_CONFIG, n_layer=N_LAYER, n_embd=N_EMBD, n_head=N_HEAD)


def hf_config(**kw):
    args = dict(vocab_size=N_VOCAB, n_positions=N_POS, n_embd=N_EMBD, n_layer=N_LAYER, n_head=N_HEAD,
                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5)
    args.update(kw)
    return transformers.OpenAIGPTConfig(**args)


def hf_lm(seed=1, **kw):
    torch.manual_seed(seed)
    return transformers.OpenAIGPTLMHeadModel(hf_config(**kw)).eval()


def our_input(ids, n_vocab_rows):
    """HF token ids (B, T) -> our (B, T, 2) with position ids offset by the rows before the positions."""
    t = ids.size(1)
    return torch.stack([ids, n_vocab_rows + torch.arange(t).expand_as(ids)], dim=-1)


def random_ids(b, t, high, seed=0):
    return torch.randint(0, high, (b, t), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope='module')
def hf_model():
    return hf_lm()


@pytest.fixture(scope='module')
def hf_folder(hf_model, tmp_path_factory):
    path = tmp_path_factory.mktemp('hf') / 'openai-gpt'
    hf_model.save_pretrained(path)
    return path


def save_bin(hf_model, path, state):
    """A .bin folder as older transformers versions wrote it (v5 writes only safetensors)."""
    os.makedirs(path, exist_ok=True)
    hf_model.config.save_pretrained(path)
    torch.save(state, os.path.join(path, 'pytorch_model.bin'))
    return path


def copy_folder(src, dst):
    os.makedirs(dst)
    for name in os.listdir(src):
        with open(os.path.join(src, name), 'rb') as f, open(os.path.join(dst, name), 'wb') as g:
            g.write(f.read())
    return dst


def edit_tensors(folder, edit):
    """Rewrite model.safetensors after `edit(dict)`."""
    from safetensors.torch import load_file
    p = os.path.join(folder, 'model.safetensors')
    tensors = load_file(p)
    edit(tensors)
    save_file(tensors, p, metadata={'format': 'pt'})


def edit_config(folder, **changes):
    p = os.path.join(folder, 'config.json')
    with open(p) as f:
        config = json.load(f)
    config.update(changes)
    with open(p, 'w') as f:
        json.dump(config, f)


# ------------------------------------------------------------- loading

@pytest.mark.parametrize('layout', ['safetensors', 'bin', 'bin_no_prefix_old_buffers', 'double_heads'])
def test_load_hf_folder_gives_hf_logits(hf_model, hf_folder, tmp_path, layout):
    if layout == 'safetensors':
        path = hf_folder
    elif layout == 'bin':  # OpenAIGPTLMHeadModel's state dict: transformer. prefix, lm_head.weight
        path = save_bin(hf_model, tmp_path / 'bin', hf_model.state_dict())
    elif layout == 'bin_no_prefix_old_buffers':  # OpenAIGPTModel's, with the mask buffers old versions saved
        state = dict(hf_model.transformer.state_dict())
        for i in range(N_LAYER):
            state[f'h.{i}.attn.bias'] = torch.tril(torch.ones(N_POS, N_POS)).view(1, 1, N_POS, N_POS)
        path = save_bin(hf_model, tmp_path / 'bin', state)
    else:  # OpenAIGPTDoubleHeadsModel: its multiple_choice_head.* is ignored
        double = transformers.OpenAIGPTDoubleHeadsModel(hf_model.config)
        double.transformer.load_state_dict(hf_model.transformer.state_dict())
        double.save_pretrained(tmp_path / 'double')
        path = tmp_path / 'double'
    model = LMModel(CFG, vocab=N_VOCAB + N_POS, n_ctx=N_POS).eval()
    assert load_pretrained(model, path, n_transfer=N_LAYER) == 'hf'
    ids = random_ids(2, 21, N_VOCAB)
    with torch.no_grad():
        ref = hf_model(ids, output_hidden_states=True)
        torch.testing.assert_close(model.transformer(our_input(ids, N_VOCAB)), ref.hidden_states[-1],
                                   atol=1e-5, rtol=0)
        torch.testing.assert_close(model(our_input(ids, N_VOCAB))[..., :N_VOCAB], ref.logits, atol=1e-5, rtol=0)


def test_load_into_double_head_and_transformer_models(hf_folder, hf_model):
    n_special, n_ctx = 3, 20
    sd = hf_model.transformer.state_dict()
    for model in [DoubleHeadModel(CFG, N_VOCAB + 2, 'multiple_choice', vocab=N_VOCAB + n_special + n_ctx,
                                  n_ctx=n_ctx),
                  TransformerModel(CFG, vocab=N_VOCAB + n_special + n_ctx, n_ctx=n_ctx)]:
        t = load_hf_pretrained_model(model, hf_folder, n_transfer=N_LAYER)
        assert t is getattr(model, 'transformer', model)
        assert torch.equal(t.embed.weight[:N_VOCAB], sd['tokens_embed.weight'])
        assert torch.equal(t.embed.weight[N_VOCAB + n_special:], sd['positions_embed.weight'][:n_ctx])
        assert torch.equal(t.h[1].mlp.c_proj.w, sd['h.1.mlp.c_proj.weight'])


def test_n_ctx_cropping_n_special_rows_and_n_transfer_as_tf_loader(hf_folder, hf_model):
    n_special, n_ctx = 3, 10
    sd = hf_model.transformer.state_dict()
    torch.manual_seed(0)
    model = TransformerModel(CFG, vocab=N_VOCAB + n_special + n_ctx, n_ctx=n_ctx)
    before = copy.deepcopy(model.state_dict())
    load_hf_pretrained_model(model, hf_folder, n_ctx=n_ctx, n_special=n_special, n_transfer=-1)
    emb = model.embed.weight
    assert torch.equal(emb[:N_VOCAB], sd['tokens_embed.weight'])
    assert torch.equal(emb[N_VOCAB:N_VOCAB + n_special], before['embed.weight'][N_VOCAB:N_VOCAB + n_special])
    assert torch.equal(emb[N_VOCAB + n_special:], sd['positions_embed.weight'][:n_ctx])
    for name, p in model.named_parameters():  # n_transfer=-1: embeddings only
        if name.startswith('h.'):
            assert torch.equal(p, before[name]), name
    load_hf_pretrained_model(model, hf_folder, n_transfer=1)
    assert torch.equal(model.h[0].attn.c_attn.w, sd['h.0.attn.c_attn.weight'])
    assert torch.equal(model.h[1].attn.c_attn.w, before['h.1.attn.c_attn.w'])
    with pytest.raises(ValueError, match=r'n_ctx=65 exceeds the 64 positions in .*config.json'):
        load_hf_pretrained_model(TransformerModel(CFG, vocab=N_VOCAB + 65, n_ctx=65), hf_folder, n_transfer=2)
    with pytest.raises(CheckpointError, match=r'has 40491 rows .* n_vocab 40478 \+ n_special 5 \+ n_ctx 10'):
        load_hf_pretrained_model(model, hf_folder, n_special=5, n_transfer=2)
    with pytest.raises(ValueError, match=r'n_transfer=12: .* 2 layers in .*config.json'):
        load_hf_pretrained_model(model, hf_folder, n_transfer=12)  # explicit: the default is the model's depth


def test_tf_shards_and_hf_folder_of_the_same_weights_give_identical_models(tmp_path):
    n_pos, n_special, n_ctx = 512, 3, 40
    arrays = write_tf_checkpoint(tmp_path / 'tf', tf_shapes(N_LAYER, N_EMBD, N_VOCAB, n_pos), seed=3)
    tensors = {'transformer.positions_embed.weight': arrays[0], 'transformer.tokens_embed.weight': arrays[1]}
    layer_arrays = iter(arrays[2:])
    for i in range(N_LAYER):
        for _, hf_name in hf_interop._HF_LAYER_MAP:
            a = next(layer_arrays)
            tensors[f'transformer.h.{i}.{hf_name}'] = a[0] if a.ndim == 3 else a
    os.makedirs(tmp_path / 'hf')
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()},
              str(tmp_path / 'hf' / 'model.safetensors'), metadata={'format': 'pt'})
    hf_config(n_positions=n_pos).save_pretrained(tmp_path / 'hf')

    torch.manual_seed(0)
    from_tf = DoubleHeadModel(CFG, N_VOCAB + 2, 'multiple_choice', vocab=N_VOCAB + n_special + n_ctx, n_ctx=n_ctx)
    from_hf = copy.deepcopy(from_tf)  # the same random special rows and task head
    assert load_pretrained(from_tf, tmp_path / 'tf', n_transfer=N_LAYER) == 'tf'
    assert load_pretrained(from_hf, tmp_path / 'hf', n_transfer=N_LAYER) == 'hf'
    sd_tf, sd_hf = from_tf.state_dict(), from_hf.state_dict()
    assert sd_tf.keys() == sd_hf.keys()
    for name in sd_tf:
        assert torch.equal(sd_tf[name], sd_hf[name]), name
    assert torch.equal(from_tf.transformer.embed.weight[:N_VOCAB], torch.from_numpy(arrays[1]))


def test_hub_cache_folder_resolves_to_its_snapshot(hf_folder, tmp_path):
    cache = tmp_path / 'models--openai-gpt'
    copy_folder(hf_folder, cache / 'snapshots' / 'abc123')
    model = LMModel(CFG, vocab=N_VOCAB + N_POS, n_ctx=N_POS)
    assert find_checkpoint_format(cache) == 'hf'
    assert load_pretrained(model, cache, n_transfer=N_LAYER) == 'hf'
    copy_folder(hf_folder, cache / 'snapshots' / 'def456')
    with pytest.raises(FileNotFoundError, match=r'2 snapshots \(abc123, def456\) and no refs/main'):
        load_pretrained(model, cache, n_transfer=N_LAYER)
    os.makedirs(cache / 'refs')
    (cache / 'refs' / 'main').write_text('def456')
    assert hf_interop.resolve_hf_folder(cache) == str(cache / 'snapshots' / 'def456')
    assert load_pretrained(model, cache / 'snapshots' / 'abc123', n_transfer=N_LAYER) == 'hf'


def test_paths_a_folder_names_may_not_leave_it(hf_folder, tmp_path):
    outside = copy_folder(hf_folder, tmp_path / 'outside')
    folder = tmp_path / 'sharded'
    os.makedirs(folder)
    (folder / 'config.json').write_bytes((hf_folder / 'config.json').read_bytes())
    from safetensors import safe_open
    with safe_open(outside / 'model.safetensors', 'pt') as f:
        names = list(f.keys())
    index = {'metadata': {}, 'weight_map': {k: '../outside/model.safetensors' for k in names}}
    (folder / 'model.safetensors.index.json').write_text(json.dumps(index))
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"model\.safetensors\.index\.json names '\.\./outside/model"
                                              r"\.safetensors', a path outside"):
        load_pretrained(model, folder, n_transfer=N_LAYER)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    cache = tmp_path / 'models--openai-gpt'
    copy_folder(hf_folder, cache / 'snapshots' / 'abc123')
    copy_folder(hf_folder, tmp_path / 'somewhere')
    os.makedirs(cache / 'refs')
    (cache / 'refs' / 'main').write_text('../../somewhere')
    with pytest.raises(CheckpointError, match=r"refs/main names '\.\./\.\./somewhere', a path outside"):
        hf_interop.resolve_hf_folder(cache)
    with pytest.raises(CheckpointError, match=r"refs/main names '\.\./\.\./somewhere'"):
        load_pretrained(model, cache, n_transfer=N_LAYER)


def test_checkpoint_sizes_are_read_from_the_weights_shapes(hf_folder, tmp_path):
    """checkpoint_sizes reads a folder's sizes without building anything: config.json must
    agree with the weights' shapes and stay within sane bounds; TF shards give theirs."""
    assert weights.checkpoint_sizes(hf_folder) == dict(n_ctx=N_POS, n_embd=N_EMBD, n_layer=N_LAYER, n_head=N_HEAD,
                                                  arch='gpt1', causal=True)
    write_tf_checkpoint(str(tmp_path / 'tf'), tf_shapes(3, 8, 50, n_pos=20))
    assert weights.checkpoint_sizes(tmp_path / 'tf') == dict(n_ctx=20, n_embd=8, n_layer=3, n_head=None, arch='gpt1',
                                                        causal=True)
    folder = copy_folder(hf_folder, tmp_path / 'hf')
    original = (folder / 'config.json').read_text()
    for changes, match in ((dict(n_positions=2 ** 31), r'field n_positions is 2147483648: expected 1 to 1048576'),
                           (dict(vocab_size=N_VOCAB + 1), rf'tokens_embed\.weight has shape \({N_VOCAB}, {N_EMBD}\), '
                                                         rf'but .*config\.json gives vocab_size {N_VOCAB + 1}'),
                           (dict(n_head=5), r'n_head 5 does not divide n_embd 32')):
        (folder / 'config.json').write_text(original)
        edit_config(folder, **changes)
        with pytest.raises(CheckpointError, match=match):
            weights.checkpoint_sizes(folder)


# ------------------------------------------------------------- export

def test_export_loads_in_transformers_with_same_logits(tmp_path):
    n_special, n_ctx = 3, 24
    torch.manual_seed(0)
    ours = LMModel(dotdict(CFG, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0),
                   vocab=N_VOCAB + n_special + n_ctx, n_ctx=n_ctx).eval()
    folder = tmp_path / 'export'
    assert os.path.samefile(export_hf(ours, folder, n_vocab=N_VOCAB, n_special=n_special), folder)
    assert sorted(os.listdir(folder)) == ['config.json', 'model.safetensors']
    assert os.listdir(tmp_path) == ['export'], 'the temporary folder must be gone'
    umask = os.umask(0o022)
    os.umask(umask)
    for name in os.listdir(folder):  # a normal file's mode under the umask, not the 0600 of a temporary file
        assert os.stat(folder / name).st_mode & 0o777 == 0o666 & ~umask, name
    config = json.loads((folder / 'config.json').read_text())
    assert config['model_type'] == 'openai-gpt' and config['architectures'] == ['OpenAIGPTLMHeadModel']
    assert (config['vocab_size'], config['n_positions'], config['n_embd'], config['n_layer'], config['n_head'],
            config['afn'], config['layer_norm_epsilon']) == (N_VOCAB + n_special, n_ctx, N_EMBD, N_LAYER, N_HEAD,
                                                            'gelu', 1e-5)

    hf = transformers.OpenAIGPTLMHeadModel.from_pretrained(folder).eval()
    assert hf.lm_head.weight.data_ptr() == hf.transformer.tokens_embed.weight.data_ptr()
    ids = random_ids(2, n_ctx, N_VOCAB + n_special)  # special tokens are token ids n_vocab.. in HF
    with torch.no_grad():
        ref = hf(ids, output_hidden_states=True)
        x = our_input(ids, N_VOCAB + n_special)
        torch.testing.assert_close(ours.transformer(x), ref.hidden_states[-1], atol=1e-5, rtol=0)
        torch.testing.assert_close(ours(x)[..., :N_VOCAB + n_special], ref.logits, atol=1e-5, rtol=0)

    # and back: the special rows are token rows now, so n_special=0 gives the same model
    back = LMModel(CFG, vocab=N_VOCAB + n_special + n_ctx, n_ctx=n_ctx)
    load_pretrained(back, folder, n_transfer=N_LAYER)
    for name, p in ours.state_dict().items():
        assert torch.equal(p, back.state_dict()[name]), name

    # exporting again into the folder replaces our two files and keeps the others
    (folder / 'README.md').write_text('mine')
    with torch.no_grad():
        ours.transformer.h[0].ln_1.b.add_(1.0)
    export_hf(ours, folder, n_vocab=N_VOCAB)
    assert sorted(os.listdir(tmp_path)) == ['export']
    assert (folder / 'README.md').read_text() == 'mine'
    hf = transformers.OpenAIGPTLMHeadModel.from_pretrained(folder)
    assert torch.equal(hf.transformer.h[0].ln_1.bias, ours.transformer.h[0].ln_1.b)


def test_export_round_trip_from_hf(hf_model, hf_folder, tmp_path):
    model = LMModel(CFG, vocab=N_VOCAB + N_POS, n_ctx=N_POS)
    load_pretrained(model, hf_folder, n_transfer=N_LAYER)
    export_hf(model, tmp_path / 'out', n_vocab=N_VOCAB)
    again = transformers.OpenAIGPTLMHeadModel.from_pretrained(tmp_path / 'out')
    ref = hf_model.state_dict()
    for name, t in again.state_dict().items():
        assert torch.equal(t, ref[name]), name


# ------------------------------------------------------------- bad input

def small_model():
    return LMModel(CFG, vocab=N_VOCAB + N_POS, n_ctx=N_POS)


def test_folder_with_neither_format(tmp_path):
    (tmp_path / 'notes.txt').write_text('nothing here')
    msg = r'holds no checkpoint: looked for .*params_shapes\.json.*params_0\.npy.*config\.json.*model\.safetensors'
    with pytest.raises(FileNotFoundError, match=msg):
        load_pretrained(small_model(), tmp_path)
    with pytest.raises(FileNotFoundError, match=r'does not exist: looked for .*params_shapes\.json.*config\.json'):
        load_pretrained(small_model(), tmp_path / 'absent')
    hf_config().save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match=r'has config\.json but neither model\.safetensors nor '
                                                r'pytorch_model\.bin'):
        load_pretrained(small_model(), tmp_path)


@pytest.mark.parametrize('field, value, msg', [
    ('n_embd', 48, r"config\.json: n_embd is 48 but the model has n_embd=32"),
    ('n_head', 8, r"config\.json: n_head is 8 but the model has n_head=4"),
    ('afn', 'relu', r"config\.json: afn is 'relu' but the model uses afn='gelu'"),
    ('model_type', 'gpt2', r"config\.json: model_type 'gpt2' is the gpt2 block layout but the model has "
                           r"arch='gpt1': expected --arch gpt2"),
    ('model_type', 'bert', r"config\.json: model_type is 'bert', expected one of 'openai-gpt', 'gpt2'"),
    ('n_layer', None, r"config\.json: field n_layer is None, expected a positive integer"),
])
def test_config_that_does_not_match_the_model(hf_folder, tmp_path, field, value, msg):
    folder = copy_folder(hf_folder, tmp_path / 'hf')
    edit_config(folder, **{field: value})
    model = small_model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(CheckpointError, match=msg):
        load_pretrained(model, folder, n_transfer=N_LAYER)
    assert all(torch.equal(p, before[n]) for n, p in model.state_dict().items()), 'a failed load changed the model'


def test_missing_unexpected_and_misshapen_tensors(hf_folder, tmp_path):
    folder = copy_folder(hf_folder, tmp_path / 'hf')
    edit_tensors(folder, lambda t: (t.pop('transformer.h.1.ln_2.bias'), t.pop('transformer.positions_embed.weight'),
                                    t.update({'transformer.h.2.ln_1.weight': torch.ones(N_EMBD),
                                              'transformer.ln_f.weight': torch.ones(N_EMBD)})))
    msg = (r'model\.safetensors does not match .*config\.json \(n_layer=2\): missing tensors: '
           r'positions_embed\.weight, h\.1\.ln_2\.bias; unexpected tensors: transformer\.h\.2\.ln_1\.weight, '
           r'transformer\.ln_f\.weight')
    model = small_model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(CheckpointError, match=msg):
        load_pretrained(model, folder, n_transfer=N_LAYER)
    assert all(torch.equal(p, before[n]) for n, p in model.state_dict().items())

    folder = copy_folder(hf_folder, tmp_path / 'hf2')
    edit_tensors(folder, lambda t: t.update({'transformer.h.0.mlp.c_fc.weight': torch.zeros(N_EMBD, 64)}))
    with pytest.raises(CheckpointError, match=r'model\.safetensors: tensor transformer\.h\.0\.mlp\.c_fc\.weight has '
                                              r'shape \(32, 64\), expected \(32, 128\)'):
        load_pretrained(small_model(), folder, n_transfer=N_LAYER)


@pytest.mark.parametrize('keep', [0.5, 0.001])
def test_truncated_safetensors_names_the_file(hf_folder, tmp_path, keep):
    folder = copy_folder(hf_folder, tmp_path / 'hf')
    p = folder / 'model.safetensors'
    data = p.read_bytes()
    p.write_bytes(data[:max(int(len(data) * keep), 4)])
    with pytest.raises(CheckpointError, match=r'hf/model\.safetensors is not a valid safetensors file'):
        load_pretrained(small_model(), folder, n_transfer=N_LAYER)


class _Evil:
    def __reduce__(self):
        return (os.makedirs, (EVIL_DIR,))


EVIL_DIR = None


def test_bin_is_loaded_without_running_pickled_code(hf_model, tmp_path):
    global EVIL_DIR
    EVIL_DIR = str(tmp_path / 'pwned')
    state = dict(hf_model.state_dict())
    state['transformer.h.0.ln_1.weight'] = _Evil()
    folder = save_bin(hf_model, tmp_path / 'bin', state)  # unpickling it would call os.makedirs
    with pytest.raises(CheckpointError, match=r'bin/pytorch_model\.bin could not be read .*weights_only=True'):
        load_pretrained(small_model(), folder, n_transfer=N_LAYER)
    assert not os.path.exists(EVIL_DIR)
    p = folder / 'pytorch_model.bin'
    torch.save(hf_model.state_dict(), p)
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r'pytorch_model\.bin could not be read'):
        load_pretrained(small_model(), folder, n_transfer=N_LAYER)


# ------------------------------------------------------------- defaults, non-finite values, the error family

def test_hf_loader_takes_depth_from_the_model(hf_folder, hf_model):
    sd = hf_model.transformer.state_dict()
    model = small_model()  # N_LAYER = 2, as the save
    load_hf_pretrained_model(model, hf_folder)  # no n_transfer
    assert torch.equal(model.transformer.h[1].ln_2.b, sd['h.1.ln_2.bias'])
    other = small_model()
    assert load_pretrained(other, hf_folder) == 'hf'
    assert torch.equal(other.transformer.h[1].mlp.c_fc.w, sd['h.1.mlp.c_fc.weight'])
    deeper = LMModel(dotdict(CFG, n_layer=3), vocab=N_VOCAB + N_POS, n_ctx=N_POS)
    with pytest.raises(CheckpointError, match=r"the model has 3 layers but .*config\.json holds 2: pass n_transfer=2"):
        load_hf_pretrained_model(deeper, hf_folder)


@pytest.mark.parametrize('layout', ['safetensors', 'sharded', 'bin'])
def test_hf_loader_refuses_nan_and_inf_naming_file_and_tensor(hf_model, tmp_path, layout):
    state = {k: v.clone() for k, v in hf_model.state_dict().items()}
    bad = state['transformer.h.1.attn.c_proj.weight']
    bad[0, :3] = float('nan')
    bad[5, 7] = float('inf')
    hf_model.config.save_pretrained(tmp_path / 'hf')
    if layout == 'bin':
        save_bin(hf_model, tmp_path / 'hf', state)
        file = 'pytorch_model.bin'
    else:
        fresh = transformers.OpenAIGPTLMHeadModel(hf_model.config)
        fresh.load_state_dict(state)
        fresh.save_pretrained(tmp_path / 'hf', **({'max_shard_size': '1MB'} if layout == 'sharded' else {}))
        if layout == 'sharded':
            index = json.loads((tmp_path / 'hf' / 'model.safetensors.index.json').read_text())['weight_map']
            file = index['transformer.h.1.attn.c_proj.weight']
            assert len(set(index.values())) > 1 and file != 'model.safetensors'
        else:
            file = 'model.safetensors'
    model = small_model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(CheckpointError) as info:
        load_pretrained(model, tmp_path / 'hf', n_transfer=N_LAYER)
    msg = str(info.value)
    assert msg.startswith(str(tmp_path / 'hf' / file) + ': tensor transformer.h.1.attn.c_proj.weight holds 4 '
                          f'non-finite values (NaN or inf) of {N_EMBD * N_EMBD}'), msg
    assert all(torch.equal(p, before[n]) for n, p in model.state_dict().items()), 'a failed load changed the model'
    load_pretrained(model, tmp_path / 'hf', n_transfer=1)  # only what is copied is checked


def test_hf_errors_belong_to_the_family(hf_folder, tmp_path):
    with pytest.raises(MissingFileError, match='holds no Hugging Face save'):
        load_hf_pretrained_model(small_model(), tmp_path)
    with pytest.raises(MissingFileError, match='does not exist'):
        load_pretrained(small_model(), tmp_path / 'absent')
    folder = copy_folder(hf_folder, tmp_path / 'hf')
    os.remove(folder / 'model.safetensors')
    with pytest.raises(MissingFileError, match='neither model.safetensors nor pytorch_model.bin'):
        load_hf_pretrained_model(small_model(), folder)
    with pytest.raises(InputError, match=r'n_transfer=3: expected -1 .* 2 layers'):
        load_hf_pretrained_model(small_model(), hf_folder, n_transfer=3)
    with pytest.raises(InputError, match=r'n_ctx=65 exceeds the 64 positions'):
        load_hf_pretrained_model(LMModel(CFG, vocab=N_VOCAB + 65, n_ctx=65), hf_folder)
    with pytest.raises(InputError, match=r'embed\.weight has 40542 rows but n_vocab 40000'):
        export_hf(small_model(), tmp_path / 'out', n_vocab=40000, n_special=0)


def test_export_writes_the_bpe_files_transformers_tokenizes_with(tmp_path, encoder_path, bpe_path):
    """A finetuned model holds only the n_ctx position rows its run kept: the export has those
    (n_positions = n_ctx) and transformers loads exactly them; with bpe_files the folder gets
    vocab.json and merges.txt, and AutoTokenizer encodes as TextEncoder does. transformers'
    OpenAIGPTTokenizer falls back to BasicTokenizer without spaCy and ftfy, so the sentence is
    plain lower-case text on which both pre-tokenizers agree."""
    from text_utils import TextEncoder
    n_special, n_ctx = 3, 77
    torch.manual_seed(0)
    ours = DoubleHeadModel(CFG, N_VOCAB + 2, 'multiple_choice', vocab=N_VOCAB + n_special + n_ctx, n_ctx=n_ctx)
    folder = export_hf(ours, tmp_path / 'export', n_vocab=N_VOCAB, n_special=n_special,
                       bpe_files=(encoder_path, bpe_path))
    assert sorted(os.listdir(folder)) == ['config.json', 'merges.txt', 'model.safetensors', 'vocab.json']
    assert (tmp_path / 'export' / 'merges.txt').read_bytes() == bpe_path.read_bytes()
    assert json.loads((tmp_path / 'export' / 'config.json').read_text())['n_positions'] == n_ctx
    theirs = transformers.OpenAIGPTLMHeadModel.from_pretrained(folder)
    torch.testing.assert_close(theirs.transformer.positions_embed.weight, ours.transformer.embed.weight[-n_ctx:],
                               rtol=0, atol=0)
    sentence = 'karen was assigned a roommate her first year of college and they became friends .'
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    assert tokenizer(sentence)['input_ids'] == TextEncoder(str(encoder_path), str(bpe_path)).encode(
        [sentence], verbose=False)[0]


def test_export_refuses_bpe_files_that_do_not_fit(tmp_path, encoder_path, bpe_path):
    short = tmp_path / 'short.json'
    short.write_text(json.dumps({'a</w>': 0, 'b</w>': 1}))
    with pytest.raises(InputError, match=r'bpe_files: .*short\.json holds 2 tokens, expected n_vocab 40478'):
        export_hf(small_model(), tmp_path / 'out', n_special=0, bpe_files=(short, bpe_path))
    with pytest.raises(MissingFileError, match=r'bpe_files: .*gone\.bpe does not exist'):
        export_hf(small_model(), tmp_path / 'out', n_special=0, bpe_files=(encoder_path, tmp_path / 'gone.bpe'))
    assert sorted(os.listdir(tmp_path)) == ['short.json']


def test_export_onto_a_file_is_refused_and_leaves_it(tmp_path):
    import hashlib
    target = tmp_path / 'model'
    target.write_bytes(b'not a folder')
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    with pytest.raises(InputError, match=f"export_hf: {target} exists and is not a folder"):
        export_hf(small_model(), target, n_special=0)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    assert os.listdir(tmp_path) == ['model']


# ------------------------------------------------------------- GPT-2's block layout

GPT2_VOCAB = 100
GPT2_CFG = dotdict(CFG, arch='gpt2')


def gpt2_lm(seed=2):
    """A small GPT2LMHeadModel whose every parameter (LayerNorms and biases too) is random,
    so that a LayerNorm in the wrong place cannot go unnoticed."""
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=GPT2_VOCAB, n_positions=N_POS, n_embd=N_EMBD, n_layer=N_LAYER,
                                     n_head=N_HEAD, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                     activation_function='gelu_new', layer_norm_epsilon=1e-5)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.fixture(scope='module')
def gpt2_folder(tmp_path_factory):
    model = gpt2_lm()
    path = tmp_path_factory.mktemp('gpt2') / 'gpt2'
    model.save_pretrained(path)
    return model, path


def gpt2_ours(impl='sdpa'):
    return LMModel(dotdict(GPT2_CFG, attn_impl=impl), vocab=GPT2_VOCAB + N_POS, n_ctx=N_POS).eval()


@pytest.mark.parametrize('impl', ['sdpa', 'explicit'])
def test_gpt2_folder_gives_gpt2_hidden_states_and_logits(gpt2_folder, impl):
    hf, path = gpt2_folder
    model = gpt2_ours(impl)
    assert load_pretrained(model, path) == 'hf'
    ids = random_ids(3, 17, GPT2_VOCAB, seed=4)
    with torch.no_grad():
        ref = hf(ids, output_hidden_states=True)
        torch.testing.assert_close(model.transformer(our_input(ids, GPT2_VOCAB)), ref.hidden_states[-1],
                                   atol=1e-5, rtol=0)
        torch.testing.assert_close(model(our_input(ids, GPT2_VOCAB))[..., :GPT2_VOCAB], ref.logits, atol=1e-5, rtol=0)


def test_gpt2_export_loads_in_transformers_and_back(tmp_path):
    torch.manual_seed(5)
    model = gpt2_ours()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    folder = export_hf(model, tmp_path / 'out', n_vocab=GPT2_VOCAB, n_special=0)
    with open(os.path.join(folder, 'config.json')) as f:
        assert json.load(f)['model_type'] == 'gpt2'
    hf = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
    again = gpt2_ours()
    load_pretrained(again, folder)
    ids = random_ids(2, 11, GPT2_VOCAB, seed=6)
    with torch.no_grad():
        ours = model(our_input(ids, GPT2_VOCAB))[..., :GPT2_VOCAB]
        torch.testing.assert_close(hf(ids).logits, ours, atol=1e-5, rtol=0)
        torch.testing.assert_close(again(our_input(ids, GPT2_VOCAB))[..., :GPT2_VOCAB], ours, atol=0, rtol=0)


def test_block_layouts_do_not_load_into_each_other(gpt2_folder, hf_folder, tmp_path):
    _, path = gpt2_folder
    gpt1 = LMModel(CFG, vocab=GPT2_VOCAB + N_POS, n_ctx=N_POS)
    with pytest.raises(CheckpointError, match=r"model_type 'gpt2' is the gpt2 block layout but the model has "
                                              r"arch='gpt1': expected --arch gpt2"):
        load_pretrained(gpt1, path)
    with pytest.raises(CheckpointError, match=r"model_type 'openai-gpt' is the gpt1 block layout but the model has "
                                              r"arch='gpt2': expected --arch gpt1"):
        load_pretrained(LMModel(GPT2_CFG, vocab=N_VOCAB + N_POS, n_ctx=N_POS), hf_folder)
    write_tf_checkpoint(tmp_path / 'tf', tf_shapes(N_LAYER, N_EMBD, N_VOCAB, N_POS))
    with pytest.raises(CheckpointError, match=r"the TF release's checkpoint is GPT-1 .* arch='gpt2'"):
        load_pretrained(LMModel(GPT2_CFG, vocab=N_VOCAB + N_POS, n_ctx=N_POS), tmp_path / 'tf')
    folder = copy_folder(path, tmp_path / 'wide_mlp')
    edit_config(folder, n_inner=3 * N_EMBD)
    with pytest.raises(CheckpointError, match=r"n_inner is 96 but the model's MLP is 4 \* n_embd = 128 wide"):
        load_pretrained(gpt2_ours(), folder)


# ------------------------------------------------------------- bidirectional models (causal=False)

def test_a_bidirectional_model_round_trips_and_a_mismatch_is_refused_both_ways(hf_folder, tmp_path):
    n_vocab, n_ctx = 60, 16  # a small vocabulary keeps the folders tiny
    bidirectional = dotdict(CFG, causal=False)
    torch.manual_seed(0)
    ours = LMModel(bidirectional, vocab=n_vocab + n_ctx, n_ctx=n_ctx)
    folder = export_hf(ours, tmp_path / 'bi', n_vocab=n_vocab, n_special=0)
    assert json.loads((tmp_path / 'bi' / 'config.json').read_text())['causal'] is False
    assert weights.checkpoint_causal(folder) is False and weights.checkpoint_causal(str(hf_folder)) is True
    back = LMModel(bidirectional, vocab=n_vocab + n_ctx, n_ctx=n_ctx)
    load_pretrained(back, folder, n_special=0)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), back.state_dict().values()))

    causal_model = LMModel(CFG, vocab=n_vocab + n_ctx, n_ctx=n_ctx)
    with pytest.raises(CheckpointError, match=r"causal is False \(bidirectional attention\) but the model has "
                                              r"causal=True \(causal\)"):
        load_pretrained(causal_model, folder, n_special=0)
    causal_folder = export_hf(causal_model, tmp_path / 'causal', n_vocab=n_vocab, n_special=0)
    assert json.loads((tmp_path / 'causal' / 'config.json').read_text())['causal'] is True
    with pytest.raises(CheckpointError, match=r"causal is True \(causal attention\) but the model has "
                                              r"causal=False \(bidirectional\)"):
        load_pretrained(back, causal_folder, n_special=0)
    edit_config(folder, causal='yes')
    with pytest.raises(CheckpointError, match=r"config.json: field causal is 'yes', expected true or false"):
        load_pretrained(back, folder, n_special=0)
