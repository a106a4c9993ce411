"""The paper's zero-shot heuristics (section 5, figure 2): tasks solved by the language model alone,
with no training, through the log-probabilities of text (lm_scores.score_examples).

- rocstories: the ending with the higher average token log-probability given the story;
- race: the answer with the highest average token log-probability given the document and question;
- sst2: the sentence followed by "very", then the LM's probability of "positive" against
  "negative"; the more likely word is the prediction;
- cola: each sentence's average token log-probability, thresholded; the threshold that maximises
  Matthews correlation on the training split, applied to the evaluated split;
- dprd: the definite pronoun replaced by each candidate; the candidate after which the rest of
  the sentence has the higher average token log-probability;
- text: perplexity of text files or JSONL documents, per token, per word and in bits per byte,
  over windows of the model's context (`text_windows`).

How text becomes ids, the same for every tokenizer: a text is cut into pieces (context, answer,
...), each piece encoded on its own and the ids joined; the whitespace between two pieces goes
with the later one (one space where the task joins them: ' ' + answer), which is how GPT-2's
byte-level BPE encodes the joined text, what GPT-1's BPE (which drops whitespace) gives too, and
one character of the later piece for a character model. Every scored text starts after the
tokenizer's document separator (its newline_id: GPT-1's and a character model's line break,
GPT-2's '<|endoftext|>'), as each document follows the previous one's separator in pretraining's
token store; a tokenizer without one leaves a text's first id unscored.

`prepare_task` reads and encodes a task's split once (TaskData); `evaluate_task(model, tokenizer,
data)` scores it and returns the metrics and one record per example, so that a training loop can
call it at each validation.
"""
import dataclasses
import math
import os
from dataclasses import field
from typing import NamedTuple, Optional

import numpy as np

from errors import ConfigError, DataError, InputError, MissingFileError
from flags import Config, ConfigGroup, check_number
from lm_scores import DEFAULT_BUDGET, Scored, as_language_model, score_examples
from model_pytorch import ModelConfig
from run_frame import RunConfig, SourceConfig
from winograd import read_dprd

TASK_NAMES = ('rocstories', 'race', 'sst2', 'cola', 'dprd', 'text')
DEFAULT_SPLITS = {'rocstories': 'test', 'race': 'test', 'sst2': 'valid', 'cola': 'valid', 'dprd': 'test',
                  'text': None}
SENTIMENT_CUE = 'very'
SENTIMENT_WORDS = ('negative', 'positive')  # SST-2's labels 0 and 1
MIN_TEXT_IDS = 2  # a scored text's ids, the separator included: one given, one predicted


# ------------------------------------------------------------------ the flags

@dataclasses.dataclass
class ZeroShotConfig(Config):
    """What zeroshot.py scores and where its results go."""
    task: str = field(default='rocstories', metadata={'choices': TASK_NAMES, 'help': "the heuristic to run"})
    data_dir: str = field(default='data/', metadata={
        'help': "the task's data: the release's folder (rocstories, race, sst2, cola, dprd: see docs/zeroshot.md), "
                "or for text a text file, a JSONL file (a 'text' field) or a folder of them"})
    split: Optional[str] = field(default=None, metadata={
        'help': "the split scored (default: test for rocstories, race, dprd; valid for sst2, cola)"})
    out: str = field(default='zeroshot.jsonl', metadata={'help': "one JSON line per example with its scores"})
    n_examples: int = field(default=0, metadata={
        'help': "score the first N examples of the split (text: documents; cola: of the training split too); "
                "0: all"})
    stride: int = field(default=0, metadata={
        'help': "text: ids scored per window, each given at least n_ctx + 1 - stride ids before it (1 to n_ctx; "
                "n_ctx: windows that share no input; 0: n_ctx // 2)"})
    batch_tokens: int = field(default=DEFAULT_BUDGET, metadata={'help': "tokens a forward pass holds"})

    def check(self):
        if self.task not in TASK_NAMES:
            raise ConfigError('task', self.task, f"one of {', '.join(TASK_NAMES)}")
        for name, low in (('n_examples', 0), ('stride', 0), ('batch_tokens', 1)):
            check_number(name, getattr(self, name), lambda v, low=low: int(v) == v and v >= low,
                         f"an integer >= {low}")


@dataclasses.dataclass
class ZeroShotRun(ConfigGroup):
    """zeroshot.py's settings: the task, the model's folder, the run's log and device."""
    SKIP = ('init', 'n_ctx', 'save_dir', 'seed', 'n_iter', 'n_batch', 'n_acc', 'max_updates', 'eval_every', 'amp',
            'resume', 'overwrite', 'cache_dir', 'dist_timeout', 'n_embd', 'n_layer', 'embd_pdrop', 'attn_pdrop',
            'resid_pdrop', 'clf_pdrop', 'afn', 'arch', 'causal', 'attn_impl', 'dropout_masks')
    zeroshot: ZeroShotConfig = field(default_factory=ZeroShotConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    run: RunConfig = field(default_factory=lambda: RunConfig(desc=None))


# ------------------------------------------------------------------ encoded tasks

@dataclasses.dataclass
class TaskData:
    """A task's split ready to score: examples (lists of lm_scores.Scored, one per choice), labels
    (None where the split has none), ids; n_truncated: examples whose context lost its first ids to
    fit; calibration: CoLA's training split (its threshold); documents: the text task's
    (id, n_words, n_bytes) per document, with doc_of the document of each window."""
    task: str
    split: str
    examples: list
    labels: Optional[list]
    ids: list
    n_truncated: int = 0
    calibration: Optional['TaskData'] = None
    documents: Optional[list] = None
    doc_of: Optional[list] = None


class TaskResult(NamedTuple):
    """evaluate_task's metrics ({name: value}) and records (one dict per example or document)."""
    metrics: dict
    records: list


def separator_ids(tokenizer):
    sep = tokenizer.newline_id
    return [] if sep is None else [sep]


def encode_texts(tokenizer, texts, verbose=False):
    """The ids of each text; an empty list encodes nothing (no call)."""
    return tokenizer.encode(list(texts), verbose=verbose) if texts else []


def choice_examples(tokenizer, contexts, choices, n_ctx, givens=None, space=' ', verbose=False):
    """Examples of a context followed by each of its choices, scored on the choice: the context is
    the separator and the context's ids, a choice the ids of `space` + choice (givens[i][k], where
    given, is text between them that is fed but not scored: DPRD's candidate). A context too long
    for the longest choice in n_ctx + 1 ids loses its first ids. Returns (examples, number cut)."""
    sep = separator_ids(tokenizer)
    ctx_ids = encode_texts(tokenizer, contexts, verbose)
    flat = [c for cs in choices for c in cs]
    cont_ids = iter(encode_texts(tokenizer, [space + c for c in flat], verbose))
    given_ids = iter(encode_texts(tokenizer, [g for gs in givens for g in gs], verbose) if givens else [])
    examples, n_cut = [], 0
    for i, (ctx, cs) in enumerate(zip(ctx_ids, choices)):
        conts = [next(cont_ids) for _ in cs]
        gives = [next(given_ids) for _ in cs] if givens else [[] for _ in cs]
        if not all(conts):
            raise InputError(f"example {i}: a choice encodes to no ids ({cs!r:.80}): expected text to score")
        room = n_ctx + 1 - max(len(g) + len(c) for g, c in zip(gives, conts))
        if room < 1:
            raise InputError(f"example {i}: a choice is {n_ctx + 1 - room} ids: expected at most n_ctx = {n_ctx}, "
                             f"leaving room for one id of context")
        full = sep + ctx
        if len(full) > room:
            full, n_cut = full[len(full) - room:], n_cut + 1
        if not full and not all(gives):
            raise InputError(f"example {i}: the context {contexts[i]!r:.80} leaves nothing to predict the first "
                             f"scored id from (no separator, and empty or cut away)")
        examples.append([Scored(full + g + c, len(full) + len(g)) for g, c in zip(gives, conts)])
    return examples, n_cut


def text_examples(tokenizer, texts, n_ctx, what='text', verbose=False):
    """One example per text: the separator then its ids, every id after the first scored.
    InputError naming the text for one too short (fewer than MIN_TEXT_IDS ids with the separator)
    or too long (more than n_ctx + 1)."""
    sep = separator_ids(tokenizer)
    examples = []
    for i, ids in enumerate(encode_texts(tokenizer, texts, verbose)):
        seq = sep + ids
        if not MIN_TEXT_IDS <= len(seq) <= n_ctx + 1:
            raise InputError(f"{what} {i} ({texts[i]!r:.60}) is {len(seq)} ids with the separator: expected "
                             f"{MIN_TEXT_IDS} to n_ctx + 1 = {n_ctx + 1}")
        examples.append([Scored(seq, 1)])
    return examples


def text_windows(ids, n_ctx, stride):
    """Windows over one document's ids (the separator first, never scored) such that every other id
    is scored exactly once: the first window scores ids 1..n_ctx, each later one the next `stride`
    ids, fed with the n_ctx + 1 - stride ids before them (a window holds n_ctx + 1 ids; its last is
    only predicted). stride n_ctx: the windows' inputs do not overlap. A list of Scored."""
    if not 1 <= stride <= n_ctx:
        raise InputError(f"--stride {stride}: expected 1 to n_ctx = {n_ctx}")
    windows, end = [], min(len(ids), n_ctx + 1)
    windows.append(Scored(list(ids[:end]), 1))
    while end < len(ids):
        new_end = min(end + stride, len(ids))
        begin = max(0, new_end - n_ctx - 1)
        windows.append(Scored(list(ids[begin:new_end]), end - begin))
        end = new_end
    return windows


# ------------------------------------------------------------------ reading the tasks

def _limit(items, n):
    return items[:n] if n else items


def _split_of(splits, task, split):
    if split not in splits:
        raise InputError(f"--split {split}: {task} has the splits {', '.join(splits)}")
    return splits[split]


def _multiple_choice(task, splits, split, tokenizer, n_ctx, n, verbose):
    s = _split_of(splits, task, split)
    contexts, choices = (_limit(list(t), n) for t in s.texts)
    examples, cut = choice_examples(tokenizer, contexts, choices, n_ctx, verbose=verbose)
    labels = None if s.labels is None else [int(y) for y in _limit(s.labels, n)]
    ids = _limit(list(s.ids) if s.ids else [str(i) for i in range(len(s))], n)
    return TaskData(task, split, examples, labels, ids, cut)


def _sentiment(splits, split, tokenizer, n_ctx, n, verbose):
    s = _split_of(splits, 'sst2', split)
    sentences = _limit(list(s.texts[0]), n)
    contexts = [f'{text} {SENTIMENT_CUE}' for text in sentences]
    examples, cut = choice_examples(tokenizer, contexts, [list(SENTIMENT_WORDS)] * len(contexts), n_ctx,
                                    verbose=verbose)
    labels = None if s.labels is None else [int(y) for y in _limit(s.labels, n)]
    return TaskData('sst2', split, examples, labels, _limit(list(s.ids), n), cut)


def _acceptability(splits, split, tokenizer, n_ctx, n, verbose):
    def encode(name):
        s = _split_of(splits, 'cola', name)
        texts = _limit(list(s.texts[0]), n)
        labels = None if s.labels is None else [int(y) for y in _limit(s.labels, n)]
        return TaskData('cola', name, text_examples(tokenizer, texts, n_ctx, f'CoLA {name} sentence', verbose),
                        labels, _limit(list(s.ids), n))
    return dataclasses.replace(encode(split), calibration=encode('train'))


def _winograd(data_dir, split, tokenizer, n_ctx, n, verbose):
    schemas = _limit(_split_of(read_dprd(data_dir), 'dprd', split), n)
    contexts, givens, rests = [], [], []
    for s in schemas:
        start, end = s.span
        before, rest = s.sentence[:start], s.sentence[end:]
        if not rest.strip():
            raise DataError(f"DPRD file {s.path}: line {s.line}: nothing follows the pronoun {s.pronoun!r}: "
                            f"expected the rest of the sentence to score")
        space = before[len(before.rstrip()):]  # the whitespace before the pronoun goes with the candidate
        contexts.append(before.rstrip())
        givens.append([space + c for c in s.candidates])
        rests.append([rest, rest])  # scored as it follows the pronoun, its own spacing kept
    examples, cut = choice_examples(tokenizer, contexts, rests, n_ctx, givens, space='', verbose=verbose)
    ids = [f'{os.path.basename(s.path)}:{s.line}' for s in schemas]
    return TaskData('dprd', split, examples, [s.answer for s in schemas], ids, cut)


def read_documents(paths):
    """[(id, text)] of every document under `paths` (corpus.iter_documents: a text file is one
    document, a JSONL file one per line's 'text'); ids 'file' or 'file:N' (N-th line's document)."""
    from corpus import iter_documents, walk_inputs
    for path in paths:
        if not os.path.exists(path):
            raise MissingFileError(f"--data_dir {path}: no such file or folder; expected a text file, a JSONL file "
                                   f"with a 'text' field, or a folder of them")
    docs = []
    for path in walk_inputs(paths)[0]:
        for k, chunks in enumerate(iter_documents(path)):
            docs.append((f'{path}:{k}' if path.endswith('.jsonl') else path, ''.join(chunks)))
    return docs


def _perplexity_task(data_dir, tokenizer, n_ctx, stride, n, verbose):
    docs = _limit(read_documents([data_dir]), n)
    sep = separator_ids(tokenizer)
    examples, documents, doc_of = [], [], []
    for d, ((name, text), ids) in enumerate(zip(docs, encode_texts(tokenizer, [t for _, t in docs], verbose))):
        seq = sep + ids
        if len(seq) < MIN_TEXT_IDS:
            raise InputError(f"text {name} encodes to {len(ids)} ids ({text!r:.40}): expected at least "
                             f"{MIN_TEXT_IDS - len(sep)}, so that one id is predicted")
        windows = text_windows(seq, n_ctx, stride or max(1, n_ctx // 2))
        examples += [[w] for w in windows]
        doc_of += [d] * len(windows)
        documents.append((name, len(text.split()), len(text.encode('utf-8', 'surrogatepass'))))
    return TaskData('text', 'text', examples, None, [name for name, _, _ in documents], documents=documents,
                    doc_of=doc_of)


def prepare_task(task, data_dir, tokenizer, n_ctx, split=None, n_examples=0, stride=0, verbose=False):
    """A task's split read from data_dir and encoded with `tokenizer` for a model of n_ctx
    positions: TaskData. split None: DEFAULT_SPLITS; n_examples > 0: the first ones only; stride:
    the text task's windows (0: n_ctx // 2)."""
    import readers
    split = split or DEFAULT_SPLITS.get(task)
    if task == 'text':
        return _perplexity_task(data_dir, tokenizer, n_ctx, stride, n_examples, verbose)
    if task == 'dprd':
        return _winograd(data_dir, split, tokenizer, n_ctx, n_examples, verbose)
    if task not in TASK_NAMES:
        raise InputError(f"unknown zero-shot task {task!r}: expected one of {', '.join(TASK_NAMES)}")
    splits = readers.get_reader(task)(data_dir)
    if task == 'sst2':
        return _sentiment(splits, split, tokenizer, n_ctx, n_examples, verbose)
    if task == 'cola':
        return _acceptability(splits, split, tokenizer, n_ctx, n_examples, verbose)
    return _multiple_choice(task, splits, split, tokenizer, n_ctx, n_examples, verbose)


# ------------------------------------------------------------------ scoring and metrics

def best_threshold(scores, labels):
    """(threshold, its MCC) of the rule `score > threshold -> 1` that maximises Matthews correlation
    over (scores, labels 0/1): the midpoints between distinct sorted scores and both ends tried; the
    lowest of equally good thresholds wins."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    order = np.argsort(scores, kind='stable')
    s, y = scores[order], labels[order]
    n, pos = len(s), int(y.sum())
    k = np.arange(n + 1)  # the first k sorted scores predicted 0
    tp = pos - np.concatenate(([0], np.cumsum(y)))
    fp, fn = (n - k) - tp, pos - tp
    tn = k - fn
    denom = np.sqrt(((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)).astype(np.float64))
    mcc = np.where(denom > 0, (tp * tn - fp * fn) / np.where(denom > 0, denom, 1), 0.0)
    valid = np.concatenate(([True], s[1:] > s[:-1], [True]))
    best = int(np.flatnonzero(valid)[np.argmax(mcc[valid])])
    if best == 0:
        threshold = s[0] - 1.0
    elif best == n:
        threshold = s[-1]
    else:
        threshold = (s[best - 1] + s[best]) / 2
    return float(threshold), float(mcc[best])


def _mcc(labels, predictions):
    from analysis import METRIC_FUNCTIONS
    return float(METRIC_FUNCTIONS['mcc'](labels, predictions))


def _choice_records(data, scores, words=None):
    """Records and accuracy of a task scored by choosing the highest score per example."""
    records, right = [], 0
    for i, (ident, sc) in enumerate(zip(data.ids, scores)):
        pred = int(np.argmax(sc))
        rec = dict(id=ident, scores=[float(v) for v in sc], prediction=pred)
        if words:
            rec.update({f'logp_{w}': float(v) for w, v in zip(words, sc)})
        if data.labels is not None:
            rec['label'] = data.labels[i]
            right += pred == data.labels[i]
        records.append(rec)
    accuracy = None if data.labels is None or not records else 100.0 * right / len(records)
    return records, dict(accuracy=accuracy, n_examples=len(records), n_truncated=data.n_truncated)


def _text_metrics(data, logprobs):
    nll = np.zeros(len(data.documents))
    counts = np.zeros(len(data.documents), dtype=np.int64)
    for d, lp in zip(data.doc_of, logprobs):
        nll[d] -= lp[0].sum()
        counts[d] += len(lp[0])
    records = [dict(id=name, nll=float(nll[d]), n_tokens=int(counts[d]), n_words=words, n_bytes=n_bytes,
                    ppl_token=math.exp(nll[d] / counts[d]))
               for d, (name, words, n_bytes) in enumerate(data.documents)]
    total, tokens = float(nll.sum()), int(counts.sum())
    words = sum(w for _, w, _ in data.documents)
    n_bytes = sum(b for _, _, b in data.documents)
    metrics = dict(ppl_token=math.exp(total / tokens), ppl_word=math.exp(total / words) if words else None,
                   bits_per_byte=total / math.log(2) / n_bytes, nll=total, n_tokens=tokens, n_words=words,
                   n_bytes=n_bytes, n_documents=len(records))
    return TaskResult(metrics, records)


def evaluate_task(model, tokenizer, data, n_vocab=None, budget=DEFAULT_BUDGET, verbose=True):
    """Score a TaskData with `model` (an LMModel, or lm_scores.LanguageModel with its tokenizer, then
    `tokenizer` may be None) and return TaskResult(metrics, records). n_vocab: the rows of the
    next-token softmax (default: the tokenizer's text ids). The model's mode is kept."""
    lm = model if tokenizer is None else as_language_model(model, tokenizer, n_vocab)
    desc = f'zero-shot {data.task} {data.split}'
    logprobs = score_examples(lm, data.examples, budget, desc, verbose)
    if data.task == 'text':
        return _text_metrics(data, logprobs)
    if data.task == 'sst2':  # a word's log-probability: the sum over its ids
        records, metrics = _choice_records(data, [[lp.sum() for lp in ex] for ex in logprobs], SENTIMENT_WORDS)
        return TaskResult(metrics, records)
    means = [[float(lp.mean()) for lp in ex] for ex in logprobs]
    if data.task != 'cola':
        records, metrics = _choice_records(data, means)
        return TaskResult(metrics, records)
    train = [ex[0] for ex in evaluate_scores(lm, data.calibration, budget, verbose)]
    threshold, train_mcc = best_threshold(train, data.calibration.labels)
    scores = [m[0] for m in means]
    preds = [int(s > threshold) for s in scores]
    records = [dict(id=ident, score=s, prediction=p, **({} if data.labels is None else {'label': data.labels[i]}))
               for i, (ident, s, p) in enumerate(zip(data.ids, scores, preds))]
    mcc = None if data.labels is None else 100.0 * _mcc(data.labels, preds)
    return TaskResult(dict(mcc=mcc, threshold=threshold, train_mcc=100.0 * train_mcc, n_examples=len(records),
                           n_train=len(train)), records)


def evaluate_scores(lm, data, budget=DEFAULT_BUDGET, verbose=True):
    """Each example's choices' average token log-probabilities (lists of float)."""
    logprobs = score_examples(lm, data.examples, budget, f'zero-shot {data.task} {data.split}', verbose)
    return [[float(lp.mean()) for lp in ex] for ex in logprobs]


METRIC_OF = {'rocstories': 'accuracy', 'race': 'accuracy', 'sst2': 'accuracy', 'dprd': 'accuracy', 'cola': 'mcc',
             'text': 'ppl_token'}


# ------------------------------------------------------------------ during pre-training (figure 2, right)

# what each task's metric is worth without knowledge: one of k answers at random, or MCC 0
CHANCE = {'rocstories': 50.0, 'race': 25.0, 'sst2': 50.0, 'dprd': 50.0, 'cola': 0.0}


@dataclasses.dataclass
class ZeroShotEvalConfig(Config):
    """The heuristics a pre-training run scores at every validation, logged as zs_{task} (the
    task's METRIC_OF, in percent) beside the validation perplexity."""
    zero_shot: str = field(default='', metadata={
        'help': "zero-shot tasks scored at every validation, comma-separated (rocstories, race, sst2, cola, dprd); "
                "TASK=FOLDER reads a task's data from FOLDER instead of --zero_shot_dir"})
    zero_shot_dir: str = field(default='data/', metadata={'help': "the --zero_shot tasks' data, as zeroshot.py "
                                                                  "--data_dir"})
    zero_shot_examples: int = field(default=0, metadata={
        'help': "score the first N examples of each --zero_shot task (CoLA: of its training split too); 0: all"})

    def check(self):
        for task in self.folders():
            if task not in CHANCE:
                raise ConfigError('zero_shot', self.zero_shot, f"tasks among {', '.join(CHANCE)}")
        check_number('zero_shot_examples', self.zero_shot_examples, lambda v: int(v) == v and v >= 0,
                     "an integer >= 0")

    def folders(self):
        """{task: its data folder} of --zero_shot, in the order given."""
        items = [item.strip() for item in self.zero_shot.split(',') if item.strip()]
        return {task: folder or self.zero_shot_dir for task, _, folder in (i.partition('=') for i in items)}


class ZeroShotTasks(NamedTuple):
    """The tasks a run scores as it trains: the tokenizer and {task: TaskData}, encoded once."""
    tokenizer: object
    data: dict


def prepare_tasks(cfg, tokenizer, n_ctx, verbose=False):
    """ZeroShotTasks of a ZeroShotEvalConfig for a model of n_ctx positions (their default splits)."""
    return ZeroShotTasks(tokenizer, {task: prepare_task(task, folder, tokenizer, n_ctx,
                                                        n_examples=cfg.zero_shot_examples, verbose=verbose)
                                     for task, folder in cfg.folders().items()})


def evaluate_tasks(model, tasks):
    """{'zs_{task}': its metric} of `model` (an LMModel) on every task of a ZeroShotTasks; no bars."""
    out = {}
    for task, data in tasks.data.items():
        metrics = evaluate_task(model, tasks.tokenizer, data, verbose=False).metrics
        out[f'zs_{task}'] = metrics[METRIC_OF[task]]
    return out
