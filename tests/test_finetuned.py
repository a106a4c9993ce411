"""finetuned.py: a finished run (any task, with or without --submit) or an estimator's save predicts a
file of new examples as train.py predicted its test split.

The runs are train.main in this process on tiny random shards and small CSV files; each run's own
--submit predictions (train.py's pipeline: task_data, finetune.predict) are the reference."""
import json
import random

import numpy as np
import pytest

import score
import train
from errors import DataError, InputError
from estimators import Classifier
from finetuned import load_run
from tests.helpers import run_main, tf_shapes, write_tf_checkpoint
from tests.test_readers import write_csv

TINY = ['--n_embd', '16', '--n_layer', '1', '--n_head', '2', '--n_iter', '1', '--n_batch', '4', '--lm_coef', '0']
WORDS = ['good', 'bad', 'fine', 'awful', 'great', 'poor', 'film', 'story']


@pytest.fixture(scope='module')
def shards(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny_model')
    write_tf_checkpoint(path, tf_shapes(1, 16, 40478))
    return path


def _text(rng, n=3):
    return ' '.join(rng.choice(WORDS) for _ in range(n))


def _rows(task_type, rng, n):
    """n rows of the task type's default columns (readers.CUSTOM_TEXT_COLUMNS) with a label."""
    if task_type == 'classification':
        return ['text', 'label'], [[_text(rng), rng.choice(['pos', 'neg'])] for _ in range(n)]
    if task_type == 'similarity':
        return ['sentence1', 'sentence2', 'label'], [[_text(rng), _text(rng), rng.choice(['0', '1'])]
                                                     for _ in range(n)]
    return ['context', 'choices', 'label'], [[_text(rng, 6), json.dumps([_text(rng) for _ in range(3)]),
                                              str(rng.randrange(3))] for _ in range(n)]


def _train(tmp_path, task_type, encoder_path, bpe_path, shards, submit=True):
    """A finished tiny --dataset custom run of task_type; returns (run folder, test file)."""
    rng = random.Random(task_type)
    for name, n in (('train', 12), ('valid', 6), ('test', 7)):
        header, rows = _rows(task_type, rng, n)
        write_csv(tmp_path / f'{name}.csv', header, rows)
    argv = ['--dataset', 'custom', '--task_type', task_type, '--desc', task_type,
            *(f'--{s}_file={tmp_path / f"{s}.csv"}' for s in ('train', 'valid', 'test')),
            '--model_dir', str(shards), '--encoder_path', str(encoder_path), '--bpe_path', str(bpe_path), *TINY,
            *(['--submit'] if submit else [])]
    assert run_main(train.main, tmp_path, argv) == 0
    return tmp_path / 'save' / task_type, tmp_path / 'test.csv'


def _submission(path):
    lines = path.read_text().splitlines()
    return [line.split('\t')[1] for line in lines[1:]]


@pytest.mark.slow
@pytest.mark.parametrize('task_type', ['classification', 'similarity', 'multiple_choice'])
def test_a_file_predicts_as_the_runs_own_submission(tmp_path, encoder_path, bpe_path, shards, task_type):
    """load_run(...).predict_file on the run's test file gives the predictions train.py --submit
    wrote for it, probabilities that sum to one, and the task's metric from the file's labels."""
    run_dir, test_file = _train(tmp_path, task_type, encoder_path, bpe_path, shards)
    result = load_run(str(run_dir)).predict_file(str(test_file))
    assert [str(p) for p in result.predictions] == _submission(tmp_path / 'submission' / 'custom.tsv')
    assert result.ids == [str(i) for i in range(7)]
    np.testing.assert_allclose(result.probabilities.sum(1), 1, atol=1e-9)
    labels = [row[-1] for row in _rows(task_type, random.Random(task_type), 12 + 6 + 7)[1][-7:]]
    expected = 100 * np.mean([str(p) == y for p, y in zip(result.predictions, labels)])
    assert result.metrics['acc'] == pytest.approx(expected)


@pytest.mark.slow
def test_a_run_without_submit_keeps_a_model_that_the_cli_predicts_with(tmp_path, encoder_path, bpe_path, shards,
                                                                       capsys):
    """Every finished run keeps best_params.safetensors; score.py --input --out writes one JSON line
    per example, the same predictions as the Python call."""
    run_dir, test_file = _train(tmp_path, 'classification', encoder_path, bpe_path, shards, submit=False)
    assert (run_dir / 'best_params.safetensors').is_file() and not (tmp_path / 'submission').exists()
    out = tmp_path / 'predictions.jsonl'
    capsys.readouterr()
    assert run_main(score.main, tmp_path, ['--run', str(run_dir), '--input', str(test_file), '--out', str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = load_run(str(run_dir)).predict_file(str(test_file))
    assert [r['prediction'] for r in rows] == expected.predictions
    assert all(set(r['probabilities']) == {'neg', 'pos'} for r in rows)
    assert 'Accuracy' in capsys.readouterr().err


@pytest.mark.slow
def test_an_estimator_save_predicts_as_the_estimator(tmp_path, encoder_path, bpe_path, shards):
    rng = random.Random(0)
    header, rows = _rows('classification', rng, 12)
    est = Classifier(model_dir=str(shards), encoder_path=str(encoder_path), bpe_path=str(bpe_path), n_embd=16,
                     n_layer=1, n_head=2, n_iter=1, n_batch=4, lm_coef=0, device='cpu')
    est.fit([r[0] for r in rows], [r[1] for r in rows]).save(tmp_path / 'est')
    write_csv(tmp_path / 'new.csv', ['text'], [[r[0]] for r in rows])
    result = load_run(str(tmp_path / 'est')).predict_file(str(tmp_path / 'new.csv'))
    assert result.predictions == est.predict([r[0] for r in rows]).tolist() and result.metrics is None
    np.testing.assert_allclose(result.probabilities, est.predict_proba([r[0] for r in rows]), atol=1e-9)


@pytest.mark.slow
def test_bad_input_is_one_line(tmp_path, encoder_path, bpe_path, shards, capsys):
    run_dir, _ = _train(tmp_path, 'classification', encoder_path, bpe_path, shards, submit=False)
    run = load_run(str(run_dir))
    write_csv(tmp_path / 'wrong.csv', ['sentence'], [['a film']])
    with pytest.raises(DataError, match=r"input file .*wrong\.csv: line 2 has no column 'text'"):
        run.predict_file(str(tmp_path / 'wrong.csv'))
    with pytest.raises(InputError, match=r"this run is a classification run"):
        run.score('a story.', ['one.', 'two.'])
    for argv, message in ((['--input', str(tmp_path / 'wrong.txt')], 'file ending in'),
                          ([], 'expected either --input FILE or --story'),
                          (['--input', str(tmp_path / 'wrong.csv')], "has no column 'text'")):
        capsys.readouterr()
        assert run_main(score.main, tmp_path, ['--run', str(run_dir), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and err.startswith('score.py: error: ') and message in err, err
