"""Score a finished run: best validation accuracy from its log, test accuracy of its predictions;
the paper's metric of every task (`task_metrics`), from scikit-learn and SciPy; and a picture
of how a run went (`plot_log`: its JSONL log drawn to a PNG with matplotlib, headless)."""
import collections
import json
import math
import numbers
import os
import warnings

import numpy as np

from errors import DataError, InputError, MissingFileError

RocStoriesAnalysis = collections.namedtuple('RocStoriesAnalysis', ['valid_accuracy', 'test_accuracy'])


def _lines(path):
    """Take a file's path; return its lines as (1-based number, str without the line break).
    Raises DataError naming the line of the first byte that is not UTF-8."""
    with open(path, 'rb') as f:
        raw = f.read().splitlines()
    lines = []
    for number, line in enumerate(raw, start=1):
        try:
            lines.append((number, line.decode('utf-8')))
        except UnicodeDecodeError as err:
            raise DataError(f"{path} is not UTF-8: line {number} holds the byte 0x{line[err.start]:02x} "
                            f"({err.reason}); expected UTF-8 text") from None
    return lines


def read_log(log_path):
    """The entries of a JSONL run log (utils.ResultLogger): every line after the first
    (which holds the run's settings) that has a validation accuracy. Raises
    MissingFileError for a missing file, DataError for a line that is not JSON or a
    'va_acc' that is not a finite number."""
    if not os.path.isfile(log_path):
        raise MissingFileError(f"log file {log_path} does not exist: expected the JSONL log train.py writes to "
                               f"{{log_dir}}/{{desc}}.jsonl")
    entries = []
    for number, line in _lines(log_path):
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError as err:
            raise DataError(f"{log_path} line {number} is not JSON: {err}") from None
        if number > 1 and isinstance(entry, dict) and 'va_acc' in entry:
            va_acc = entry['va_acc']
            if isinstance(va_acc, bool) or not isinstance(va_acc, numbers.Real) or not math.isfinite(va_acc):
                raise DataError(f"{log_path} line {number} has va_acc {va_acc!r}: expected a finite number (percent)")
            entries.append(entry)
    return entries


def _prediction(pred_path, number, line, index):
    """Take the predictions file's path, a line's number and text, and the index it should
    hold; return its prediction (0 or 1). Raises DataError for anything else."""
    try:
        found_index, pred = map(int, line.split('\t'))  # ValueError too for other than two fields
    except ValueError:
        raise DataError(f"{pred_path} line {number} is {line.strip()!r}: expected 'index<TAB>prediction' "
                        f"with two integers") from None
    if found_index != index:
        raise DataError(f"{pred_path} line {number} has index {found_index}: expected {index}")
    if pred not in (0, 1):
        raise DataError(f"{pred_path} line {number} has prediction {pred}: expected 0 or 1 (the right ending's index)")
    return pred


def read_predictions(pred_path):
    """Predictions from a submission file: a header `index\\tprediction`, then one line per
    example. Returns an int64 array of 0/1; raises MissingFileError or DataError."""
    if not os.path.isfile(pred_path):
        raise MissingFileError(f"prediction file {pred_path} does not exist: expected the ROCStories.tsv that "
                               f"train.py --submit writes")
    lines = _lines(pred_path)
    header = lines[0][1].split('\t') if lines else []
    if header != ['index', 'prediction']:
        raise DataError(f"{pred_path} starts with {header!r}: expected the header 'index\\tprediction'")
    preds = []
    for number, line in lines[1:]:
        if line.strip():
            preds.append(_prediction(pred_path, number, line, len(preds)))
    return np.array(preds, dtype=np.int64)


def _submission_value(task, path, number, text):
    """One prediction of a submission file back as write_submission took it: a class or
    choice index, or a score. Raises DataError naming the line for anything else."""
    if task.task_type == 'regression':
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
        expected = 'a finite score'
    elif task.label_strings:
        if text in task.classes:
            return task.classes.index(text)
        expected = f"one of {', '.join(task.classes)}"
    else:
        if text.isascii() and text.isdigit():
            return int(text)
        expected = 'an integer'
    raise DataError(f"{path} line {number} has prediction {text!r}: expected {expected}")


def read_submission(task, path):
    """Take a tasks.Task and one of its submission files (tasks.write_submission's format);
    return (ids: list of str, predictions: numpy array of class or choice indices, int64,
    or of scores, float64). Raises MissingFileError or DataError naming the line."""
    if not os.path.isfile(path):
        raise MissingFileError(f"prediction file {path} does not exist: expected the {os.path.basename(path)} "
                               f"that train.py --submit writes")
    lines = [(number, line) for number, line in _lines(path) if line.strip()]
    if not lines or lines[0][1].split('\t') != ['index', 'prediction']:
        found = lines[0][1] if lines else ''
        raise DataError(f"{path} starts with {found!r}: expected the header 'index\\tprediction'")
    ids, predictions = [], []
    for number, line in lines[1:]:
        fields = line.split('\t')
        if len(fields) != 2:
            raise DataError(f"{path} line {number} is {line!r}: expected 'index<TAB>prediction'")
        ids.append(fields[0])
        predictions.append(_submission_value(task, path, number, fields[1]))
    dtype = np.float64 if task.task_type == 'regression' else np.int64
    return ids, np.asarray(predictions, dtype=dtype)


def rocstories(data_dir, pred_path, log_path):
    """Print and return the best validation accuracy in `log_path` (the log of the run
    that wrote `pred_path`) and the test accuracy of `pred_path` against the Story Cloze
    test labels in `data_dir`, both in percent. Raises MissingFileError or DataError
    for a missing or unusable log, predictions file or test file."""
    from datasets import rocstories_test_labels  # the project's datasets.py

    entries = read_log(log_path)
    if not entries:
        raise DataError(f"{log_path} has no entry with a validation accuracy ('va_acc'): expected the log of a "
                        f"run that finished at least one epoch")
    valid_accuracy = float(max(e['va_acc'] for e in entries))
    preds = read_predictions(pred_path)
    labels = np.asarray(rocstories_test_labels(data_dir))
    if len(preds) != len(labels):
        raise DataError(f"{pred_path} holds {len(preds)} predictions but the test set in {data_dir} has "
                        f"{len(labels)} stories")
    test_accuracy = float(np.mean(preds == labels) * 100.)
    print('ROCStories Valid Accuracy: %.2f' % valid_accuracy)
    print('ROCStories Test Accuracy:  %.2f' % test_accuracy)
    return RocStoriesAnalysis(valid_accuracy, test_accuracy)


# ------------------------------------------------------------------ the paper's metrics

# scikit-learn's and SciPy's metrics are imported when first used: train.py imports this module.

def _accuracy(y_true, y_pred):
    from sklearn.metrics import accuracy_score
    return accuracy_score(y_true, y_pred)


def _mcc(y_true, y_pred):
    from sklearn.metrics import matthews_corrcoef
    return matthews_corrcoef(y_true, y_pred)


def _f1(y_true, y_pred):
    """F1 of class 1 (MRPC's paraphrase, QQP's duplicate)."""
    from sklearn.metrics import f1_score
    return f1_score(y_true, y_pred)


def _correlation(name, y_true, y_pred):
    """scipy.stats' `name` coefficient of the two arrays; NaN (no warning) where either is constant."""
    import scipy.stats
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', scipy.stats.ConstantInputWarning)
        return float(getattr(scipy.stats, name)(y_true, y_pred).statistic)


# Each metric of the paper's tables 2 and 3, from y_true and y_pred, as a fraction.
METRIC_FUNCTIONS = {
    'accuracy': _accuracy,
    'mcc': _mcc,  # CoLA
    'f1': _f1,  # MRPC, QQP
    'pearson': lambda y_true, y_pred: _correlation('pearsonr', y_true, y_pred),  # STS-B
    'spearman': lambda y_true, y_pred: _correlation('spearmanr', y_true, y_pred),
}
METRIC_LABELS = {'accuracy': 'Accuracy', 'mcc': 'MCC', 'f1': 'F1', 'pearson': 'Pearson', 'spearman': 'Spearman'}


def metric_names(task_name_or_type):
    """The metric names of a registered task ('cola', 'mnli', ...) or, for the user's own
    data, of a task type ('classification', ...). Raises InputError listing both for any other."""
    from tasks import DEFAULT_METRICS, TASKS  # the project's tasks.py
    if task_name_or_type in TASKS:
        return TASKS[task_name_or_type].metrics
    if task_name_or_type in DEFAULT_METRICS:
        return DEFAULT_METRICS[task_name_or_type]
    raise InputError(f"no metrics for {task_name_or_type!r}: expected a task ({', '.join(TASKS)}) or a task type "
                     f"({', '.join(DEFAULT_METRICS)})")


def _as_array(values, what, n, numeric):
    """values as a 1-D numpy array of n items; DataError naming `what` when not (or when not
    finite numbers and numeric)."""
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != n:
        raise DataError(f"{what} have shape {array.shape}: expected {n} values, one per label")
    if numeric and not (np.issubdtype(array.dtype, np.number) and np.isfinite(array).all()):
        raise DataError(f"{what} hold values that are not finite numbers: expected similarity scores")
    return array


def task_metrics(task_name_or_type, y_true, y_pred, groups=None):
    """Score one split. Takes a task name or type (see metric_names), the true labels and the
    predictions (class or choice indices; scores for regression) of its n examples, and
    optionally each example's group (RACE's 'middle'/'high'). Returns {metric: value} in
    percent, as the paper reports them (accuracy, mcc, f1, pearson, spearman x 100), plus
    '{metric}_{group}' per group in order of first appearance. A correlation of constant
    predictions is NaN. Raises DataError for empty or mismatched inputs. MNLI's matched
    and mismatched sets are two splits: one call each."""
    names = metric_names(task_name_or_type)
    numeric = 'pearson' in names or 'spearman' in names
    y_true = np.asarray(y_true)
    if y_true.ndim != 1 or len(y_true) == 0:
        raise DataError(f"{task_name_or_type}: labels of shape {y_true.shape}: expected a non-empty list of labels")
    n = len(y_true)
    y_true = _as_array(y_true, f"{task_name_or_type} labels", n, numeric)
    y_pred = _as_array(y_pred, f"{task_name_or_type} predictions", n, numeric)
    metrics = {name: 100. * float(METRIC_FUNCTIONS[name](y_true, y_pred)) for name in names}
    if groups is not None:
        groups = _as_array(groups, f"{task_name_or_type} groups", n, False)
        for group in dict.fromkeys(groups.tolist()):
            mask = groups == group
            metrics.update({f'{name}_{group}': 100. * float(METRIC_FUNCTIONS[name](y_true[mask], y_pred[mask]))
                            for name in names})
    return metrics


def format_metrics(prefix, metrics):
    """Lines to print for task_metrics' result, each '{prefix} {Metric}: {value:.2f}', a
    group's as '{prefix} {Metric} ({group})'; e.g. format_metrics('RACE Test', ...)."""
    lines = []
    for key, value in metrics.items():
        name, _, group = key.partition('_')
        label = METRIC_LABELS[name] + (f' ({group})' if group else '')
        lines.append(f'{prefix} {label}: {value:.2f}')
    return lines


# ------------------------------------------------------------------ plots of a run's log

# The panels of each kind of log: (title, fields), a field '*_cost' meaning every field with
# that ending. train.py logs no learning rate; pretrain.py logs the schedule's value.
FINETUNE_PANELS = (('cost', ('*_cost',)), ('metrics (%)', ('*_metric',)))
PRETRAIN_PANELS = (('loss', ('tr_loss', 'va_loss')), ('validation perplexity', ('va_ppl',)),
                   ('zero-shot', ('zs_*',)), ('learning rate', ('lr',)))
LOG_LOSS_FIELDS = {'tr_cost': FINETUNE_PANELS, 'tr_loss': PRETRAIN_PANELS}  # which log it is, by its loss
NOT_PLOTTED = ('n_updates', 'n_epochs', 'time', 'tokens_per_s')


def _log_rows(log_path):
    """The entries of a JSONL run log after its settings line, as (line number, dict),
    leaving out warning lines. Raises MissingFileError, or DataError for a line that is not
    a JSON object or has no 'n_updates', and for a log without entries."""
    if not os.path.isfile(log_path):
        raise MissingFileError(f"log file {log_path} does not exist: expected the JSONL log train.py or "
                               f"pretrain.py writes to {{log_dir}}/{{desc}}.jsonl")
    rows = []
    for number, line in _lines(log_path)[1:]:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as err:
            raise DataError(f"{log_path} line {number} is not JSON: {err}") from None
        if not isinstance(entry, dict):
            raise DataError(f"{log_path} line {number} is {line.strip()[:40]!r}: expected a JSON object")
        if set(entry) <= {'warning', 'time'}:
            continue
        if 'n_updates' not in entry:
            raise DataError(f"{log_path} line {number} has no 'n_updates' field: expected it in every entry")
        rows.append((number, entry))
    if not rows:
        raise DataError(f"{log_path} has no rows after its settings line: expected the entries of a run that "
                        f"logged at least once")
    return rows


def _panel_fields(patterns, entries):
    """The fields of `entries` a panel draws: its named fields, or for '*_cost' every field
    ending in '_cost', for '*_metric' every other tr_/va_ field (accuracy, F1, ...), for 'zs_*'
    the zero-shot heuristics' metrics."""
    found = list(dict.fromkeys(k for e in entries for k in e))
    if patterns == ('*_cost',):
        return [k for k in found if k.endswith('_cost')]
    if patterns == ('*_metric',):
        return [k for k in found if k.startswith(('tr_', 'va_')) and not k.endswith('_cost')]
    if patterns == ('zs_*',):
        return [k for k in found if k.startswith('zs_')]
    return [k for k in patterns if k in found]


def _number(log_path, number, field, value):
    """A logged value as a float (None and null stay None). Raises DataError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataError(f"{log_path} line {number} has {field} {value!r}: expected a number")
    return float(value)


def log_curves(log_path):
    """Read a run log of train.py (entries with tr_cost) or pretrain.py (with tr_loss).
    Returns {panel title: {field: (updates, values)}}, two lists of floats per field, the
    points where the field is logged and not null, in log order. Raises MissingFileError,
    or DataError (one line naming the log) for a log without rows, an entry without
    'n_updates' or the loss field, or a value that is not a number."""
    rows = _log_rows(log_path)
    loss_field = next((k for k in LOG_LOSS_FIELDS if k in rows[0][1]), None)
    if loss_field is None:
        raise DataError(f"{log_path} line {rows[0][0]} has neither 'tr_cost' nor 'tr_loss': expected the log of "
                        f"train.py (tr_cost) or pretrain.py (tr_loss)")
    for number, entry in rows:
        if loss_field not in entry:
            raise DataError(f"{log_path} line {number} has no '{loss_field}' field: expected it in every entry")
    entries = [e for _, e in rows]
    curves = {}
    for title, patterns in LOG_LOSS_FIELDS[loss_field]:
        panel = {}
        for field in _panel_fields(patterns, entries):
            points = [(_number(log_path, n, 'n_updates', e['n_updates']), _number(log_path, n, field, e.get(field)))
                      for n, e in rows]
            points = [(x, y) for x, y in points if y is not None and x is not None]
            panel[field] = ([x for x, _ in points], [y for _, y in points])
        if panel:
            curves[title] = panel
    return curves


def _draw_panel(ax, title, panel, chance=None):
    """Draw one panel's fields, each a line with markers against n_updates, its final value in
    the legend; plain tick labels (matplotlib's offset would read a flat curve as 1e-6+6.93e-1).
    chance: {task: level} of the zero-shot fields zs_{task}, each drawn as a dashed line."""
    from matplotlib.ticker import ScalarFormatter

    for field, (xs, ys) in panel.items():
        label = f"{field} (final {ys[-1]:.4g})" if ys else field
        line, = ax.plot(xs, ys, linestyle='-', marker='o', markersize=4 if len(xs) < 30 else 2, label=label)
        level = (chance or {}).get(field[len('zs_'):]) if field.startswith('zs_') else None
        if level is not None:
            ax.axhline(level, linestyle='--', color=line.get_color(), label=f"{field} chance ({level:g})")
    ax.set(title=title, xlabel='n_updates', ylabel=title)
    for axis in (ax.xaxis, ax.yaxis):
        formatter = ScalarFormatter(useOffset=False)
        formatter.set_scientific(False)
        axis.set_major_formatter(formatter)
    ax.legend()


def _settings(log_path):
    """The settings line of a run log (its first line) as a dict; {} where it is not a JSON object."""
    lines = _lines(log_path)
    try:
        settings = json.loads(lines[0][1]) if lines else {}
    except ValueError:
        return {}
    return settings if isinstance(settings, dict) else {}


def log_figure(log_path):
    """A matplotlib Figure (no pyplot: no display, and a notebook's backend is left alone) of a
    run's log: one panel per group of log_curves(log_path). Raises what log_curves raises."""
    return _figure(log_curves(log_path), log_path)


def _figure(curves, log_path):
    """The Figure of log_curves' result, one panel per group, titled with the log's file name."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * len(curves), 4), layout='constrained')
    FigureCanvasAgg(fig)
    chance = _settings(log_path).get('zero_shot_chance')
    for ax, (title, panel) in zip(fig.subplots(1, len(curves), squeeze=False)[0], curves.items()):
        _draw_panel(ax, title, panel, chance)
    fig.suptitle(os.path.basename(log_path))
    return fig


def plot_log(log_path, png_path=None):
    """Draw a run's JSONL log (train.py's or pretrain.py's) to a PNG (log_figure): one panel per
    group of log_curves(log_path) (losses, validation metrics or perplexity, learning rate), each
    field a line with markers against n_updates, labelled with its log name and final value, the
    tick labels plain numbers. png_path defaults to the log's path with .png for .jsonl (beside
    the log); the file is written atomically and its 'Description' text names the panels and
    fields. Returns png_path. Raises what log_curves raises."""
    from checkpoint import atomic_write

    curves = log_curves(log_path)
    fig = _figure(curves, log_path)
    png_path = png_path or os.path.splitext(log_path)[0] + '.png'
    metadata = {'Description': '; '.join(f"{title}: {', '.join(panel)}" for title, panel in curves.items())}
    atomic_write(png_path, lambda tmp: fig.savefig(tmp, format='png', dpi=100, metadata=metadata))
    return png_path
