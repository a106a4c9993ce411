"""Score a finished run: best validation accuracy from its log, test accuracy of its predictions."""
import collections
import json
import os

import numpy as np

RocStoriesAnalysis = collections.namedtuple('RocStoriesAnalysis', ['valid_accuracy', 'test_accuracy'])


def read_log(log_path):
    """The entries of a JSONL run log (utils.ResultLogger): every line after the first
    (which holds the run's settings) that has a validation accuracy."""
    if not os.path.isfile(log_path):
        raise FileNotFoundError(f"log file {log_path} does not exist: expected the JSONL log train.py writes to "
                                f"{{log_dir}}/{{desc}}.jsonl")
    entries = []
    with open(log_path) as f:
        for n, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except ValueError as err:
                raise ValueError(f"{log_path} line {n + 1} is not JSON: {err}") from None
            if n > 0 and isinstance(entry, dict) and 'va_acc' in entry:
                entries.append(entry)
    return entries


def read_predictions(pred_path):
    """Predictions from a submission file: a header `index\\tprediction`, then one line per example."""
    if not os.path.isfile(pred_path):
        raise FileNotFoundError(f"prediction file {pred_path} does not exist: expected the ROCStories.tsv that "
                                f"train.py --submit writes")
    with open(pred_path) as f:
        header = f.readline().rstrip('\n').split('\t')
        if header != ['index', 'prediction']:
            raise ValueError(f"{pred_path} starts with {header!r}: expected the header 'index\\tprediction'")
        preds = []
        for n, line in enumerate(f):
            if not line.strip():
                continue
            fields = line.rstrip('\n').split('\t')
            try:
                index, pred = int(fields[0]), int(fields[1])
            except (ValueError, IndexError):
                raise ValueError(f"{pred_path} line {n + 2} is {line.strip()!r}: expected 'index<TAB>prediction' "
                                 f"with two integers") from None
            if index != len(preds):
                raise ValueError(f"{pred_path} line {n + 2} has index {index}: expected {len(preds)}")
            preds.append(pred)
    return np.array(preds, dtype=np.int64)


def rocstories(data_dir, pred_path, log_path):
    """Print and return the best validation accuracy in `log_path` (the log of the run
    that wrote `pred_path`) and the test accuracy of `pred_path` against the Story Cloze
    test labels in `data_dir`, both in percent."""
    from datasets import rocstories_test_labels  # the project's datasets.py

    entries = read_log(log_path)
    if not entries:
        raise ValueError(f"{log_path} has no entry with a validation accuracy ('va_acc'): expected the log of a "
                         f"run that finished at least one epoch")
    valid_accuracy = float(max(e['va_acc'] for e in entries))
    preds = read_predictions(pred_path)
    labels = np.asarray(rocstories_test_labels(data_dir))
    if len(preds) != len(labels):
        raise ValueError(f"{pred_path} holds {len(preds)} predictions but the test set in {data_dir} has "
                         f"{len(labels)} stories")
    test_accuracy = float(np.mean(preds == labels) * 100.)
    print('ROCStories Valid Accuracy: %.2f' % valid_accuracy)
    print('ROCStories Test Accuracy:  %.2f' % test_accuracy)
    return RocStoriesAnalysis(valid_accuracy, test_accuracy)
