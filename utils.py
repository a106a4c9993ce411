"""Small helpers: dataset encoding, batching, JSONL logging, softmax, reading a JSON file."""
import json
import os
import sys
import time

import numpy as np
from tqdm import tqdm

from errors import DataError, MissingFileError

_JSON_TYPES = {dict: 'an object', list: 'an array'}


def read_json(path, expected, kind=dict, error=DataError):
    """The JSON value in `path`, checked to be of type `kind` (dict or list).

    `expected` names what the file should be ('the config.json train.py writes') and ends
    every message. A missing file raises MissingFileError; unreadable bytes, invalid JSON
    or another type raise `error` (a GPT1Error subclass), one line naming the path."""
    try:
        with open(path, encoding='utf-8') as f:
            value = json.load(f)
    except FileNotFoundError:
        raise MissingFileError(f"{path} is missing: expected {expected}") from None
    except (OSError, ValueError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise error(f"{path} is not readable JSON ({err}): expected {expected}") from None
    if not isinstance(value, kind):
        raise error(f"{path} holds a JSON {type(value).__name__}, not {_JSON_TYPES.get(kind, kind.__name__)}: "
                    f"expected {expected}")
    return value


def encode_dataset(*splits, encoder, verbose=True, split_names=None, field_names=None):
    """Encode every list of str found in `splits` with encoder.encode.

    Takes any number of splits, each a (nested) tuple or list of fields; a field
    that is a list or tuple starting with a str is encoded to a list of lists of
    int ids, any other list or tuple is walked recursively, anything else (numpy
    label arrays) is kept as is. Returns a list with one encoded split per
    argument, fields in lists, as the original did. verbose is passed to
    encoder.encode: True shows its progress bar per field, under a bar that names
    the field ('encoding train story': split_names and field_names, else their
    numbers); False draws nothing.
    """
    bar = tqdm(total=_n_text_fields(splits), file=sys.stderr, ncols=80, leave=False, disable=not verbose,
               unit='field')

    def encode(item, label, names):
        if isinstance(item, (list, tuple)):
            if item and isinstance(item[0], str):
                bar.set_description(f'encoding {label}')
                ids = encoder.encode(list(item), verbose=verbose)
                bar.update(1)
                return ids
            return [encode(sub, f'{label} {_name(names, j, "field")}', None) for j, sub in enumerate(item)]
        return item
    with bar:
        return [encode(split, _name(split_names, i, 'split'), field_names) for i, split in enumerate(splits)]


def _name(names, index, kind):
    """names[index], or '{kind} {index + 1}' where there is no such name."""
    return names[index] if names is not None and index < len(names) else f'{kind} {index + 1}'


def _n_text_fields(item):
    """How many lists of str encode_dataset finds in `item`."""
    if not isinstance(item, (list, tuple)):
        return 0
    if item and isinstance(item[0], str):
        return 1
    return sum(_n_text_fields(sub) for sub in item)


def iter_data(*datas, n_batch=128, truncate=False, verbose=False, max_batches=None, desc=None):
    """Yield consecutive batches of n_batch items from equally long sequences.

    With one sequence yields its slices, with several yields tuples of their
    slices. truncate drops the last, short batch; max_batches stops after that
    many batches (None: no limit); verbose shows a tqdm bar on stderr, labelled desc.
    """
    if not datas:
        raise ValueError("iter_data: expected at least one sequence to batch")
    if n_batch < 1:
        raise ValueError(f"iter_data: n_batch is {n_batch}, expected a positive int")
    n = len(datas[0])
    lengths = [len(d) for d in datas]
    if any(length != n for length in lengths):
        raise ValueError(f"iter_data: the sequences have lengths {lengths}, expected equal lengths")
    if truncate:
        n = n // n_batch * n_batch
    if max_batches is not None:
        n = min(n, max_batches * n_batch)
    starts = range(0, n, n_batch)
    for i in tqdm(starts, file=sys.stderr, ncols=80, leave=False, disable=not verbose, desc=desc):
        if len(datas) == 1:
            yield datas[0][i:i + n_batch]
        else:
            yield tuple(d[i:i + n_batch] for d in datas)


def _to_json(value):
    """json.dumps fallback: numpy scalars and arrays to Python numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"ResultLogger: {type(value).__name__} {value!r:.60} is not JSON serializable")


class ResultLogger:
    """Write a run's results as JSON lines: first its settings, then one line per log() call.

    Every line gets a 'time' field (seconds since the epoch) unless it has one.
    Each line is flushed at once so a crashed run keeps its log. Usable as a
    context manager.
    """

    def __init__(self, path, *args, append=False, **kwargs):
        """Take the file path (parent folders are created), then the settings:
        keyword settings become the first line; positional ones, if any, its 'args' field.
        With append=True, an existing log is continued: new lines go after its own, and the
        settings, if any are given, are written as one more line."""
        if args:
            kwargs['args'] = list(args)
        self.f_log = open(make_path(path), 'a' if append else 'w', encoding='utf-8')
        if kwargs or not append:
            self.log(**kwargs)

    def log(self, **kwargs):
        """Append one line holding kwargs and a time field."""
        kwargs.setdefault('time', time.time())
        self.f_log.write(json.dumps(kwargs, default=_to_json) + '\n')
        self.f_log.flush()

    def close(self):
        """Close the file."""
        self.f_log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def make_path(f):
    """Create the parent folder of file path f if it is missing; return f."""
    folder = os.path.dirname(f)
    if folder:
        os.makedirs(folder, exist_ok=True)
    return f


def np_softmax(x, t=1):
    """Softmax of array x at temperature t along the last axis, shifted by the max so exp cannot overflow."""
    x = np.asarray(x) / t
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def flatten(outer):
    """Take an iterable of iterables; return one list of their items, one level deep."""
    return [item for inner in outer for item in inner]
