"""analysis.rocstories: best validation accuracy from the run's own log, test accuracy of its predictions."""
import csv
import json
import math
import os

import numpy as np
import pytest

import analysis
from datasets import TEST_FILE, VAL_FILE, rocstories_test_labels
from errors import DataError, InputError, MissingFileError


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


def _message(error, call, *parts):
    """Run call(), expecting `error`; check its message is one line holding every str of `parts`."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert '\n' not in message and all(part in message for part in parts), message


@pytest.fixture
def run_files(tmp_path, rocstories_dir):
    """(analyse, log path, predictions path): a good log and predictions file, and analysis.rocstories on them."""
    log, pred = tmp_path / 'run.jsonl', tmp_path / 'ROCStories.tsv'
    _write_log(log, [50.0, 60.0])
    _write_preds(pred, rocstories_test_labels(rocstories_dir))
    return (lambda: analysis.rocstories(str(rocstories_dir), str(pred), str(log))), log, pred


def test_missing_files_are_missing_file_errors(tmp_path, run_files):
    analyse, log, pred = run_files
    pred.unlink()
    _message(MissingFileError, analyse, 'prediction file', str(pred), 'does not exist')
    log.unlink()
    _message(MissingFileError, analyse, 'log file', str(log), 'does not exist')


@pytest.mark.parametrize('lines, expected', [
    ([], 'has no entry with a validation accuracy'),
    ([{'n_epochs': 1, 'tr_acc': 80.0}], 'has no entry with a validation accuracy'),
    ([{'va_acc': None}], "line 2 has va_acc None: expected a finite number"),
    ([{'va_acc': 70.0}, {'va_acc': '81.5'}], "line 3 has va_acc '81.5': expected a finite number"),
    ([{'va_acc': True}], "line 2 has va_acc True: expected a finite number"),
    ([{'va_acc': float('nan')}], "line 2 has va_acc nan: expected a finite number"),
])
def test_bad_logs(run_files, lines, expected):
    analyse, log, _ = run_files
    log.write_text(''.join(json.dumps(entry) + '\n' for entry in [{'desc': 'x'}] + lines))
    _message(DataError, analyse, str(log), expected)


def test_log_not_json_or_not_utf8(run_files):
    analyse, log, _ = run_files
    good = log.read_bytes()
    log.write_bytes(good + b'{"va_acc": 1\n')
    _message(DataError, analyse, str(log), 'line 4 is not JSON')
    log.write_bytes(good + b'{"note": "caf\xe9"}\n')
    _message(DataError, analyse, str(log), 'is not UTF-8: line 4 holds the byte 0xe9')
    log.write_bytes(b'')
    _message(DataError, analyse, str(log), 'has no entry with a validation accuracy')


@pytest.mark.parametrize('line, expected', [
    ('5\tx', "line 7 is '5\\tx': expected 'index<TAB>prediction' with two integers"),
    ('5\t0.5', "line 7 is '5\\t0.5': expected 'index<TAB>prediction' with two integers"),
    ('5', "line 7 is '5': expected 'index<TAB>prediction' with two integers"),
    ('5\t1\t0', "line 7 is '5\\t1\\t0': expected 'index<TAB>prediction' with two integers"),
    ('5\t2', 'line 7 has prediction 2: expected 0 or 1'),
    ('5\t-1', 'line 7 has prediction -1: expected 0 or 1'),
    ('6\t1', 'line 7 has index 6: expected 5'),
])
def test_bad_prediction_lines(run_files, line, expected):
    analyse, _, pred = run_files
    lines = pred.read_text().splitlines()
    lines[6] = line
    pred.write_text('\n'.join(lines) + '\n')
    _message(DataError, analyse, str(pred), expected)


def test_wrong_prediction_count_or_header(run_files, rocstories_dir):
    analyse, _, pred = run_files
    labels = rocstories_test_labels(rocstories_dir)
    for preds in (labels[:100], list(labels) + [0], []):
        _write_preds(pred, preds)
        _message(DataError, analyse, str(pred), f'holds {len(preds)} predictions but the test set', 'has 1871 stories')
    pred.write_bytes(b'')
    _message(DataError, analyse, str(pred), "starts with []: expected the header 'index\\tprediction'")
    _write_preds(pred, labels, header='id,label')
    _message(DataError, analyse, str(pred), "starts with ['id,label']: expected the header")


def test_test_file_without_labels(tmp_path, rocstories_dir, run_files):
    analyse, log, pred = run_files
    data = tmp_path / 'data'
    data.mkdir()
    for name in (VAL_FILE, TEST_FILE):
        with open(rocstories_dir / name, newline='', encoding='utf-8') as f:
            rows = [row[:-1] if name == TEST_FILE else row for row in csv.reader(f)]
        with open(data / name, 'w', newline='', encoding='utf-8') as f:
            csv.writer(f).writerows(rows)
    _message(DataError, lambda: analysis.rocstories(str(data), str(pred), str(log)), TEST_FILE,
             'missing columns: AnswerRightEnding')


# ------------------------------------------------------------------ the paper's metrics

def test_metrics_of_each_task_against_sklearn_and_scipy():
    import scipy.stats
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
    y = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
    p = [1, 0, 0, 1, 1, 0, 1, 1, 1, 0]
    assert analysis.task_metrics('cola', y, p) == {'mcc': pytest.approx(100 * matthews_corrcoef(y, p))}
    assert analysis.task_metrics('sst2', y, p) == {'accuracy': pytest.approx(100 * accuracy_score(y, p))}
    for name in ('mrpc', 'qqp'):
        assert analysis.task_metrics(name, y, p) == {'f1': pytest.approx(100 * f1_score(y, p)),
                                                     'accuracy': pytest.approx(60.0)}
    s_true = [0.0, 1.2, 2.5, 3.1, 4.8, 5.0, 2.2]
    s_pred = [0.4, 1.0, 2.9, 2.7, 4.1, 4.9, 3.0]
    assert analysis.task_metrics('stsb', s_true, s_pred) == {
        'pearson': pytest.approx(100 * scipy.stats.pearsonr(s_true, s_pred)[0]),
        'spearman': pytest.approx(100 * scipy.stats.spearmanr(s_true, s_pred)[0])}
    assert analysis.task_metrics('regression', s_true, s_pred) == analysis.task_metrics('stsb', s_true, s_pred)
    mnli_true = ['entailment', 'neutral', 'contradiction', 'neutral']
    assert analysis.task_metrics('mnli', [0, 1, 2, 1], [0, 2, 2, 1]) == {'accuracy': 75.0}
    assert analysis.task_metrics('entailment', mnli_true, mnli_true) == {'accuracy': 100.0}


def test_race_accuracy_per_group_and_all():
    y = [0, 1, 2, 3, 0, 1, 2]
    p = [0, 1, 0, 3, 1, 1, 2]
    g = ['high', 'middle', 'middle', 'high', 'high', 'middle', 'middle']
    m = analysis.task_metrics('race', y, p, groups=g)
    assert list(m) == ['accuracy', 'accuracy_high', 'accuracy_middle']
    assert m['accuracy'] == pytest.approx(100 * 5 / 7)
    assert m['accuracy_high'] == pytest.approx(100 * 2 / 3) and m['accuracy_middle'] == pytest.approx(75.0)
    assert analysis.format_metrics('RACE Test', m) == [
        'RACE Test Accuracy: 71.43', 'RACE Test Accuracy (high): 66.67', 'RACE Test Accuracy (middle): 75.00']


def test_constant_predictions_give_nan_correlation_without_warning():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        m = analysis.task_metrics('stsb', [1.0, 2.0, 3.0], [2.5, 2.5, 2.5])
    assert math.isnan(m['pearson']) and math.isnan(m['spearman'])


def test_metric_bad_inputs():
    with pytest.raises(InputError, match=r"no metrics for 'glue': expected a task \(rocstories, .*\) or a task type "
                                         r"\(classification, .*\)"):
        analysis.task_metrics('glue', [0], [0])
    with pytest.raises(DataError, match=r"^cola: labels of shape \(0,\): expected a non-empty list of labels"):
        analysis.task_metrics('cola', [], [])
    with pytest.raises(DataError, match=r"^sst2 predictions have shape \(2,\): expected 3 values, one per label"):
        analysis.task_metrics('sst2', [0, 1, 1], [0, 1])
    with pytest.raises(DataError, match=r"^race groups have shape \(1,\): expected 2 values"):
        analysis.task_metrics('race', [0, 1], [0, 1], groups=['high'])
    with pytest.raises(DataError, match=r"^stsb predictions hold values that are not finite numbers"):
        analysis.task_metrics('stsb', [1.0, 2.0], [1.0, float('nan')])


# ------------------------------------------------------------------ submission files read back

@pytest.mark.parametrize('name,preds,ids', [
    ('mnli', [2, 0, 1], None), ('race', [3, 0], ['high/1.txt-0', 'middle/2.txt-1']), ('cola', [0, 1, 1], None),
    ('rocstories', [1, 0], None), ('stsb', [4.25, 0.0, 5.5], [10, 11, 12])])
def test_read_submission_reads_back_what_write_submission_wrote(tmp_path, name, preds, ids):
    import tasks
    task = tasks.TASKS[name]
    path = tasks.write_submission(task, np.array(preds), str(tmp_path), ids=ids)
    got_ids, got = analysis.read_submission(task, path)
    assert got_ids == [str(i) for i in (ids or range(len(preds)))]
    assert got.tolist() == preds and got.dtype == (np.float64 if name == 'stsb' else np.int64)


def test_read_submission_bad_files(tmp_path):
    import tasks
    path = tmp_path / 'MNLI-m.tsv'
    with pytest.raises(MissingFileError, match='MNLI-m.tsv does not exist'):
        analysis.read_submission(tasks.TASKS['mnli'], str(path))
    path.write_text('id\tlabel\n0\tneutral\n')
    with pytest.raises(DataError, match=r"starts with 'id\\tlabel': expected the header"):
        analysis.read_submission(tasks.TASKS['mnli'], str(path))
    path.write_text('index\tprediction\n0\tneutral\n1\tmaybe\n')
    with pytest.raises(DataError, match=r"MNLI-m.tsv line 3 has prediction 'maybe': expected one of entailment, "
                                        r"neutral, contradiction"):
        analysis.read_submission(tasks.TASKS['mnli'], str(path))
    path.write_text('index\tprediction\n0\t1.5\n')
    with pytest.raises(DataError, match=r"line 2 has prediction '1.5': expected an integer"):
        analysis.read_submission(tasks.TASKS['cola'], str(path))
    path.write_text('index\tprediction\n0\tnan\n')
    with pytest.raises(DataError, match=r"line 2 has prediction 'nan': expected a finite score"):
        analysis.read_submission(tasks.TASKS['stsb'], str(path))
    path.write_text('index\tprediction\n0\t1\t2\n')
    with pytest.raises(DataError, match=r"line 2 is '0\\t1\\t2': expected 'index<TAB>prediction'"):
        analysis.read_submission(tasks.TASKS['cola'], str(path))


# ------------------------------------------------------------------ plot_log

def _write_jsonl(path, settings, rows):
    with open(path, 'w') as f:
        for obj in [settings] + rows:
            f.write((obj if isinstance(obj, str) else json.dumps(obj)) + '\n')


def _png_text(path):
    """The PNG's size (width, height) and its text chunks; fails unless it is a PNG."""
    from PIL import Image
    with Image.open(path) as image:
        assert image.format == 'PNG'
        return image.size, dict(image.text)


FINETUNE_ROWS = [{'n_epochs': e, 'n_updates': 187 * e, 'tr_cost': 0.7 - 0.1 * e, 'va_cost': 0.72 - 0.08 * e,
                  'tr_acc': 50.0 + 10 * e, 'va_acc': 51.0 + 8 * e, 'time': 1.0} for e in (1, 2, 3)]
PRETRAIN_ROWS = [{'n_updates': u, 'tr_loss': 4.0 / u, 'va_loss': 4.2 / u, 'va_ppl': math.exp(4.2 / u),
                  'lr': 1e-3 * u / 30, 'tokens_per_s': 900.0, 'time': 1.0} for u in (10, 20, 30)]


def test_plot_log_draws_a_finetuning_log_beside_it(tmp_path):
    log = tmp_path / 'run.jsonl'
    _write_jsonl(log, {'desc': 'run', 'lr': 6.25e-5}, [{'warning': 'duplicate ids', 'time': 0}] + FINETUNE_ROWS)
    curves = analysis.log_curves(str(log))
    assert curves == {'cost': {f: ([187.0, 374.0, 561.0], [r[f] for r in FINETUNE_ROWS])
                               for f in ('tr_cost', 'va_cost')},
                      'metrics (%)': {f: ([187.0, 374.0, 561.0], [r[f] for r in FINETUNE_ROWS])
                                      for f in ('tr_acc', 'va_acc')}}
    png = analysis.plot_log(str(log))
    assert png == str(tmp_path / 'run.png') and os.path.getsize(png) > 10_000
    size, text = _png_text(png)
    assert size == (1000, 400)  # two panels of 5 x 4 inches at 100 dpi
    assert text['Description'] == 'cost: tr_cost, va_cost; metrics (%): tr_acc, va_acc'
    assert sorted(os.listdir(tmp_path)) == ['run.jsonl', 'run.png']  # no temporary file left


def test_plot_log_draws_a_pretraining_log_with_its_learning_rate(tmp_path):
    log = tmp_path / 'lm.jsonl'
    rows = PRETRAIN_ROWS + [dict(PRETRAIN_ROWS[-1], n_updates=40, va_loss=None, va_ppl=None)]  # no valid split
    _write_jsonl(log, {'desc': 'lm'}, rows)
    curves = analysis.log_curves(str(log))
    assert list(curves) == ['loss', 'validation perplexity', 'learning rate']
    assert curves['loss']['tr_loss'] == ([10.0, 20.0, 30.0, 40.0], [r['tr_loss'] for r in rows])
    assert curves['loss']['va_loss'] == ([10.0, 20.0, 30.0], [r['va_loss'] for r in PRETRAIN_ROWS])
    assert curves['learning rate'] == {'lr': ([10.0, 20.0, 30.0, 40.0], [r['lr'] for r in rows])}
    png = analysis.plot_log(str(log), str(tmp_path / 'out' / 'curves.png'))
    size, text = _png_text(png)
    assert size == (1500, 400) and os.path.getsize(png) > 10_000
    assert text['Description'] == 'loss: tr_loss, va_loss; validation perplexity: va_ppl; learning rate: lr'


@pytest.mark.parametrize('rows, expected', [
    ([], 'has no rows after its settings line'),
    ([{'warning': 'x', 'time': 0}], 'has no rows after its settings line'),
    ([{'tr_cost': 0.5, 'va_cost': 0.6}], "line 2 has no 'n_updates' field"),
    ([FINETUNE_ROWS[0], {'n_updates': 374, 'va_cost': 0.6}], "line 3 has no 'tr_cost' field"),
    ([{'n_updates': 3, 'va_acc': 50.0}], "line 2 has neither 'tr_cost' nor 'tr_loss'"),
    ([dict(PRETRAIN_ROWS[0], lr='fast')], "line 2 has lr 'fast': expected a number"),
    (['[1, 2]'], "line 2 is '[1, 2]': expected a JSON object"),
    (['{"n_updates": 1, '], 'line 2 is not JSON'),
])
def test_plot_log_refuses_a_bad_log_in_one_line(tmp_path, rows, expected):
    log = tmp_path / 'bad.jsonl'
    _write_jsonl(log, {'desc': 'bad'}, rows)
    _message(DataError, lambda: analysis.plot_log(str(log)), str(log), expected)
    assert not (tmp_path / 'bad.png').exists()


def test_plot_log_of_a_missing_log(tmp_path):
    _message(MissingFileError, lambda: analysis.plot_log(str(tmp_path / 'none.jsonl')), 'none.jsonl',
             'does not exist')


def test_pretrain_run_writes_the_plot_beside_its_log(tmp_path):
    import pretrain
    (tmp_path / 'text.txt').write_text('the cat sat on the mat. ' * 200)
    args = pretrain.parse_args(['--data', str(tmp_path / 'text.txt'), '--tokenizer', 'char', '--n_layer', '1',
                                '--n_embd', '16', '--n_head', '2', '--n_ctx', '16', '--n_batch', '4',
                                '--max_updates', '4', '--eval_every', '2', '--warmup_updates', '1',
                                '--log_dir', str(tmp_path / 'log'), '--save_dir', str(tmp_path / 'save'),
                                '--device', 'cpu'])
    result = pretrain.run(args, verbose=False)
    png = tmp_path / 'log' / f'{args.run.desc}.png'
    assert result['log_path'] == str(tmp_path / 'log' / f'{args.run.desc}.jsonl')
    _, text = _png_text(png)
    assert text['Description'] == 'loss: tr_loss, va_loss; validation perplexity: va_ppl; learning rate: lr'


def _drawn_axes(log):
    """The panels of plot_log's figure for `log`, drawn (so tick labels and offsets are set)."""
    fig = analysis.log_figure(str(log))
    fig.canvas.draw()
    return fig.axes


def test_plot_log_ticks_are_plain_numbers_even_for_a_flat_curve(tmp_path):
    log = tmp_path / 'flat.jsonl'
    rows = [dict(r, tr_loss=0.69315 + 1e-7 * i, va_loss=0.69315 + 2e-7 * i, va_ppl=2.0 + 1e-7 * i, lr=2.5e-6 * i)
            for i, r in enumerate(PRETRAIN_ROWS)]
    _write_jsonl(log, {'desc': 'flat'}, rows)
    for ax in _drawn_axes(log):
        for axis in (ax.xaxis, ax.yaxis):
            assert axis.get_major_formatter().get_offset() == ''
            labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
            assert labels and not any('e' in t or '×' in t for t in labels), labels
        assert ax.yaxis.get_offset_text().get_text() == ''


def test_plot_log_draws_markers_and_lines_with_the_final_value_in_the_legend(tmp_path):
    log = tmp_path / 'run.jsonl'
    _write_jsonl(log, {'desc': 'run'}, FINETUNE_ROWS)
    axes = _drawn_axes(log)
    assert [ax.get_title() for ax in axes] == ['cost', 'metrics (%)']
    for ax, fields in zip(axes, (('tr_cost', 'va_cost'), ('tr_acc', 'va_acc'))):
        lines = ax.get_lines()
        assert len(lines) == 2
        for line in lines:
            assert line.get_linestyle() == '-' and line.get_marker() == 'o' and len(line.get_xdata()) == 3
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == [f"{f} (final {FINETUNE_ROWS[-1][f]:.4g})" for f in fields]
