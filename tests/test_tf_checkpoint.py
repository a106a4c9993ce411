"""GPT-2's release (hparams.json + a TF tensor bundle) loaded without TensorFlow: the logits the
release's own graph computed (../shared/data/gpt2-tiny-tf/reference_logits.npy), transformers'
GPT2LMHeadModel given the same weights, every kind of bad input refused before the model is
touched, and the export to a Hugging Face gpt2 folder with the release's tokenizer."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

import tf_bundle
import weights
from errors import CheckpointError, InputError, MissingFileError
from hf_interop import export_hf
from model_pytorch import LMModel, ModelConfig
from tests.conftest import SHARED
from tests.helpers import tf_shapes, write_tf_checkpoint
from tf_bundle import TensorBundle, write_bundle
from tf_checkpoint import gpt2_variable_shapes, read_hparams, write_gpt2_checkpoint

TINY = SHARED / 'data' / 'gpt2-tiny-tf'
RELEASE_FILES = ('checkpoint', 'hparams.json', 'model.ckpt.index', 'model.ckpt.data-00000-of-00001')
SMALL = dict(n_vocab=50, n_ctx=16, n_embd=8, n_head=2, n_layer=2)


def gpt2_model(hp, attn_impl='sdpa', n_special=0, n_ctx=None, arch='gpt2', n_layer=None):
    """Our LMModel of hparams.json's sizes (n_ctx positions, n_special rows before them)."""
    cfg = ModelConfig(n_embd=hp['n_embd'], n_head=hp['n_head'], n_layer=n_layer or hp['n_layer'], arch=arch,
                      attn_impl=attn_impl)
    n_ctx = n_ctx or hp['n_ctx']
    torch.manual_seed(0)
    return LMModel(cfg, vocab=hp['n_vocab'] + n_special + n_ctx, n_ctx=n_ctx).eval()


def logits_of(model, tokens, n_rows):
    """Our logits over the n_rows token rows for tokens (B, T): positions are rows after the vocabulary."""
    x = torch.tensor(tokens)
    positions = model.transformer.vocab - model.transformer.n_ctx + torch.arange(x.size(1))
    with torch.no_grad():
        return model(torch.stack([x, positions.expand_as(x)], dim=-1))[..., :n_rows]


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model, before):
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.fixture(scope='module')
def tiny_hparams():
    return json.loads((TINY / 'hparams.json').read_text())


@pytest.fixture(scope='module')
def reference():
    return json.loads((TINY / 'reference_tokens.json').read_text()), np.load(TINY / 'reference_logits.npy')


@pytest.fixture
def small(tmp_path):
    """A small release folder of random weights: (folder, hparams, {TF name: array})."""
    folder = tmp_path / 'small'
    return folder, SMALL, write_gpt2_checkpoint(folder, SMALL, seed=1)


def copy_release(tmp_path, files=RELEASE_FILES):
    folder = tmp_path / 'release'
    folder.mkdir()
    for name in files:
        shutil.copyfile(TINY / name, folder / name)
    return folder


# ------------------------------------------------------------- the release's numbers

@pytest.mark.parametrize('attn_impl', ['sdpa', 'explicit'])
def test_logits_equal_the_release_graphs(tiny_hparams, reference, attn_impl):
    tokens, expected = reference
    model = gpt2_model(tiny_hparams, attn_impl)
    assert weights.load_pretrained(model, TINY) == 'gpt2-tf'
    got = logits_of(model, tokens, tiny_hparams['n_vocab']).numpy()
    assert got.shape == expected.shape == (1, 22, 50257)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_loading_in_small_pieces_gives_the_same_model(tiny_hparams, reference, monkeypatch):
    """Tensors are mapped and copied a piece at a time: pieces of 100 bytes, cut anywhere in a row,
    load the same values (with fewer positions than the checkpoint too)."""
    whole = gpt2_model(tiny_hparams, n_ctx=100)
    weights.load_pretrained(whole, TINY)
    monkeypatch.setattr(tf_bundle, 'PIECE_BYTES', 100)
    pieces = gpt2_model(tiny_hparams, n_ctx=100)
    weights.load_pretrained(pieces, TINY)
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), pieces.state_dict().values()))
    np.testing.assert_allclose(logits_of(pieces, reference[0], 50257).numpy(), reference[1], atol=1e-5, rtol=0)


def hf_state_dict(arrays, n_layer):
    """GPT2LMHeadModel's state dict of the release's {TF name: array}, mapped by hand from the SPEC."""
    t = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
    sd = {'transformer.wte.weight': t['model/wte'], 'transformer.wpe.weight': t['model/wpe'],
          'transformer.ln_f.weight': t['model/ln_f/g'], 'transformer.ln_f.bias': t['model/ln_f/b'],
          'lm_head.weight': t['model/wte']}
    for i in range(n_layer):
        for ln in ('ln_1', 'ln_2'):
            sd[f'transformer.h.{i}.{ln}.weight'] = t[f'model/h{i}/{ln}/g']
            sd[f'transformer.h.{i}.{ln}.bias'] = t[f'model/h{i}/{ln}/b']
        for conv in ('attn/c_attn', 'attn/c_proj', 'mlp/c_fc', 'mlp/c_proj'):
            name = f'transformer.h.{i}.{conv.replace("/", ".")}'
            sd[f'{name}.weight'] = t[f'model/h{i}/{conv}/w'][0]
            sd[f'{name}.bias'] = t[f'model/h{i}/{conv}/b']
    return sd


def test_logits_equal_transformers_given_the_same_weights(tiny_hparams, reference):
    transformers = pytest.importorskip('transformers')
    hp = tiny_hparams
    bundle = TensorBundle(TINY / 'model.ckpt')
    config = transformers.GPT2Config(vocab_size=hp['n_vocab'], n_positions=hp['n_ctx'], n_embd=hp['n_embd'],
                                     n_layer=hp['n_layer'], n_head=hp['n_head'], activation_function='gelu_new',
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5)
    hf = transformers.GPT2LMHeadModel(config).eval()
    hf.load_state_dict(hf_state_dict({n: bundle.array(n) for n in bundle.names}, hp['n_layer']))
    model = gpt2_model(hp)
    weights.load_pretrained(model, TINY)
    tokens, expected = reference
    with torch.no_grad():
        theirs = hf(torch.tensor(tokens)).logits
    torch.testing.assert_close(logits_of(model, tokens, hp['n_vocab']), theirs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(theirs.numpy(), expected, atol=1e-5, rtol=0)


def test_sizes_format_and_causality_read_without_the_values(tiny_hparams, tmp_path):
    assert weights.find_checkpoint_format(TINY) == 'gpt2-tf'
    assert weights.checkpoint_sizes(TINY) == dict(n_ctx=128, n_embd=64, n_layer=2, n_head=4, arch='gpt2', causal=True)
    assert weights.checkpoint_causal(TINY) is True
    assert read_hparams(TINY) == tiny_hparams
    assert weights.CHECKPOINT_FORMATS['gpt2-tf'] == "GPT-2 release's TF checkpoint"
    folder = copy_release(tmp_path, ('hparams.json',))
    with pytest.raises(MissingFileError, match=r"release has hparams\.json but no model\.ckpt\.index: looked for "):
        weights.find_checkpoint_format(folder)


def test_the_checkpoint_file_names_the_prefix_even_when_moved(tiny_hparams, reference, tmp_path):
    """model.ckpt.meta is not needed; `checkpoint` may name an absolute path of the machine that saved it."""
    folder = tmp_path / 'moved'
    folder.mkdir()
    for name in RELEASE_FILES[1:]:
        shutil.copyfile(TINY / name, folder / name.replace('model.ckpt', 'step-5'))
    (folder / 'checkpoint').write_text('model_checkpoint_path: "/home/openai/models/124M/step-5"\n')
    model = gpt2_model(tiny_hparams)
    assert weights.load_pretrained(model, folder) == 'gpt2-tf'
    np.testing.assert_allclose(logits_of(model, reference[0], 50257).numpy(), reference[1], atol=1e-5, rtol=0)


def test_random_release_round_trips_with_n_ctx_n_special_and_n_transfer(small):
    folder, hp, arrays = small
    model = gpt2_model(hp, n_special=3, n_ctx=10)
    before = state(model)
    weights.load_pretrained(model, folder, n_ctx=10, n_special=3)
    emb = model.transformer.embed.weight.detach().numpy()
    np.testing.assert_array_equal(emb[:50], arrays['model/wte'])
    np.testing.assert_array_equal(emb[50:53], before['transformer.embed.weight'][50:53].numpy())
    np.testing.assert_array_equal(emb[53:], arrays['model/wpe'][:10])
    params = dict(model.transformer.named_parameters())
    np.testing.assert_array_equal(params['h.1.attn.c_attn.w'].detach(), arrays['model/h1/attn/c_attn/w'][0])
    np.testing.assert_array_equal(params['h.0.ln_2.g'].detach(), arrays['model/h0/ln_2/g'])
    np.testing.assert_array_equal(params['ln_f.b'].detach(), arrays['model/ln_f/b'])

    one = gpt2_model(hp, n_layer=1)
    before = state(one)
    weights.load_pretrained(one, folder, n_transfer=1)
    params = dict(one.transformer.named_parameters())
    np.testing.assert_array_equal(params['h.0.mlp.c_proj.w'].detach(), arrays['model/h0/mlp/c_proj/w'][0])
    torch.testing.assert_close(params['ln_f.g'].detach(), before['transformer.ln_f.g'], rtol=0, atol=0)


# ------------------------------------------------------------- bad input: one line, the model untouched

def rewrite(folder, edit):
    """The bundle in `folder` rewritten after edit({TF name: array})."""
    bundle = TensorBundle(folder / 'model.ckpt')
    arrays = {n: np.array(bundle.array(n)) for n in bundle.names}
    del bundle
    edit(arrays)
    write_bundle(folder / 'model.ckpt', arrays)


def refused(folder, hp, match, error=CheckpointError, **kw):
    model = gpt2_model(hp)
    before = state(model)
    with pytest.raises(error, match=match) as info:
        weights.load_pretrained(model, folder, **kw)
    assert '\n' not in str(info.value)
    assert_unchanged(model, before)


def test_missing_tensor(small):
    folder, hp, _ = small
    rewrite(folder, lambda a: a.pop('model/h1/ln_2/g'))
    refused(folder, hp, r"model\.ckpt\.index: missing model/h1/ln_2/g: expected the variables of 2 layers that "
                        r".*hparams\.json describes")


def test_extra_tensor(small):
    folder, hp, _ = small
    rewrite(folder, lambda a: a.update({'model/h2/ln_1/g': np.ones(8, np.float32)}))
    refused(folder, hp, r"model\.ckpt\.index: unexpected model/h2/ln_1/g: expected the variables of 2 layers")


def test_wrong_shape(small):
    folder, hp, _ = small
    rewrite(folder, lambda a: a.update({'model/h0/mlp/c_fc/w': np.zeros((1, 8, 24), np.float32)}))
    refused(folder, hp, r"model\.ckpt\.index: model/h0/mlp/c_fc/w has shape \[1, 8, 24\], expected \[1, 8, 32\] from "
                        r".*hparams\.json \(n_vocab 50, n_ctx 16, n_embd 8, n_layer 2\)")


def test_wrong_dtype(small):
    folder, hp, arrays = small
    rewrite(folder, lambda a: a.update({'model/wpe': arrays['model/wpe'].astype(np.float16)}))
    refused(folder, hp, r"model\.ckpt\.index: model/wpe has dtype float16, expected float32")


def test_truncated_data_file(small):
    folder, hp, _ = small
    data = folder / 'model.ckpt.data-00000-of-00001'
    data.write_bytes(data.read_bytes()[:-4])
    refused(folder, hp, r"data-00000-of-00001 is \d+ bytes but model/wte lies at bytes \d+\.\.\d+ \(.*model\.ckpt\."
                        r"index\): expected the whole tensor in the file \(truncated\?\)")


def test_crc_mismatch(small):
    folder, hp, _ = small
    data = folder / 'model.ckpt.data-00000-of-00001'
    raw = bytearray(data.read_bytes())
    raw[TensorBundle(folder / 'model.ckpt').entries['model/ln_f/g'].offset] ^= 0x10
    data.write_bytes(bytes(raw))
    refused(folder, hp, r"data-00000-of-00001: model/ln_f/g \(bytes \d+\.\.\d+\) has masked CRC32C 0x[0-9a-f]{8} but "
                        r".*model\.ckpt\.index stores 0x[0-9a-f]{8}: expected equal \(the data file is damaged\)")


@pytest.mark.parametrize('damage, match', [
    (lambda raw: raw[:-8] + b'\0' * 8, r"model\.ckpt\.index ends with 0x0000000000000000: expected the LevelDB table "
                                       r"magic number 0xdb4775248b80fb57"),
    (lambda raw: raw[:30] + bytes([raw[30] ^ 1]) + raw[31:], r"model\.ckpt\.index: the data block at byte 0 has CRC32C "
                                                             r"0x[0-9a-f]{8} but its trailer stores"),
    (lambda raw: b'{"not": "a table"}', r"model\.ckpt\.index is 18 bytes: expected a LevelDB table"),
], ids=['bad-magic', 'bad-block-crc', 'garbage'])
def test_an_index_that_is_not_a_table(small, damage, match):
    folder, hp, _ = small
    index = folder / 'model.ckpt.index'
    index.write_bytes(damage(index.read_bytes()))
    refused(folder, hp, match)


def test_hparams_that_disagree_with_the_tensors(small):
    folder, hp, _ = small
    (folder / 'hparams.json').write_text(json.dumps(dict(hp, n_ctx=32)))
    refused(folder, hp, r"model\.ckpt\.index: model/wpe has shape \[16, 8\], expected \[32, 8\] from .*hparams\.json "
                        r"\(n_vocab 50, n_ctx 32, n_embd 8, n_layer 2\)")
    (folder / 'hparams.json').write_text(json.dumps(dict(hp, n_layer=3)))
    refused(folder, hp, r"missing model/h2/attn/c_attn/w, .*, model/h2/ln_1/b and 6 more: expected the variables of 3 "
                        r"layers that .*hparams\.json describes")
    (folder / 'hparams.json').write_text(json.dumps(dict(hp, n_head=3)))
    refused(folder, hp, r"hparams\.json: n_head 3 does not divide n_embd 8: expected a divisor")
    (folder / 'hparams.json').write_text('{"n_vocab": 50,')
    refused(folder, hp, r"hparams\.json is not valid JSON \(.*\): expected an object of n_vocab, n_ctx")
    (folder / 'hparams.json').write_text(json.dumps(dict(hp, n_embd='8')))
    refused(folder, hp, r"hparams\.json: n_embd is '8': expected an integer from 1 to 65536")


def test_a_model_of_other_sizes_is_refused(small):
    folder, hp, _ = small
    model = gpt2_model(dict(hp, n_head=4))
    with pytest.raises(CheckpointError, match=r"hparams\.json: n_head is 2 but the model has n_head=4: expected equal"):
        weights.load_pretrained(model, folder)
    with pytest.raises(CheckpointError, match=r"the model has 3 layers but .*hparams\.json holds 2: pass n_transfer=2"):
        weights.load_pretrained(gpt2_model(hp, n_layer=3), folder)


def test_non_finite_values(small):
    folder, hp, arrays = small
    bad = arrays['model/h1/attn/c_proj/b'].copy()
    bad[[1, 3]] = [np.nan, np.inf]
    rewrite(folder, lambda a: a.update({'model/h1/attn/c_proj/b': bad}))
    refused(folder, hp, r"data-00000-of-00001: model/h1/attn/c_proj/b holds 2 non-finite values \(NaN or inf\) of 8")


def test_gpt2_release_into_gpt1_model_and_the_reverse(small, tmp_path):
    folder, hp, _ = small
    gpt1 = gpt2_model(hp, arch='gpt1')
    before = state(gpt1)
    with pytest.raises(CheckpointError, match=r"hparams\.json: GPT-2's release has pre-LN blocks and a final ln_f but "
                                              r"the model has arch='gpt1': expected arch 'gpt2' \(--arch gpt2\)"):
        weights.load_pretrained(gpt1, folder)
    assert_unchanged(gpt1, before)
    write_tf_checkpoint(tmp_path / 'gpt1', tf_shapes(2, 8, 50, 16))
    with pytest.raises(CheckpointError, match=r"the TF release's checkpoint is GPT-1 \(post-LN blocks\) but the model "
                                              r"has arch='gpt2': expected arch 'gpt1'"):
        weights.load_pretrained(gpt2_model(hp), tmp_path / 'gpt1')


def test_the_writer_writes_exactly_the_releases_variables(small):
    folder, hp, arrays = small
    assert sorted(os.listdir(folder)) == sorted(RELEASE_FILES)
    assert {k: v.shape for k, v in arrays.items()} == gpt2_variable_shapes(**hp)
    assert len(arrays) == 2 + 12 * hp['n_layer'] + 2 and all(a.dtype == np.float32 for a in arrays.values())


# ------------------------------------------------------------- GPT-2's release exported

RELEASE_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
HARD_TEXTS = ["Hello world", " leading space", "trailing  \n\n", "I'm can't we'll they've she'd it's",
              "ROCStories!!! 2016... $3.50?", "tabs\tand\r\nwindows", "emoji 🦄🏳️‍🌈 and ñandú, 日本語のテキスト",
              "\x00\x07 control", "   ", "", "Ünïcödé COMBINING é"]


def release_bpe(encoder_path, bpe_path):
    """GPT-2's release tokenizer written from the SPEC (its encoder.py's steps): text -> ids."""
    import regex
    encoder = json.loads(open(encoder_path, encoding='utf-8').read())
    merges = open(bpe_path, encoding='utf-8').read().split('\n')[1:-1]
    ranks = {tuple(m.split()): i for i, m in enumerate(merges)}
    printable = [*range(ord('!'), ord('~') + 1), *range(ord('¡'), ord('¬') + 1), *range(ord('®'), ord('ÿ') + 1)]
    extra = iter(range(256, 512))
    byte_char = {b: chr(b) if b in printable else chr(next(extra)) for b in range(256)}

    def bpe(word):
        parts = list(word)
        while len(parts) > 1:
            pairs = [(ranks.get(p, len(ranks)), i) for i, p in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == len(ranks):
                break
            first, second = parts[i], parts[i + 1]
            merged, j = [], 0
            while j < len(parts):
                if j < len(parts) - 1 and parts[j] == first and parts[j + 1] == second:
                    merged.append(first + second)
                    j += 2
                else:
                    merged.append(parts[j])
                    j += 1
            parts = merged
        return parts

    def encode(text):
        return [encoder[s] for piece in regex.findall(RELEASE_PATTERN, text)
                for s in bpe(''.join(byte_char[b] for b in piece.encode('utf-8')))]
    return encode


def rocstories_sentences(n):
    import csv
    with open(SHARED / 'data' / 'rocstories' / 'cloze_test_val__spring2016 - cloze_test_ALL_val.csv',
              encoding='utf-8') as f:
        rows = list(csv.reader(f))[1:n + 1]
    return [' '.join(row[1:7]) for row in rows]


def test_exports_to_a_hf_folder_transformers_loads_and_tokenizes_as_the_release(tiny_hparams, reference, tmp_path):
    """GPT-2's release loaded and exported with its encoder.json and vocab.bpe: transformers'
    GPT2LMHeadModel gives the release graph's logits, and AutoTokenizer (and the slow
    GPT2Tokenizer) of the folder give the release's ids (its algorithm written from the SPEC)."""
    transformers = pytest.importorskip('transformers')
    hp = tiny_hparams
    model = gpt2_model(hp)
    weights.load_pretrained(model, TINY)
    encoder_path, bpe_path = TINY / 'encoder.json', TINY / 'vocab.bpe'
    folder = export_hf(model, tmp_path / 'gpt2', bpe_files=(encoder_path, bpe_path))
    assert sorted(os.listdir(folder)) == ['config.json', 'merges.txt', 'model.safetensors', 'tokenizer_config.json',
                                          'vocab.json']
    assert (tmp_path / 'gpt2' / 'vocab.json').read_bytes() == encoder_path.read_bytes()
    assert (tmp_path / 'gpt2' / 'merges.txt').read_bytes() == bpe_path.read_bytes()
    tokens, expected = reference
    with torch.no_grad():
        logits = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()(torch.tensor(tokens)).logits
    np.testing.assert_allclose(logits.numpy(), expected, atol=1e-5, rtol=0)

    release = release_bpe(encoder_path, bpe_path)
    fast = transformers.AutoTokenizer.from_pretrained(folder)
    slow = transformers.GPT2Tokenizer.from_pretrained(folder)
    assert fast.eos_token_id == fast.bos_token_id == 50256 and fast.model_max_length == hp['n_ctx']
    for text in HARD_TEXTS + rocstories_sentences(100):
        ids = release(text)
        assert fast(text, add_special_tokens=False)['input_ids'] == ids, text
        assert slow(text, add_special_tokens=False)['input_ids'] == ids, text
        assert fast.decode(ids) == text
    # the one difference: transformers reads the text <|endoftext|> as the special token, the release spells it out
    text = 'end <|endoftext|>'
    assert release(text) == [437, 1279, 91, 437, 1659, 5239, 91, 29]
    assert fast(text)['input_ids'] == slow(text)['input_ids'] == [437, 220, 50256]


def test_export_refuses_gpt1_bpe_files(tiny_hparams, tmp_path, encoder_path, bpe_path):
    model = gpt2_model(tiny_hparams, n_ctx=8, n_layer=1)
    with pytest.raises(InputError, match=r"bpe_files: .*encoder_bpe_40000\.json holds 40478 tokens, expected n_vocab "
                                         r"50257"):
        export_hf(model, tmp_path / 'out', bpe_files=(encoder_path, bpe_path))
    assert not os.path.exists(tmp_path / 'out')
