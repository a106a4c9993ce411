"""train.py on the paper's other tasks and on the user's own data: one end-to-end run of
train.main per task type (in the tests' process) on a tiny model (generated TF-format shards,
the real BPE files), with data written by the tests in each release's layout
(tests/test_readers.py's writers)."""
import json
import random

import numpy as np
import pytest

import task_data
import tasks
import finetune
import train
from tests.helpers import run_main, tf_shapes, write_tf_checkpoint
from tests.test_readers import GLUE, write_csv, write_glue, write_race

TINY = ['--n_embd', '16', '--n_layer', '1', '--n_head', '2', '--n_iter', '2', '--n_batch', '4', '--lm_coef', '0']


@pytest.fixture(scope='module')
def shards(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model')
    write_tf_checkpoint(path, tf_shapes(1, 16, 40478))
    return path


def run_cli(cwd, argv, encoder_path, bpe_path, shards, capsys):
    """train.main(argv with the tiny model's flags, --submit --analysis) in this process in `cwd`:
    what it printed on stdout."""
    argv = [*argv, '--model_dir', str(shards), '--encoder_path', str(encoder_path), '--bpe_path', str(bpe_path),
            *TINY, '--submit', '--analysis']
    capsys.readouterr()
    status = run_main(train.main, cwd, argv)
    out, err = capsys.readouterr()
    assert status == 0, err[-3000:]
    return out


def read_log(path):
    lines = path.read_text().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def submission(path):
    lines = path.read_text().splitlines()
    assert lines[0] == 'index\tprediction'
    return [line.split('\t') for line in lines[1:]]


def main_exit_2(argv, capsys):
    """What train.main(argv) prints on stderr, in this process (no second import of torch): it
    must exit with status 2, the status of a refused flag."""
    with pytest.raises(SystemExit) as exit_:
        train.main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


GLUE_SIZES = {'train.tsv': 12, 'dev.tsv': 6, 'test.tsv': 5, 'dev_matched.tsv': 6, 'dev_mismatched.tsv': 5,
              'test_matched.tsv': 4, 'test_mismatched.tsv': 3}


@pytest.mark.slow
@pytest.mark.parametrize('name, metrics, printed', [
    ('sst2', ['acc'], ['SST-2 Valid Accuracy:']),
    ('mnli', ['acc'], ['MNLI Valid Accuracy:', 'MNLI Valid Mismatched Accuracy:']),
    ('mrpc', ['f1', 'acc'], ['MRPC Valid F1:', 'MRPC Valid Accuracy:']),
    ('stsb', ['pearson', 'spearman'], ['STS-B Valid Pearson']),
])
def test_glue_task_end_to_end(tmp_path, capsys, name, metrics, printed, encoder_path, bpe_path, shards):
    spec = GLUE[name]
    written = write_glue(tmp_path / 'glue' / spec['folder'], spec,
                         {f: GLUE_SIZES[f] for f in spec['files']}, random.Random(0))
    out = run_cli(tmp_path, ['--dataset', name, '--data_dir', str(tmp_path / 'glue')], encoder_path, bpe_path,
                  shards, capsys)
    settings, entries = read_log(tmp_path / 'log' / f'{name}.jsonl')
    task = tasks.TASKS[name]
    assert settings['task_type'] == task.task_type and settings['n_truncated'] == {s: 0 for s in written}
    assert [e['n_epochs'] for e in entries] == [1, 2]  # 12 examples // 4 per update = 3 updates an epoch
    for e in entries:
        for prefix in ['tr', 'va'] + (['va_mm'] if name == 'mnli' else []):
            assert all(np.isfinite(e[f'{prefix}_{m}']) or m in ('pearson', 'spearman') for m in metrics)
            assert np.isfinite(e[f'{prefix}_cost'])
    for split, file in zip(task.test_splits, task.submission_files):
        rows = submission(tmp_path / 'submission' / file)
        assert [r[0] for r in rows] == [row[spec['id']] for row in written[split]]  # GLUE's index column
        if task.task_type == 'regression':
            assert all(np.isfinite(float(r[1])) for r in rows)
        else:
            assert {r[1] for r in rows} <= set(task.classes)
    for line in printed:
        assert line in out


@pytest.mark.slow
def test_race_end_to_end_with_groups(tmp_path, capsys, encoder_path, bpe_path, shards):
    written = write_race(tmp_path / 'RACE', random.Random(1), n_files=[1, 2])
    out = run_cli(tmp_path, ['--dataset', 'race', '--data_dir', str(tmp_path / 'RACE'), '--bucket'], encoder_path,
                  bpe_path, shards, capsys)
    settings, entries = read_log(tmp_path / 'log' / 'race.jsonl')
    assert settings['bucket']
    assert {'va_acc', 'va_acc_high', 'va_acc_middle', 'tr_acc'} <= set(entries[-1])
    n_test = sum(len(article['questions']) for _, _, article in written['test'])
    rows = submission(tmp_path / 'submission' / 'RACE.tsv')
    assert len(rows) == n_test and {r[1] for r in rows} <= set('ABCD')
    assert 'RACE Test Accuracy (high):' in out and 'RACE Valid Accuracy:' in out


@pytest.mark.slow
def test_race_with_share_prefix_equals_the_default_without_dropout(tmp_path, capsys, encoder_path, bpe_path,
                                                                   shards):
    """RACE's four answers share the article and question: with dropout off --share_prefix trains
    to the same log (to float rounding) and the same submission as the default step."""
    write_race(tmp_path / 'RACE', random.Random(3), n_files=[1, 2])
    no_dropout = ['--embd_pdrop', '0', '--attn_pdrop', '0', '--resid_pdrop', '0', '--clf_pdrop', '0']
    runs = []
    for name, extra in (('plain', []), ('shared', ['--share_prefix'])):
        (tmp_path / name).mkdir()
        run_cli(tmp_path / name, ['--dataset', 'race', '--data_dir', str(tmp_path / 'RACE'), *no_dropout, *extra],
                encoder_path, bpe_path, shards, capsys)
        settings, entries = read_log(tmp_path / name / 'log' / 'race.jsonl')
        runs.append((settings, entries, (tmp_path / name / 'submission' / 'RACE.tsv').read_text()))
    assert runs[1][0]['share_prefix'] and not runs[0][0]['share_prefix']
    for plain, shared in zip(runs[0][1], runs[1][1]):
        assert plain.keys() == shared.keys()
        for key in plain:
            if key != 'time':
                assert shared[key] == pytest.approx(plain[key], rel=1e-5, abs=1e-6), key
    assert runs[0][2] == runs[1][2]


def test_a_task_trains_and_evaluates_without_laying_out_a_whole_split(tmp_path, encoder_path, bpe_path, shards,
                                                                     monkeypatch):
    """MNLI-sized splits are kept as token lists: train_epoch, evaluate and predict index a batch
    at a time and never turn a split into its (n, n_seq, n_ctx, 2) array."""
    spec = GLUE['qnli']
    write_glue(tmp_path / 'glue' / spec['folder'], spec, {f: GLUE_SIZES[f] for f in spec['files']}, random.Random(4))
    args = train.parse_args(['--dataset', 'qnli', '--data_dir', str(tmp_path / 'glue'), '--model_dir', str(shards),
                             '--encoder_path', str(encoder_path), '--bpe_path', str(bpe_path), '--cache_dir',
                             str(tmp_path / 'cache'), *TINY])
    data = train.load_data(args, verbose=False)
    assert all(isinstance(split.X, tasks.Padded) for split in data.splits.values())
    monkeypatch.setattr(tasks.Padded, '__array__', lambda *a, **k: pytest.fail('a whole split was laid out'))
    model = finetune.build_model(args, data)
    loss_compute = finetune.make_loss_compute(args, finetune.make_optimizer(args, model, 3), None, data.task.task_type)
    finetune.train_epoch(finetune.RunContext(args, model, data, verbose=False), model, loss_compute, train.TrainState())
    _, cost, acc = finetune.evaluate(model, data.vaX, data.vaM, data.vaY, verbose=False, task_type='entailment')
    assert np.isfinite(cost) and 0 <= acc <= 100
    assert finetune.predict(model, data.teX, data.teM, verbose=False, task_type='entailment').shape == (len(data.teX),)


@pytest.mark.slow
def test_custom_csv_with_string_labels(tmp_path, capsys, encoder_path, bpe_path, shards):
    rng = random.Random(2)
    words = ['good', 'bad', 'fine', 'awful', 'great', 'poor']
    for name, n in (('train', 12), ('valid', 6), ('test', 5)):
        rows = [[f'{rng.choice(words)} {rng.choice(words)} film {i}', rng.choice(['pos', 'neg'])] for i in range(n)]
        write_csv(tmp_path / f'{name}.csv', ['review', 'sentiment'], rows)
    argv = ['--dataset', 'custom', '--task_type', 'classification', '--train_file', str(tmp_path / 'train.csv'),
            '--valid_file', str(tmp_path / 'valid.csv'), '--test_file', str(tmp_path / 'test.csv'),
            '--text_columns', 'review', '--label_column', 'sentiment', '--desc', 'reviews']
    run_cli(tmp_path, argv, encoder_path, bpe_path, shards, capsys)
    settings, entries = read_log(tmp_path / 'log' / 'reviews.jsonl')
    assert settings['classes'] == ['neg', 'pos'] and settings['task_head_type'] == ['classification', 2]
    config = json.loads((tmp_path / 'save' / 'reviews' / 'config.json').read_text())
    assert config['found']['classes'] == ['neg', 'pos']  # saved with the checkpoint
    rows = submission(tmp_path / 'submission' / 'custom.tsv')
    assert [r[0] for r in rows] == [str(i) for i in range(5)] and {r[1] for r in rows} <= {'neg', 'pos'}


@pytest.mark.slow
def test_rocstories_through_the_task_pipeline_equals_the_original(tmp_path, rocstories_dir, encoder_path, bpe_path):
    """task_data.load_task_data on ROCStories gives the arrays train.load_data gives."""
    args = train.parse_args(['--data_dir', str(rocstories_dir), '--encoder_path', str(encoder_path),
                             '--bpe_path', str(bpe_path), '--cache_dir', str(tmp_path / 'cache')])
    original = train.load_data(args, verbose=False)
    data = task_data.load_task_data(args, verbose=False)
    assert (data.n_ctx, data.clf_token, data.vocab) == (original.n_ctx, original.clf_token, original.vocab)
    for name in ('trX', 'trM', 'trY', 'vaX', 'vaM', 'vaY', 'teX', 'teM'):
        np.testing.assert_array_equal(getattr(data, name), getattr(original, name))


@pytest.mark.parametrize('argv, expected', [
    (['--dataset', 'custom'], '--dataset custom needs --task_type'),
    (['--dataset', 'custom', '--task_type', 'regression', '--train_file', 'a.csv'], 'needs --valid_file'),
    (['--dataset', 'sst2', '--train_file', 'a.csv'], '--train_file: only for --dataset custom, not --dataset sst2'),
    (['--truncate', '--no_truncate'], '--truncate cuts every example and --no_truncate refuses any cut'),
    (['--dataset', 'glue'], "invalid choice: 'glue'"),
    (['--dataset', 'sst2', '--share_prefix'], '--share_prefix: --dataset sst2 is a classification task; expected a '
                                              'multiple_choice task'),
])
def test_bad_dataset_flags_are_one_line(tmp_path, argv, expected, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    stderr = main_exit_2(argv, capsys)
    assert expected in stderr and 'Traceback' not in stderr


def test_missing_glue_folder_is_refused_before_any_work(tmp_path, encoder_path, bpe_path, shards, monkeypatch,
                                                         capsys):
    argv = ['--dataset', 'cola', '--data_dir', str(tmp_path / 'nowhere'), '--model_dir', str(shards),
            '--encoder_path', str(encoder_path), '--bpe_path', str(bpe_path)]
    monkeypatch.chdir(tmp_path)
    assert 'nowhere: no such folder; expected the cola release' in main_exit_2(argv, capsys)
    assert not (tmp_path / 'log').exists()
