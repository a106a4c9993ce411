"""Score a finished run: best validation accuracy from its log, test accuracy of its predictions."""
import collections
import json
import math
import numbers
import os

import numpy as np

from errors import DataError, MissingFileError

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
