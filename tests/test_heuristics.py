"""heuristics.py: each zero-shot heuristic's scores equal the same quantity computed with
transformers' OpenAIGPTLMHeadModel on the same weights and ids (conftest's gpt1_folder), a model that
learned the right answers scores above chance and one that learned shuffled answers does not,
perplexity windows score each token once with the context promised, and bits per byte does not
depend on the tokenizer."""
import math
import random

import numpy as np
import pytest
import torch

import heuristics
from errors import InputError
from model_pytorch import LMModel, ModelConfig
from tests.helpers import DPRD_TEXT, LM_N_CTX, char_lm, check_against_transformers, reference_logprobs
from tests.test_readers import GLUE, write_glue, write_race
from text_utils import CharTokenizer



# ------------------------------------------------------------------ parity with transformers

def test_rocstories_scores_are_transformers_average_logprobs(lm, gpt1_folder, rocstories_dir):
    data = heuristics.prepare_task('rocstories', str(rocstories_dir), lm.tokenizer, 50, n_examples=12)
    result = heuristics.evaluate_task(lm, None, data, budget=300, verbose=False)
    check_against_transformers(gpt1_folder[1], data, result)
    assert 0 < data.n_truncated  # 50 positions cut some stories: the cut contexts are what both score
    assert result.metrics['n_examples'] == 12
    preds = [int(np.argmax(r['scores'])) for r in result.records]
    assert result.metrics['accuracy'] == pytest.approx(100 * np.mean(np.equal(preds, data.labels)))


def test_race_scores_are_transformers_average_logprobs(lm, gpt1_folder, tmp_path):
    write_race(tmp_path / 'RACE', random.Random(1))
    data = heuristics.prepare_task('race', str(tmp_path), lm.tokenizer, lm.n_ctx, n_examples=6)
    result = heuristics.evaluate_task(lm, None, data, verbose=False)
    assert len(data.examples[0]) == 4
    check_against_transformers(gpt1_folder[1], data, result)


def test_sst2_compares_the_two_words_after_very(lm, gpt1_folder, tmp_path):
    write_glue(tmp_path / 'SST-2', GLUE['sst2'], {'train.tsv': 4, 'dev.tsv': 6, 'test.tsv': 2}, random.Random(2))
    data = heuristics.prepare_task('sst2', str(tmp_path), lm.tokenizer, lm.n_ctx)
    result = heuristics.evaluate_task(lm, None, data, verbose=False)
    enc = lm.tokenizer.encoder
    for ex in data.examples:  # one id each: GPT-1's 'negative</w>' and 'positive</w>', after 'very</w>'
        assert [seq.ids[-1] for seq in ex] == [enc['negative</w>'], enc['positive</w>']]
        assert ex[0].ids[-2] == enc['very</w>'] and all(len(seq.ids) - seq.start == 1 for seq in ex)
    check_against_transformers(gpt1_folder[1], data, result, reduce=np.sum)
    for rec in result.records:
        assert rec['prediction'] == int(rec['logp_positive'] > rec['logp_negative'])


def test_cola_threshold_is_chosen_on_train_and_scores_match(lm, gpt1_folder, tmp_path):
    write_glue(tmp_path / 'CoLA', GLUE['cola'], {'train.tsv': 12, 'dev.tsv': 6, 'test.tsv': 2}, random.Random(3))
    data = heuristics.prepare_task('cola', str(tmp_path), lm.tokenizer, lm.n_ctx)
    result = heuristics.evaluate_task(lm, None, data, verbose=False)
    check_against_transformers(gpt1_folder[1], data, result)
    train_scores = [np.mean(reference_logprobs(gpt1_folder[1], ex[0])) for ex in data.calibration.examples]
    threshold, mcc = heuristics.best_threshold(train_scores, data.calibration.labels)
    assert result.metrics['threshold'] == pytest.approx(threshold, abs=1e-5)
    assert [r['prediction'] for r in result.records] == [int(r['score'] > threshold) for r in result.records]


def test_best_threshold_maximises_mcc_over_every_cut():
    from sklearn.metrics import matthews_corrcoef
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.normal(size=30).round(1)  # ties too
        labels = (scores + rng.normal(size=30) > 0).astype(int)
        t, mcc = heuristics.best_threshold(scores, labels)
        cuts = np.concatenate(([scores.min() - 1], (np.unique(scores)[1:] + np.unique(scores)[:-1]) / 2,
                               [scores.max()]))
        best = max(matthews_corrcoef(labels, (scores > c).astype(int)) for c in cuts)
        assert mcc == pytest.approx(best) and matthews_corrcoef(labels, (scores > t).astype(int)) == pytest.approx(best)


def test_dprd_scores_the_rest_after_each_candidate(lm, gpt1_folder, tmp_path):
    (tmp_path / 'test.c.txt').write_text(DPRD_TEXT)
    data = heuristics.prepare_task('dprd', str(tmp_path), lm.tokenizer, lm.n_ctx)
    result = heuristics.evaluate_task(lm, None, data, verbose=False)
    assert data.labels == [1, 0, 0]
    for ex in data.examples:  # the same rest scored after different candidates
        assert ex[0].ids[ex[0].start:] == ex[1].ids[ex[1].start:] and ex[0].ids[:ex[0].start] != ex[1].ids[:ex[1].start]
    enc = lm.tokenizer.encoder
    first = data.examples[0]  # "... because [bee|flower] had pollen."
    assert first[0].ids[first[0].start:] == lm.tokenizer.encode(['had pollen.'])[0]
    assert first[1].ids[first[1].start - 1] == enc['flower</w>']
    check_against_transformers(gpt1_folder[1], data, result)


# ------------------------------------------------------------------ perplexity

@pytest.mark.parametrize('n_ctx,stride', [(8, 8), (8, 3), (8, 1), (5, 5)])
def test_windows_score_every_id_once_with_the_context_promised(n_ctx, stride):
    ids = list(range(100, 137))
    windows = heuristics.text_windows(ids, n_ctx, stride)
    scored = [w.ids[k] for w in windows for k in range(w.start, len(w.ids))]
    assert scored == ids[1:]
    for w in windows:
        assert len(w.ids) <= n_ctx + 1 and w.ids == ids[ids.index(w.ids[0]):ids.index(w.ids[0]) + len(w.ids)]
        assert w is windows[0] or w.start >= n_ctx + 1 - stride


def test_strided_perplexity_equals_a_direct_computation(lm, gpt1_folder, tmp_path):
    text = ' '.join(open(__file__).read().split()[:150])
    (tmp_path / 'a.txt').write_text(text)
    hf = gpt1_folder[1]
    ids = [lm.tokenizer.newline_id] + lm.tokenizer.encode([text])[0]
    assert len(ids) > 2 * LM_N_CTX
    for stride in (LM_N_CTX, 17):
        data = heuristics.prepare_task('text', str(tmp_path / 'a.txt'), lm.tokenizer, lm.n_ctx, stride=stride)
        m = heuristics.evaluate_task(lm, None, data, verbose=False).metrics
        # directly: token t given the ids since its window's start, the windows stepping by stride
        nll, end = 0.0, 0
        while end < len(ids) - 1:
            new_end = min(len(ids), (end + stride) if end else LM_N_CTX + 1)
            begin = max(0, new_end - LM_N_CTX - 1)
            with torch.no_grad():
                logp = torch.log_softmax(hf(torch.tensor([ids[begin:new_end - 1]])).logits[0].double(), -1)
            for t in range(max(end, 1), new_end):
                nll -= float(logp[t - 1 - begin, ids[t]])
            end = new_end
        assert m['n_tokens'] == len(ids) - 1 and m['nll'] == pytest.approx(nll, abs=1e-4)
        assert m['ppl_token'] == pytest.approx(math.exp(nll / (len(ids) - 1)), rel=1e-6)
        assert m['ppl_word'] == pytest.approx(math.exp(nll / len(text.split())), rel=1e-6)
        assert m['bits_per_byte'] == pytest.approx(nll / math.log(2) / len(text.encode()), rel=1e-6)


class ReversedChars(CharTokenizer):
    """A character tokenizer that numbers the same characters the other way round."""

    def encode(self, texts, verbose=True):
        return [[self.vocab_size - 1 - i for i in ids] for ids in super().encode(texts, verbose)]

    @property
    def newline_id(self):
        return self.vocab_size - 1 - super().newline_id


def test_bits_per_byte_does_not_depend_on_the_tokenizer_for_a_character_model(tmp_path):
    text = 'naïve café: ünïcode ok, ça va? ' * 3  # several bytes per character
    (tmp_path / 't.txt').write_text(text)
    model, tok = char_lm(set(text) | {'\n'})
    other = ReversedChars(tok.chars)
    moved = LMModel(model.transformer.config, vocab=other.vocab_size + 16, n_ctx=16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rows = state['transformer.embed.weight'].clone()
    rows[:tok.vocab_size] = rows[:tok.vocab_size].flip(0)
    state['transformer.embed.weight'] = state['lm_head.decoder.weight'] = rows
    moved.load_state_dict(state)
    results = []
    for m, t in ((model, tok), (moved, other)):
        data = heuristics.prepare_task('text', str(tmp_path / 't.txt'), t, 16, stride=5)
        assert data.examples[0][0].ids[0] == t.newline_id
        results.append(heuristics.evaluate_task(m, t, data, verbose=False).metrics)
    a, b = results
    assert a['bits_per_byte'] == pytest.approx(b['bits_per_byte'], rel=1e-6)
    assert a['n_bytes'] == len(text.encode()) > a['n_tokens'] == len(text)
    # per byte, not per character: the bits per character spread over each character's UTF-8 bytes
    assert a['bits_per_byte'] == pytest.approx(math.log2(a['ppl_token']) * len(text) / len(text.encode()))


def test_a_text_too_short_for_one_window_is_refused(lm, tmp_path):
    (tmp_path / 'empty.txt').write_text('   \n')
    with pytest.raises(InputError, match=r"empty\.txt encodes to 0 ids .*expected at least 1"):
        heuristics.prepare_task('text', str(tmp_path / 'empty.txt'), lm.tokenizer, lm.n_ctx)


# ------------------------------------------------------------------ a model that knows the answers

def train_on(texts, tok, steps=250, n_ctx=128, seed=0):
    """A 2-layer character LM trained briefly on the concatenated texts."""
    torch.manual_seed(seed)
    model = LMModel(ModelConfig(n_embd=64, n_head=4, n_layer=2, embd_pdrop=0, attn_pdrop=0, resid_pdrop=0),
                    vocab=tok.vocab_size + n_ctx, n_ctx=n_ctx)
    ids = torch.tensor(tok.encode([''.join('\n' + t for t in texts)])[0])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    pos = tok.vocab_size + torch.arange(n_ctx)
    for _ in range(steps):
        starts = torch.randint(len(ids) - n_ctx - 1, (16,), generator=gen)
        w = torch.stack([ids[s:s + n_ctx + 1] for s in starts.tolist()])
        x = torch.stack((w[:, :-1], pos.expand(16, n_ctx)), -1)
        loss = model(x, lm_targets=w[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.slow
def test_a_model_trained_on_the_right_endings_prefers_them_and_a_shuffled_one_does_not(rocstories_dir):
    from readers import read_rocstories
    valid = read_rocstories(str(rocstories_dir))['valid']
    stories, endings = valid.texts[0][:80], valid.texts[1][:80]
    tok = CharTokenizer(set(''.join(stories) + ''.join(e for pair in endings for e in pair)) | {'\n'})
    rng = random.Random(0)
    right = [pair[y] for pair, y in zip(endings, valid.labels)]
    coin = [pair[rng.randrange(2)] for pair in endings]
    accuracy = {}
    for name, texts in (('right', right), ('shuffled', coin)):
        model = train_on(texts, tok)
        data = heuristics.prepare_task('rocstories', str(rocstories_dir), tok, 128, split='valid', n_examples=80)
        accuracy[name] = heuristics.evaluate_task(model, tok, data, verbose=False).metrics['accuracy']
    assert accuracy['right'] >= 75, accuracy
    assert 30 <= accuracy['shuffled'] <= 70, accuracy
