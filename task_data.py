"""A task's data as train.py's loop takes it: read by readers.py (datasets.py for ROCStories),
BPE-encoded once (and cached on disk) by tasks.encode_fields with GPT-1's or GPT-2's BPE
(text_utils.load_bpe's choice, by the files), laid out with the special tokens by
tasks.prepare_inputs, labels turned into targets by tasks.label_ids.

    data = load_task_data(cfg)           # cfg: a finetune.FinetuneConfig
    data.splits['valid'].X               # (n, n_seq, n_ctx, 2) int32 token and position ids,
                                         # laid out a batch at a time when indexed (tasks.Padded)
    data.trX, data.vaY, data.teM         # the ROCStories-era names of the three main splits

Every task of tasks.TASKS and `--dataset custom` go through here; `load_data` reads
ROCStories by the original's own pipeline instead (`RocData`, the same arrays).
"""
import dataclasses
import os
import sys
import warnings
from typing import Optional

import numpy as np

import tasks
from datasets import rocstories
from errors import DataError, DataWarning, InputError
from readers import get_reader, read_custom, read_rocstories
from utils import encode_dataset

ROC_N_STORIES = 1871  # in the Story Cloze validation file, split into train and valid


@dataclasses.dataclass
class SplitData:
    """One split ready for the model: X (n, n_seq, n_ctx, 2) int32, M (n, n_seq, n_ctx)
    float32 (numpy arrays, or tasks.Padded views that lay out a batch when indexed), Y (n,)
    targets (int64 class or choice indices, float32 scores) or None when the split has no
    labels; ids and groups as datasets.Split has them."""
    X: np.ndarray
    M: np.ndarray
    Y: Optional[np.ndarray]
    ids: Optional[list] = None
    groups: Optional[list] = None


@dataclasses.dataclass
class Encoded:
    """What every encoded dataset shares: the encoder with its special tokens, n_ctx as cut,
    and max_len (the cut of --truncate, else the requested n_ctx)."""
    text_encoder: object
    encoder: dict
    n_vocab: int
    n_special: int
    clf_token: int
    n_ctx: int
    max_len: int

    @property
    def vocab(self):
        """Rows of the embedding matrix: tokens, special tokens, positions."""
        return self.n_vocab + self.n_special + self.n_ctx


@dataclasses.dataclass
class TaskData(Encoded):
    """A task's splits ('train', 'valid', 'test', and e.g. MNLI's 'valid_mismatched') with
    what Encoded holds, the examples cut per split and the readers' warnings."""
    splits: dict = None
    n_truncated: dict = None
    task: tasks.Task = None
    data_warnings: list = dataclasses.field(default_factory=list)

    def __getattr__(self, name):
        # trX, vaY, teM, ...: the earlier port's names for the train, valid and test arrays
        split = {'tr': 'train', 'va': 'valid', 'te': 'test'}.get(name[:2])
        if split is None or name[2:] not in ('X', 'M', 'Y') or 'splits' not in self.__dict__:
            raise AttributeError(name)
        part = self.splits.get(split)
        return None if part is None else getattr(part, name[2:])


def read_task(cfg, verbose=True):
    """(Task, {split name: datasets.Split}) of --dataset from --data_dir, or of the user's files
    for --dataset custom (--task_type, --train_file/--valid_file/--test_file, the column flags)."""
    t = cfg.task
    if t.dataset == 'rocstories':
        splits = read_rocstories(t.data_dir, n_train=ROC_N_STORIES - t.n_valid, n_valid=t.n_valid)
        return tasks.TASKS['rocstories'], splits
    if t.dataset == 'custom':
        columns = t.text_columns.split(',') if t.text_columns else None
        splits = read_custom(t.task_type, t.train_file, t.valid_file, t.test_file, columns, t.label_column,
                             t.id_column, verbose=verbose)
        return custom_task_of(t.task_type, splits['train']), splits
    return tasks.get_task(t.dataset), get_reader(t.dataset)(t.data_dir, verbose=verbose)


def custom_task_of(task_type, train):
    """The Task of the user's data: the classes are the training labels, sorted (readers.class_names)."""
    from readers import class_names
    if task_type == 'multiple_choice':
        return tasks.custom_task(task_type, n_choices=len(train.texts[1][0]))
    if task_type == 'regression':
        return tasks.custom_task(task_type)
    return tasks.custom_task(task_type, classes=class_names(train.labels))


def encode_task(task, splits, text_encoder, cache_dir=None, verbose=True):
    """{split: encoded fields} of every split (tasks.encode_fields; cached in cache_dir unless None)."""
    if verbose:
        print(f"Encoding {task.title}...", file=sys.stderr)
    return {name: tasks.encode_fields(split.texts, text_encoder, cache_dir, verbose) for name, split in splits.items()}


def build_task_data(task, splits, text_encoder, encoded, n_ctx=512, truncate='fit'):
    """TaskData from read splits and their encoded fields: the special tokens added to the
    encoder (once), sequences cut per `truncate` (tasks.TRUNCATE_MODES) and n_ctx cut to the
    longest, arrays and targets per split. Raises DataError for an empty split or a label
    outside the task's classes."""
    for name, split in splits.items():
        if len(split) == 0:
            raise DataError(f"{task.title} {name}: the split has no examples: expected at least one")
    sp = tasks.add_special_tokens(text_encoder.encoder)
    inputs = tasks.prepare_inputs(task, encoded, sp, n_ctx, truncate)
    out = {}
    for name, split in splits.items():
        X, M = inputs.views(name)
        Y = None if split.labels is None else tasks.label_ids(task, split.labels, name)
        out[name] = SplitData(X, M, Y, split.ids, split.groups)
    max_len = n_ctx // 2 - 2 if truncate == 'always' else n_ctx
    return TaskData(text_encoder, text_encoder.encoder, sp.n_vocab, sp.n_special, sp.classify, inputs.n_ctx, max_len,
                    out, inputs.n_truncated, task)


def load_task_data(cfg, verbose=True):
    """Read, encode (cached in --cache_dir) and lay out the task of the flags: TaskData, whose
    data_warnings hold the readers' DataWarnings and a count of cut examples (printed when
    verbose; train.py logs them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        task, splits = read_task(cfg, verbose)
        from text_utils import load_bpe  # spacy and ftfy load only when a text is encoded
        text_encoder = load_bpe(cfg.source.encoder_path, cfg.source.bpe_path)
        encoded = encode_task(task, splits, text_encoder, cfg.run.cache_dir, verbose)
    truncate = 'always' if cfg.task.truncate else 'never' if cfg.task.no_truncate else 'fit'
    data = build_task_data(task, splits, text_encoder, encoded, cfg.source.n_ctx, truncate)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    for w in caught:
        if not issubclass(w.category, DataWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    cut = {name: n for name, n in data.n_truncated.items() if n}
    if cut and truncate == 'fit':
        messages.append(f"{task.title}: examples longer than --n_ctx {cfg.source.n_ctx} were cut by the original's "
                        f"rule: {', '.join(f'{n} {name}' for name, n in cut.items())} (--no_truncate refuses instead)")
    data.data_warnings.extend(messages)
    if verbose:
        for message in messages:
            print(f"warning: {message}", file=sys.stderr)
    return data


def check_data_files(cfg):
    """Raise InputError before any work when the data the flags name is not there: --data_dir
    for a registered task other than ROCStories (train.py checks its two files), the files of
    --dataset custom."""
    if cfg.task.dataset == 'custom':
        for flag in ('train_file', 'valid_file', 'test_file'):
            path = getattr(cfg.task, flag)
            if path is not None and not os.path.isfile(path):
                raise InputError(f"--{flag} {path}: no such file; expected a CSV, TSV or JSONL file with a header "
                                 f"row (JSONL: one object per line)")
    elif not os.path.isdir(cfg.task.data_dir):
        raise InputError(f"--data_dir {cfg.task.data_dir}: no such folder; expected the {cfg.task.dataset} release as "
                         f"downloaded (see the README's table of tasks for its layout)")


@dataclasses.dataclass
class RocData(Encoded):
    """Encoded ROCStories. X (n, 2, n_ctx, 2) int32: token and position ids; M (n, 2, n_ctx) float32 masks."""
    trX: np.ndarray
    trM: np.ndarray
    trY: np.ndarray
    vaX: np.ndarray
    vaM: np.ndarray
    vaY: np.ndarray
    teX: np.ndarray
    teM: np.ndarray
    data_warnings: list = dataclasses.field(default_factory=list)  # the reader's one-line DataWarnings, logged
    task = tasks.TASKS['rocstories']
    n_truncated = None  # --truncate's cut is not counted here, as the original did not

    @property
    def splits(self):
        """The arrays as task_data.TaskData holds them (the test answers are analysis.py's job)."""
        return {'train': SplitData(self.trX, self.trM, self.trY), 'valid': SplitData(self.vaX, self.vaM, self.vaY),
                'test': SplitData(self.teX, self.teM, None)}


def transform_roc(X1, X2, X3, encoder, n_ctx, max_len, n_vocab, n_special):
    """Token lists -> (X (n, 2, n_ctx, 2) int32, M (n, 2, n_ctx) float32):
    `[_start_] story [_delimiter_] ending [_classify_]` for each of the two endings."""
    n = len(X1)
    xmb = np.zeros((n, 2, n_ctx, 2), dtype=np.int32)
    mmb = np.zeros((n, 2, n_ctx), dtype=np.float32)
    start, delimiter, clf_token = encoder['_start_'], encoder['_delimiter_'], encoder['_classify_']
    for i, (x1, x2, x3) in enumerate(zip(X1, X2, X3)):
        for j, x in enumerate((x2, x3)):
            seq = [start] + x1[:max_len] + [delimiter] + x[:max_len] + [clf_token]
            xmb[i, j, :len(seq), 0] = seq
            mmb[i, j, :len(seq)] = 1
    xmb[:, :, :, 1] = np.arange(n_vocab + n_special, n_vocab + n_special + n_ctx)
    return xmb, mmb


def _longest_example(splits, max_len=None):
    """(length, split name, index) of the longest `[start] story [delim] ending [clf]`."""
    best = (0, None, None)
    for name, (X1, X2, X3) in splits.items():
        for i, (x1, x2, x3) in enumerate(zip(X1, X2, X3)):
            if max_len is not None:
                x1, x2, x3 = x1[:max_len], x2[:max_len], x3[:max_len]
            n = len(x1) + max(len(x2), len(x3)) + 3
            if n > best[0]:
                best = (n, name, i)
    return best


def encode_rocstories(cfg, verbose=True):
    """Read ROCStories from cfg.task.data_dir and BPE-encode it (tqdm bar; GPT-1's or GPT-2's BPE).
    Returns (text_encoder, ((trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3)))
    with token-id lists, before the special tokens exist."""
    from text_utils import load_bpe  # spacy and ftfy load only when a text is encoded
    text_encoder = load_bpe(cfg.source.encoder_path, cfg.source.bpe_path)
    if verbose:
        print("Encoding dataset...", file=sys.stderr)
    n_valid = cfg.task.n_valid
    splits = rocstories(cfg.task.data_dir, n_train=ROC_N_STORIES - n_valid, n_valid=n_valid)
    encoded = encode_dataset(*splits, encoder=text_encoder, verbose=verbose, split_names=('train', 'valid', 'test'),
                             field_names=('story', 'ending 1', 'ending 2'))
    return text_encoder, tuple(tuple(s) for s in encoded)


def check_n_ctx(encoded, n_ctx):
    """Raise InputError when the longest `[_start_] story [_delimiter_] ending [_classify_]`
    does not fit in n_ctx positions (the original silently cut stories and endings to
    n_ctx // 2 - 2 tokens; --truncate does that)."""
    names = ('train', 'valid', 'test')
    splits = {name: split[:3] for name, split in zip(names, encoded)}
    longest, name, i = _longest_example(splits)
    if longest > n_ctx:
        raise InputError(
            f"--n_ctx {n_ctx} cannot hold the longest example: {name} example {i} is {longest} tokens with its "
            f"special tokens; expected --n_ctx >= {longest} (or --truncate to cut stories and endings to "
            f"n_ctx // 2 - 2 = {n_ctx // 2 - 2} tokens each, as the original did)")


def make_roc_data(text_encoder, encoded, n_ctx=512, truncate=False):
    """Add the special tokens `_start_`, `_delimiter_`, `_classify_` to the encoder (once),
    cut n_ctx to the longest example as the original did, and build the padded arrays.
    With truncate, stories and endings are first cut to n_ctx // 2 - 2 tokens (the
    original's max_len); without, an n_ctx that cannot hold the longest example is refused
    and nothing is cut."""
    ((trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3)) = encoded
    encoder = text_encoder.encoder
    specials = ('_start_', '_delimiter_', '_classify_')
    if specials[0] not in encoder:
        for name in specials:
            encoder[name] = len(encoder)
    n_special = len(specials)
    n_vocab = len(encoder) - n_special
    clf_token = encoder['_classify_']
    if truncate:
        max_len = n_ctx // 2 - 2
    else:
        check_n_ctx(encoded, n_ctx)
        max_len = n_ctx  # nothing is longer: no cut
    splits = {'train': (trX1, trX2, trX3), 'valid': (vaX1, vaX2, vaX3), 'test': (teX1, teX2, teX3)}
    longest, _, _ = _longest_example(splits, max_len)
    n_ctx = min(longest, n_ctx)
    trX, trM = transform_roc(trX1, trX2, trX3, encoder, n_ctx, max_len, n_vocab, n_special)
    vaX, vaM = transform_roc(vaX1, vaX2, vaX3, encoder, n_ctx, max_len, n_vocab, n_special)
    teX, teM = transform_roc(teX1, teX2, teX3, encoder, n_ctx, max_len, n_vocab, n_special)
    return RocData(text_encoder, encoder, n_vocab, n_special, clf_token, n_ctx, max_len,
                   trX, trM, np.asarray(trY, dtype=np.int64), vaX, vaM, np.asarray(vaY, dtype=np.int64), teX, teM)


def load_data(cfg, verbose=True):
    """Read and encode the dataset, add the special tokens, cut n_ctx to the longest example
    as the original did, and build the padded arrays. Returns RocData for ROCStories (the
    original's pipeline) and task_data.TaskData for every other task; both have `task`,
    `splits` and the trX/vaY/... arrays, and data_warnings that hold the readers'
    DataWarnings (printed when verbose; run() logs them)."""
    if cfg.task.dataset != 'rocstories':
        return load_task_data(cfg, verbose)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        text_encoder, encoded = encode_rocstories(cfg, verbose)
    data = make_roc_data(text_encoder, encoded, cfg.source.n_ctx, cfg.task.truncate)
    for w in caught:
        if issubclass(w.category, DataWarning):
            data.data_warnings.append(str(w.message))
            if verbose:
                print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return data
