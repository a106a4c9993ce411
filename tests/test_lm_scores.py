"""lm_scores.py: every kind of model folder loads with its tokenizer (a TF release, a Hugging Face
folder, a character model's, a finetuned run's LM head), the shared context of a multiple-choice
example is what runs once, and a bidirectional encoder is refused in one line."""
import pytest
import torch

import heuristics
import lm_scores
from errors import CheckpointError
from hf_interop import export_hf
from model_pytorch import LMModel, ModelConfig
from tests.helpers import LM_N_VOCAB as N_VOCAB
from tests.helpers import char_lm


def test_the_shared_context_runs_once_and_the_choices_continue_it(lm, rocstories_dir):
    data = heuristics.prepare_task('rocstories', str(rocstories_dir), lm.tokenizer, lm.n_ctx, n_examples=3)
    for ex in data.examples:
        assert lm_scores.shared_length(ex) == ex[0].start  # the story with its separator, shared whole
        assert ex[0].ids[0] == lm.tokenizer.newline_id


def test_every_folder_kind_loads_with_its_tokenizer(lm, gpt1_folder, tmp_path, encoder_path, bpe_path):
    from tests.helpers import tf_shapes, write_tf_checkpoint
    write_tf_checkpoint(tmp_path / 'tf', tf_shapes(1, 16, N_VOCAB))
    for f in (encoder_path, bpe_path):
        (tmp_path / 'tf' / f.name).symlink_to(f)
    tf = lm_scores.load_language_model(str(tmp_path / 'tf'), n_head=2)
    assert (tf.source, tf.n_vocab, tf.n_ctx, type(tf.tokenizer).__name__) == ('tf', N_VOCAB, 512, 'TextEncoder')
    model, tok = char_lm('abc \n')
    export_hf(model, tmp_path / 'char', n_vocab=tok.vocab_size, n_special=0, extra_files=tok.files())
    char = lm_scores.load_language_model(str(tmp_path / 'char'))
    assert (char.source, char.n_vocab, type(char.tokenizer).__name__) == ('hf', 5, 'CharTokenizer')
    assert lm.source == 'hf' and lm.separator == [lm.tokenizer.encoder['\n</w>']]


@pytest.mark.parametrize('arch', ['gpt1', 'gpt2'])
def test_a_finetuned_runs_lm_head_scores_as_its_double_head_model(arch, tmp_path, encoder_path, bpe_path,
                                                                   rocstories_dir):
    import finetune
    from checkpoint import BEST_PARAMS, save_params
    from model_pytorch import DoubleHeadModel
    from run_frame import write_run_config
    from tests.conftest import GPT2_DIR
    bpe = (str(encoder_path), str(bpe_path)) if arch == 'gpt1' else (str(GPT2_DIR / 'encoder.json'),
                                                                     str(GPT2_DIR / 'vocab.bpe'))
    n_vocab = N_VOCAB if arch == 'gpt1' else 50257
    n_ctx, clf = 40, n_vocab + 2
    torch.manual_seed(1)
    model = DoubleHeadModel(ModelConfig(n_embd=16, n_head=2, n_layer=1, arch=arch), clf, 'multiple_choice',
                            vocab=n_vocab + 3 + n_ctx, n_ctx=n_ctx).eval()
    cfg = finetune.FinetuneConfig().replace(n_layer=1, n_embd=16, n_head=2, arch=arch)
    write_run_config(tmp_path / 'config.json', cfg, dict(n_ctx=n_ctx, vocab=n_vocab + 3 + n_ctx, clf_token=clf,
                                                         max_len=18, encoder_path=bpe[0], bpe_path=bpe[1]))
    save_params(model, tmp_path / BEST_PARAMS)
    run = lm_scores.load_language_model(str(tmp_path))
    assert (run.source, run.n_vocab) == ('run', n_vocab)
    data = heuristics.prepare_task('rocstories', str(rocstories_dir), run.tokenizer, run.n_ctx, n_examples=4)
    result = heuristics.evaluate_task(run, None, data, verbose=False)
    for ex, rec in zip(data.examples, result.records):
        for seq, score in zip(ex, rec['scores']):
            x = torch.stack((torch.tensor(seq.ids[:-1]), n_vocab + 3 + torch.arange(len(seq.ids) - 1)), -1)
            with torch.no_grad():
                logits = model.lm_head.decoder(model.transformer(x[None]))[0, :, :n_vocab].double()
            logp = torch.log_softmax(logits, -1).gather(1, torch.tensor(seq.ids[1:])[:, None])[seq.start - 1:]
            assert score == pytest.approx(float(logp.mean()), abs=1e-5)


def test_a_bidirectional_folder_is_refused(tmp_path):
    model, tok = char_lm('ab \n')
    enc = LMModel(ModelConfig(n_embd=16, n_head=2, n_layer=1, causal=False), vocab=tok.vocab_size + 16, n_ctx=16)
    export_hf(enc, tmp_path / 'enc', n_vocab=tok.vocab_size, n_special=0, extra_files=tok.files())
    with pytest.raises(CheckpointError, match="bidirectional encoder .*no next-token LM head"):
        lm_scores.load_language_model(str(tmp_path / 'enc'))
