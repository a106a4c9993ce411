"""model_source: the model's layout and sizes from --model_dir's checkpoint (GPT-2's release, a
Hugging Face gpt2 folder), n_ctx up to the checkpoint's positions, and the BPE files' vocabulary
checked against the checkpoint's token rows, each refusal one line of train.py."""
import json

import pytest

import train
from errors import ConfigError, InputError
from finetune import FinetuneConfig
from helpers import run_main, tf_shapes, write_tf_checkpoint
from model_source import check_vocabulary, checkpoint_vocab, resolve_model
from run_frame import SourceConfig, resolve_bpe_paths
from tests.conftest import BPE_PATH, ENCODER_PATH, GPT2_DIR


def config(model_dir, init='pretrained', **model):
    cfg = FinetuneConfig.from_flat(dict(model_dir=str(model_dir), init=init, **model))[0]
    return resolve_model(cfg)


@pytest.fixture(scope='module')
def gpt1_shards(tmp_path_factory):
    """A 1-layer, 16-wide GPT-1 checkpoint in the TF release's format, 40,478 token rows, 512 positions."""
    path = tmp_path_factory.mktemp('gpt1')
    write_tf_checkpoint(path, tf_shapes(1, 16, 40478))
    return path


@pytest.mark.parametrize('folder', ['gpt2_tiny_dir', 'gpt2_hf_dir'])
def test_a_gpt2_folder_gives_the_layout_the_sizes_and_its_positions(folder, request):
    path = request.getfixturevalue(folder)
    cfg = config(path)
    hp = json.loads((request.getfixturevalue('gpt2_tiny_dir') / 'hparams.json').read_text())
    assert (cfg.model.arch, cfg.model.n_embd, cfg.model.n_head, cfg.model.n_layer) == \
        ('gpt2', hp['n_embd'], hp['n_head'], hp['n_layer'])
    assert cfg.source.n_ctx == hp['n_ctx'] == 128  # the default 512, cut to the checkpoint's positions
    assert config(path, n_ctx=100).source.n_ctx == 100
    assert config(path, n_layer=1).model.n_layer == 1  # given: loads the first layer with --n_transfer 1
    assert checkpoint_vocab(path) == hp['n_vocab'] == 50257
    with pytest.raises(ConfigError, match=r"n_ctx=129: expected at most the 128 positions of the checkpoint in "):
        config(path, n_ctx=129)


def test_gpt1_shards_keep_the_flags_sizes_and_their_512_positions(gpt1_shards):
    cfg = config(gpt1_shards, n_embd=16, n_layer=1, n_head=2)
    assert (cfg.model.arch, cfg.model.n_embd, cfg.model.n_layer, cfg.model.n_head, cfg.source.n_ctx) == \
        ('gpt1', 16, 1, 2, 512)
    # the TF shards record no n_head: every size stays the flags' (the loader names a mismatch)
    assert (config(gpt1_shards).model.n_embd, config(gpt1_shards).model.n_layer) == (768, 12)
    assert checkpoint_vocab(gpt1_shards) == 40478
    with pytest.raises(ConfigError, match=r"n_ctx=513: expected at most the 512 positions of the checkpoint"):
        config(gpt1_shards, n_ctx=513, n_embd=16, n_layer=1, n_head=2)


def test_random_initialisation_allows_the_positions_of_its_layouts_release(tmp_path):
    assert config(tmp_path, init='random', arch='gpt2', n_ctx=1024).source.n_ctx == 1024
    with pytest.raises(ConfigError, match=r"n_ctx=1025: expected at most the 1024 positions of OpenAI's GPT-2"):
        config(tmp_path, init='random', arch='gpt2', n_ctx=1025)
    with pytest.raises(ConfigError, match=r"n_ctx=513: expected at most the 512 positions of OpenAI's GPT-1"):
        config(tmp_path, init='random', n_ctx=513)


def test_a_folder_that_cannot_be_read_is_left_to_the_loader(tmp_path):
    cfg = config(tmp_path / 'missing')
    assert (cfg.model.arch, cfg.model.n_embd, cfg.source.n_ctx) == ('gpt1', 768, 512)
    with pytest.raises(ConfigError, match=r"n_ctx=513: expected at most the 512 positions of OpenAI's GPT-1"):
        config(tmp_path / 'missing', n_ctx=513)


def test_the_bpe_files_of_a_folder_are_found_by_their_names(gpt2_tiny_dir, gpt2_hf_dir, gpt1_shards):
    found = resolve_bpe_paths(SourceConfig(model_dir=str(gpt2_tiny_dir)))
    assert (found.encoder_path, found.bpe_path) == (str(gpt2_tiny_dir / 'encoder.json'),
                                                    str(gpt2_tiny_dir / 'vocab.bpe'))
    found = resolve_bpe_paths(SourceConfig(model_dir=str(gpt2_hf_dir)), 'gpt2')
    assert found.encoder_path == str(gpt2_hf_dir / 'vocab.json')
    found = resolve_bpe_paths(SourceConfig(model_dir=str(gpt1_shards)))  # none there: GPT-1's names
    assert found.encoder_path == str(gpt1_shards / 'encoder_bpe_40000.json')


@pytest.mark.parametrize('which', ['gpt2 checkpoint, gpt1 files', 'gpt1 checkpoint, gpt2 files'])
def test_a_checkpoint_given_the_other_models_vocabulary_is_one_line(which, gpt2_tiny_dir, gpt1_shards, tmp_path,
                                                                      rocstories_dir, capsys):
    if which.startswith('gpt2'):
        model_dir, files, held, rows = gpt2_tiny_dir, (ENCODER_PATH, BPE_PATH), "40478 tokens, GPT-1's BPE", \
            "50257 token rows, GPT-2's byte-level BPE"
    else:
        model_dir, files, held, rows = gpt1_shards, (GPT2_DIR / 'encoder.json', GPT2_DIR / 'vocab.bpe'), \
            "50257 tokens, GPT-2's byte-level BPE", "40478 token rows, GPT-1's BPE"
    source = SourceConfig(model_dir=str(model_dir), encoder_path=str(files[0]), bpe_path=str(files[1]))
    with pytest.raises(InputError, match=f"holds {held}, but the checkpoint in --model_dir {model_dir} has {rows}: "
                                         f"expected the vocabulary it was trained with"):
        check_vocabulary(source)
    check_vocabulary(resolve_bpe_paths(SourceConfig(model_dir=str(gpt2_tiny_dir))))  # its own files pass
    argv = ['--data_dir', str(rocstories_dir), '--model_dir', str(model_dir), '--encoder_path', str(files[0]),
            '--bpe_path', str(files[1]), '--n_embd', '16', '--n_layer', '1', '--n_head', '2']
    capsys.readouterr()
    assert run_main(train.main, tmp_path, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"train.py: error: --encoder_path {files[0]} holds {held}")
    assert not (tmp_path / 'save').exists()


def test_n_ctx_above_the_checkpoints_positions_is_one_line_of_train(gpt2_tiny_dir, rocstories_dir, tmp_path, capsys):
    capsys.readouterr()
    argv = ['--data_dir', str(rocstories_dir), '--model_dir', str(gpt2_tiny_dir), '--n_ctx', '129']
    assert run_main(train.main, tmp_path, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"train.py: error: --n_ctx 129: expected at most the 128 positions of the checkpoint in "
                   f"{gpt2_tiny_dir}"]
