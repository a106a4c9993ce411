"""score.py and finetuned.py on a ROCStories run: its folder scores the endings of new stories and a
Story Cloze file, from Python and the CLI.

The runs are train.main in this process on ROCStories encoded once (helpers.rocstories_encoded_once);
one test starts `python score.py`, the refusals call score.main here."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import finetune
import score
import train
from datasets import rocstories
from errors import CheckpointError, InputError, MissingFileError
from hf_interop import export_hf
from model_pytorch import DEFAULT_CONFIG, LMModel, dotdict
from helpers import rocstories_encoded_once, run_main
from finetuned import load_run
from test_train import ROOT, _common_argv, tiny_shards  # noqa: F401 (a fixture)
from tests.conftest import ONE_THREAD_ENV


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory, rocstories_dir, encoder_path, bpe_path, tiny_shards):
    """A tiny finetuning run with --submit (1 epoch on 36 stories, real BPE); returns (work dir, argv)."""
    work = tmp_path_factory.mktemp('run')
    argv = _common_argv(rocstories_dir, encoder_path, bpe_path, tiny_shards) + [
        '--n_valid', '1835', '--n_iter', '1', '--lm_coef', '0', '--submit']
    with rocstories_encoded_once():
        assert run_main(train.main, work, argv) == 0
    return work, argv


def score_cli(capsys, argv):
    """(exit status, stdout, stderr) of score.main(argv) in this process."""
    capsys.readouterr()
    status = run_main(score.main, Path.cwd(), argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.slow
def test_scores_equal_the_training_pipeline(finished_run, rocstories_dir):
    """The probabilities of score() for a test story are the softmax of the classifier logits
    train.py computes for the same story from its own encoded arrays."""
    work, argv = finished_run
    run = load_run(str(work / 'save' / 'rocstories'))
    args = train.parse_args(argv)
    with rocstories_encoded_once():
        data = train.load_data(args, verbose=False)
    logits = finetune._eval_logits(run.model, data.teX[:3], data.teM[:3], n_batch=3, verbose=False)
    _, _, (teX1, teX2, teX3) = rocstories(str(rocstories_dir), n_train=36, n_valid=1835)
    for i in range(3):
        probs = run.score(teX1[i], [teX2[i], teX3[i]])
        np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(logits[i]), -1).numpy(), atol=1e-6)
    assert run.config['n_ctx'] == data.n_ctx


@pytest.mark.slow
def test_a_run_config_reads_back_into_its_configs_and_a_flat_one_still_loads(finished_run, tmp_path):
    """config.json holds the FinetuneConfig (one object per part) and what the run found; it reads
    back into the same types. The flat file of settings earlier versions wrote (the log's first
    line: n_ctx as cut, n_ctx_requested as asked) loads to the same model and scores."""
    work, argv = finished_run
    run_dir = work / 'save' / 'rocstories'
    record = finetune.read_run_config(str(run_dir / 'config.json'))
    assert record.config == train.parse_args(argv)
    assert record.found['n_ctx'] < record.config.source.n_ctx == record.found['n_ctx_requested']
    settings = json.loads((work / 'log' / 'rocstories.jsonl').read_text().splitlines()[0])
    assert {k: v for k, v in settings.items() if k != 'time'} == record.settings
    flat_dir = shutil.copytree(run_dir, tmp_path / 'flat')
    (flat_dir / 'config.json').write_text(json.dumps(record.settings))
    old = finetune.read_run_config(str(flat_dir / 'config.json'))
    # the flat file has n_transfer as loaded (every layer), the configs as asked (None: every layer)
    assert old.config.replace(n_transfer=None) == record.config and old.found['n_ctx'] == record.found['n_ctx']
    story, endings = 'Tom went to the store.', ['He bought milk.', 'He flew to the moon.']
    np.testing.assert_array_equal(load_run(str(flat_dir)).score(story, endings),
                                  load_run(str(run_dir)).score(story, endings))


@pytest.mark.slow
def test_cli_prints_each_ending_with_its_probability(finished_run):
    work, _ = finished_run
    story = "Karen was assigned a roommate her first year of college. Their first meeting went well."
    proc = subprocess.run([sys.executable, str(ROOT / 'score.py'), '--run', str(work / 'save' / 'rocstories'),
                           '--story', story, '--ending', 'Karen became friends with her.', '--ending',
                           'Karen hated pizza.'], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **ONE_THREAD_ENV})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and sum(line.startswith('*') for line in lines) == 1
    probs = [float(line[2:7]) for line in lines]
    assert abs(sum(probs) - 1) < 2e-3 and lines[int(np.argmax(probs))].startswith('*')


@pytest.mark.slow
def test_bad_runs_and_stories_are_one_line_errors(finished_run, tmp_path, capsys):
    work, _ = finished_run
    with pytest.raises(MissingFileError, match=r'config\.json does not exist: expected a run folder of train\.py'):
        load_run(str(tmp_path))
    run = load_run(str(work / 'save' / 'rocstories'))
    with pytest.raises(InputError, match=r'example 0 is \d+ tokens with its special tokens, more than the run'):
        run.score('word ' * 200, ['an ending.', 'another.'])
    with pytest.raises(InputError, match='at least two non-empty endings'):
        run.score('a story.', ['one ending.'])
    status, _, err = score_cli(capsys, ['--run', str(tmp_path), '--story', 's', '--ending', 'a', '--ending', 'b'])
    assert status == 2 and err.count('\n') == 1 and err.startswith('score.py: error: ')


def test_a_run_exports_with_its_tokenizer_and_its_positions(finished_run, tmp_path):
    """FinetunedRun.export_hf writes the run's transformer with the run's BPE files: AutoTokenizer
    encodes a plain lower-case sentence (where transformers' BasicTokenizer fallback and spaCy agree)
    as the run does, and n_positions is the n_ctx position rows the finetuned model holds."""
    transformers = pytest.importorskip('transformers')
    work, _ = finished_run
    run = load_run(str(work / 'save' / 'rocstories'))
    folder = run.export_hf(tmp_path / 'export')
    config = json.loads((tmp_path / 'export' / 'config.json').read_text())
    assert config['n_positions'] == run.config['n_ctx'] == run.model.transformer.n_ctx
    assert config['vocab_size'] == run.config['clf_token'] + 1  # the three special tokens follow the BPE's
    sentence = 'she went to the store and bought a new dress for the party .'
    ids = transformers.AutoTokenizer.from_pretrained(folder)(sentence)['input_ids']
    assert ids == run.text_encoder.encode([sentence], verbose=False)[0]


def edit_config(path, changes, part=None):
    """Rewrite a run's config.json with changes(found) ({name: value}, computed from its 'found'
    values): in `part` where given, else a name of 'found' there, another in the part of the
    config that holds it."""
    config = json.loads(path.read_text())
    for name, value in changes(config['found']).items():
        where = part or ('found' if name in config['found'] else next(p for p in config if name in config[p]))
        config[where][name] = value
    path.write_text(json.dumps(config))


@pytest.mark.parametrize('changes, match', [
    (lambda c: dict(n_ctx=2 ** 31, vocab=c['vocab'] - c['n_ctx'] + 2 ** 31),
     r'best_params\.safetensors: transformer\.embed\.weight has shape \(\d+, 16\), expected \(2147\d+, 16\) '
     r'from .*config\.json'),
    (lambda c: dict(n_embd=2 ** 20), r'expected \(\d+, 1048576\) from .*config\.json'),
    (lambda c: dict(n_layer=5), r'best_params\.safetensors holds 1 blocks but .*config\.json has n_layer 5'),
])
def test_run_sizes_the_weights_contradict_are_refused_before_building(finished_run, tmp_path, changes, match):
    """A config.json claiming 2**31 positions or another size is checked against the weights'
    shapes (the safetensors header) before a model of that size is built."""
    work, _ = finished_run
    run_dir = shutil.copytree(work / 'save' / 'rocstories', tmp_path / 'run')
    edit_config(run_dir / 'config.json', changes)
    with pytest.raises(CheckpointError, match=match):
        load_run(str(run_dir))


@pytest.mark.slow
def test_a_story_cloze_file_predicts_as_the_runs_submission(finished_run, rocstories_dir, tmp_path, capsys):
    """score.py --input with the release's Story Cloze test CSV: the endings train.py --submit
    picked for it, the story ids as ids."""
    work, _ = finished_run
    test_file = rocstories_dir / 'cloze_test_test__spring2016 - cloze_test_ALL_test.csv'
    capsys.readouterr()
    assert run_main(score.main, tmp_path, ['--run', str(work / 'save' / 'rocstories'), '--input', str(test_file)]) == 0
    lines = [line.split('\t') for line in capsys.readouterr().out.splitlines()]
    submission = (work / 'submission' / 'ROCStories.tsv').read_text().splitlines()[1:]
    assert [line[1] for line in lines] == [line.split('\t')[1] for line in submission]
    assert len({line[0] for line in lines}) == len(lines) == 1871 and all(0.5 <= float(line[2]) <= 1 for line in lines)


@pytest.mark.slow
def test_a_bidirectional_run_scores_as_train_py_evaluates(tmp_path, rocstories_dir, encoder_path, bpe_path,
                                                           tiny_shards):
    """A run finetuned from a bidirectional folder (pretrain.py --objective mlm or electra)
    keeps causal false in its config.json, and score() builds that model and ignores the
    padding, so it agrees with train.py's evaluation of the same stories."""
    torch.manual_seed(0)
    source = LMModel(dotdict(DEFAULT_CONFIG, n_embd=16, n_layer=1, n_head=2, causal=False), vocab=40478 + 512)
    folder = export_hf(source, tmp_path / 'bidirectional', n_vocab=40478, n_special=0)
    argv = _common_argv(rocstories_dir, encoder_path, bpe_path, tiny_shards) + [
        '--model_dir', folder, '--n_valid', '1835', '--n_iter', '1', '--lm_coef', '0', '--submit']
    with rocstories_encoded_once():
        assert run_main(train.main, tmp_path / 'work', argv) == 0
        data = train.load_data(train.parse_args(argv), verbose=False)
    run = load_run(str(tmp_path / 'work' / 'save' / 'rocstories'))
    assert run.config['causal'] is False and run.model.transformer.causal is False
    logits = finetune._eval_logits(run.model, data.teX[:3], data.teM[:3], n_batch=3, verbose=False)
    _, _, (teX1, teX2, teX3) = rocstories(str(rocstories_dir), n_train=36, n_valid=1835)
    for i in range(3):
        probs = run.score(teX1[i], [teX2[i], teX3[i]])
        np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(logits[i]), -1).numpy(), atol=1e-6)


@pytest.mark.slow
def test_a_run_whose_parameters_hold_nan_is_one_line(finished_run, tmp_path, capsys):
    from test_checkpoint import poison
    work, _ = finished_run
    run_dir = tmp_path / 'run'
    shutil.copytree(work / 'save' / 'rocstories', run_dir)
    name = poison(run_dir / 'best_params.safetensors')
    status, out, err = score_cli(capsys, ['--run', str(run_dir), '--story', 'A story.', '--ending', 'a',
                                          '--ending', 'b'])
    assert status == 2 and err.count('\n') == 1, err
    assert err.startswith(f'score.py: error: {run_dir}/best_params.safetensors: {name} holds 1 non-finite '
                          f'value (NaN or inf)') and out == ''
