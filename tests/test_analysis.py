"""analysis.rocstories: best validation accuracy from the run's own log, test accuracy of its predictions."""
import json

import pytest

import analysis
from datasets import rocstories_test_labels


def _write_log(path, va_accs):
    with open(path, 'w') as f:
        f.write(json.dumps({'desc': 'x', 'va_acc': 99.0, 'time': 0}) + '\n')  # settings line: ignored
        for i, acc in enumerate(va_accs):
            f.write(json.dumps({'n_epochs': i + 1, 'n_updates': 187 * (i + 1), 'tr_cost': 0.5, 'va_cost': 0.6,
                                'tr_acc': 80.0, 'va_acc': acc, 'time': 1.0}) + '\n')


def _write_preds(path, preds, header='index\tprediction'):
    with open(path, 'w') as f:
        f.write(header + '\n')
        for i, p in enumerate(preds):
            f.write(f'{i}\t{p}\n')


def test_reports_best_valid_and_test_accuracy(tmp_path, rocstories_dir, capsys):
    labels = rocstories_test_labels(rocstories_dir)
    assert len(labels) == 1871
    preds = labels.copy()
    preds[:187] = 1 - preds[:187]  # 187 wrong
    log = tmp_path / 'my_run.jsonl'  # any name: the run's own log, not log/rocstories.jsonl
    _write_log(log, [70.5, 82.25, 81.0])
    _write_preds(tmp_path / 'ROCStories.tsv', preds)
    valid, test = analysis.rocstories(str(rocstories_dir), str(tmp_path / 'ROCStories.tsv'), str(log))
    assert valid == 82.25
    assert test == pytest.approx(100 * (1871 - 187) / 1871)
    out = capsys.readouterr().out
    assert 'ROCStories Valid Accuracy: 82.25' in out and f'ROCStories Test Accuracy:  {test:.2f}' in out


def test_bad_inputs(tmp_path, rocstories_dir):
    labels = rocstories_test_labels(rocstories_dir)
    log, pred = tmp_path / 'run.jsonl', tmp_path / 'ROCStories.tsv'
    _write_preds(pred, labels)
    with pytest.raises(FileNotFoundError, match='log file .*does not exist'):
        analysis.rocstories(str(rocstories_dir), str(pred), str(tmp_path / 'none.jsonl'))
    _write_log(log, [])
    with pytest.raises(ValueError, match="no entry with a validation accuracy"):
        analysis.rocstories(str(rocstories_dir), str(pred), str(log))
    _write_log(log, [50.0])
    _write_preds(pred, labels[:100])
    with pytest.raises(ValueError, match='holds 100 predictions but the test set .* has 1871'):
        analysis.rocstories(str(rocstories_dir), str(pred), str(log))
    _write_preds(pred, labels, header='id,label')
    with pytest.raises(ValueError, match='expected the header'):
        analysis.rocstories(str(rocstories_dir), str(pred), str(log))
    with pytest.raises(FileNotFoundError, match='prediction file'):
        analysis.rocstories(str(rocstories_dir), str(tmp_path / 'missing.tsv'), str(log))


def test_read_log_skips_settings_line(tmp_path):
    log = tmp_path / 'r.jsonl'
    _write_log(log, [60.0, 61.0])
    entries = analysis.read_log(str(log))
    assert [e['va_acc'] for e in entries] == [60.0, 61.0]
