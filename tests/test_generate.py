"""Sampling with the key/value cache: generate.py's API, its command line and its errors."""
import io
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

import generate as gen
from errors import InputError
from generate import filter_logits, generate, iter_generate, sample_next
from model_pytorch import DEFAULT_CONFIG, LMModel, dotdict
from tests.conftest import BPE_PATH, ENCODER_PATH, ONE_THREAD_ENV, ROOT, SHARED
from tests.helpers import tf_shapes, write_tf_checkpoint

N_VOCAB, N_SPECIAL, N_CTX = 50, 3, 40
PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [1, 2], [3, 4, 30, 40]]


def build(impl='sdpa', **kw):
    torch.manual_seed(0)
    cfg = dotdict(DEFAULT_CONFIG)
    cfg.update(n_embd=32, n_head=4, n_layer=2)
    m = LMModel(cfg, vocab=N_VOCAB + N_SPECIAL + N_CTX, n_ctx=N_CTX, n_special=N_SPECIAL, **kw)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() > 1:
                p.normal_(std=0.2)
    m.transformer.set_attention(impl)
    return m.eval()


# ---------------------------------------------------------------- the cache

@pytest.mark.parametrize('impl', ['sdpa', 'explicit'])
@pytest.mark.parametrize('prompts', [PROMPTS[0], PROMPTS], ids=['one', 'batch'])
def test_cached_logits_match_full_recompute_at_every_step(impl, prompts):
    m = build(impl)
    kw = dict(gen_len=12, top_k=5, seed=3, n_special=N_SPECIAL)
    cached = list(iter_generate(m, prompts, use_cache=True, **kw))
    full = list(iter_generate(m, prompts, use_cache=False, **kw))
    assert len(cached) == len(full) == 12
    for c, f in zip(cached, full):
        assert c.tokens == f.tokens
        torch.testing.assert_close(c.logits, f.logits, rtol=0, atol=1e-5)
        assert c.logits.dtype == torch.float32 and c.logits.shape == (len(c.tokens), N_VOCAB)


def test_each_row_of_a_padded_batch_equals_that_prompt_alone():
    m = build()
    batch = list(iter_generate(m, PROMPTS, 10, greedy=True, n_special=N_SPECIAL))
    for i, p in enumerate(PROMPTS):
        alone = list(iter_generate(m, p, 10, greedy=True, n_special=N_SPECIAL))
        assert [s.tokens[0] for s in alone] == [s.tokens[i] for s in batch]
        for a, b in zip(alone, batch):
            torch.testing.assert_close(a.logits[0], b.logits[i], rtol=0, atol=1e-5)


def test_positions_continue_after_the_prompt():
    """The step logits equal the default forward over prompt + generated ids with positions 0, 1, 2, ..."""
    m = build()
    p = PROMPTS[1]
    steps = list(iter_generate(m, p, 6, greedy=True, n_special=N_SPECIAL))
    ids = p + [s.tokens[0] for s in steps]
    pos = N_VOCAB + N_SPECIAL + torch.arange(len(ids))
    with torch.no_grad():
        logits = m(torch.stack((torch.tensor(ids), pos), -1)[None])[0, :, :N_VOCAB]
    for k, s in enumerate(steps):
        torch.testing.assert_close(s.logits[0], logits[len(p) - 1 + k], rtol=0, atol=1e-5)


def test_default_forward_is_unchanged_by_the_cache_arguments():
    m = build()
    x = torch.stack((torch.randint(0, N_VOCAB, (2, 9)), N_VOCAB + N_SPECIAL + torch.arange(9).expand(2, 9)), -1)
    with torch.no_grad():
        plain = m(x)
        cached, presents = m(x, use_cache=True)
        head, past = m(x[:, :5], use_cache=True)
        tail, _ = m(x[:, 5:], past=past, use_cache=True)
    assert isinstance(plain, torch.Tensor)
    torch.testing.assert_close(plain, cached, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat((head, tail), 1), plain, rtol=0, atol=1e-5)
    assert len(presents) == 2 and presents[0][0].shape == (2, 4, 9, 8)


def test_inference_mode_inside_nothing_leaks_and_train_mode_is_restored():
    m = build().train()
    it = iter_generate(m, PROMPTS[0], 3, greedy=True, n_special=N_SPECIAL)
    first = next(it)
    assert first.logits.is_inference()
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()
    assert m.training  # put back while suspended
    # dropout is off while generating: a model left in train mode still decodes deterministically
    assert generate(m, PROMPTS[0], 5, greedy=True, n_special=N_SPECIAL) == \
        generate(m.eval(), PROMPTS[0], 5, greedy=True, n_special=N_SPECIAL)


def test_return_probs_model_gives_the_same_tokens():
    m = build()
    mp = build(return_probs=True)
    a = generate(m, PROMPTS, 8, greedy=True, n_special=N_SPECIAL)
    b = generate(mp, PROMPTS, 8, greedy=True, n_special=N_SPECIAL)
    assert a == b
    assert generate(m, PROMPTS, 8, seed=5, n_special=N_SPECIAL) == generate(mp, PROMPTS, 8, seed=5, n_special=N_SPECIAL)


# ---------------------------------------------------------------- sampling

def test_greedy_is_deterministic_seeds_reproduce_and_top_k_1_is_greedy():
    m = build()
    greedy = generate(m, PROMPTS, 10, greedy=True, n_special=N_SPECIAL)
    assert greedy == generate(m, PROMPTS, 10, greedy=True, n_special=N_SPECIAL)
    assert generate(m, PROMPTS, 10, top_k=1, seed=123, n_special=N_SPECIAL) == greedy
    assert generate(m, PROMPTS, 10, top_k=1, temperature=5.0, n_special=N_SPECIAL) == greedy
    a = generate(m, PROMPTS, 10, seed=7, n_special=N_SPECIAL, temperature=2.0)
    assert a == generate(m, PROMPTS, 10, seed=7, n_special=N_SPECIAL, temperature=2.0)
    others = [generate(m, PROMPTS, 10, seed=s, n_special=N_SPECIAL, temperature=2.0) for s in range(8, 12)]
    assert any(o != a for o in others)
    # one prompt in -> one list out; a list of prompts -> a list of lists
    one = generate(m, PROMPTS[0], 4, greedy=True, n_special=N_SPECIAL)
    assert isinstance(one, list) and len(one) == 4 and all(isinstance(t, int) for t in one)
    assert one == greedy[0][:4]
    assert generate(m, torch.tensor(PROMPTS[0]), 4, greedy=True, n_special=N_SPECIAL) == one


class FixedLogitsLM(nn.Module):
    """Stands in for an LMModel: the same logits at every position, with the position
    and special rows made the most likely of all, so that picking one would show."""

    def __init__(self, token_logits, n_special=2, n_ctx=16):
        super().__init__()
        n_vocab = len(token_logits)
        self.transformer = SimpleNamespace(vocab=n_vocab + n_special + n_ctx, n_ctx=n_ctx)
        row = torch.cat((torch.as_tensor(token_logits, dtype=torch.float32), torch.full((n_special + n_ctx,), 50.0)))
        self.register_buffer('row', row)
        self.calls = []

    def forward(self, x, past=None, use_cache=False, key_mask=None):
        self.calls.append((x.clone(), None if key_mask is None else key_mask.clone()))
        logits = self.row.expand(x.size(0), x.size(1), -1)
        return (logits, [(torch.zeros(0), torch.zeros(0))]) if use_cache else logits


TOKEN_LOGITS = [3.0, 2.5, 2.0, 1.0, 0.5, 0.0, -1.0, -2.0]  # probs ~ .42 .25 .15 .06 .03 .02 .01 .00


def _allowed(logits, temperature, top_k, top_p):
    """Reference top-k then nucleus set, written with numpy."""
    z = np.asarray(logits, np.float64) / temperature
    order = np.argsort(-z, kind='stable')
    if top_k:
        order = order[:top_k]
    p = np.exp(z[order] - z[order].max())
    p /= p.sum()
    m = int(np.searchsorted(np.cumsum(p), top_p - 1e-12)) + 1  # smallest m with mass >= top_p
    return set(order[:m].tolist())


@pytest.mark.parametrize('top_k,top_p,temperature,expected', [
    (3, 1.0, 1.0, {0, 1, 2}),
    (0, 0.5, 1.0, {0, 1}),        # .42 < .5 <= .42 + .25
    (0, 0.3, 1.0, {0}),
    (5, 0.95, 1.0, {0, 1, 2, 3}),  # top_p applies to the top-k renormalised: .46 .28 .17 .06 .04
    (2, 0.99, 3.0, {0, 1}),
    (0, 0.8, 0.5, {0, 1}),        # sharper: .62 .23 ...
    (0, 1.0, 1.0, set(range(8))),
])
def test_top_k_and_top_p_never_sample_outside_their_set(top_k, top_p, temperature, expected):
    assert _allowed(TOKEN_LOGITS, temperature, top_k, top_p) == expected
    m = FixedLogitsLM(TOKEN_LOGITS)
    seen = set()
    for seed in range(12):
        out = generate(m, [[1, 2, 3], [4]], 10, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                       n_special=2)
        seen.update(t for row in out for t in row)
    assert seen <= expected
    if len(expected) <= 5:
        assert seen == expected  # 240 draws reach every member


def test_top_k_and_top_p_sets_on_a_real_model_at_every_step():
    m = build()
    for seed in range(6):
        for top_k, top_p, temperature in [(4, 1.0, 1.0), (0, 0.6, 1.0), (7, 0.7, 2.0)]:
            for s in iter_generate(m, PROMPTS, 8, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                                   n_special=N_SPECIAL):
                for row, t in enumerate(s.tokens):
                    assert t in _allowed(s.logits[row].numpy(), temperature, top_k, top_p)


def test_filter_logits_matches_the_reference_on_random_rows():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        logits = torch.randn(1, 30, generator=g) * 3
        top_k = int(torch.randint(0, 31, (1,), generator=g))
        # a top_p half-way between two cumulative masses, away from rounding at the boundary
        z = logits[0].double()
        srt = torch.sort(torch.softmax(z if not top_k else z.topk(top_k).values, 0), descending=True).values
        c = torch.cat((torch.zeros(1, dtype=torch.float64), torch.cumsum(srt, 0)))
        j = int(torch.randint(0, len(srt), (1,), generator=g))
        top_p = min(float((c[j] + c[j + 1]) / 2), 1.0)
        kept = torch.isfinite(filter_logits(logits, top_k, top_p)[0]).nonzero().flatten().tolist()
        assert set(kept) == _allowed(logits[0].numpy(), 1.0, top_k, top_p)


def test_position_and_special_rows_are_never_picked_and_batch_inputs_are_left_padded():
    m = FixedLogitsLM([0.0] * 8, n_special=2, n_ctx=16)
    out = generate(m, [[1, 2, 3], [4]], 5, greedy=True, n_special=2)
    assert out == [[0] * 5, [0] * 5]  # the rows at 50.0 are positions and specials
    out = generate(m, [[1, 2, 3], [4]], 5, top_k=8, seed=0, n_special=2)
    assert all(0 <= t < 8 for row in out for t in row)
    # prompt call: left-padded, per-row positions from row n_vocab + n_special = 10
    x, key_mask = m.calls[0]
    assert x[..., 0].tolist() == [[1, 2, 3], [0, 0, 4]]
    assert x[..., 1].tolist() == [[10, 11, 12], [10, 10, 10]]
    assert key_mask.tolist() == [[True] * 3, [False, False, True]]
    x, key_mask = m.calls[1]  # the first new token: positions 3 and 1
    assert x[..., 1].tolist() == [[13], [11]] and key_mask.shape == (2, 4) and key_mask[:, 3].all()


@pytest.mark.parametrize('temperature', [1e-45, 1e-46, 1e-300, 5e-324])
def test_tiny_temperatures_choose_the_most_likely_token(temperature):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 300, generator=g) * 4
    logits[3, 7] = logits[3, 9] = logits[3].max() + 1  # a tie: either of the two
    for top_k, top_p in [(0, 1.0), (5, 1.0), (0, 0.5)]:
        chosen = sample_next(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=g)
        expected = logits.argmax(dim=-1)
        assert chosen[3] in (7, 9)
        chosen[3] = expected[3]
        assert chosen.tolist() == expected.tolist()
    m = build()
    assert generate(m, PROMPTS, 8, temperature=temperature, seed=0, n_special=N_SPECIAL) == \
        generate(m, PROMPTS, 8, greedy=True, n_special=N_SPECIAL)


def test_temperature_one_samples_from_the_plain_softmax():
    # The shift by the max that makes tiny temperatures work leaves temperature 1 plain softmax sampling, bit for bit.
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(1)) * 3
    draws = [sample_next(logits, generator=torch.Generator().manual_seed(s)).tolist() for s in range(20)]
    plain = [torch.multinomial(torch.softmax(logits, -1), 1, generator=torch.Generator().manual_seed(s)).squeeze(-1)
             .tolist() for s in range(20)]
    assert draws == plain


def test_sample_next_greedy_and_seeded():
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    assert sample_next(logits, greedy=True).tolist() == [1, 0]
    draws = [sample_next(logits, top_k=2, generator=torch.Generator().manual_seed(s)).tolist() for s in range(50)]
    assert {d[0] for d in draws} == {1, 2} and {d[1] for d in draws} <= {0, 1, 2}


def test_callback_streams_every_step():
    m = build()
    seen = []
    out = generate(m, PROMPTS, 5, greedy=True, n_special=N_SPECIAL, callback=lambda i, t: seen.append((i, t)))
    assert [i for i, _ in seen] == list(range(5))
    assert [[t[r] for _, t in seen] for r in range(3)] == out


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize('prompt,kw,match', [
    ([], {}, 'empty prompt'),
    ([[1, 2], []], {}, 'empty prompt: prompt 1'),
    ([1] * 41, {}, 'a prompt of 41 tokens is more than the model.s n_ctx=40'),
    ([1], {'top_k': -1}, 'top_k=-1'),
    ([1], {'top_k': N_VOCAB + 1}, 'exceeds the vocabulary'),
    ([1], {'top_p': 0.0}, r'top_p=0.0.*\(0, 1\]'),
    ([1], {'top_p': 1.5}, 'top_p=1.5'),
    ([1], {'temperature': 0.0}, 'temperature=0.0'),
    ([1], {'temperature': -1.0}, 'temperature=-1.0'),
    ([1], {'gen_len': -1}, 'gen_len=-1'),
    ([N_VOCAB + N_SPECIAL], {}, 'outside'),
])
def test_bad_arguments_raise_one_line_errors(prompt, kw, match):
    m = build()
    kw = {'gen_len': 3, **kw}
    with pytest.raises(InputError, match=match) as err:  # InputError is a ValueError
        generate(m, prompt, n_special=N_SPECIAL, **kw)
    assert '\n' not in str(err.value)
    with pytest.raises(InputError, match=match):  # checked when called, before the first step
        iter_generate(m, prompt, n_special=N_SPECIAL, **kw)


def test_a_prompt_that_fills_the_context_exactly_is_accepted():
    m = build()
    assert len(generate(m, [1] * 30, 10, greedy=True, n_special=N_SPECIAL)) == 10
    assert generate(m, [1, 2], 0, n_special=N_SPECIAL) == []


# ---------------------------------------------------------------- command line

@pytest.fixture(scope='module')
def shards(tmp_path_factory):
    """Tiny weights with the real vocabulary's 40,478 token rows, in the TF release's format."""
    path = tmp_path_factory.mktemp('gpt_tiny')
    write_tf_checkpoint(str(path), tf_shapes(n_layer=2, n_embd=16, n_vocab=40478))
    return path


def cli_args(shards, *extra):
    return ['--model_dir', str(shards), '--encoder_path', str(ENCODER_PATH), '--bpe_path', str(BPE_PATH),
            '--n_embd', '16', '--n_head', '2', '--n_layer', '2', '--log_path', str(shards / 'generate.jsonl'), *extra]


def error_lines(err):
    """stderr less the line that names the checkpoint format; the rest must be the one-line error."""
    return [line for line in err.splitlines() if not line.startswith('generate.py: loaded the ')]


def run_cli(args):
    """generate.py run as a script, as a user runs it (the other CLI tests call main in this process)."""
    return subprocess.run([sys.executable, str(ROOT / 'generate.py'), *args], input='', capture_output=True,
                          text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, **ONE_THREAD_ENV})


def test_cli_prompts_print_text(shards, encoder_path, bpe_path, tmp_path):
    log_path = tmp_path / 'generate.jsonl'  # a log of its own: the CLI appends to its log
    r = run_cli(cli_args(shards, '--prompt', 'The old house stood', '--prompt', 'she said',
                         '--gen_len', '8', '--seed', '0', '--log_path', str(log_path)))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == 'The old house stood' and lines[2] == 'she said'
    assert lines[1].startswith('=> ') and len(lines[1]) > 5 and lines[3].startswith('=> ')
    assert len(lines) == 4
    assert "loaded the TF release's checkpoint from" in r.stderr
    log = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert log[0]['topk'] == 10 and log[0]['checkpoint_format'] == 'tf' and log[0]['gen_len'] == 8
    assert [e['prompt'] for e in log[1:]] == ['The old house stood', 'she said']
    assert all(len(e['ids']) == 8 and '=> ' + e['continuation'] in lines for e in log[1:])


def test_cli_interactive_streams_from_stdin(shards, capsys):
    stdin = io.StringIO('once upon a time\nthe end\nq\nnot read\n')
    assert gen.main(cli_args(shards, '--gen_len', '6', '--greedy'), stdin=stdin) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith('=> ') and len(line) > 4 for line in lines)


def test_cli_text_matches_the_api(shards, encoder_path, bpe_path, capsys):
    from text_utils import TextEncoder
    enc = TextEncoder(str(encoder_path), str(bpe_path))
    model, fmt = gen.build_model(str(shards), len(enc.encoder), 512, 16, 2, 2)
    assert fmt == 'tf'
    ids = generate(model, enc.encode(['a quiet morning'], verbose=False), 7, greedy=True)
    assert gen.main(cli_args(shards, '--prompt', 'a quiet morning', '--gen_len', '7', '--greedy')) == 0
    assert capsys.readouterr().out == f"a quiet morning\n=> {enc.decode(ids[0])}\n"


@pytest.mark.parametrize('extra,match', [
    (['--prompt', ''], 'empty prompt'),
    (['--prompt', '   '], 'empty prompt'),
    (['--prompt', 'hi', '--topk', '-1'], 'top_k=-1'),
    (['--prompt', 'hi', '--topk', '40479'], 'exceeds the vocabulary of 40478'),
    (['--prompt', 'hi', '--topp', '0'], 'top_p=0.0'),
    (['--prompt', 'hi', '--topp', '1.01'], 'top_p=1.01'),
    (['--prompt', 'hi', '--temperature', '0'], 'temperature=0.0'),
    (['--prompt', 'hi there friend', '--n_ctx', '2'], 'a prompt of 3 tokens is more than the model.s n_ctx=2'),
    (['--prompt', 'hi', '--n_ctx', '600'], '--n_ctx 600: the checkpoint in .* has 512 positions'),
])
def test_cli_bad_input_one_line_error(shards, extra, match, capsys):
    assert refused(cli_args(shards, *extra), capsys, match)


def refused(argv, capsys, match):
    """main(argv) exits with status 2 after one line `generate.py: error: ...` matching `match`; returns that line."""
    with pytest.raises(SystemExit) as exit_info:
        gen.main(argv)
    assert exit_info.value.code == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith('generate.py: error: ')
    assert re.search(match, err[0]), err
    return err[0]


def test_cli_missing_model_folder(tmp_path, capsys):
    refused(['--model_dir', str(tmp_path / 'nowhere'), '--prompt', 'hello'], capsys, 'nowhere.* does not exist')
    refused(['--model_dir', str(tmp_path), '--encoder_path', str(ENCODER_PATH), '--bpe_path', str(BPE_PATH),
             '--prompt', 'hello'], capsys, 'params_shapes.json')
    # the default encoder paths are in the model folder
    refused(['--model_dir', str(tmp_path), '--prompt', 'hello'], capsys,
            'holds neither .*encoder_bpe_40000.json and vocab_40000.bpe nor .*vocab.json and merges.txt; '
            'or set --encoder_path and --bpe_path')
    (tmp_path / 'a_file').write_text('not a folder')
    refused(['--model_dir', str(tmp_path / 'a_file'), '--prompt', 'hello'], capsys, 'a_file.* is not a folder')


def test_cli_unusable_checkpoint_and_bpe_files(shards, tmp_path, capsys):
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'params_shapes.json').write_text('[[512, 16], ')
    refused(['--model_dir', str(broken), '--encoder_path', str(ENCODER_PATH), '--bpe_path', str(BPE_PATH),
             '--prompt', 'hi'], capsys, r'params_shapes.json is not a JSON list of shapes')
    bad_json = tmp_path / 'encoder.json'
    bad_json.write_text('{"a": 0,\n')
    refused(cli_args(shards, '--prompt', 'hi', '--encoder_path', str(bad_json)), capsys,
            r'BPE vocabulary file .*encoder.json is malformed: expected a JSON object .*\(line 2')
    cut = tmp_path / 'cut.bpe'
    cut.write_text('\n'.join(BPE_PATH.read_text(encoding='utf-8').split('\n')[:20001]) + '\n', encoding='utf-8')
    refused(cli_args(shards, '--prompt', 'hi', '--bpe_path', str(cut)), capsys,
            r'BPE merges file .*cut.bpe holds 20000 merges, expected 40000')
    latin1 = tmp_path / 'latin1.bpe'
    latin1.write_bytes(b'#version: 0.2\ncaf\xe9 x\n')
    refused(cli_args(shards, '--prompt', 'hi', '--bpe_path', str(latin1)), capsys,
            r'latin1.bpe is not UTF-8 text: line 2 holds the byte 0xe9')
    refused(cli_args(shards, '--prompt', 'hi', '--encoder_path', str(tmp_path / 'gone.json')), capsys,
            r'BPE vocabulary file .*gone.json not found')
    refused(cli_args(shards, '--prompt', 'hi', '--log_path', str(tmp_path)), capsys, r'Is a directory')


def test_cli_interactive_empty_line_reports_and_goes_on(shards, capsys):
    status = gen.main(cli_args(shards, '--gen_len', '3', '--greedy'), stdin=io.StringIO('\nhello\n'))
    out, err = capsys.readouterr()
    err = error_lines(err)
    assert status == 2 and len(err) == 1 and 'empty prompt' in err[0]
    assert out.startswith('=> ') and out.count('\n') == 1
    log = [json.loads(line) for line in (shards / 'generate.jsonl').read_text().splitlines()]
    assert log[-1]['prompt'] == 'hello' and len(log[-1]['ids']) == 3 and 'ids' not in log[-2]
    assert gen.main(cli_args(shards, '--gen_len', '3', '--greedy'), stdin=io.StringIO('hello\n')) == 0


def test_cli_log_is_appended_to(shards, tmp_path):
    log_path = tmp_path / 'runs' / 'gen.jsonl'
    for seed in ('1', '2'):
        # the last --log_path counts
        assert gen.main(cli_args(shards, '--prompt', 'the sea', '--gen_len', '3', '--seed', seed,
                                 '--log_path', str(log_path))) == 0
    log = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [('seed' in e, 'ids' in e) for e in log] == [(True, False), (False, True)] * 2  # settings, continuation
    assert [e['seed'] for e in log[::2]] == [1, 2]


def test_cli_tiny_temperature_is_greedy(shards, capsys):
    assert gen.main(cli_args(shards, '--prompt', 'a quiet morning', '--gen_len', '7', '--greedy')) == 0
    greedy = capsys.readouterr().out
    for temperature in ('1e-45', '1e-300'):
        assert gen.main(cli_args(shards, '--prompt', 'a quiet morning', '--gen_len', '7', '--seed', '0',
                                 '--temperature', temperature)) == 0
        assert capsys.readouterr().out == greedy


class Writes(io.StringIO):
    """Records every write."""

    def __init__(self):
        super().__init__()
        self.pieces = []

    def write(self, s):
        self.pieces.append(s)
        return super().write(s)


def test_stream_print_writes_whole_words(encoder_path, bpe_path):
    from text_utils import TextEncoder
    enc = TextEncoder(str(encoder_path), str(bpe_path))
    ids = enc.encode(['Anna Karenina said: "unbelievable," and left.\nThe end'], verbose=False)[0]
    assert any(not enc.decoder[i].endswith('</w>') for i in ids)  # some word takes several symbols
    out = Writes()
    assert gen._stream_print(enc, iter(ids), out) == ids
    text = enc.decode(ids)
    assert out.getvalue() == text + '\n'
    end = 0
    for piece in out.pieces[:-1]:
        end += len(piece)
        assert end == len(text) or text[end].isspace(), (piece, text[end:])  # never inside a word


def test_cli_reads_a_hugging_face_folder_alone(shards, tmp_path, capsys):
    """A Hugging Face openai-gpt folder (config.json, model.safetensors, vocab.json, merges.txt) is enough."""
    from hf_interop import export_hf
    from text_utils import TextEncoder
    enc = TextEncoder(str(ENCODER_PATH), str(BPE_PATH))
    model, _ = gen.build_model(str(shards), len(enc.encoder), 512, 16, 2, 2)
    # the hub cache's layout: models--openai-gpt/snapshots/<hash>/ named by refs/main
    cache = tmp_path / 'models--openai-gpt'
    hf = cache / 'snapshots' / 'abc123'
    export_hf(model, str(hf))
    (hf / 'vocab.json').write_text(json.dumps(enc.encoder), encoding='utf-8')
    (hf / 'merges.txt').write_bytes(BPE_PATH.read_bytes())
    (cache / 'refs').mkdir()
    (cache / 'refs' / 'main').write_text('abc123')
    expected = enc.decode(generate(model, enc.encode(['a quiet morning'], verbose=False)[0], 7, greedy=True))
    for folder in (hf, cache):
        argv = ['--model_dir', str(folder), '--n_embd', '16', '--n_head', '2', '--n_layer', '2',
                '--prompt', 'a quiet morning', '--gen_len', '7', '--greedy', '--log_path', str(tmp_path / 'g.jsonl')]
        assert gen.main(argv) == 0
        out, err = capsys.readouterr()
        assert 'Hugging Face' in err
        assert out == f"a quiet morning\n=> {expected}\n"


def test_cli_sizes_come_from_the_checkpoint_and_flags_may_not_contradict_them(shards, tmp_path, capsys):
    """The TF shards hold 2 blocks of width 16 and 512 positions: with no size flag but --n_head those
    are used; --n_layer 1 would generate with the first block alone, so it is refused, as is
    another width; --n_ctx may ask for fewer positions, not more."""
    log = tmp_path / 'g.jsonl'
    base = ['--model_dir', str(shards), '--encoder_path', str(ENCODER_PATH), '--bpe_path', str(BPE_PATH),
            '--prompt', 'a quiet morning', '--gen_len', '3', '--greedy', '--log_path', str(log)]
    assert gen.main(base + ['--n_head', '2', '--n_ctx', '100']) == 0
    settings = json.loads(log.read_text().splitlines()[0])
    assert (settings['n_ctx'], settings['n_embd'], settings['n_head'], settings['n_layer']) == (100, 16, 2, 2)
    capsys.readouterr()
    refused(cli_args(shards, '--prompt', 'hi', '--n_layer', '1'), capsys,
            r'--n_layer 1: the checkpoint in .*gpt_tiny.* has 2 blocks: expected 2 or no --n_layer')
    refused(base + ['--n_head', '2', '--n_embd', '32'], capsys,
            r'--n_embd 32: the checkpoint in .* has width 16: expected 16 or no --n_embd')
    from text_utils import TextEncoder
    model, _ = gen.build_model(str(shards), len(TextEncoder(str(ENCODER_PATH), str(BPE_PATH)).encoder), 64, 16, 2, 2)
    from hf_interop import export_hf
    hf = export_hf(model, str(tmp_path / 'hf'))
    hf_base = base[:1] + [hf] + base[2:]
    refused(hf_base + ['--n_head', '4'], capsys, r'--n_head 4: the checkpoint in .*hf has 2 attention heads')
    refused(hf_base + ['--n_ctx', '65'], capsys, r'--n_ctx 65: the checkpoint in .*hf has 64 positions: expected '
                                                 r'1 to 64')
    assert gen.main(hf_base) == 0


def test_cli_refuses_a_config_whose_sizes_the_weights_contradict(shards, tmp_path, capsys):
    """config.json claiming 2**31 positions is refused from the weights' shapes, before a model
    of that size is built (it would need hundreds of gigabytes)."""
    from hf_interop import export_hf
    from text_utils import TextEncoder
    model, _ = gen.build_model(str(shards), len(TextEncoder(str(ENCODER_PATH), str(BPE_PATH)).encoder), 64, 16, 2, 2)
    hf = export_hf(model, str(tmp_path / 'hf'))
    config = json.loads((tmp_path / 'hf' / 'config.json').read_text())
    argv = ['--model_dir', hf, '--encoder_path', str(ENCODER_PATH), '--bpe_path', str(BPE_PATH), '--prompt', 'hi',
            '--log_path', str(tmp_path / 'g.jsonl')]
    for field, value, match in (('n_positions', 2 ** 31, r'n_positions is 2147483648: expected 1 to'),
                                ('n_positions', 128, r'positions_embed\.weight has shape \(64, 16\), but .*config'
                                                     r'\.json gives n_positions 128 and n_embd 16'),
                                ('n_layer', 1, r'config\.json \(n_layer=1\): .*unexpected tensors')):
        (tmp_path / 'hf' / 'config.json').write_text(json.dumps(dict(config, **{field: value})))
        refused(argv, capsys, match)
def test_char_encoder_round_trips_and_refuses_unknown_characters(tmp_path):
    from text_utils import CharTokenizer, load_tokenizer
    text = 'a mat, the cat.\nünï ☃'
    tok = CharTokenizer(text)
    tok.save(str(tmp_path))
    enc = load_tokenizer(str(tmp_path))
    ids = enc.encode([text, 'cat'])
    assert ids[1] == [tok.chars.index(c) for c in 'cat'] and enc.decode(ids[0]) == text
    assert enc.vocab_size == len(set(text))
    stream = enc.stream_decoder(continuation=True)
    assert ''.join(stream.push(i) for i in ids[0]) + stream.flush() == text
    with pytest.raises(InputError, match=r"character 'z' .* not in the character vocabulary"):
        enc.encode(['zebra'])


def test_cli_char_model_folder_needs_no_size_flags(tmp_path, capsys):
    """A Hugging Face folder with char_vocab.json (pretrain.py --tokenizer char): the sizes come from
    config.json, prompts are encoded and continuations decoded one character per token."""
    from hf_interop import export_hf
    from text_utils import CharTokenizer
    tok = CharTokenizer('abcdefgh \n')
    cfg = dotdict(DEFAULT_CONFIG)
    cfg.update(n_embd=24, n_head=3, n_layer=2)
    torch.manual_seed(0)
    model = LMModel(cfg, vocab=tok.vocab_size + 20, n_ctx=20).eval()
    folder = tmp_path / 'char_model'
    export_hf(model, folder, n_vocab=tok.vocab_size, n_special=0, extra_files=tok.files())
    expected = tok.decode(generate(model, tok.encode(['bad cab'])[0], 9, greedy=True))
    log = tmp_path / 'g.jsonl'
    assert gen.main(['--model_dir', str(folder), '--prompt', 'bad cab', '--gen_len', '9', '--greedy',
                     '--log_path', str(log)]) == 0
    assert capsys.readouterr().out == f"bad cab\n=> {expected}\n"
    settings = json.loads(log.read_text().splitlines()[0])
    assert (settings['n_ctx'], settings['n_embd'], settings['n_head'], settings['n_layer']) == (20, 24, 3, 2)
    with pytest.raises(SystemExit):
        gen.main(['--model_dir', str(folder), '--prompt', 'xyz', '--log_path', str(log)])
    assert "character 'x' (U+0078) is not in the character vocabulary of 10 symbols" in capsys.readouterr().err


def test_a_bidirectional_model_is_refused_by_the_api_and_the_cli(tmp_path, capsys):
    from hf_interop import export_hf
    from text_utils import CharTokenizer
    tok = CharTokenizer('abcdefgh \n')
    cfg = dotdict(DEFAULT_CONFIG)
    cfg.update(n_embd=24, n_head=3, n_layer=2, causal=False)
    model = LMModel(cfg, vocab=tok.vocab_size + 20, n_ctx=20).eval()
    for use_cache in (True, False):
        with pytest.raises(InputError, match=r"bidirectional attention \(causal=False\): .* needs a causal"):
            generate(model, [1, 2], 3, use_cache=use_cache)
    folder = tmp_path / 'encoder'
    export_hf(model, folder, n_vocab=tok.vocab_size, n_special=0, extra_files=tok.files())
    with pytest.raises(SystemExit) as exc:
        gen.main(['--model_dir', str(folder), '--prompt', 'bad', '--log_path', str(tmp_path / 'g.jsonl')])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and f"--model_dir {folder}: " in err and "has causal false, a bidirectional" in err
    assert not (tmp_path / 'g.jsonl').exists()


@pytest.mark.parametrize('device,cuda,match', [
    ('foo', False, r"--device 'foo': expected auto, cpu, cuda or cuda:N"),
    ('cuda', False, r'--device cuda: CUDA is not available on this machine'),
    ('cuda:0', False, r'--device cuda:0: CUDA is not available'),
])
def test_cli_unusable_device_is_one_line(shards, device, cuda, match, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    refused(cli_args(shards, '--prompt', 'hi', '--device', device), capsys, match)


def test_cli_device_auto_and_cpu_generate(shards, capsys, tmp_path):
    outs = []
    for device in ('auto', 'cpu'):
        assert gen.main(cli_args(shards, '--prompt', 'hi', '--gen_len', '3', '--greedy', '--device', device,
                                 '--log_path', str(tmp_path / f'{device}.jsonl'))) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and outs[0].startswith('hi\n=> ')


def _window_recompute(m, ids):
    """Greedy logits (N_VOCAB,) after `ids`, from a plain forward over its last N_CTX tokens at positions 0, 1, ..."""
    ids = ids[-N_CTX:]
    x = torch.stack((torch.tensor(ids), N_VOCAB + N_SPECIAL + torch.arange(len(ids))), -1)[None]
    with torch.no_grad():
        return m(x)[0, -1, :N_VOCAB]


@pytest.mark.parametrize('use_cache', [True, False])
def test_tokens_past_the_context_equal_a_recompute_on_the_last_n_ctx_tokens(use_cache):
    m = build()
    gen_len = N_CTX + 8  # every prompt runs past the context
    batch = list(iter_generate(m, PROMPTS, gen_len, greedy=True, n_special=N_SPECIAL, use_cache=use_cache))
    assert len(batch) == gen_len
    for i, p in enumerate(PROMPTS):
        ids = list(p)
        for s in batch:
            expected = _window_recompute(m, ids)
            torch.testing.assert_close(s.logits[i], expected, rtol=0, atol=1e-4)
            assert s.tokens[i] == int(expected.argmax())
            ids.append(s.tokens[i])
        assert len(ids) > N_CTX + len(p)


def test_sampling_past_the_context_is_reproducible_and_matches_without_the_cache():
    m = build()
    kw = dict(top_k=5, seed=7, n_special=N_SPECIAL)
    cached = generate(m, PROMPTS, N_CTX + 2, **kw)
    assert cached == generate(m, PROMPTS, N_CTX + 2, **kw) == generate(m, PROMPTS, N_CTX + 2, use_cache=False, **kw)


def test_readme_char_example_runs_past_the_context(tmp_path, capsys):
    """README's `generate.py --model_dir save/mine/model --prompt "The " --gen_len 200` on a model of
    fewer positions."""
    from hf_interop import export_hf
    from text_utils import CharTokenizer
    tok = CharTokenizer('The cat sat.\n')
    cfg = dotdict(DEFAULT_CONFIG)
    cfg.update(n_embd=24, n_head=3, n_layer=2)
    torch.manual_seed(0)
    model = LMModel(cfg, vocab=tok.vocab_size + 16, n_ctx=16).eval()
    folder = tmp_path / 'mine' / 'model'
    export_hf(model, folder, n_vocab=tok.vocab_size, n_special=0, extra_files=tok.files())
    assert gen.main(['--model_dir', str(folder), '--prompt', 'The ', '--gen_len', '200',
                     '--log_path', str(tmp_path / 'g.jsonl')]) == 0
    out = capsys.readouterr().out
    assert out.startswith('The \n=> ')
    assert len(json.loads((tmp_path / 'g.jsonl').read_text().splitlines()[1])['ids']) == 200


def _newline_ids(enc, words):
    """Ids of `words` (None: the newline symbol) for a continuation the test chooses."""
    return [enc.encoder['\n</w>'] if w is None else enc.encoder[w + '</w>'] for w in words]


@pytest.mark.parametrize('words,text', [
    ([None, None, None], '\n \n \n'),
    ([None, 'the', 'end', None], '\n the end \n'),
    (['the', None, 'end'], 'the \n end'),
])
def test_newlines_at_either_end_of_a_continuation_are_printed_and_logged(shards, encoder_path, bpe_path, tmp_path,
                                                                         capsys, monkeypatch, words, text):
    from text_utils import TextEncoder
    enc = TextEncoder(str(encoder_path), str(bpe_path))
    ids = _newline_ids(enc, words)
    assert enc.continuation_text(ids) == text
    out = Writes()
    gen._stream_print(enc, iter(ids), out)
    assert out.getvalue() == text + '\n'
    monkeypatch.setattr(gen, 'generate', lambda model, prompt_ids, *a, **kw: [ids for _ in prompt_ids])
    log = tmp_path / 'g.jsonl'
    assert gen.main(cli_args(shards, '--prompt', 'hi', '--log_path', str(log))) == 0
    assert capsys.readouterr().out == f"hi\n=> {text}\n"
    assert json.loads(log.read_text().splitlines()[-1])['continuation'] == text


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_interactive_output_ends_with_a_newline_at_end_of_input(shards, capsys):
    out = io.StringIO()
    assert gen.main(cli_args(shards, '--gen_len', '3', '--greedy'), stdin=Terminal('hello\n'), stdout=out) == 0
    text = out.getvalue()
    assert text.count('Input some beginning words: ') == 2 and text.endswith('\n')
    assert text.splitlines()[-1] == 'Input some beginning words: '


# ---------------------------------------------------------------- GPT-2

GPT2_TINY = SHARED / 'data' / 'gpt2-tiny-tf'  # OpenAI's release layout: 2 blocks, 64 wide, 4 heads, 128 positions
EOT = 50256


@pytest.fixture(scope='module')
def gpt2_tiny():
    """(the release folder, its GPT2Encoder, our LMModel loaded from it in float32)."""
    from text_utils import GPT2Encoder, load_tokenizer
    if not GPT2_TINY.exists():
        raise FileNotFoundError(f"{GPT2_TINY} is missing: the tests need ../shared/data beside the project")
    enc = load_tokenizer(str(GPT2_TINY))
    assert type(enc) is GPT2Encoder  # chosen by the folder's encoder.json and vocab.bpe
    model, fmt = gen.build_model(str(GPT2_TINY), enc.vocab_size, 128, 64, 4, 2, arch='gpt2')
    assert fmt == 'gpt2-tf'
    return GPT2_TINY, enc, model


@pytest.fixture(scope='module')
def gpt2_tiny_hf(gpt2_tiny, tmp_path_factory):
    """transformers' GPT2LMHeadModel holding the tiny release's weights (exported as a gpt2 folder)."""
    import transformers
    from hf_interop import export_hf
    folder = tmp_path_factory.mktemp('gpt2_tiny_hf')
    export_hf(gpt2_tiny[2], str(folder), bpe_files=(str(GPT2_TINY / 'encoder.json'), str(GPT2_TINY / 'vocab.bpe')))
    return folder, transformers.GPT2LMHeadModel.from_pretrained(str(folder)).eval()


def hf_greedy(model, ids, gen_len):
    """transformers' greedy generate(): (the new ids, the logits of each step (gen_len, V))."""
    x = torch.tensor([ids])
    with torch.no_grad():
        out = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=gen_len,
                             min_new_tokens=gen_len, pad_token_id=EOT, output_scores=True, return_dict_in_generate=True)
    return out.sequences[0, len(ids):].tolist(), torch.cat(out.scores)


@pytest.mark.parametrize('text', ['The quick brown fox', 'Hello', "It's 3.14 o'clock\n\nand then"])
def test_gpt2_greedy_equals_transformers_generate(gpt2_tiny, gpt2_tiny_hf, text):
    _, enc, model = gpt2_tiny
    ids = enc.encode([text])[0]
    theirs, scores = hf_greedy(gpt2_tiny_hf[1], ids, 40)
    steps = list(iter_generate(model, ids, 40, greedy=True))
    assert [s.tokens[0] for s in steps] == theirs
    torch.testing.assert_close(torch.stack([s.logits[0] for s in steps]), scores, rtol=0, atol=1e-4)


def test_gpt2_cli_reads_the_release_folder_and_a_transformers_folder(gpt2_tiny, gpt2_tiny_hf, tmp_path, capsys):
    """Both folders alone select GPT-2's tokenizer, the gpt2 blocks and their sizes; greedy text equals
    the API's and transformers'."""
    folder, enc, model = gpt2_tiny
    ids = enc.encode(['The quick brown fox'])[0]
    theirs, _ = hf_greedy(gpt2_tiny_hf[1], ids, 12)
    expected = f"The quick brown fox\n=> {enc.decode(theirs)}\n"
    for model_dir, what in ((folder, "GPT-2 release's TF checkpoint"), (gpt2_tiny_hf[0], 'Hugging Face')):
        log = tmp_path / f'{len(what)}.jsonl'
        assert gen.main(['--model_dir', str(model_dir), '--prompt', 'The quick brown fox', '--gen_len', '12',
                         '--greedy', '--log_path', str(log)]) == 0
        out, err = capsys.readouterr()
        assert out == expected and what in err
        settings = json.loads(log.read_text().splitlines()[0])
        assert (settings['arch'], settings['n_ctx'], settings['n_embd'], settings['n_layer'], settings['n_head']) == \
            ('gpt2', 128, 64, 2, 4)


def test_gpt2_cli_reads_a_folder_transformers_saved(tmp_path, capsys):
    """A gpt2 folder written by transformers' own save_pretrained, with GPT-2's vocab.json and merges.txt."""
    import shutil
    import transformers
    from text_utils import GPT2Encoder
    torch.manual_seed(0)
    theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=48,
                                                                  initializer_range=0.3)).eval()
    theirs.save_pretrained(tmp_path / 'hf')
    shutil.copyfile(GPT2_TINY / 'encoder.json', tmp_path / 'hf' / 'vocab.json')
    shutil.copyfile(GPT2_TINY / 'vocab.bpe', tmp_path / 'hf' / 'merges.txt')
    enc = GPT2Encoder(str(GPT2_TINY / 'encoder.json'), str(GPT2_TINY / 'vocab.bpe'))
    new, _ = hf_greedy(theirs, enc.encode(['Once upon a time'])[0], 10)
    assert gen.main(['--model_dir', str(tmp_path / 'hf'), '--prompt', 'Once upon a time', '--gen_len', '10',
                     '--greedy', '--log_path', str(tmp_path / 'g.jsonl')]) == 0
    assert capsys.readouterr().out == f"Once upon a time\n=> {enc.decode(new)}\n"


def test_gpt2_defaults_are_the_release_and_gpt1_defaults_stay(gpt2_tiny, shards, tmp_path, capsys):
    log = tmp_path / 'g2.jsonl'
    assert gen.main(['--model_dir', str(GPT2_TINY), '--prompt', 'Hi', '--seed', '0', '--log_path', str(log)]) == 0
    settings, sample = [json.loads(line) for line in log.read_text().splitlines()]
    assert (settings['topk'], settings['topp'], settings['temperature'], settings['filter_rule']) == \
        (0, 1.0, 1.0, 'release')
    assert settings['gen_len'] == 64 and len(sample['ids']) == 64  # the release's length: n_ctx // 2
    log = tmp_path / 'g1.jsonl'
    assert gen.main(cli_args(shards, '--prompt', 'hi', '--seed', '0', '--log_path', str(log))) == 0
    settings = json.loads(log.read_text().splitlines()[0])
    assert (settings['gen_len'], settings['topk'], settings['filter_rule']) == (20, 10, 'smallest')
    # --top_k and --top_p are --topk and --topp
    args = gen.parse_args(['--top_k', '40', '--top_p', '0.9'])
    assert (args.topk, args.topp) == (40, 0.9)


def test_gpt2_cli_samples_as_the_api_with_the_release_rule(gpt2_tiny, tmp_path, capsys):
    _, enc, model = gpt2_tiny
    ids = enc.encode(['In a shocking finding'])[0]
    new = generate(model, [ids] * 3, 9, top_k=40, top_p=0.9, temperature=0.8, seed=5, filter_rule='release')
    assert gen.main(['--model_dir', str(GPT2_TINY), '--prompt', 'In a shocking finding', '--gen_len', '9',
                     '--top_k', '40', '--top_p', '0.9', '--temperature', '0.8', '--seed', '5', '--n_samples', '3',
                     '--log_path', str(tmp_path / 'g.jsonl')]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'In a shocking finding' and len(lines) == 4
    assert lines[1:] == [f"=> {enc.decode(row)}" for row in new]
    assert len({tuple(row) for row in new}) > 1  # three draws, not one copied


def test_gpt2_unconditional_samples_start_from_endoftext(gpt2_tiny, tmp_path, capsys):
    _, enc, model = gpt2_tiny
    new = generate(model, [[EOT]] * 2, 7, seed=1, filter_rule='release')
    log = tmp_path / 'g.jsonl'
    assert gen.main(['--model_dir', str(GPT2_TINY), '--unconditional', '--n_samples', '2', '--gen_len', '7',
                     '--seed', '1', '--log_path', str(log)]) == 0
    assert capsys.readouterr().out == '<|endoftext|>\n' + ''.join(f"=> {enc.decode(row)}\n" for row in new)
    assert [json.loads(line)['ids'] for line in log.read_text().splitlines()[1:]] == new


def test_stop_id_ends_each_row_and_the_loop():
    """Token 0 is the most likely (.42): every row draws it soon, ends there, and the loop stops."""
    m = FixedLogitsLM(TOKEN_LOGITS)
    steps = list(iter_generate(m, [[1, 2, 3], [4], [5]], 50, seed=0, n_special=2, stop_id=0))
    assert len(steps) < 50
    rows = generate(m, [[1, 2, 3], [4], [5]], 50, seed=0, n_special=2, stop_id=0)
    for r, row in enumerate(rows):
        assert row[-1] == 0 and 0 not in row[:-1]
        assert [s.tokens[r] for s in steps][:len(row)] == row
        assert all(s.tokens[r] == 0 for s in steps[len(row):])  # a finished row repeats stop_id
    assert max(len(row) for row in rows) == len(steps)
    # without stop_id the same draws go on
    plain = generate(m, [[1, 2, 3], [4], [5]], 50, seed=0, n_special=2)
    assert [p[:len(row)] for p, row in zip(plain, rows)] == rows
    with pytest.raises(InputError, match=r'stop_id=8: expected a token id from 0 to 7'):
        generate(m, [1], 3, n_special=2, stop_id=8)


def test_cli_stop_at_eot_prints_the_text_before_it(gpt2_tiny, tmp_path, capsys, monkeypatch):
    _, enc, _ = gpt2_tiny
    seen = {}

    def fake_generate(model, prompt_ids, gen_len, **kw):
        seen.update(kw)
        return [[464, 2068, EOT]] + [[464, 2068, 7586]] * (len(prompt_ids) - 1)
    monkeypatch.setattr(gen, 'generate', fake_generate)
    log = tmp_path / 'g.jsonl'
    assert gen.main(['--model_dir', str(GPT2_TINY), '--prompt', 'x', '--n_samples', '2', '--stop_at_eot',
                     '--log_path', str(log)]) == 0
    assert capsys.readouterr().out == f"x\n=> {enc.decode([464, 2068])}\n=> {enc.decode([464, 2068, 7586])}\n"
    assert seen['stop_id'] == EOT
    assert json.loads(log.read_text().splitlines()[1])['ids'] == [464, 2068, EOT]


def test_cli_interactive_gpt2_streams_and_stops_at_eot(gpt2_tiny, tmp_path, capsys, monkeypatch):
    _, enc, _ = gpt2_tiny
    steps = [gen.GenerationStep(i, [t], None) for i, t in enumerate([464, 2068, EOT])]
    monkeypatch.setattr(gen, 'iter_generate', lambda *a, **kw: iter(steps))
    stdin = io.TextIOWrapper(io.BytesIO('Ünïcode\n'.encode('utf-8')), encoding='utf-8')
    assert gen.main(['--model_dir', str(GPT2_TINY), '--stop_at_eot', '--log_path', str(tmp_path / 'g.jsonl')],
                    stdin=stdin) == 0
    assert capsys.readouterr().out == f"=> {enc.decode([464, 2068])}\n"


def test_unconditional_and_stop_at_eot_need_gpt2s_vocabulary(shards, capsys):
    refused(cli_args(shards, '--unconditional'), capsys, r'--unconditional: the vocabulary of .* has no '
                                                          r'<\|endoftext\|> token')
    refused(cli_args(shards, '--prompt', 'hi', '--stop_at_eot'), capsys, r'--stop_at_eot: .* no <\|endoftext\|>')
    refused(cli_args(shards, '--prompt', 'hi', '--unconditional'), capsys, r'--unconditional with --prompt')
    refused(cli_args(shards, '--prompt', 'hi', '--n_samples', '0'), capsys, r'--n_samples 0: expected an integer')


def test_gpt2_prompt_longer_than_the_context_is_one_line(capsys, tmp_path):
    long_prompt = 'word ' * 199 + 'word'
    refused(['--model_dir', str(GPT2_TINY), '--prompt', long_prompt, '--log_path', str(tmp_path / 'g.jsonl')], capsys,
            r"a prompt of 200 tokens is more than the model's n_ctx=128 positions")


def test_text_that_is_not_utf8_is_one_line(gpt2_tiny, tmp_path, capsys):
    stdin = io.TextIOWrapper(io.BytesIO(b'caf\xe9 au lait\nhello\n'), encoding='utf-8')
    argv = ['--model_dir', str(GPT2_TINY), '--gen_len', '3', '--greedy', '--log_path', str(tmp_path / 'g.jsonl')]
    assert gen.main(argv, stdin=stdin) == 2
    out, err = capsys.readouterr()
    err = error_lines(err)
    assert err == ['generate.py: error: stdin line 1 is not UTF-8 text: byte 0xe9 at offset 3 (invalid continuation '
                   'byte); expected UTF-8']
    assert out.count('=> ') == 1  # the next line, continued
    bad = tmp_path / 'bad.txt'
    bad.write_bytes(b'na\xefve')
    refused(argv + ['--prompt_file', str(bad)], capsys, r'--prompt_file .*bad.txt is not UTF-8 text: byte 0xef at '
                                                        r'offset 2')
    refused(argv + ['--prompt_file', str(tmp_path / 'gone.txt')], capsys, r'gone.txt does not exist')
    good = tmp_path / 'good.txt'
    good.write_text('Two lines\nof prompt\n', encoding='utf-8')
    assert gen.main(argv + ['--prompt_file', str(good)]) == 0
    from_file = capsys.readouterr().out
    assert gen.main(argv + ['--prompt', 'Two lines\nof prompt']) == 0
    assert capsys.readouterr().out == from_file


def test_bf16_greedy_agrees_with_float32(gpt2_tiny):
    """bfloat16 keeps 8 significant bits, so each rounding (the weights, then every matrix product's
    output) is off by at most 2**-9 relatively; along the tiny model's path (embedding, two blocks,
    head) a handful of them add up, so the logits may differ by a few times 2**-8 of their size:
    allowed, 8 * 2**-8 of the largest logit. Wherever float32's top two logits lie further apart than
    twice the largest difference seen, bfloat16 must choose the same token."""
    folder, enc, model = gpt2_tiny
    bf16, _ = gen.build_model(str(folder), enc.vocab_size, 128, 64, 4, 2, arch='gpt2', dtype='bf16')
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    ids = enc.encode(['The quick brown fox jumps over the lazy dog.'])[0]
    f32_steps = list(iter_generate(model, ids, 30, greedy=True))
    bf16_steps = list(iter_generate(bf16, ids, 30, greedy=True))
    f32_logits = torch.stack([s.logits[0] for s in f32_steps])
    bf16_logits = torch.stack([s.logits[0] for s in bf16_steps])
    first = next((i for i, (a, b) in enumerate(zip(f32_steps, bf16_steps)) if a.tokens != b.tokens), 30)
    err = (f32_logits[:first + 1] - bf16_logits[:first + 1]).abs().max()
    assert err <= 8 * 2 ** -8 * f32_logits.abs().max()
    top2 = f32_logits.topk(2, dim=-1).values
    margins = top2[:, 0] - top2[:, 1]
    assert first == 30 or margins[first] <= 2 * err
    assert first >= 10  # the tiny checkpoint's margins (over 1) are far above the differences (about 0.03)


def test_the_transposed_output_layer_gives_the_same_logits():
    """From HEAD_COPY_MIN_TOKENS new tokens on a CPU the logits come from a transposed copy of the
    output rows: the same logits as the tied rows multiplied directly, and the model is left as it was."""
    m = build()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    n = gen.HEAD_COPY_MIN_TOKENS
    long = list(iter_generate(m, PROMPTS, n, greedy=True, n_special=N_SPECIAL))
    short = list(iter_generate(m, PROMPTS, n - 1, greedy=True, n_special=N_SPECIAL))
    for a, b in zip(long, short):
        assert a.tokens == b.tokens
        torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=1e-5)
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())
