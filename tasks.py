"""The paper's tasks (section 3.3, figure 1): a registry, and the one place where a task's
texts become the model's input.

Every task type is a layout of token segments between the special tokens:

    classification   [_start_] text [_classify_]
    entailment       [_start_] premise [_delimiter_] hypothesis [_classify_]
    similarity       [_start_] a [_delimiter_] b [_classify_]  and  [_start_] b [_delimiter_] a [_classify_]
    regression       as similarity (graded similarity, STS-B): one number out, squared error
    multiple_choice  [_start_] context [_delimiter_] answer_k [_classify_]  for each answer k

The texts come from datasets.Split (texts = (texts,), (first, second) or (contexts,
choices)), BPE-encoded (see `encode_cached`); `prepare_inputs` cuts the segments that do
not fit (`truncation_limits` gives the rule) and fixes n_ctx, `pad_sequences` builds the
arrays the model takes, for a whole split (`transform`) or one batch at a time.
"""
import dataclasses
import hashlib
import json
import os
import sys
import warnings
import zipfile

import numpy as np

from checkpoint import atomic_write
from errors import DataError, DataWarning, InputError
from readers import LABELS, TASK_TYPES
from tf_checkpoint import GPT2_N_CTX, N_CTX_MAX

SPECIAL_TOKENS = ('_start_', '_delimiter_', '_classify_')
N_FIELDS = {'classification': 1, 'entailment': 2, 'similarity': 2, 'regression': 2, 'multiple_choice': 2}
TRUNCATIONS = ('halves', 'context_tail')
# --truncate's modes: cut only the examples that do not fit whole (the default), cut every
# example by the task's rule (the original's max_len), or refuse any cut (--no_truncate)
TRUNCATE_MODES = ('fit', 'always', 'never')


# ------------------------------------------------------------------ the registry

@dataclasses.dataclass(frozen=True)
class Task:
    """One finetuning task.

    name: the registry key (also datasets.py's reader name); title: its printed name.
    task_type: one of TASK_TYPES. classes: the class names in label-index order (labels
    are read as these strings; for multiple choice, the names written for each choice
    index); None where labels are numbers (regression, ROCStories). n_choices: answers
    per example (multiple choice). metrics: analysis.task_metrics' names, all in percent.
    head: model_pytorch.make_task_head's task_head_type. valid_splits, test_splits: the
    datasets.Split names scored and predicted; submission_files: one per test split.
    label_strings: whether the submission file holds class names (else integers, or
    floats for regression). truncation: the rule of `truncation_limits`.
    """
    name: str
    title: str
    task_type: str
    head: object
    classes: tuple = None
    n_choices: int = None
    metrics: tuple = ('accuracy',)
    valid_splits: tuple = ('valid',)
    test_splits: tuple = ('test',)
    submission_files: tuple = ()
    label_strings: bool = False
    truncation: str = 'halves'


# the readers' class lists (label index i is class i), here as tuples
NLI3, NLI2, BINARY = tuple(LABELS['mnli']), tuple(LABELS['rte']), tuple(LABELS['sst2'])

TASKS = {task.name: task for task in (
    Task('rocstories', 'ROCStories', 'multiple_choice', 'multiple_choice', n_choices=2,
         submission_files=('ROCStories.tsv',)),
    Task('race', 'RACE', 'multiple_choice', 'multiple_choice', classes=tuple(LABELS['race']), n_choices=4,
         submission_files=('RACE.tsv',), label_strings=True, truncation='context_tail'),
    Task('snli', 'SNLI', 'entailment', 'inference', classes=NLI3, submission_files=('SNLI.tsv',),
         label_strings=True),
    Task('mnli', 'MNLI', 'entailment', 'inference', classes=NLI3, valid_splits=('valid', 'valid_mismatched'),
         test_splits=('test', 'test_mismatched'), submission_files=('MNLI-m.tsv', 'MNLI-mm.tsv'),
         label_strings=True),
    Task('qnli', 'QNLI', 'entailment', ('classification', 2), classes=NLI2, submission_files=('QNLI.tsv',),
         label_strings=True),
    Task('rte', 'RTE', 'entailment', ('classification', 2), classes=NLI2, submission_files=('RTE.tsv',),
         label_strings=True),
    Task('scitail', 'SciTail', 'entailment', ('classification', 2), classes=tuple(LABELS['scitail']),
         submission_files=('SciTail.tsv',), label_strings=True),
    # model_pytorch's SimilarityHead gives one number: two classes need a 2-output variant.
    Task('mrpc', 'MRPC', 'similarity', ('similarity', 2), classes=BINARY, metrics=('f1', 'accuracy'),
         submission_files=('MRPC.tsv',)),
    Task('qqp', 'QQP', 'similarity', ('similarity', 2), classes=BINARY, metrics=('f1', 'accuracy'),
         submission_files=('QQP.tsv',)),
    Task('stsb', 'STS-B', 'regression', 'similarity', metrics=('pearson', 'spearman'),
         submission_files=('STS-B.tsv',)),
    Task('cola', 'CoLA', 'classification', ('classification', 2), classes=BINARY, metrics=('mcc',),
         submission_files=('CoLA.tsv',)),
    Task('sst2', 'SST-2', 'classification', ('classification', 2), classes=BINARY,
         submission_files=('SST-2.tsv',)),
)}

DEFAULT_METRICS = {'classification': ('accuracy',), 'entailment': ('accuracy',), 'similarity': ('accuracy',),
                   'regression': ('pearson', 'spearman'), 'multiple_choice': ('accuracy',)}


def _check_task_type(task_type):
    if task_type not in TASK_TYPES:
        raise InputError(f"task type {task_type!r} is not one of {', '.join(TASK_TYPES)}")


def custom_task(task_type, classes=None, n_choices=None, name='custom'):
    """The Task of the user's own data (--dataset custom): task_type one of TASK_TYPES,
    classes the class names (read from the training file) for classification, entailment
    and similarity, n_choices for multiple choice. Raises InputError for what is missing."""
    _check_task_type(task_type)
    needs_classes = task_type in ('classification', 'entailment', 'similarity')
    if needs_classes and not classes:
        raise InputError(f"task type {task_type!r} needs its class names: expected at least one label")
    if task_type == 'multiple_choice' and not (isinstance(n_choices, int) and n_choices >= 2):
        raise InputError(f"task type 'multiple_choice' with n_choices={n_choices!r}: expected 2 or more answers")
    n_class = len(classes) if needs_classes else None
    head = {'classification': ('classification', n_class), 'entailment': ('classification', n_class),
            'similarity': ('similarity', n_class), 'regression': 'similarity',
            'multiple_choice': 'multiple_choice'}[task_type]
    return Task(name, name, task_type, head, classes=tuple(classes) if needs_classes else None,
                n_choices=n_choices if task_type == 'multiple_choice' else None,
                metrics=DEFAULT_METRICS[task_type], submission_files=(f'{name}.tsv',),
                label_strings=needs_classes)


def get_task(name):
    """The registered Task called `name`; InputError listing the names for any other."""
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}: expected one of {', '.join(TASKS)} (or custom)")
    return TASKS[name]


def label_ids(task, labels, where='labels'):
    """Take a Task and a split's labels (datasets.Split.labels); return the training targets:
    int64 class indices (class names looked up in task.classes), int64 choice indices
    (multiple choice) or float32 scores (regression). Raises DataError naming the first
    label that does not fit; `where` names the split in the message."""
    if task.task_type == 'regression':
        try:
            scores = np.asarray([float(y) for y in labels], dtype=np.float32)
        except (TypeError, ValueError):
            bad = next(y for y in labels if not _is_number(y))
            raise DataError(f"{task.title} {where}: label {bad!r} is not a number: "
                            f"expected a similarity score") from None
        if not np.isfinite(scores).all():
            bad = labels[int(np.argmin(np.isfinite(scores)))]
            raise DataError(f"{task.title} {where}: label {bad!r} is not finite: expected a similarity score")
        return scores
    if task.task_type == 'multiple_choice':
        bad = [y for y in labels if isinstance(y, bool) or not isinstance(y, (int, np.integer))
               or not 0 <= y < task.n_choices]
        if bad:
            raise DataError(f"{task.title} {where}: label {bad[0]!r}: expected the index of the right answer, "
                            f"0..{task.n_choices - 1}")
        return np.asarray(labels, dtype=np.int64)
    index = {name: i for i, name in enumerate(task.classes)}
    bad = [y for y in labels if y not in index]
    if bad:
        raise DataError(f"{task.title} {where}: label {bad[0]!r} is not a class: expected one of "
                        f"{', '.join(task.classes)}")
    return np.asarray([index[y] for y in labels], dtype=np.int64)


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


# ------------------------------------------------------------------ special tokens and layouts

@dataclasses.dataclass(frozen=True)
class Specials:
    """The special tokens' ids, and the vocabulary sizes that place the position rows:
    position p is row n_vocab + n_special + p of the embedding."""
    start: int
    delimiter: int
    classify: int
    n_vocab: int
    n_special: int

    @property
    def first_position(self):
        return self.n_vocab + self.n_special


def add_special_tokens(encoder):
    """Add `_start_`, `_delimiter_`, `_classify_` at the end of a token -> id dict (once: a
    second call finds them); return their Specials, as train.make_roc_data numbers them."""
    if SPECIAL_TOKENS[0] not in encoder:
        for name in SPECIAL_TOKENS:
            encoder[name] = len(encoder)
    n_special = len(SPECIAL_TOKENS)
    return Specials(*(encoder[name] for name in SPECIAL_TOKENS), len(encoder) - n_special, n_special)


def _check_fields(task_type, fields):
    """Raise InputError unless `fields` has the task type's number of equally long fields."""
    _check_task_type(task_type)
    if len(fields) != N_FIELDS[task_type]:
        raise InputError(f"task type {task_type!r} takes {N_FIELDS[task_type]} text field(s), got {len(fields)}")
    lengths = [len(f) for f in fields]
    if len(set(lengths)) > 1:
        raise InputError(f"task type {task_type!r}: fields of different lengths {lengths}: expected one entry "
                         f"per example in each")


def segments(task_type, fields):
    """Take a task type and its encoded fields (lists of token-id lists, as datasets.Split's
    texts); return, per example, the segments of each of its sequences: a list (n) of
    lists (n_seq) of lists (1 or 2 segments) of token-id lists. Raises DataError when the
    multiple-choice examples do not all have the same number of answers."""
    _check_fields(task_type, fields)
    if task_type == 'classification':
        return [[[x]] for x in fields[0]]
    if task_type == 'entailment':
        return [[[a, b]] for a, b in zip(*fields)]
    if task_type in ('similarity', 'regression'):
        return [[[a, b], [b, a]] for a, b in zip(*fields)]
    contexts, choices = fields
    counts = sorted({len(c) for c in choices})
    if len(counts) > 1:
        raise DataError(f"multiple-choice examples have {counts} answers: expected the same number in every example")
    return [[[context, answer] for answer in answers] for context, answers in zip(contexts, choices)]


def truncation_limits(example, n_ctx, truncation='halves'):
    """Take one example's segments (an item of `segments`), the cap n_ctx and a rule; return
    (limits, cut): per sequence, per segment, (keep, from_end) where the segment keeps
    its first `keep` tokens, or its last when from_end; cut is whether any token is dropped.

    'halves', the original's max_len: every segment of a two-segment sequence keeps its
    first n_ctx // 2 - 2 tokens (even where the whole sequence would fit, as the original),
    a lone segment its first n_ctx - 2. 'context_tail' (RACE, whose context ends with the
    question): each answer keeps its first n_ctx // 2 - 2 tokens, then the context its last
    n_ctx - 3 - (longest kept answer) tokens, so the question survives a cut; an example
    that fits whole is not cut."""
    if truncation not in TRUNCATIONS:
        raise InputError(f"truncation {truncation!r} is not one of {', '.join(TRUNCATIONS)}")
    max_len = n_ctx // 2 - 2
    if len(example[0]) == 1:
        limits = [[(n_ctx - 2, False)] for _ in example]
    elif truncation == 'halves':
        limits = [[(max_len, False), (max_len, False)] for _ in example]
    else:
        longest_answer = max(min(len(seq[1]), max_len) for seq in example)
        limits = [[(n_ctx - 3 - longest_answer, True), (max_len, False)] for _ in example]
    cut = any(len(seg) > keep for seq, lims in zip(example, limits) for seg, (keep, _) in zip(seq, lims))
    return limits, cut


def _keep(segment, keep, from_end):
    return segment[len(segment) - keep:] if from_end and len(segment) > keep else segment[:keep]


def _fits_whole(example, n_ctx):
    """Whether every sequence of an example, with its special tokens, fits in n_ctx uncut."""
    return all(sum(len(seg) for seg in seq) + len(seq) + 1 <= n_ctx for seq in example)


def build_sequences(task_type, fields, specials, n_ctx=N_CTX_MAX, truncation='halves', only_overlong=False):
    """Take a task type, its encoded fields, the Specials, the cap n_ctx and a truncation rule;
    return (seqs, n_truncated): seqs a list (n) of lists (n_seq) of token-id lists, each
    `[_start_] seg [_delimiter_] seg [_classify_]` (no delimiter for one segment) with its
    segments cut by `truncation_limits`; n_truncated the number of examples cut. With
    only_overlong, an example that fits in n_ctx whole is left whole."""
    seqs, n_truncated = [], 0
    for example in segments(task_type, fields):
        if only_overlong and _fits_whole(example, n_ctx):
            seqs.append([_join(seq, specials) for seq in example])
            continue
        limits, cut = truncation_limits(example, n_ctx, truncation)
        n_truncated += cut
        seqs.append([_join([_keep(seg, *lim) for seg, lim in zip(seq, lims)], specials)
                     for seq, lims in zip(example, limits)])
    return seqs, n_truncated


def _join(segs, specials):
    """[_start_] segs[0] [_delimiter_] segs[1] ... [_classify_]."""
    out = [specials.start] + list(segs[0])
    for seg in segs[1:]:
        out += [specials.delimiter] + list(seg)
    return out + [specials.classify]


def pad_sequences(seqs, n_ctx, first_position):
    """Take seqs (a list (n) of lists (n_seq) of token-id lists, each at most n_ctx long), the
    width n_ctx and the first position row; return (X (n, n_seq, n_ctx, 2) int32: token ids
    zero-padded and position ids first_position + p, M (n, n_seq, n_ctx) float32: 1 on the
    tokens). Cheap per batch: build the arrays of a batch's examples only when it is used."""
    n_seq = len(seqs[0]) if seqs else 1
    X = np.zeros((len(seqs), n_seq, n_ctx, 2), dtype=np.int32)
    M = np.zeros((len(seqs), n_seq, n_ctx), dtype=np.float32)
    for i, example in enumerate(seqs):
        for j, seq in enumerate(example):
            if len(seq) > n_ctx:
                raise InputError(f"example {i} sequence {j} is {len(seq)} tokens: expected at most n_ctx={n_ctx}")
            X[i, j, :len(seq), 0] = seq
            M[i, j, :len(seq)] = 1
    X[..., 1] = np.arange(first_position, first_position + n_ctx)
    return X, M


class Padded:
    """One split's X or M (see pad_sequences) laid out only when indexed: `view[index]` (an
    int, a slice or an index array) pads just those examples, so that a split of 400k
    examples (MNLI, QQP) is held as its token lists, not as an (n, n_seq, n_ctx, 2) array.
    np.asarray(view) lays out the whole split. part: 0 for X, 1 for M."""

    def __init__(self, seqs, n_ctx, first_position, part):
        self.seqs, self.n_ctx, self.first_position, self.part = seqs, n_ctx, first_position, part
        n_seq = len(seqs[0]) if seqs else 1
        self.shape = (len(seqs), n_seq, n_ctx) + ((2,) if part == 0 else ())
        self.dtype = np.dtype(np.int32 if part == 0 else np.float32)
        self.ndim = len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self[[index]][0]
        picked = range(len(self))[index] if isinstance(index, slice) else np.arange(len(self))[np.asarray(index)]
        if len(picked) == 0:
            return np.zeros((0,) + self.shape[1:], self.dtype)
        return pad_sequences([self.seqs[i] for i in picked], self.n_ctx, self.first_position)[self.part]

    def __array__(self, dtype=None, copy=None):
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def lengths(self):
        """(n,) int64: the longest sequence of each example (M.sum(-1).max(-1) without M)."""
        return np.array([max(len(seq) for seq in example) for example in self.seqs], dtype=np.int64)


def transform(task_type, fields, specials, n_ctx, cap=None, truncation='halves'):
    """The model's input for one split: build_sequences cut for `cap` (default n_ctx), padded
    to n_ctx by pad_sequences. Returns (X (n, n_seq, n_ctx, 2) int32, M (n, n_seq, n_ctx)
    float32); n_seq is 1 (classification, entailment), 2 (similarity, regression: both
    orders) or the number of answers."""
    seqs, _ = build_sequences(task_type, fields, specials, n_ctx if cap is None else cap, truncation)
    return pad_sequences(seqs, n_ctx, specials.first_position)


@dataclasses.dataclass
class Inputs:
    """A task's sequences per split (see build_sequences), the n_ctx they were cut to and
    are padded to, the first position row, and the number of examples cut per split."""
    seqs: dict
    n_ctx: int
    first_position: int
    n_truncated: dict

    def arrays(self, split, index=None):
        """(X, M) of the split's examples at `index` (all when None); see pad_sequences."""
        seqs = self.seqs[split]
        return pad_sequences(seqs if index is None else [seqs[i] for i in index], self.n_ctx, self.first_position)

    def views(self, split):
        """(X, M) of the split as Padded views: laid out a batch at a time when indexed."""
        return tuple(Padded(self.seqs[split], self.n_ctx, self.first_position, part) for part in (0, 1))


def _longest(seqs_by_split):
    """The length of the longest sequence over all splits."""
    return max((len(seq) for seqs in seqs_by_split.values() for example in seqs for seq in example), default=0)


def prepare_inputs(task, fields_by_split, specials, n_ctx=N_CTX_MAX, truncate='fit'):
    """Take a Task, {split name: encoded fields}, the Specials, the cap n_ctx (at most 1024: the
    checkpoint's own positions are model_source.resolve_model's check)
    and a TRUNCATE_MODES mode; return Inputs, whose n_ctx is the longest sequence after any
    cut (the original's rule). 'always' cuts every example's segments to the task's limits
    (the original's max_len, at any n_ctx), 'fit' only the examples that do not fit whole,
    and both count them; 'never' raises InputError for an example that does not fit whole,
    naming it and the n_ctx it needs."""
    if not 4 <= n_ctx <= GPT2_N_CTX:
        raise InputError(f"--n_ctx {n_ctx}: expected 4 to {GPT2_N_CTX} (the positions of OpenAI's checkpoints: "
                         f"GPT-1's {N_CTX_MAX}, GPT-2's {GPT2_N_CTX})")
    if truncate not in TRUNCATE_MODES:
        raise InputError(f"truncate={truncate!r}: expected one of {', '.join(TRUNCATE_MODES)}")
    built = {split: build_sequences(task.task_type, fields, specials, n_ctx, task.truncation, truncate != 'always')
             for split, fields in fields_by_split.items()}
    n_truncated = {split: n for split, (_, n) in built.items()}
    if truncate == 'never' and any(n_truncated.values()):
        _refuse(task, fields_by_split, n_ctx, n_truncated)
    seqs = {split: s for split, (s, _) in built.items()}
    return Inputs(seqs, min(_longest(seqs), n_ctx), specials.first_position, n_truncated)


def _refuse(task, fields_by_split, n_ctx, n_truncated):
    """Raise the InputError of --no_truncate: the (first) example that needs the largest n_ctx."""
    need, split, index = 0, None, None
    for name, fields in fields_by_split.items():
        for i, example in enumerate(segments(task.task_type, fields)):
            n = max(sum(len(seg) for seg in seq) + len(seq) + 1 for seq in example)
            if n > need:
                need, split, index = n, name, i
    counts = ', '.join(f'{n} {s}' for s, n in n_truncated.items() if n)
    expected = (f"expected --n_ctx >= {need}" if need <= GPT2_N_CTX else
                f"OpenAI's checkpoints have at most {GPT2_N_CTX} positions (GPT-1's {N_CTX_MAX})")
    raise InputError(f"--no_truncate: {task.title} {split} example {index} needs --n_ctx {need} to keep all its "
                     f"tokens but --n_ctx is {n_ctx} ({counts} examples would be cut); {expected}, or drop "
                     f"--no_truncate to cut the examples that do not fit")


# ------------------------------------------------------------------ the encoding cache

CACHE_FORMAT = 2  # bump when the file layout or the text pipeline's code changes


def encoder_fingerprint(text_encoder):
    """A hex digest of what decides a TextEncoder's ids: its vocabulary (special tokens
    left out: encoding never yields them), its merges in rank order, and the versions of
    ftfy and spaCy, whose text fixing and tokenization come first. A GPT2Encoder (no merges table
    of its own, no text pipeline before its BPE): its fingerprint and tiktoken's version."""
    if not hasattr(text_encoder, 'bpe_ranks'):
        import tiktoken
        blob = json.dumps([CACHE_FORMAT, 'tiktoken', tiktoken.__version__, text_encoder.fingerprint()])
        return hashlib.sha256(blob.encode('utf-8')).hexdigest()
    import ftfy
    import spacy
    vocab = sorted((s, i) for s, i in text_encoder.encoder.items() if s not in SPECIAL_TOKENS)
    merges = sorted(text_encoder.bpe_ranks.items(), key=lambda item: item[1])
    blob = json.dumps([CACHE_FORMAT, ftfy.__version__, spacy.__version__, vocab, [list(p) for p, _ in merges]])
    return hashlib.sha256(blob.encode('utf-8')).hexdigest()


def texts_digest(texts):
    """A hex digest of a list of str, order and boundaries included."""
    h = hashlib.sha256()
    for text in texts:
        data = text.encode('utf-8', 'surrogatepass')
        h.update(len(data).to_bytes(8, 'little'))
        h.update(data)
    return h.hexdigest()


def cache_path(texts, text_encoder, cache_dir):
    """The file of `texts` encoded by `text_encoder` in cache_dir: keyed by both."""
    key = hashlib.sha256(f'{texts_digest(texts)}:{encoder_fingerprint(text_encoder)}'.encode()).hexdigest()
    return os.path.join(cache_dir, f'encoded-{key[:32]}.npz')


def _content_digest(ids, offsets):
    """A hex digest of a cache entry's arrays, stored with them: a file damaged after it was
    written (ids changed in place, a bad copy) no longer matches it."""
    h = hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int32).tobytes())
    h.update(np.ascontiguousarray(offsets, dtype=np.int64).tobytes())
    return h.hexdigest()


def _cache_damage(ids, offsets, digest, n, n_vocab):
    """What is wrong with a cache entry's arrays (ids, offsets, stored digest) for `n` texts
    and a vocabulary of `n_vocab` ids, or None when nothing is."""
    if len(offsets) != n + 1 or offsets[0] != 0 or offsets[-1] != len(ids) or np.any(np.diff(offsets) < 0):
        return f"its offsets do not describe {n} texts"
    if digest != _content_digest(ids, offsets):
        return "its content does not match the digest stored with it"
    if len(ids) and (ids.min() < 0 or ids.max() >= n_vocab):
        return f"it holds ids outside the vocabulary's {n_vocab}"
    return None


def _load_cached(path, n, n_vocab):
    """The id lists stored at path, or None when the file is missing or damaged (unreadable,
    content other than its stored digest, ids outside the vocabulary): a damaged entry is
    rebuilt with a DataWarning, never trusted."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path) as f:
            ids, offsets, digest = f['ids'], f['offsets'], str(f['digest'])
        damage = _cache_damage(ids, offsets, digest, n, n_vocab)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        damage = f"it cannot be read ({type(err).__name__})"
    if damage is not None:
        warnings.warn(f"encoding cache {path} is damaged ({damage}): rebuilt", DataWarning)
        return None
    flat = ids.tolist()
    bounds = offsets.tolist()
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def encode_cached(texts, text_encoder, cache_dir, verbose=True):
    """text_encoder.encode(texts), stored once in cache_dir (an .npz of the ids and their
    offsets, written to a temporary file then renamed) and read back on later calls with
    the same texts and vocabulary. Takes a list of str; returns a list of lists of int
    ids, equal to what encode returns. verbose: the encoder's tqdm bar on a miss."""
    texts = list(texts)
    path = cache_path(texts, text_encoder, cache_dir)
    cached = _load_cached(path, len(texts), len(text_encoder.encoder))
    if cached is not None:
        return cached
    if verbose:
        print(f"Encoding {len(texts)} texts (cached in {path})...", file=sys.stderr)
    encoded = text_encoder.encode(texts, verbose=verbose)
    offsets = np.cumsum([0] + [len(ids) for ids in encoded], dtype=np.int64)
    ids = np.fromiter((i for seq in encoded for i in seq), dtype=np.int32, count=int(offsets[-1]))

    def write(tmp):
        with open(tmp, 'wb') as f:
            np.savez(f, ids=ids, offsets=offsets, digest=np.array(_content_digest(ids, offsets)))
    atomic_write(path, write)
    return encoded


def encode_fields(texts, text_encoder, cache_dir=None, verbose=True):
    """Take a datasets.Split's texts ((texts,), (first, second) or (contexts, choices), where
    choices[i] is the list of example i's answers); return the same layout with every str
    replaced by its list of BPE ids. One encoding (and one cache file in cache_dir, unless
    None) holds the whole split."""
    flat, shapes = [], []
    for field in texts:
        nested = bool(field) and not isinstance(field[0], str)
        shapes.append([len(item) for item in field] if nested else None)
        flat += [text for item in field for text in item] if nested else list(field)
    if cache_dir is None:
        ids = text_encoder.encode(flat, verbose=verbose)
    else:
        ids = encode_cached(flat, text_encoder, cache_dir, verbose)
    it = iter(ids)
    return tuple([next(it) for _ in field] if shape is None else [[next(it) for _ in range(k)] for k in shape]
                 for field, shape in zip(texts, shapes))


# ------------------------------------------------------------------ submission files

def _prediction_text(task, p):
    """One prediction as its leaderboard writes it: a class name, a score, or an index."""
    if task.task_type == 'regression':
        return f'{float(p):.6f}'
    if task.label_strings:
        return task.classes[int(p)]
    return str(int(p))


def submission_path(task, submission_dir, split='test'):
    """The file the predictions of a test split go to; InputError for a split with none."""
    if split not in task.test_splits or not task.submission_files:
        raise InputError(f"{task.title} has no submission file for split {split!r}: expected one of "
                         f"{', '.join(task.test_splits)}")
    return os.path.join(submission_dir, task.submission_files[task.test_splits.index(split)])


def write_submission(task, predictions, submission_dir, split='test', ids=None):
    """Write a test split's predictions in the benchmark's format, atomically: a header
    `index\\tprediction`, then `id\\tprediction` per example, the id from `ids` (GLUE's
    index column) or the example's position. A prediction is a class index (written as the
    class name where GLUE expects label strings: MNLI, QNLI, RTE; as an integer for the
    binary tasks and ROCStories), or a score (STS-B: a float). Raises InputError, writing
    nothing, for an id or prediction holding a tab or a line break (the file is not quoted).
    Returns the path."""
    predictions = list(predictions)
    ids = list(range(len(predictions))) if ids is None else list(ids)
    if len(ids) != len(predictions):
        raise InputError(f"{task.title}: {len(predictions)} predictions for {len(ids)} ids: expected one per example")
    path = submission_path(task, submission_dir, split)
    cells = [(str(i), _prediction_text(task, p)) for i, p in zip(ids, predictions)]
    broken = next((cell for row in cells for cell in row if any(c in cell for c in '\t\n\r')), None)
    if broken is not None:
        raise InputError(f"{task.title}: the submission cell {broken!r} holds a tab or line break: expected one "
                         f"line per example, tab-separated (ids and class names without either)")
    lines = ['index\tprediction\n'] + [f'{i}\t{p}\n' for i, p in cells]

    def write(tmp):
        with open(tmp, 'w', encoding='utf-8', newline='\n') as f:
            f.writelines(lines)
    atomic_write(path, write)
    return path
