"""train.py and score.py with GPT-2: OpenAI's release folder (the tiny one in ../shared/data) and a
Hugging Face gpt2 folder as --model_dir, its files selecting GPT2Encoder and its checkpoint the
model's layout and sizes. The model train.py builds gives the logits of the release's own graph
(reference_logits.npy) and of transformers' GPT2LMHeadModel on the same weights; a ROCStories run
finishes and score.py reads it; custom data trains from the Hugging Face folder."""
import json

import numpy as np
import pytest
import torch
import transformers

import finetune
import score
import train
from helpers import run_main
from task_data import load_data
from text_utils import GPT2Encoder

ROC = ['--dataset', 'rocstories', '--n_valid', '37', '--n_iter', '1', '--device', 'cpu']
N_VOCAB = 50257


def roc_argv(tmp_path, rocstories_dir, model_dir, *extra):
    return [*ROC, '--data_dir', str(rocstories_dir), '--model_dir', str(model_dir), '--log_dir',
            str(tmp_path / 'log'), '--save_dir', str(tmp_path / 'save'), '--submission_dir', str(tmp_path / 'sub'),
            *extra]


def lm_logits(model, X):
    """The LM head's logits over GPT-2's 50,257 tokens at every position of X (B, T, 2): (B, T, 50257)."""
    with torch.no_grad():
        return model.lm_head.decoder(model.eval().transformer(torch.as_tensor(X, dtype=torch.long)))[..., :N_VOCAB]


@pytest.fixture(scope='module')
def built(tmp_path_factory, rocstories_dir, gpt2_tiny_dir):
    """(cfg, data, model) as train.run builds them from the tiny release, before any update."""
    tmp = tmp_path_factory.mktemp('built')
    cfg = train.parse_args(roc_argv(tmp, rocstories_dir, gpt2_tiny_dir))
    data = load_data(cfg, verbose=False)
    finetune.set_seed(cfg.run.seed)
    return cfg, data, finetune.build_model(cfg, data)


def test_the_release_folder_selects_gpt2s_tokenizer_layout_and_sizes(built, gpt2_tiny_dir):
    cfg, data, model = built
    assert (cfg.source.encoder_path, cfg.source.bpe_path) == (str(gpt2_tiny_dir / 'encoder.json'),
                                                              str(gpt2_tiny_dir / 'vocab.bpe'))
    hp = json.loads((gpt2_tiny_dir / 'hparams.json').read_text())
    assert (cfg.model.arch, cfg.model.n_embd, cfg.model.n_head, cfg.model.n_layer) == \
        ('gpt2', hp['n_embd'], hp['n_head'], hp['n_layer'])
    assert isinstance(data.text_encoder, GPT2Encoder)
    # _start_, _delimiter_, _classify_ are rows 50257..50259, the positions follow them
    assert (data.n_vocab, data.n_special, data.clf_token) == (N_VOCAB, 3, N_VOCAB + 2)
    assert data.trX[0, 0, 0, 0] == N_VOCAB and data.trX[0, 0, 0, 1] == N_VOCAB + 3
    assert data.vocab == N_VOCAB + 3 + data.n_ctx and data.n_ctx <= hp['n_ctx']
    # the stories are GPT-2's ids of the raw text: no lower-casing, no spaCy
    story = data.trX[0, 0, 1:int(data.trM[0, 0].sum()) - 1, 0]
    assert data.text_encoder.decode(story[story < N_VOCAB])[:1].isupper()


def test_the_built_model_gives_the_release_graphs_logits(built, gpt2_tiny_dir):
    """The reference tokens through the finetuning model (positions after the three special rows)
    equal the logits OpenAI's model.py computed for them."""
    _, data, model = built
    tokens = np.asarray(json.loads((gpt2_tiny_dir / 'reference_tokens.json').read_text()))
    expected = np.load(gpt2_tiny_dir / 'reference_logits.npy')
    n = min(tokens.shape[1], data.n_ctx)
    X = np.stack([tokens[:, :n], np.broadcast_to(N_VOCAB + 3 + np.arange(n), (1, n))], axis=-1)
    np.testing.assert_allclose(lm_logits(model, X).numpy(), expected[:, :n], atol=1e-5)


def test_step_zero_lm_logits_equal_transformers_on_the_same_weights(built, gpt2_hf_dir):
    """ROCStories' first training examples, special tokens included: GPT2LMHeadModel with the
    release's weights (the Hugging Face fixture) and the model's three special rows appended to wte."""
    _, data, model = built
    theirs = transformers.GPT2LMHeadModel.from_pretrained(gpt2_hf_dir).eval()
    theirs.resize_token_embeddings(N_VOCAB + 3)
    with torch.no_grad():
        theirs.transformer.wte.weight[N_VOCAB:] = model.transformer.embed.weight[N_VOCAB:N_VOCAB + 3]
    X = np.asarray(data.trX[:4]).reshape(-1, data.n_ctx, 2)
    M = np.asarray(data.trM[:4]).reshape(-1, data.n_ctx)
    ours = lm_logits(model, X)
    with torch.no_grad():
        ref = theirs(torch.as_tensor(X[..., 0], dtype=torch.long)).logits[..., :N_VOCAB]
    real = torch.as_tensor(M > 0)  # positions after a sequence's end see padding ids alike; compare the real ones
    assert real.sum() > 100
    torch.testing.assert_close(ours[real], ref[real], atol=1e-5, rtol=0)


@pytest.fixture(scope='module')
def finished(tmp_path_factory, rocstories_dir, gpt2_tiny_dir):
    """A finished ROCStories run from the tiny release: 2 updates, --submit (its best parameters)."""
    tmp = tmp_path_factory.mktemp('finished')
    status = run_main(train.main, tmp, roc_argv(tmp, rocstories_dir, gpt2_tiny_dir, '--max_updates', '2',
                                                '--submit', '--desc', 'g2'))
    return status, tmp


@pytest.mark.slow
def test_a_rocstories_run_from_the_release_finishes_and_score_reads_it(finished, capsys):
    status, tmp = finished
    assert status == 0
    log = [json.loads(line) for line in (tmp / 'log' / 'g2.jsonl').read_text().splitlines()]
    assert log[0]['arch'] == 'gpt2' and log[0]['checkpoint_format'] == 'gpt2-tf' and log[0]['n_vocab'] == N_VOCAB
    assert log[-1]['n_updates'] == 2 and np.isfinite(log[-1]['va_cost'])
    run = score.load_run(tmp / 'save' / 'g2')
    assert isinstance(run.text_encoder, GPT2Encoder) and run.model.transformer.arch == 'gpt2'
    story, endings = "Karen was assigned a roommate. They met.", ["They became friends.", "Karen hated pizza."]
    probs = run.score(story, endings)
    assert probs.shape == (2,) and abs(probs.sum() - 1) < 1e-6
    capsys.readouterr()
    shown = score.main(['--run', str(tmp / 'save' / 'g2'), '--story', story, '--ending', endings[0], '--ending',
                        endings[1]])
    np.testing.assert_allclose(shown, probs, atol=1e-6)
    assert capsys.readouterr().out.count('*') == 1


@pytest.mark.slow
def test_custom_classification_from_a_hugging_face_gpt2_folder(tmp_path, gpt2_hf_dir):
    rows = ['text,label'] + [f"{t},{lab}" for t, lab in [('A warm and funny film.', 'pos'), ('Dull and long.', 'neg'),
                                                        ('Loved every minute.', 'pos'), ('I left early.', 'neg')]]
    (tmp_path / 'd.csv').write_text('\n'.join(rows) + '\n')
    argv = ['--dataset', 'custom', '--task_type', 'classification', '--train_file', 'd.csv', '--valid_file', 'd.csv',
            '--test_file', 'd.csv', '--model_dir', str(gpt2_hf_dir), '--n_batch', '2', '--n_iter', '1', '--submit',
            '--desc', 'c', '--device', 'cpu']
    assert run_main(train.main, tmp_path, argv) == 0
    settings = json.loads((tmp_path / 'log' / 'c.jsonl').read_text().splitlines()[0])
    assert (settings['arch'], settings['n_embd'], settings['checkpoint_format']) == ('gpt2', 64, 'hf')
    assert settings['encoder_path'].endswith('vocab.json') and settings['n_vocab'] == N_VOCAB
    assert len((tmp_path / 'submission' / 'custom.tsv').read_text().splitlines()) == 5
