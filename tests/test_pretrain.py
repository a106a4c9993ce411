"""pretrain.py: tiny pre-training runs (char mode on a few KB of text, BPE on a tiny
text with the real vocabulary), resume, the output folder in generate.py and train.py,
and every bad input as a one-line error."""
import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import finetune
import generate
import pretrain
import pretraining
import task_data
import text_utils
import train
from errors import DataError, InputError
from helpers import flags_without_default, help_chunks, tf_shapes, write_tf_checkpoint
from opt import warmup_cosine
from tests.conftest import BPE_PATH, ENCODER_PATH, ROOT
from text_utils import CharTokenizer
from token_store import open_token_store

TINY = ['--n_layer', '1', '--n_embd', '32', '--n_head', '2', '--n_ctx', '32', '--n_batch', '8']
WORDS = 'the cat sat on a mat and then it ran to the house where a dog was sleeping near an old tree'.split()


def write_corpus(folder, n_docs=6, n_lines=40, seed=0):
    """n_docs text files of n_lines random sentences over WORDS (about 2 KB each)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(n_docs):
        lines = [' '.join(rng.choice(WORDS, 10)) + '.\n' for _ in range(n_lines)]
        (folder / f'{d}.txt').write_text(''.join(lines), encoding='utf-8')
    return folder


def argv(tmp_path, name, data, *extra):
    return ['--data', str(data), '--tokenizer', 'char', *TINY, '--log_dir', str(tmp_path / name / 'log'),
            '--save_dir', str(tmp_path / name / 'save'), '--cache_dir', str(tmp_path / 'cache'), '--lr', '3e-3',
            '--warmup_updates', '4', '--valid_fraction', '0.3', '--device', 'cpu', *extra]


def log_entries(path):
    lines = [json.loads(line) for line in open(path, encoding='utf-8')]
    return lines[0], lines[1:]


def one_line_error(capsys, args):
    """pretrain.main(args) exits with status 2 and its last stderr line is the error; returns that line."""
    with pytest.raises(SystemExit) as exc:
        pretrain.main(args)
    assert exc.value.code == 2
    line = capsys.readouterr().err.replace('\r', '\n').strip().splitlines()[-1]
    assert line.startswith('pretrain.py: error: ')
    return line


# ------------------------------------------------------------------ zero-shot curves (figure 2, right)

def test_zero_shot_tasks_are_scored_at_every_validation_and_drawn_against_chance(tmp_path, rocstories_dir):
    """--zero_shot rocstories logs zs_rocstories at each validation; the last value is the heuristic's
    accuracy on the model folder the run wrote, scored afresh; the plot has a zero-shot panel."""
    from PIL import Image
    from heuristics import evaluate_task, prepare_task
    from lm_scores import load_language_model

    data = write_corpus(tmp_path / 'corpus', n_docs=4, n_lines=20)
    flags = argv(tmp_path, 'zs', data, '--max_updates', '6', '--eval_every', '3', '--zero_shot', 'rocstories',
                 '--zero_shot_dir', str(rocstories_dir), '--zero_shot_examples', '24')
    flags[flags.index('char')] = 'bpe'
    result = pretrain.run(pretrain.parse_args(flags + ['--encoder_path', str(ENCODER_PATH), '--bpe_path',
                                                       str(BPE_PATH)]), verbose=False)
    settings, entries = log_entries(result['log_path'])
    assert settings['zero_shot_chance'] == {'rocstories': 50.0}
    assert [e['n_updates'] for e in entries] == [3, 6] and all(0 <= e['zs_rocstories'] <= 100 for e in entries)
    lm = load_language_model(result['model_dir'])
    task = prepare_task('rocstories', str(rocstories_dir), lm.tokenizer, lm.n_ctx, n_examples=24)
    accuracy = evaluate_task(lm, None, task, verbose=False).metrics['accuracy']
    assert accuracy == pytest.approx(entries[-1]['zs_rocstories'])
    png = os.path.splitext(result['log_path'])[0] + '.png'
    assert 'zero-shot: zs_rocstories' in Image.open(png).text['Description']


@pytest.mark.parametrize('extra, expected', [
    (['--zero_shot', 'rocstories', '--objective', 'mlm'], '--zero_shot rocstories: expected --objective lm'),
    (['--zero_shot', 'squad'], '--zero_shot squad: expected tasks among rocstories, race, sst2, dprd, cola'),
    (['--zero_shot_examples', '-1'], '--zero_shot_examples -1: expected an integer >= 0'),
])
def test_bad_zero_shot_flags_are_one_line_errors(tmp_path, capsys, extra, expected):
    assert expected in one_line_error(capsys, argv(tmp_path, 'x', tmp_path, *extra))


# ------------------------------------------------------------------ char mode

def test_char_run_lowers_the_validation_loss_and_generate_continues_it(tmp_path, capsys):
    data = write_corpus(tmp_path / 'corpus')
    result = pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, '--n_iter', '2', '--max_updates', '40',
                                                   '--eval_every', '25')), verbose=False)
    settings, entries = log_entries(result['log_path'])
    assert settings['tokenizer'] == 'char' and settings['lr_schedule'] == 'warmup_cosine'
    assert [e['n_updates'] for e in entries] == [25, 40]
    assert {'n_updates', 'tr_loss', 'va_loss', 'va_ppl', 'lr', 'tokens_per_s'} <= set(entries[0])
    vocab = CharTokenizer.load(result['model_dir'])
    text = ''.join(p.read_text() for p in sorted(data.iterdir()))
    assert vocab.chars == sorted(set(text))  # the corpus' characters
    # the untrained model's loss on the same validation split, as the baseline
    args = pretrain.parse_args(argv(tmp_path, 'a', data))
    store = pretrain.load_corpus(args, vocab, verbose=False)
    torch.manual_seed(args.run.seed)
    untrained, _ = pretrain.evaluate_lm(pretrain.build_model(args, vocab.vocab_size), store['valid'], 32,
                                        vocab.vocab_size)
    assert untrained > math.log(vocab.vocab_size) - 0.5  # about uniform
    assert entries[1]['va_loss'] < entries[0]['va_loss'] < untrained - 1.0
    assert math.isclose(entries[1]['va_ppl'], math.exp(entries[1]['va_loss']))
    assert result['va_loss'] == entries[1]['va_loss']
    t_total = settings['t_total']
    for e in entries:  # the schedule's rate of the update logged: OpenAIAdam's lr_t less the bias correction
        assert e['lr'] == pytest.approx(3e-3 * warmup_cosine((e['n_updates'] - 1) / t_total, 4 / t_total))

    log = tmp_path / 'g.jsonl'
    status = generate.main(['--model_dir', result['model_dir'], '--prompt', 'the cat ', '--gen_len', '20',
                            '--seed', '0', '--log_path', str(log)])
    assert status == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'the cat ' and out[1].startswith('=> ')
    gen_settings, gens = log_entries(log)
    assert gen_settings['n_ctx'] == 32 and gen_settings['n_embd'] == 32  # read from config.json
    assert len(gens[0]['ids']) == 20 and gens[0]['continuation'] == vocab.decode(gens[0]['ids'])
    assert out[1] == '=> ' + gens[0]['continuation'] and set(gens[0]['continuation']) <= set(vocab.chars)


def test_bf16_autocast_runs_on_the_cpu_and_follows_float32(tmp_path):
    data = write_corpus(tmp_path / 'corpus', n_docs=3)
    runs = {amp: pretrain.run(pretrain.parse_args(argv(tmp_path, amp, data, '--amp', amp, '--max_updates', '20',
                                                       '--eval_every', '10')), verbose=False)
            for amp in ('none', 'bf16')}
    entries = {amp: log_entries(r['log_path'])[1] for amp, r in runs.items()}
    assert log_entries(runs['bf16']['log_path'])[0]['amp'] == 'bf16'
    assert entries['bf16'][1]['va_loss'] < entries['bf16'][0]['va_loss']
    for a, b in zip(entries['none'], entries['bf16']):  # bfloat16 matmuls, float32 weights, softmax and loss
        assert abs(a['va_loss'] - b['va_loss']) < 0.05


def test_gpt2_layout_trains_and_generate_reads_its_folder(tmp_path, capsys):
    data = write_corpus(tmp_path / 'corpus', n_docs=3)
    result = pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, '--arch', 'gpt2', '--n_iter', '2',
                                                   '--max_updates', '20', '--eval_every', '10')), verbose=False)
    _, entries = log_entries(result['log_path'])
    assert entries[1]['va_loss'] < entries[0]['va_loss']
    assert json.load(open(os.path.join(result['model_dir'], 'config.json')))['model_type'] == 'gpt2'
    args = pretrain.parse_args(argv(tmp_path, 'b', data, '--arch', 'gpt2', '--init', 'pretrained', '--model_dir',
                                    result['model_dir']))
    tok = pretrain.build_tokenizer(args)
    model = pretrain.build_model(args, tok.vocab_size)
    assert model.transformer.arch == 'gpt2'
    expected = tok.decode(generate.generate(model, tok.encode(['the dog'])[0], 12, greedy=True))
    assert generate.main(['--model_dir', result['model_dir'], '--prompt', 'the dog', '--gen_len', '12', '--greedy',
                          '--log_path', str(tmp_path / 'g.jsonl')]) == 0
    assert capsys.readouterr().out == f"the dog\n=> {expected}\n"


def test_the_defaults_are_the_papers_recipe(tmp_path):
    cfg = pretrain.parse_args(['--data', str(tmp_path), '--encoder_path', str(ENCODER_PATH), '--bpe_path',
                               str(BPE_PATH)])
    args = argparse.Namespace(**cfg.flat())
    assert (args.n_ctx, args.n_batch, args.n_acc, args.n_layer, args.n_embd, args.n_head) == (512, 64, 1, 12, 768, 12)
    assert (args.lr, args.lr_schedule, args.warmup_updates, args.l2, args.vector_l2) == (
        2.5e-4, 'warmup_cosine', 2000, 0.01, False)
    assert (args.embd_pdrop, args.attn_pdrop, args.resid_pdrop, args.afn) == (0.1, 0.1, 0.1, 'gelu')
    assert (args.tokenizer, args.arch, args.init) == ('bpe', 'gpt1', 'random')
    small = pretrain.parse_args(['--data', str(tmp_path), '--tokenizer', 'char', *TINY])
    model = pretrain.build_model(small, 10)
    opt = pretrain.make_optimizer(cfg, model, t_total=100000)
    group = opt.param_groups[0]
    assert (group['lr'], group['schedule'], group['warmup'], group['t_total']) == (
        2.5e-4, 'warmup_cosine', 2000 / 100000, 100000)
    assert (group['l2'], group['vector_l2'], group['max_grad_norm']) == (0.01, False, 1)
    # one update of 64 windows of 512 tokens: t_total is n_iter epochs of the training tokens
    assert pretrain.n_updates_total(64 * 512 * 10 + 1, cfg) == 11 * 100


def test_evaluate_lm_is_the_mean_cross_entropy_of_every_prediction(tmp_path):
    data = write_corpus(tmp_path / 'corpus', n_docs=2)
    args = pretrain.parse_args(argv(tmp_path, 'e', data, '--n_ctx', '16'))
    tok = pretrain.build_tokenizer(args)
    split = pretrain.load_corpus(args, tok, verbose=False)['valid']
    torch.manual_seed(0)
    model = pretrain.build_model(args, tok.vocab_size).eval()
    loss, ppl = pretrain.evaluate_lm(model, split, 16, tok.vocab_size, n_batch=3)
    ids = np.asarray(split.tokens, dtype=np.int64)
    total, count = 0.0, 0
    for start in range(0, len(ids) - 15, 16):  # every whole window, one at a time
        window = ids[start:start + 16]
        x = torch.stack((torch.tensor(window), tok.vocab_size + torch.arange(16)), -1)[None]
        with torch.no_grad():
            logp = F.log_softmax(model(x)[0].double(), -1).numpy()
        total -= sum(logp[t, window[t + 1]] for t in range(15))
        count += 15
    assert count == (len(ids) // 16) * 15
    assert loss == pytest.approx(total / count, rel=1e-6) and ppl == pytest.approx(math.exp(total / count))


# ------------------------------------------------------------------ resume

def straight_and_resumed(tmp_path, monkeypatch, data, extra, kill_at):
    """(run 'a' of the flags `extra`, uninterrupted; run 'b', killed during update kill_at,
    then resumed): their results."""
    straight = pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, *extra)), verbose=False)
    real, calls = pretrain.train_update, []

    def killed(*a, **k):
        calls.append(1)
        if len(calls) == kill_at:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(pretrain, 'train_update', killed)
    with pytest.raises(KeyboardInterrupt):
        pretrain.run(pretrain.parse_args(argv(tmp_path, 'b', data, *extra)), verbose=False)
    monkeypatch.setattr(pretrain, 'train_update', real)
    return straight, pretrain.run(pretrain.parse_args(argv(tmp_path, 'b', data, *extra, '--resume')), verbose=False)


def timeless_entries(result):
    """A run's log entries without the fields that depend on the machine's speed."""
    return [{k: v for k, v in e.items() if k not in ('time', 'tokens_per_s')} for e in log_entries(
        result['log_path'])[1]]


def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path, monkeypatch, one_thread):
    data = write_corpus(tmp_path / 'corpus')
    extra = ['--n_iter', '1', '--max_updates', '12', '--eval_every', '3', '--n_acc', '2', '--n_batch', '4']
    # killed during update 8: the checkpoint of update 6 is the last
    straight, resumed = straight_and_resumed(tmp_path, monkeypatch, data, extra, kill_at=8)
    assert resumed['n_updates'] == straight['n_updates'] == 12

    a, b = load_file(os.path.join(straight['model_dir'], 'model.safetensors')), \
        load_file(os.path.join(resumed['model_dir'], 'model.safetensors'))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert timeless_entries(straight) == timeless_entries(resumed) and len(timeless_entries(straight)) == 4
    with pytest.raises(InputError, match='--resume: --lr is 0.001 but the checkpoint'):
        pretrain.run(pretrain.parse_args(argv(tmp_path, 'b', data, *extra, '--resume', '--lr', '1e-3')),
                     verbose=False)


def test_dropout_masks_int_by_default_in_every_transformer_and_older_checkpoints_resume_with_bernoulli(tmp_path,
                                                                                                      monkeypatch):
    data = write_corpus(tmp_path / 'corpus', n_docs=3)
    for extra, want in [([], True), (['--dropout_masks', 'bernoulli'], False),
                        (['--objective', 'electra'], True),
                        (['--objective', 'electra', '--dropout_masks', 'bernoulli'], False)]:
        model = pretrain.build_model(pretrain.parse_args(argv(tmp_path, 'x', data, *extra)), 40)
        found = [m.int_masks for m in model.modules() if isinstance(m, pretraining.TransformerModel)]
        assert found == [want] * (2 if 'electra' in extra else 1)
    extra = ['--n_iter', '1', '--max_updates', '2', '--eval_every', '1']
    real, calls = pretrain.train_update, []

    def killed(*a, **k):  # during update 2: the checkpoint of update 1 is the last
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(pretrain, 'train_update', killed)
    with pytest.raises(KeyboardInterrupt):
        pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, *extra)), verbose=False)
    monkeypatch.setattr(pretrain, 'train_update', real)
    path = tmp_path / 'a' / 'save' / 'pretrain' / 'last_checkpoint.pt'
    blob = torch.load(path, weights_only=False)
    del blob['flags']['dropout_masks']  # as written before the flag existed: its runs drew bernoulli masks
    torch.save(blob, path)
    with pytest.raises(InputError, match=r"--resume: --dropout_masks is 'int' but the checkpoint .* '\(not set\)'"):
        pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, *extra, '--resume')), verbose=False)
    resumed = pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, *extra, '--resume', '--dropout_masks',
                                                    'bernoulli')), verbose=False)
    assert resumed['n_updates'] == 2


@pytest.mark.slow
def test_torchrun_two_processes_share_the_work_and_the_validation(tmp_path):
    """2 processes (gloo on the CPU): the log's final validation loss, summed over the two
    ranks' shares of the windows, equals one process's evaluate_lm of the saved model."""
    data = write_corpus(tmp_path / 'corpus')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
           str(ROOT / 'pretrain.py'), *argv(tmp_path, 'a', data, '--n_iter', '1', '--max_updates', '6',
                                          '--eval_every', '3', '--n_batch', '4')]
    env = {k: v for k, v in os.environ.items() if k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK')}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env={**env, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    settings, entries = log_entries(tmp_path / 'a' / 'log' / 'pretrain.jsonl')
    assert settings['world_size'] == 2 and [e['n_updates'] for e in entries] == [3, 6]
    folder = tmp_path / 'a' / 'save' / 'pretrain' / 'model'
    args = pretrain.parse_args(argv(tmp_path, 'a', data, '--n_batch', '4', '--init', 'pretrained',
                                    '--model_dir', str(folder)))
    tok = pretrain.build_tokenizer(args)
    model = pretrain.build_model(args, tok.vocab_size)
    loss, _ = pretrain.evaluate_lm(model, pretrain.load_corpus(args, tok, verbose=False)['valid'], 32,
                                   tok.vocab_size)
    assert entries[-1]['va_loss'] == pytest.approx(loss, rel=1e-5)


# ------------------------------------------------------------------ BPE, train.py and continued runs

def test_bpe_output_loads_in_train_and_generate(tmp_path, capsys, monkeypatch, rocstories_dir, encoder_path,
                                                bpe_path):
    data = tmp_path / 'story.jsonl'
    stories = [' '.join(np.random.default_rng(i).choice(WORDS, 60)) for i in range(12)]
    data.write_text(''.join(json.dumps({'text': s}) + '\n' for s in stories))
    args = ['--data', str(data), '--tokenizer', 'bpe', '--encoder_path', str(encoder_path), '--bpe_path',
            str(bpe_path), '--n_layer', '1', '--n_embd', '16', '--n_head', '2', '--n_ctx', '24', '--n_batch', '4',
            '--n_iter', '1', '--max_updates', '3', '--valid_fraction', '0.2', '--log_dir', str(tmp_path / 'log'),
            '--save_dir', str(tmp_path / 'save'), '--device', 'cpu']
    result = pretrain.run(pretrain.parse_args(args), verbose=False)
    folder = result['model_dir']
    assert sorted(os.listdir(folder)) == ['config.json', 'merges.txt', 'model.safetensors', 'vocab.json']
    assert json.load(open(os.path.join(folder, 'config.json')))['vocab_size'] == 40478
    # documents end with one newline symbol each
    store = pretrain.load_corpus(pretrain.parse_args(args), pretrain.build_tokenizer(pretrain.parse_args(args)),
                                 verbose=False)
    newline = pretrain.build_tokenizer(pretrain.parse_args(args)).newline_id
    assert store['meta']['n_docs'] == 12
    assert (np.asarray(store['train'].tokens) == newline).sum() == len(store['train'].offsets)
    saved = load_file(os.path.join(folder, 'model.safetensors'))

    assert generate.main(['--model_dir', folder, '--prompt', 'the cat sat', '--gen_len', '5', '--greedy',
                          '--log_path', str(tmp_path / 'g.jsonl')]) == 0
    assert capsys.readouterr().out.startswith('the cat sat\n=> ')

    targs = train.parse_args(['--model_dir', folder, '--data_dir', str(rocstories_dir), '--n_layer', '1',
                              '--n_embd', '16', '--n_head', '2', '--n_ctx', '24', '--truncate'])
    assert (targs.source.encoder_path, targs.source.bpe_path) == (os.path.join(folder, 'vocab.json'),
                                                                  os.path.join(folder, 'merges.txt'))
    train.check_inputs(targs, writes=False)
    data_roc = task_data.make_roc_data(text_utils.TextEncoder(targs.source.encoder_path, targs.source.bpe_path),
                                   _tiny_roc_encoded(), targs.source.n_ctx, truncate=True)
    model = finetune.build_model(targs, data_roc)
    emb = model.transformer.embed.weight.detach()
    assert torch.equal(emb[:40478], saved['transformer.tokens_embed.weight'])
    assert torch.equal(emb[40478 + 3:], saved['transformer.positions_embed.weight'][:data_roc.n_ctx])
    assert torch.equal(model.transformer.h[0].attn.c_attn.w.detach(), saved['transformer.h.0.attn.c_attn.weight'])
    # and finetunes: a whole train.py run (one update on four tiny stories)
    monkeypatch.setattr(task_data, 'encode_rocstories', lambda a, verbose=True: (data_roc.text_encoder,
                                                                              _tiny_roc_encoded()))
    out = train.run(train.parse_args(['--model_dir', folder, '--data_dir', str(rocstories_dir), '--n_layer', '1',
                                      '--n_embd', '16', '--n_head', '2', '--n_ctx', '24', '--truncate', '--n_batch',
                                      '2', '--n_iter', '1', '--log_dir', str(tmp_path / 'ft'), '--save_dir',
                                      str(tmp_path / 'ft')]), verbose=False)
    assert out['n_updates'] == 1
    assert log_entries(out['log_path'])[0]['checkpoint_format'] == 'hf'


def _tiny_roc_encoded():
    """Four stories of token ids in ROCStories' shape (train, valid, test)."""
    x = [[5, 6, 7], [8, 9]]
    split = ([x[0], x[1]], [[10], [11]], [[12], [13, 14]])
    return ((*split, [0, 1]), (*split, [1, 0]), split)


def test_continuing_from_our_own_folder_and_from_openai_shards(tmp_path):
    data = write_corpus(tmp_path / 'corpus', n_docs=3)
    first = pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, '--n_iter', '1', '--max_updates', '2')),
                         verbose=False)
    args = pretrain.parse_args(argv(tmp_path, 'b', data, '--init', 'pretrained', '--model_dir', first['model_dir']))
    tok = pretrain.build_tokenizer(args)
    assert tok.chars == CharTokenizer.load(first['model_dir']).chars
    model = pretrain.build_model(args, tok.vocab_size)
    saved = load_file(os.path.join(first['model_dir'], 'model.safetensors'))
    assert torch.equal(model.transformer.h[0].mlp.c_fc.w.detach(), saved['transformer.h.0.mlp.c_fc.weight'])

    shards = tmp_path / 'shards'
    arrays = write_tf_checkpoint(shards, tf_shapes(1, 16, 40478))
    args = pretrain.parse_args(['--data', str(data), '--init', 'pretrained', '--model_dir', str(shards),
                                '--encoder_path', str(ENCODER_PATH), '--bpe_path', str(BPE_PATH), '--n_layer', '1',
                                '--n_embd', '16', '--n_head', '2', '--n_ctx', '64'])
    model = pretrain.build_model(args, pretrain.build_tokenizer(args).vocab_size)
    np.testing.assert_array_equal(model.transformer.embed.weight.detach()[40478:].numpy(), arrays[0][:64])
    np.testing.assert_array_equal(model.transformer.h[0].ln_2.g.detach().numpy(), arrays[2 + 10])


# ------------------------------------------------------------------ bad input

def test_bad_corpora_are_one_line_errors(tmp_path, capsys):
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert 'no text found' in one_line_error(capsys, argv(tmp_path, 'x', empty))
    (empty / 'blank.txt').write_text(' \n\t\n')
    assert 'empty or only whitespace' in one_line_error(capsys, argv(tmp_path, 'x', empty))
    (empty / 'blank.txt').write_text('a short text\n')
    line = one_line_error(capsys, argv(tmp_path, 'x', empty / 'blank.txt'))
    assert 'the corpus is 13 tokens, fewer than one window of --n_ctx 32: expected at least 32 tokens' in line
    data = write_corpus(tmp_path / 'corpus', n_docs=1, n_lines=8)  # one document: valid is its last 30%
    n_tokens = len((data / '0.txt').read_text())
    n_valid, n_ctx = int(n_tokens * 0.3), int(n_tokens * 0.6)  # too short for a window in each split
    line = one_line_error(capsys, argv(tmp_path, 'x', data, '--n_ctx', str(n_ctx)))
    assert f'the validation split is {n_valid} tokens, fewer than one window of --n_ctx {n_ctx}' in line
    many = tmp_path / 'many'
    many.mkdir()
    (many / 'chars.txt').write_text(''.join(chr(i) for i in range(0x10000, 0x10000 + 70000)), encoding='utf-8')
    assert f'--data {many}: the corpus has 70001 distinct characters: a character vocabulary holds at most 65536' in (
        one_line_error(
            capsys, argv(tmp_path, 'x', many, '--max_updates', '1')))  # 70000 and the newline


def test_a_few_dozen_small_files_get_a_validation_split_with_the_default_flags(tmp_path):
    data = write_corpus(tmp_path / 'corpus', n_docs=36, n_lines=6)
    args = pretrain.parse_args(['--data', str(data), '--encoder_path', str(ENCODER_PATH), '--bpe_path', str(BPE_PATH),
                                '--cache_dir', str(tmp_path / 'cache')])
    store = pretrain.load_corpus(args, pretrain.build_tokenizer(args), verbose=False)
    meta = store['meta']
    assert args.corpus.valid_fraction == 0.01 and meta['n_docs'] == 36
    assert meta['n_valid_tokens'] >= args.source.n_ctx and meta['n_train_tokens'] >= args.source.n_ctx
    assert len(store['valid']) + len(store['train']) == meta['n_valid_tokens'] + meta['n_train_tokens']


def test_non_utf8_files_are_skipped_with_a_count_or_refused_with_strict(tmp_path, capsys):
    data = write_corpus(tmp_path / 'corpus', n_docs=4)
    (data / 'latin1.txt').write_bytes('caf\xe9 au lait\n'.encode('latin-1'))
    result = pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, '--n_iter', '1', '--max_updates', '1',
                                                   '--warmup_updates', '1000')), verbose=False)
    settings, entries = log_entries(result['log_path'])
    assert settings['n_skipped_files'] == 1 and settings['n_docs'] == 4
    assert 'latin1.txt: not UTF-8 near line 1' in entries[0]['warning'] and 'n_updates' not in entries[0]
    assert entries[1]['warning'].startswith(f"--warmup_updates 1000 is not less than the run's {settings['t_total']} "
                                            f"updates: the learning rate only warms up")
    assert [e['n_updates'] for e in entries[2:]] == [1]
    line = one_line_error(capsys, argv(tmp_path, 'b', data, '--strict'))
    assert 'latin1.txt: not UTF-8 near line 1' in line


def test_a_store_of_another_tokenizer_is_never_read(tmp_path):
    data = write_corpus(tmp_path / 'corpus', n_docs=2)
    args = pretrain.parse_args(argv(tmp_path, 'a', data))
    first = pretrain.load_corpus(args, pretrain.build_tokenizer(args), verbose=False)
    other = CharTokenizer(pretrain.build_tokenizer(args).chars + ['Z'])
    second = pretrain.load_corpus(args, other, verbose=False)
    assert first['folder'] != second['folder'] and len(os.listdir(tmp_path / 'cache')) == 2
    with pytest.raises(DataError, match='built with tokenizer .* not this one'):
        open_token_store(first['folder'], other)


def test_an_interrupted_save_leaves_the_earlier_folder_whole(tmp_path, monkeypatch):
    data = write_corpus(tmp_path / 'corpus', n_docs=2)
    args = pretrain.parse_args(argv(tmp_path, 'a', data))
    tok = pretrain.build_tokenizer(args)
    model = pretrain.build_model(args, tok.vocab_size)
    folder = tmp_path / 'out'
    pretrain.save_model_folder(model, folder, tok)
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    import safetensors.torch

    def killed(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(safetensors.torch, 'save_file', killed)
    with torch.no_grad():
        model.transformer.embed.weight.add_(1)
    with pytest.raises(KeyboardInterrupt):
        pretrain.save_model_folder(model, folder, tok)
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before
    assert sorted(os.listdir(tmp_path)) == ['corpus', 'out']  # no temporary folder left
    with pytest.raises(KeyboardInterrupt):
        pretrain.save_model_folder(model, tmp_path / 'new', tok)
    assert not (tmp_path / 'new').exists()


@pytest.mark.parametrize('extra, expected', [
    (['--valid_fraction', '1'], '--valid_fraction 1.0: expected a fraction in [0, 1)'),
    (['--n_ctx', '1'], '--n_ctx 1: expected at least 2 tokens'),
    (['--warmup_updates', '0'], '--warmup_updates 0: expected a positive integer'),
    (['--n_head', '5'], '--n_head 5: expected a divisor of n_embd 32'),
    (['--b1', '2'], '--b1 2.0:'),
    (['--resume', '--overwrite'], '--resume continues the earlier run and --overwrite deletes it'),
])
def test_bad_flags_are_one_line_errors(tmp_path, capsys, extra, expected):
    assert expected in one_line_error(capsys, argv(tmp_path, 'x', tmp_path, *extra))


def test_a_run_folder_that_is_the_token_cache_is_refused(tmp_path, capsys):
    line = one_line_error(capsys, ['--data', str(tmp_path), '--tokenizer', 'char', '--save_dir', str(tmp_path),
                                   '--desc', 'tokens'])
    assert f"--desc tokens: its run folder {tmp_path / 'tokens'} is the token cache" in line


def test_bad_files_for_the_flags_are_one_line_errors(tmp_path, capsys):
    data = write_corpus(tmp_path / 'corpus', n_docs=1)
    line = one_line_error(capsys, argv(tmp_path, 'x', tmp_path / 'nowhere'))
    assert 'nowhere: no such file or folder' in line
    line = one_line_error(capsys, argv(tmp_path, 'x', data, '--init', 'pretrained', '--model_dir', str(tmp_path)))
    assert f'--model_dir {tmp_path}:' in line and 'holds no checkpoint' in line
    shards = tmp_path / 'shards'
    write_tf_checkpoint(shards, tf_shapes(1, 32, 40478))
    line = one_line_error(capsys, argv(tmp_path, 'x', data, '--init', 'pretrained', '--model_dir', str(shards)))
    assert 'no char_vocab.json; --tokenizer char --init pretrained continues a character model' in line
    line = one_line_error(capsys, argv(tmp_path, 'x', data, '--tokenizer', 'bpe', '--model_dir', str(tmp_path)))
    assert '--encoder_path' in line and 'no such file' in line
    (tmp_path / 'x' / 'log').mkdir(parents=True)
    (tmp_path / 'x' / 'log' / 'pretrain.jsonl').write_text('{}\n')
    line = one_line_error(capsys, argv(tmp_path, 'x', data))
    assert '--desc pretrain: an earlier run of that name left' in line
    line = one_line_error(capsys, argv(tmp_path, 'x', data, '--resume'))
    assert '--resume: ' in line and 'last_checkpoint.pt does not exist' in line


# ------------------------------------------------------------------ --objective mlm and electra

@pytest.mark.parametrize('objective', ['mlm', 'electra'])
def test_mlm_and_electra_runs_lower_their_losses_and_write_a_bidirectional_folder(tmp_path, capsys, one_thread,
                                                                                   objective):
    data = write_corpus(tmp_path / 'corpus')
    extra = ['--objective', objective, '--n_iter', '2', '--max_updates', '40', '--eval_every', '20']
    result = pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, *extra)), verbose=False)
    settings, entries = log_entries(result['log_path'])
    stats = ['mlm_loss', 'mlm_acc'] if objective == 'mlm' else ['mlm_loss', 'disc_loss', 'gen_acc', 'disc_acc']
    assert [e['n_updates'] for e in entries] == [20, 40]
    assert all({f'tr_{k}' for k in stats} | {f'va_{k}' for k in stats} <= set(e) for e in entries)
    assert entries[-1]['va_ppl'] is None and result['va_loss'] == entries[-1]['va_loss']
    # the untrained model's statistics on the same validation windows, masked alike
    args = pretrain.parse_args(argv(tmp_path, 'a', data, *extra))
    tok = pretrain.build_tokenizer(args)
    torch.manual_seed(args.run.seed)
    untrained = pretrain.evaluate_objective(pretrain.build_model(args, tok.vocab_size),
                                            pretrain.load_corpus(args, tok, verbose=False)['valid'], 32,
                                            tok.vocab_size + 1, 8, seed=args.run.seed)
    margin = 0.3 if objective == 'mlm' else 0.15  # electra's generator is a quarter as wide
    assert entries[-1]['va_mlm_loss'] < untrained['mlm_loss'] - margin, (untrained, entries)
    if objective == 'electra':
        assert entries[-1]['va_disc_loss'] < untrained['disc_loss'] - 0.1, (untrained, entries)
        assert entries[-1]['va_loss'] == pytest.approx(entries[-1]['va_mlm_loss'] + 50 * entries[-1]['va_disc_loss'])

    # the output: the encoder without the mask token's row, bidirectional; the generator beside it
    folder = result['model_dir']
    config = json.load(open(os.path.join(folder, 'config.json')))
    assert config['causal'] is False and config['vocab_size'] == tok.vocab_size
    trained = torch.load(os.path.join(os.path.dirname(folder), 'last_checkpoint.pt'), weights_only=True)['model']
    embed = trained['discriminator.embed.weight' if objective == 'electra' else 'generator.embed.weight']
    saved = load_file(os.path.join(folder, 'model.safetensors'))
    assert torch.equal(saved['transformer.tokens_embed.weight'], embed[:tok.vocab_size])
    assert torch.equal(saved['transformer.positions_embed.weight'], embed[tok.vocab_size + 1:])
    generator = os.path.join(os.path.dirname(folder), pretrain.GENERATOR)
    assert os.path.isfile(generator) == (objective == 'electra')
    if objective == 'electra':
        assert torch.equal(load_file(generator)['h.0.attn.c_attn.w'], trained['generator.h.0.attn.c_attn.w'])
        assert load_file(generator)['h.0.attn.c_attn.w'].shape == (8, 24)  # a quarter of 32 wide
    with pytest.raises(SystemExit):
        generate.main(['--model_dir', folder, '--prompt', 'the cat', '--log_path', str(tmp_path / 'g.jsonl')])
    assert 'has causal false, a bidirectional encoder' in capsys.readouterr().err


def test_an_electra_run_resumed_equals_the_uninterrupted_one(tmp_path, monkeypatch, one_thread):
    data = write_corpus(tmp_path / 'corpus')
    extra = ['--objective', 'electra', '--n_iter', '1', '--max_updates', '6', '--eval_every', '2', '--n_acc', '2',
             '--n_batch', '4']
    # killed during update 4: the checkpoint of update 2 is the last
    straight, resumed = straight_and_resumed(tmp_path, monkeypatch, data, extra, kill_at=4)
    for name in ('model/model.safetensors', pretrain.GENERATOR):
        a, b = (load_file(os.path.join(os.path.dirname(r['model_dir']), name)) for r in (straight, resumed))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert timeless_entries(straight) == timeless_entries(resumed) and len(timeless_entries(straight)) == 3
    with pytest.raises(InputError, match="--resume: --disc_weight is 10.0 but the checkpoint .* with 50.0"):
        pretrain.run(pretrain.parse_args(argv(tmp_path, 'b', data, *extra, '--resume', '--disc_weight', '10')),
                     verbose=False)


def test_electra_output_finetunes_in_train_and_the_estimators(tmp_path, capsys, monkeypatch, rocstories_dir,
                                                              encoder_path, bpe_path, one_thread):
    data = tmp_path / 'story.jsonl'
    stories = [' '.join(np.random.default_rng(i).choice(WORDS, 60)) for i in range(12)]
    data.write_text(''.join(json.dumps({'text': s}) + '\n' for s in stories))
    args = ['--data', str(data), '--tokenizer', 'bpe', '--encoder_path', str(encoder_path), '--bpe_path',
            str(bpe_path), '--n_layer', '1', '--n_embd', '16', '--n_head', '2', '--n_ctx', '24', '--n_batch', '4',
            '--n_iter', '1', '--max_updates', '2', '--valid_fraction', '0.2', '--log_dir', str(tmp_path / 'log'),
            '--save_dir', str(tmp_path / 'save'), '--device', 'cpu', '--objective', 'electra']
    folder = pretrain.run(pretrain.parse_args(args), verbose=False)['model_dir']
    assert json.load(open(os.path.join(folder, 'config.json')))['vocab_size'] == 40478  # no _mask_ row

    flags = ['--model_dir', folder, '--data_dir', str(rocstories_dir), '--n_layer', '1', '--n_embd', '16',
             '--n_head', '2', '--n_ctx', '24', '--truncate', '--n_batch', '2', '--n_iter', '1', '--log_dir',
             str(tmp_path / 'ft'), '--save_dir', str(tmp_path / 'ft')]
    with pytest.raises(SystemExit):
        train.main(flags + ['--lm_coef', '0.5'])  # given explicitly: refused
    assert "--lm_coef 0.5: --model_dir" in capsys.readouterr().err.strip().splitlines()[-1]
    monkeypatch.setattr(task_data, 'encode_rocstories', lambda a, verbose=True: (
        text_utils.TextEncoder(a.source.encoder_path, a.source.bpe_path), _tiny_roc_encoded()))
    finetune = train.parse_args(flags)  # not given: 0 for a bidirectional folder
    assert finetune.tuning.lm_coef == 0
    out = train.run(finetune, verbose=False)
    assert out['n_updates'] == 1

    from estimators import Classifier
    texts, labels = ['the cat sat', 'a dog ran', 'the old tree', 'a mat'] * 2, ['a', 'b'] * 4
    clf = Classifier(model_dir=folder, n_layer=1, n_embd=16, n_head=2, n_ctx=16, n_iter=1, n_batch=4, lm_coef=0.0,
                     device='cpu').fit(texts, labels)
    assert clf.model_.transformer.causal is False
    saved = tmp_path / 'clf'
    clf.save(str(saved))
    again = Classifier.load(str(saved))
    assert again.model_.transformer.causal is False
    np.testing.assert_allclose(again.predict_proba(texts), clf.predict_proba(texts), atol=1e-6)


def test_a_wider_generator_is_logged_as_a_warning(tmp_path):
    data = write_corpus(tmp_path / 'corpus', n_docs=3)
    result = pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, '--objective', 'electra', '--gen_size', '2',
                                                   '--n_iter', '1', '--max_updates', '1')), verbose=False)
    warnings = [line['warning'] for line in log_entries(result['log_path'])[1] if 'warning' in line]
    assert any('--gen_size 2.0: the generator (64 wide) is wider than the discriminator (32)' in w and 'collapse' in w
               for w in warnings)


@pytest.mark.parametrize('extra, expected', [
    (['--mask_prob', '0'], '--mask_prob 0.0: expected a fraction in (0, 1)'),
    (['--mask_prob', '1.5'], '--mask_prob 1.5: expected a fraction in (0, 1)'),
    (['--gen_size', '0'], '--gen_size 0.0: expected a positive fraction'),
    (['--gen_size', '0.9'], '--gen_size 0.9: expected a fraction giving a generator width its heads divide (the '
                             'generator would be 29 wide with 2 heads)'),
    (['--disc_weight', '-1'], '--disc_weight -1.0: expected a finite weight >= 0'),
])
def test_bad_objective_flags_are_one_line_errors(tmp_path, capsys, extra, expected):
    assert expected in one_line_error(capsys, argv(tmp_path, 'x', tmp_path, '--objective', 'electra', *extra))


def test_a_causal_folder_cannot_start_an_mlm_run(tmp_path, capsys):
    data = write_corpus(tmp_path / 'corpus', n_docs=3)
    lm = pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, '--n_iter', '1', '--max_updates', '1')),
                      verbose=False)
    line = one_line_error(capsys, argv(tmp_path, 'b', data, '--objective', 'mlm', '--init', 'pretrained',
                                       '--model_dir', lm['model_dir']))
    assert f"--model_dir {lm['model_dir']}: " in line and 'causal is True (causal attention) but the model has ' \
                                                          'causal=False' in line
    assert not (tmp_path / 'b' / 'save' / 'pretrain' / 'model').exists()


@pytest.mark.slow
def test_torchrun_two_processes_train_electra(tmp_path):
    """2 processes (gloo on the CPU): DDP around the Electra (generator and discriminator),
    the validation shared out; rank 0 writes the folder and the generator."""
    data = write_corpus(tmp_path / 'corpus')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
           str(ROOT / 'pretrain.py'), *argv(tmp_path, 'a', data, '--objective', 'electra', '--n_iter', '1',
                                          '--max_updates', '4', '--eval_every', '2', '--n_batch', '4',
                                          '--warmup_updates', '2')]
    env = {k: v for k, v in os.environ.items() if k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK')}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env={**env, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    settings, entries = log_entries(tmp_path / 'a' / 'log' / 'pretrain.jsonl')
    assert settings['world_size'] == 2 and [e['n_updates'] for e in entries] == [2, 4]
    assert all(math.isfinite(e['va_disc_loss']) and math.isfinite(e['va_mlm_loss']) for e in entries)
    run_dir = tmp_path / 'a' / 'save' / 'pretrain'
    assert json.load(open(run_dir / 'model' / 'config.json'))['causal'] is False
    assert (run_dir / pretrain.GENERATOR).is_file()


def test_help_shows_every_default():
    parser = pretrain.build_parser()
    n_flags, missing = flags_without_default(parser)
    assert n_flags > 30 and not missing, missing
    chunks = help_chunks(parser)
    assert '(default: 2.5e-04)' in chunks['--lr'] or '(default: 0.00025)' in chunks['--lr']


def test_max_updates_ends_the_schedule_and_must_match_on_resume(tmp_path):
    data = write_corpus(tmp_path / 'corpus', n_docs=3)
    result = pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, '--n_iter', '5', '--max_updates', '6',
                                                   '--eval_every', '3')), verbose=False)
    settings, entries = log_entries(result['log_path'])
    assert settings['updates_per_epoch'] * 5 > 6  # the epochs alone would last longer
    assert result['t_total'] == settings['t_total'] == 6 and result['n_updates'] == 6
    assert entries[-1]['lr'] == pytest.approx(3e-3 * warmup_cosine(5 / 6, 4 / 6))
    with pytest.raises(InputError, match='--resume: --max_updates is 8 but the checkpoint'):
        pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, '--n_iter', '5', '--max_updates', '8',
                                              '--eval_every', '3', '--resume')), verbose=False)


def test_progress_lines_say_each_value_once_and_an_error_starts_a_clean_line(tmp_path, capsys, monkeypatch):
    data = write_corpus(tmp_path / 'corpus', n_docs=3)
    pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, '--n_iter', '1', '--max_updates', '4',
                                          '--eval_every', '2')), verbose=True)
    lines = [line for line in capsys.readouterr().err.replace('\r', '\n').splitlines() if line.startswith('update ')]
    assert [line.split(' |')[0] for line in lines] == ['update 2', 'update 4']
    for line in lines:
        assert 'train loss (mean of 2 updates) ' in line and line.count('ppl') == 1, line

    real, calls = pretrain.train_update, []

    def fails(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise pretraining.NonFiniteLossError('the loss is nan')
        return real(*a, **k)
    monkeypatch.setattr(pretrain, 'train_update', fails)
    with pytest.raises(SystemExit):
        pretrain.main(argv(tmp_path, 'b', data, '--n_iter', '1', '--max_updates', '4'))
    err = capsys.readouterr().err
    shown = err[:err.index('pretrain.py: error: ')].rsplit('\n', 1)[-1].split('\r')  # the error's terminal line
    assert all(not part.strip() for part in shown[-2:]), repr(err[-300:])


@pytest.mark.parametrize('seed', ['-1', '4294967296'])
def test_a_seed_out_of_range_is_refused_before_anything_is_written(tmp_path, capsys, seed):
    data = write_corpus(tmp_path / 'corpus', n_docs=2, n_lines=4)
    line = one_line_error(capsys, argv(tmp_path, 'x', data, '--seed', seed))
    assert line == f'pretrain.py: error: --seed {seed}: expected an integer from 0 to 4294967295'
    assert not (tmp_path / 'x').exists()


def sha256_files(folder):
    """{path relative to `folder`: sha256} of every file under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob('*')) if p.is_file()}


def test_overwrite_with_a_bad_corpus_leaves_the_earlier_run_whole(tmp_path, capsys):
    data = write_corpus(tmp_path / 'corpus', n_docs=2, n_lines=10)
    pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, '--max_updates', '2')), verbose=False)
    earlier = sha256_files(tmp_path / 'a')
    assert {'log/pretrain.jsonl', 'save/pretrain/last_checkpoint.pt', 'save/pretrain/config.json',
            'save/pretrain/model/model.safetensors'} <= set(earlier)
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'blank.txt').write_text(' \n\t\n')
    assert 'empty or only whitespace' in one_line_error(capsys, argv(tmp_path, 'a', empty, '--overwrite'))
    assert sha256_files(tmp_path / 'a') == earlier
    (empty / 'blank.txt').write_text('a short text\n')
    assert 'fewer than one window' in one_line_error(capsys, argv(tmp_path, 'a', empty / 'blank.txt', '--overwrite'))
    assert sha256_files(tmp_path / 'a') == earlier
    pretrain.run(pretrain.parse_args(argv(tmp_path, 'a', data, '--max_updates', '2', '--overwrite', '--seed', '3')),
                 verbose=False)
    again = sha256_files(tmp_path / 'a')
    assert set(again) == set(earlier)
    assert again['save/pretrain/model/model.safetensors'] != earlier['save/pretrain/model/model.safetensors']


@pytest.mark.slow
def test_ctrl_c_is_one_line_saying_where_and_how_to_resume(tmp_path):
    from test_train import interrupt
    data = write_corpus(tmp_path / 'corpus', n_docs=2, n_lines=10)
    args = argv(tmp_path, 'a', data, '--max_updates', '12', '--eval_every', '4')
    last = tmp_path / 'a' / 'save' / 'pretrain' / 'last_checkpoint.pt'
    proc, before = interrupt(tmp_path, 'pretrain', 6, last, args)
    assert proc.returncode == 130 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    line = line[line.index('pretrain.py: '):]  # after the progress bar's last state
    assert re.match(rf"pretrain\.py: interrupted: stopped by Ctrl-C in epoch \d+, after update 5; {last} holds "
                    rf"update 4; to continue: python pretrain\.py .* --resume$", line), line
    assert hashlib.sha256(last.read_bytes()).hexdigest() == before
    resumed = pretrain.run(pretrain.parse_args(args + ['--resume']), verbose=False)
    assert resumed['n_updates'] == 12


def test_a_character_vocabulary_without_a_line_break_is_refused_as_a_corpus_separator():
    with pytest.raises(InputError, match=r"CharTokenizer's vocabulary of 3 symbols has no line break: expected '\\n'"):
        pretraining.separator_id(CharTokenizer('abc'))
    assert pretraining.separator_id(CharTokenizer('ab\nc')) == CharTokenizer('ab\nc').encode(['\n'])[0][0]


# ------------------------------------------------------------------ GPT-2's tokenizer

@pytest.mark.slow
@pytest.mark.parametrize('arch', ['gpt2', 'gpt1'])
def test_gpt2_tokenizer_run_writes_a_folder_generate_and_train_read(tmp_path, capsys, arch):
    """--tokenizer gpt2: GPT-2's files from --model_dir, '<|endoftext|>' after every document, the
    folder's vocab.json and merges.txt GPT-2's own bytes, so that generate.py and train.py pick
    GPT2Encoder and the model's sizes from the folder alone."""
    from tests.conftest import GPT2_DIR
    data = tmp_path / 'docs.jsonl'
    stories = [' '.join(np.random.default_rng(i).choice(WORDS, 40)).capitalize() + '.' for i in range(10)]
    data.write_text(''.join(json.dumps({'text': s}) + '\n' for s in stories))
    args = ['--data', str(data), '--tokenizer', 'gpt2', '--model_dir', str(GPT2_DIR), '--arch', arch, '--n_layer',
            '1', '--n_embd', '16', '--n_head', '2', '--n_ctx', '24', '--n_batch', '4', '--max_updates', '2',
            '--valid_fraction', '0.2', '--log_dir', str(tmp_path / 'log'), '--save_dir', str(tmp_path / 'save'),
            '--device', 'cpu']
    cfg = pretrain.parse_args(args)
    assert (cfg.source.encoder_path, cfg.source.bpe_path) == (str(GPT2_DIR / 'encoder.json'),
                                                              str(GPT2_DIR / 'vocab.bpe'))
    result = pretrain.run(cfg, verbose=False)
    folder = result['model_dir']
    assert sorted(os.listdir(folder)) == ['config.json', 'merges.txt', 'model.safetensors', 'vocab.json']
    config = json.load(open(os.path.join(folder, 'config.json')))
    assert config['vocab_size'] == 50257 and config['model_type'] == ('gpt2' if arch == 'gpt2' else 'openai-gpt')
    assert open(os.path.join(folder, 'vocab.json'), 'rb').read() == (GPT2_DIR / 'encoder.json').read_bytes()
    tok = text_utils.load_tokenizer(folder)
    assert isinstance(tok, text_utils.GPT2Encoder)
    store = pretrain.load_corpus(cfg, pretrain.build_tokenizer(cfg), verbose=False)
    for split in ('train', 'valid'):
        tokens = np.asarray(store[split].tokens)
        assert (tokens == 50256).sum() == len(store[split].offsets) and tokens[-1] == 50256

    gen = generate.load_generator(generate.parse_args(['--model_dir', folder, '--log_path', str(tmp_path / 'g.jsonl')]))
    assert isinstance(gen.tokenizer, text_utils.GPT2Encoder) and gen.model.transformer.arch == arch
    assert gen.model.transformer.n_embd == 16

    rows = 'text,label\n' + ''.join(f"{s},{i % 2}\n" for i, s in enumerate(stories[:6]))
    (tmp_path / 'd.csv').write_text(rows)
    targs = ['--dataset', 'custom', '--task_type', 'classification', '--train_file', str(tmp_path / 'd.csv'),
             '--valid_file', str(tmp_path / 'd.csv'), '--model_dir', folder, '--n_batch', '2', '--n_iter', '1',
             '--log_dir', str(tmp_path / 'ft'), '--save_dir', str(tmp_path / 'ft'), '--device', 'cpu']
    out = train.run(train.parse_args(targs), verbose=False)
    settings, entries = log_entries(out['log_path'])
    assert (settings['arch'], settings['n_embd'], settings['n_layer'], settings['n_head']) == (arch, 16, 1, 2)
    assert settings['n_vocab'] == 50257 and settings['clf_token'] == 50259 and settings['checkpoint_format'] == 'hf'
    assert out['n_updates'] == 3 and math.isfinite(entries[-1]['va_cost'])
