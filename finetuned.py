"""A finished finetuning run, loaded to predict new examples: a train.py run folder (any task,
with or without --submit) or a folder an estimator's save() wrote.

    from finetuned import load_run
    run = load_run('save/sst2')                      # config.json + best_params.safetensors
    result = run.predict_file('new.tsv')             # Predictions: ids, predictions, probabilities, metrics
    result = run.predict((['a text', 'another'],))   # the texts as datasets.Split holds them
    probs = run.score(story, [ending_1, ending_2])   # a multiple-choice run: (2,) probabilities
    run.export_hf('sst2-hf/')                        # transformers' folder, with the run's BPE files

A run folder holds `config.json` (its configs and what it found: n_ctx as cut, the vocabulary,
the task and its classes) and `best_params.safetensors` (the parameters of its best validation
evaluation, kept by every run). New examples go through the run's own pipeline: its BPE files,
the task's layout of special tokens, the run's n_ctx (examples that do not fit are cut by the
task's rule, as in training).
"""
import dataclasses
import json
import os
from typing import NamedTuple, Optional

import numpy as np
import torch

import finetune
import tasks
from checkpoint import BEST_PARAMS, RUN_CONFIG, atomic_write, load_params
from errors import DataError, InputError, MissingFileError
from hf_interop import export_hf
from model_pytorch import DoubleHeadModel
from readers import read_examples
from utils import np_softmax
from weights import check_params_shapes

REQUIRED = ('n_ctx', 'vocab', 'clf_token', 'max_len', 'encoder_path', 'bpe_path')  # what a run found, for scoring
ESTIMATOR_CONFIG = 'estimator.json'  # estimators.SAVE_CONFIG: a folder holding it is an estimator's save


def read_run_config(run_dir):
    """The finetune.RunRecord of {run_dir}/config.json (as train.py writes it, or the flat file of
    settings earlier versions wrote); MissingFileError or DataError when it is absent or not such a file."""
    path = os.path.join(run_dir, RUN_CONFIG)
    if not os.path.isfile(path):
        raise MissingFileError(f"{path} does not exist: expected a run folder of train.py ({{save_dir}}/{{desc}}/, "
                               f"which holds config.json and best_params.safetensors) or an estimator's save")
    record = finetune.read_run_config(path)
    missing = [k for k in REQUIRED if k not in record.settings]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}: expected the config.json train.py writes")
    return record


def run_task(settings):
    """The tasks.Task a run was trained on, from its config.json's settings: a registered task by
    name, or --dataset custom's task type and classes (a multiple-choice task takes any number of
    answers here)."""
    if settings.get('dataset', 'rocstories') != 'custom':
        return tasks.get_task(settings.get('dataset', 'rocstories'))
    return tasks.custom_task(settings['task_type'], settings.get('classes'), n_choices=2)


class Predictions(NamedTuple):
    """What a run predicts for a file or a list of examples, one entry per example: ids (str),
    predictions (class names, answer indices or scores), probabilities (n, k) over `columns`
    (None for regression), columns (the class names or answer indices), metrics (the task's,
    in percent, when the examples had labels; else None)."""
    ids: list
    predictions: list
    probabilities: Optional[np.ndarray]
    columns: Optional[list]
    metrics: Optional[dict]

    def rows(self):
        """One JSON-able dict per example: id, prediction, and the probability of each column."""
        for i, (example_id, prediction) in enumerate(zip(self.ids, self.predictions)):
            row = dict(id=example_id, prediction=prediction)
            if self.probabilities is not None:
                row['probabilities'] = {str(c): float(p) for c, p in zip(self.columns, self.probabilities[i])}
            yield row

    def write(self, path):
        """One JSON line per example (rows()), written atomically. Returns path."""
        text = ''.join(json.dumps(row) + '\n' for row in self.rows())

        def write(tmp):
            with open(tmp, 'w', encoding='utf-8') as f:
                f.write(text)
        atomic_write(path, write)
        return path


@dataclasses.dataclass
class FinetunedRun:
    """A finetuned model ready to predict: the model (eval mode), its tokenizer with the special
    tokens, the task it was trained on, the run's settings and the mode new examples are cut by
    (tasks.TRUNCATE_MODES)."""
    model: DoubleHeadModel
    text_encoder: object
    config: dict
    bpe_files: tuple = None  # (encoder_path, bpe_path) the text encoder was read from
    task: tasks.Task = None
    truncate: str = 'fit'
    n_batch: int = 8

    def export_hf(self, folder):
        """Write the run's transformer as a Hugging Face openai-gpt or gpt2 folder (hf_interop.export_hf),
        with the BPE files as its vocab.json and merges.txt; the special tokens are ids
        n_vocab.. (_start_, _delimiter_, _classify_), n_positions the run's n_ctx, the task head
        is left out. Returns the folder."""
        n_special = len(tasks.SPECIAL_TOKENS)
        n_vocab = self.config['clf_token'] + 1 - n_special
        return export_hf(self.model, folder, n_vocab=n_vocab, n_special=n_special, bpe_files=self.bpe_files)

    def _task_for(self, texts):
        """The run's task, with a multiple-choice task's number of answers that of `texts`."""
        if self.task.task_type == 'multiple_choice':
            return dataclasses.replace(self.task, n_choices=len(texts[1][0]))
        return self.task

    @torch.no_grad()
    def outputs(self, texts):
        """The task head's outputs, float64: (n, n_class) or (n, n_choices) logits, or (n,) scores,
        for `texts` as datasets.Split holds them ((texts,), (first, second) or (contexts, choices))."""
        task = self._task_for(texts)
        encoded = tasks.encode_fields(texts, self.text_encoder, verbose=False)
        specials = tasks.add_special_tokens(self.text_encoder.encoder)
        if self.truncate == 'never':
            _check_fits(task, encoded, self.config['n_ctx'])
        X, M = tasks.prepare_inputs(task, {'input': encoded}, specials, self.config['n_ctx'],
                                    self.truncate).arrays('input')
        device = next(self.model.parameters()).device
        return finetune._eval_logits(self.model, X, M, self.n_batch, device, verbose=False)

    def predict(self, texts, ids=None, labels=None):
        """Predictions of `texts` (as outputs takes them); ids default to 0, 1, ...; labels (as
        datasets.Split holds them: class names, answer indices or scores) give the metrics."""
        logits = self.outputs(texts)
        task = self._task_for(texts)
        ids = [str(i) for i in range(len(logits))] if ids is None else list(ids)
        metrics = None
        if labels is not None:
            preds = finetune.predictions(task.task_type, logits)
            metrics = finetune.split_metrics(task, tasks.label_ids(task, labels, 'input'), preds)
        if task.task_type == 'regression':
            return Predictions(ids, [float(v) for v in logits], None, None, metrics)
        probs = np_softmax(logits)
        columns = list(task.classes) if task.classes is not None else list(range(logits.shape[1]))
        return Predictions(ids, [columns[k] for k in np.argmax(logits, 1)], probs, columns, metrics)

    def predict_file(self, path, text_columns=None, label_column='label', id_column=None):
        """Predictions of the examples in the file `path` (readers.read_examples: CSV, TSV or JSONL
        with the task type's columns, or a Story Cloze CSV for a multiple-choice run); metrics
        when the file has the label column. text_columns and id_column default to those the run
        was trained with (--dataset custom) or the task type's (readers.CUSTOM_TEXT_COLUMNS, 'id');
        a file without the id column is numbered from 0 unless id_column is given."""
        settings = self.config
        if text_columns is None and settings.get('text_columns'):
            text_columns = settings['text_columns'].split(',')
        need_id = id_column is not None
        id_column = id_column or settings.get('id_column') or 'id'
        classes = None if self.task.classes is None else [str(c) for c in self.task.classes]
        split = read_examples(path, self.task.task_type, text_columns, label_column or 'label', id_column, need_id,
                              classes)
        labels = split.labels
        if labels is not None and classes is not None:  # the file's names, back to the classes' own values
            labels = [self.task.classes[classes.index(label)] for label in labels]
        return self.predict(split.texts, split.ids, labels)

    def score(self, story, endings):
        """Probabilities (n_endings,) that each ending is the right one for `story` (str): a
        multiple-choice run's view of one example."""
        if len(endings) < 2 or not all(isinstance(t, str) and t.strip() for t in [story, *endings]):
            raise InputError(f"expected a non-empty story and at least two non-empty endings, got {len(endings)} "
                             f"ending(s)")
        if self.task.task_type != 'multiple_choice':
            raise InputError(f"score(story, endings) picks an ending: this run is a {self.task.task_type} run; "
                             f"expected predict or predict_file")
        return np_softmax(self.outputs(([story], [list(endings)])))[0]


def _check_fits(task, encoded, n_ctx):
    """InputError naming the first example whose longest sequence, with its special tokens, does not
    fit the run's n_ctx (a run that refused to cut its data refuses to cut new examples)."""
    for i, example in enumerate(tasks.segments(task.task_type, encoded)):
        n = max(sum(len(seg) for seg in seq) + len(seq) + 1 for seq in example)
        if n > n_ctx:
            raise InputError(f"example {i} is {n} tokens with its special tokens, more than the run's n_ctx {n_ctx}: "
                             f"expected a shorter example")


def _truncate_mode(settings, task):
    """How new examples are cut: as the run cut its data (--truncate: every example; --no_truncate
    and a ROCStories run, whose pipeline refuses rather than cuts: none), else those that do not fit."""
    if settings.get('truncate'):
        return 'always'
    return 'never' if settings.get('no_truncate') or task.name == 'rocstories' else 'fit'


def load_run(run_dir, params=BEST_PARAMS, encoder_path=None, bpe_path=None, device='cpu'):
    """FinetunedRun of `run_dir`: a train.py run folder with the parameters `params` (a file name
    in run_dir, default the best ones; the BPE files default to those the run used, whose absolute
    paths config.json keeps: GPT-1's BPE or GPT-2's, as the files say), or an estimator's save
    (estimators.GPT1Estimator.load)."""
    if os.path.isfile(os.path.join(run_dir, ESTIMATOR_CONFIG)):
        return _load_estimator(run_dir)
    from text_utils import load_bpe  # spacy and ftfy load only when a GPT-1 text is encoded

    record = read_run_config(run_dir)
    config = record.settings
    task = run_task(config)
    bpe_files = (encoder_path or config['encoder_path'], bpe_path or config['bpe_path'])
    text_encoder = load_bpe(*bpe_files)
    specials = tasks.add_special_tokens(text_encoder.encoder)
    if specials.classify != config['clf_token']:
        raise InputError(f"the BPE vocabulary gives _classify_ the id {specials.classify} but the run "
                         f"used {config['clf_token']}: expected the BPE files the run was trained with")
    cfg = dataclasses.replace(record.config.model, causal=config.get('causal', True))
    path = os.path.join(run_dir, params)
    if not os.path.isfile(path):
        raise MissingFileError(f"{path} does not exist: expected the parameters every finished run keeps (a run "
                               f"stopped before its first evaluation has none)")
    check_params_shapes(path, os.path.join(run_dir, RUN_CONFIG), config['vocab'], cfg.n_embd, cfg.n_layer)
    model = DoubleHeadModel(cfg, config['clf_token'], config.get('task_head_type', task.head), config['vocab'],
                            config['n_ctx'])
    load_params(model, path)
    return FinetunedRun(model.to(device).eval(), text_encoder, config, bpe_files, task, _truncate_mode(config, task),
                        config.get('n_batch', 8))


def _load_estimator(folder):
    """FinetunedRun of an estimator's save: its model, BPE files, fitted task and n_ctx."""
    from estimators import GPT1Estimator  # scikit-learn loads only for an estimator's save

    est = GPT1Estimator.load(folder)
    config = dict(est.get_params(), n_ctx=est.n_ctx_, clf_token=tasks.add_special_tokens(est.text_encoder_.encoder)
                  .classify)
    return FinetunedRun(est.model_, est.text_encoder_, config, est.bpe_files_, est.task_,
                        'never' if est.truncate == 'never' else 'fit', est.n_batch * est.n_acc)
