"""scikit-learn estimators for notebooks: finetune GPT-1 on texts held in Python lists.

    from estimators import Classifier
    clf = Classifier(model_dir='model/', n_iter=3).fit(texts, labels)
    clf.predict(new_texts), clf.predict_proba(new_texts), clf.score(texts, labels)
    clf.save('sentiment/');  Classifier.load('sentiment/').predict(new_texts)

Classifier          X: texts (classification layout) or (premise, hypothesis) pairs
                    (entailment layout); y: any labels (classes_ = the sorted distinct labels)
SimilarityClassifier X: (a, b) pairs, read in both orders (MRPC, QQP); y: any labels
Regressor           X: (a, b) pairs, both orders (STS-B); y: numbers; squared error
MultipleChoice      X: (context, [answer, ...]) with the same number of answers in every
                    example; y: the index of the right answer (ROCStories, RACE)

They run train.py's own steps (task_data.build_task_data, and finetune.py's build_model,
make_optimizer, make_loss_compute, train_epoch, _eval_logits) on one training split,
write no files (save() aside) and keep the caller's random state: fit seeds a forked RNG
with `seed`, so a seeded fit is reproducible and equals train.py's run on the same data.
The hyperparameters are train.py's flags under the same names and defaults (the
pretrained model of `model_dir` unless init='random'); the `truncate` mode is one of
tasks.TRUNCATE_MODES. Fitting fixes n_ctx_ to the longest training sequence (at most
n_ctx); predict lays out new examples in n_ctx_ positions, cutting only those that do
not fit by the task's rule (truncate='never' refuses them instead).

Bad inputs raise errors.py's family (InputError for X, y and the hyperparameters,
CheckpointError / MissingFileError for a folder that is not a save); predicting before
fit raises sklearn's NotFittedError.
"""
import dataclasses
import hashlib
import json
import numbers
import os
import shutil
import tempfile
import types
from dataclasses import field

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

import finetune
import task_data
import tasks
from checkpoint import TrainState, load_params, save_params, write_json
from datasets import Split
from distributed import resolve_device
from errors import CheckpointError, ConfigError, InputError, MissingFileError
from flags import ConfigGroup
from model_pytorch import ModelConfig
from opt import AdamConfig
from run_frame import RunConfig, SourceConfig, make_scaler, resolve_bpe_paths
from model_source import check_vocabulary, resolve_model
from text_utils import GPT2_RELEASE_FILES, RELEASE_BPE_FILES, TextEncoder, find_bpe_files, load_bpe
from utils import np_softmax, read_json
from weights import check_params_shapes, find_checkpoint_format

SAVE_FORMAT = 'gpt1-estimator'
SAVE_VERSION = 1
SAVE_CONFIG = 'estimator.json'
SAVE_PARAMS = 'params.safetensors'

_ENCODERS = {}  # content digest of the BPE files -> TextEncoder: loading one takes seconds


def text_encoder(encoder_path, bpe_path):
    """The tokenizer of the two BPE files (text_utils.load_bpe: GPT-1's TextEncoder or GPT-2's
    GPT2Encoder), shared by every estimator whose files hold the same bytes (its special tokens
    are added once, at the same ids, by every fit)."""
    h = hashlib.sha256()
    for path in (encoder_path, bpe_path):
        with open(path, 'rb') as f:
            h.update(hashlib.sha256(f.read()).digest())
    key = h.hexdigest()
    if key not in _ENCODERS:
        _ENCODERS[key] = load_bpe(encoder_path, bpe_path)
    return _ENCODERS[key]


# ------------------------------------------------------------------ inputs

def _as_list(values, what, name):
    """X or y as a list (pandas objects by their values); InputError for a str or a non-sequence."""
    if hasattr(values, 'to_numpy'):
        values = values.to_numpy()
    if isinstance(values, (str, bytes)) or not hasattr(values, '__len__'):
        raise InputError(f"{name} {what}: got {type(values).__name__}: expected a list with one entry per example")
    return list(values)


def _is_text(value):
    return isinstance(value, str)


def _is_pair(value):
    return not _is_text(value) and hasattr(value, '__len__') and len(value) == 2 and all(map(_is_text, value))


def _is_choices(value):
    return (not _is_text(value) and hasattr(value, '__len__') and len(value) == 2 and _is_text(value[0])
            and not _is_text(value[1]) and hasattr(value[1], '__len__') and all(map(_is_text, value[1])))


def _describe(value):
    text = ' '.join(repr(value).split())  # one line, also for an array's repr
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _check_items(X, test, expected, name):
    """Raise InputError naming the first item of X that fails `test`."""
    for i, item in enumerate(X):
        if not test(item):
            raise InputError(f"{name} X[{i}]: got {_describe(item)}: expected {expected}")


def _texts(X, name):
    _check_items(X, _is_text, "a text (str)", name)
    return (list(X),)


def _pairs(X, name):
    _check_items(X, _is_pair, "a pair of texts (a, b)", name)
    return [a for a, _ in X], [b for _, b in X]


def _choices(X, name):
    _check_items(X, _is_choices, "(context, [answer, ...]): a text and a list of answer texts", name)
    return [c for c, _ in X], [list(answers) for _, answers in X]



@dataclasses.dataclass
class EstimatorConfig(ConfigGroup):
    """An estimator's hyperparameters as the configs of train.py's steps (the run, the model's
    source, sizes and optimizer, how it is finetuned); `truncate` and `verbose` are the
    estimator's own. Built from get_params() by GPT1Estimator._config."""
    run: RunConfig = field(default_factory=lambda: RunConfig(cache_dir=None))
    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: AdamConfig = field(default_factory=AdamConfig)
    tuning: finetune.TuningConfig = field(default_factory=finetune.TuningConfig)

    def check(self):
        """The checks that span parts (each part checked its own fields when built)."""
        n_ctx = self.source.n_ctx
        if n_ctx < 4:  # the most is the checkpoint's positions: model_source.resolve_model checks it
            raise ConfigError('n_ctx', n_ctx, "4 or more (the checkpoint's positions at most)")
        self.model.check_sizes(n_ctx + 1, n_ctx)
        finetune.check_transfer(self)


ESTIMATOR_ONLY = ('truncate', 'verbose')  # the hyperparameters that are not a config's
MODEL_SIZES = ('arch', 'n_embd', 'n_head', 'n_layer')  # a save's fitted model: those the checkpoint gave


# ------------------------------------------------------------------ the shared estimator

class GPT1Estimator(BaseEstimator):
    """What every estimator shares: the hyperparameters (train.py's flags, same names and
    defaults, plus `truncate`, `verbose` and `cache_dir`), fit, the model's outputs on new
    examples, save and load. Subclasses say how X is read (`_fields`), which task it is
    (`_make_task`) and what a prediction is (`_predictions`).

    model_dir: OpenAI's GPT-1 checkpoint, GPT-2's release folder or a Hugging Face openai-gpt or
    gpt2 folder, and the BPE files (encoder_path, bpe_path: None finds them there; GPT-2's select
    GPT-2's tokenizer); the model's sizes left at their defaults are the checkpoint's
    (model_source.resolve_model). init: 'pretrained' or 'random'.
    truncate: 'fit' cuts only the training examples that do not fit in n_ctx, 'always'
    every one by the original's rule, 'never' refuses them. verbose: progress bars and
    messages on stderr. cache_dir: where BPE encodings are kept (None: not kept).

    Fitted attributes: model_ (the DoubleHeadModel, in eval mode), task_ (its tasks.Task),
    text_encoder_, bpe_files_ (its two files, copied by save), n_ctx_ (positions the model
    has), n_updates_, n_truncated_ (training examples cut)."""

    def __init__(self, model_dir='model/', init='pretrained', encoder_path=None, bpe_path=None, n_embd=768,
                 n_head=12, n_layer=12, n_transfer=None, n_ctx=512, truncate='fit', n_iter=3, n_batch=8, n_acc=1,
                 lr=6.25e-5, lr_warmup=0.002, lr_schedule='warmup_linear', l2=0.01, vector_l2=False,
                 max_grad_norm=1.0, b1=0.9, b2=0.999, e=1e-8, lm_coef=0.5, embd_pdrop=0.1, attn_pdrop=0.1,
                 resid_pdrop=0.1, clf_pdrop=0.1, afn='gelu', attn_impl='sdpa', amp='none', seed=42, device='auto',
                 verbose=False, cache_dir=None):
        self.model_dir = model_dir
        self.init = init
        self.encoder_path = encoder_path
        self.bpe_path = bpe_path
        self.n_embd = n_embd
        self.n_head = n_head
        self.n_layer = n_layer
        self.n_transfer = n_transfer
        self.n_ctx = n_ctx
        self.truncate = truncate
        self.n_iter = n_iter
        self.n_batch = n_batch
        self.n_acc = n_acc
        self.lr = lr
        self.lr_warmup = lr_warmup
        self.lr_schedule = lr_schedule
        self.l2 = l2
        self.vector_l2 = vector_l2
        self.max_grad_norm = max_grad_norm
        self.b1 = b1
        self.b2 = b2
        self.e = e
        self.lm_coef = lm_coef
        self.embd_pdrop = embd_pdrop
        self.attn_pdrop = attn_pdrop
        self.resid_pdrop = resid_pdrop
        self.clf_pdrop = clf_pdrop
        self.afn = afn
        self.attn_impl = attn_impl
        self.amp = amp
        self.seed = seed
        self.device = device
        self.verbose = verbose
        self.cache_dir = cache_dir

    # -------------------------------------------------------------- hyperparameters

    def _config(self, find_files=True):
        """The EstimatorConfig of this estimator's hyperparameters, checked; InputError naming the
        first one that cannot work. With find_files, encoder_path and bpe_path (None) are found
        in model_dir (GPT-1's or GPT-2's), and the model's sizes and n_ctx's limit are model_dir's
        checkpoint's (model_source.resolve_model)."""
        name = type(self).__name__
        params = {k: v.item() if isinstance(v, np.generic) else v for k, v in self.get_params().items()}
        if params['truncate'] not in tasks.TRUNCATE_MODES:
            raise InputError(f"{name}(truncate={params['truncate']!r}): expected one of "
                             f"{', '.join(tasks.TRUNCATE_MODES)}")
        try:
            cfg, _ = EstimatorConfig.from_flat({k: v for k, v in params.items() if k not in ESTIMATOR_ONLY})
            cfg = resolve_model(cfg) if find_files else cfg
        except ConfigError as err:
            raise InputError(f"{name}({err.field}={err.value!r}): expected {err.expected}") from None
        source = cfg.source
        if find_files and (source.encoder_path is None or source.bpe_path is None):
            source = resolve_bpe_paths(source)
            if not os.path.isfile(source.encoder_path) or not os.path.isfile(source.bpe_path):
                find_bpe_files(source.model_dir)  # names the files expected
        try:
            resolve_device(cfg.run.device, cfg.run.amp)
        except InputError as err:  # names the flag: the estimator's parameter has its name
            raise InputError(f"{name} parameter {str(err).removeprefix('--')}") from None
        return dataclasses.replace(cfg, source=source)

    # -------------------------------------------------------------- what subclasses define

    def _fields(self, X):
        """(task type, texts as datasets.Split holds them) of a checked X."""
        raise NotImplementedError

    def _make_task(self, task_type, fields, y):
        """The tasks.Task of the training data (its classes or number of answers)."""
        raise NotImplementedError

    def _predictions(self, outputs):
        """What predict returns for the model's outputs (_outputs)."""
        raise NotImplementedError

    # -------------------------------------------------------------- fit and predict

    def _read(self, X, y=None, fitting=False):
        """(task type, fields, labels) of X and (when fitting) y, checked: InputError for an empty
        X, a missing y, X and y of different lengths, or an X this estimator does not take."""
        name = type(self).__name__
        X = _as_list(X, 'X', name)
        if not X:
            raise InputError(f"{name} X: no examples: expected at least one")
        labels = None
        if fitting:
            labels = _as_list(y, 'y', name)
            if len(labels) != len(X):
                raise InputError(f"{name}: X has {len(X)} examples but y has {len(labels)} labels: expected one "
                                 f"label per example")
        task_type, fields = self._fields(X)
        return task_type, fields, labels

    def fit(self, X, y):
        """Finetune on X and y for n_iter epochs, as train.py does (no files written). Returns self."""
        cfg = self._config()
        run, source = cfg.run, cfg.source
        task_type, fields, labels = self._read(X, y, fitting=True)
        task = self._make_task(task_type, fields, labels)
        if source.init == 'pretrained':
            find_checkpoint_format(source.model_dir)
            check_vocabulary(source)
        encoder = text_encoder(source.encoder_path, source.bpe_path)
        splits = {'train': Split(fields, labels)}
        encoded = task_data.encode_task(task, splits, encoder, run.cache_dir, self.verbose)
        data = task_data.build_task_data(task, splits, encoder, encoded, source.n_ctx, self.truncate)
        finetune.check_global_batch(len(labels), cfg)
        device = resolve_device(run.device, run.amp)
        with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
            torch.manual_seed(run.seed)  # as train.py's set_seed, on a fork: the caller's RNG is left alone
            model = finetune.build_model(cfg, data, device)
            opt = finetune.make_optimizer(cfg, model, finetune.n_updates_total(len(labels), cfg))
            loss_compute = finetune.make_loss_compute(cfg, opt, make_scaler(run.amp), task.task_type)
            state = TrainState()
            ctx = finetune.RunContext(cfg, model, data, device, verbose=self.verbose)
            while state.n_epochs < run.n_iter:
                finetune.train_epoch(ctx, model, loss_compute, state)
                state.n_epochs += 1
        self.model_ = model.eval()
        self.task_, self.text_encoder_, self.n_ctx_ = task, encoder, data.n_ctx
        self.bpe_files_ = (os.path.abspath(source.encoder_path), os.path.abspath(source.bpe_path))
        self.n_updates_, self.n_truncated_ = state.n_updates, data.n_truncated['train']
        return self

    def _inputs(self, X):
        """(X (n, n_seq, T, 2) int32, M (n, n_seq, T) float32) of new examples laid out for
        the fitted model: T <= n_ctx_, cut as truncate='fit' does (refused with 'never')."""
        check_is_fitted(self, 'model_')
        task_type, fields, _ = self._read(X)
        if task_type != self.task_.task_type:
            raise InputError(f"{type(self).__name__} X: {task_type} examples, but the estimator was fitted on "
                             f"{self.task_.task_type} examples: expected the same layout as in fit")
        encoded = tasks.encode_fields(fields, self.text_encoder_, self.cache_dir, self.verbose)
        specials = tasks.add_special_tokens(self.text_encoder_.encoder)
        mode = 'never' if self.truncate == 'never' else 'fit'
        return tasks.prepare_inputs(self.task_, {'X': encoded}, specials, self.n_ctx_, mode).arrays('X')

    def _outputs(self, X):
        """The task head's outputs on X, float64: (n, n_class) or (n, n_choices) logits, or (n,) scores."""
        Xa, Ma = self._inputs(X)
        device = next(self.model_.parameters()).device
        return finetune._eval_logits(self.model_, Xa, Ma, self.n_batch * self.n_acc, device, self.amp, self.verbose)

    def predict(self, X):
        """Predictions for X (see the subclass)."""
        return self._predictions(self._outputs(X))

    # -------------------------------------------------------------- save and load

    def _fitted_state(self):
        """What load needs besides the hyperparameters and the weights (JSON-able)."""
        specials = tasks.add_special_tokens(self.text_encoder_.encoder)
        task = self.task_
        model = self.model_.transformer.config
        params = dict(vars(ModelConfig()), **self.get_params())
        taken = {k: getattr(model, k) for k in MODEL_SIZES if getattr(model, k) != params[k]}  # model_dir's sizes
        return dict(task_type=task.task_type, classes=None if task.classes is None else list(task.classes),
                    n_choices=task.n_choices, n_ctx=self.n_ctx_, n_vocab=specials.n_vocab,
                    n_special=specials.n_special, n_updates=self.n_updates_, n_truncated=self.n_truncated_,
                    causal=self.model_.transformer.causal, model=taken)

    def save(self, path):
        """Write the fitted estimator to the folder `path`, as a whole: its weights
        (params.safetensors), hyperparameters and fitted state (estimator.json) and a copy of
        the BPE files, built in a temporary folder beside it and renamed into place (an
        earlier save there is replaced; any other existing folder is refused). Returns path."""
        check_is_fitted(self, 'model_')
        path = os.path.normpath(path)
        if os.path.lexists(path) and not _is_save(path) and not _is_empty_dir(path):
            raise InputError(f"save: {path} exists and is not an estimator save: expected a new folder or an earlier "
                             f"save to replace")
        parent = os.path.dirname(path) or '.'
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
        try:
            self._write(tmp)
            _swap_in(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    def _write(self, folder):
        save_params(self.model_, os.path.join(folder, SAVE_PARAMS))
        names = RELEASE_BPE_FILES if isinstance(self.text_encoder_, TextEncoder) else GPT2_RELEASE_FILES
        for src, name in zip(self.bpe_files_, names):
            if not os.path.isfile(src):
                raise MissingFileError(f"save: {src} does not exist: expected the BPE file the estimator was "
                                       f"fitted (or loaded) with, copied into the save")
            shutil.copyfile(src, os.path.join(folder, name))
        params = json.loads(json.dumps(self.get_params(), default=str))  # a pathlib.Path is kept as its str
        write_json(os.path.join(folder, SAVE_CONFIG), dict(format=SAVE_FORMAT, version=SAVE_VERSION,
                                                           estimator=type(self).__name__, params=params,
                                                           fitted=self._fitted_state()))

    @classmethod
    def load(cls, path):
        """The estimator a save() wrote in the folder `path` (called on GPT1Estimator: of
        whichever class was saved), on its `device`. MissingFileError for no such folder,
        CheckpointError for a folder that is not an estimator save or one of another class, and for
        an estimator.json whose parameters or fitted state are damaged (an unknown key, a missing
        one, a value of another type, sizes that params.safetensors' shapes contradict)."""
        config = _read_config(path)
        kind = ESTIMATORS.get(config['estimator'])
        if kind is None or (cls is not GPT1Estimator and kind is not cls):
            raise CheckpointError(f"{path} holds a {config['estimator']} save: expected a {cls.__name__} save")
        config_path = os.path.join(path, SAVE_CONFIG)
        est = kind(**_check_params(config['params'], kind, config_path))
        fitted = _check_fitted(config['fitted'], config_path)
        bpe_files = tuple(os.path.abspath(os.path.join(path, name)) for name in _saved_bpe_names(path))
        encoder = text_encoder(*bpe_files)
        specials = tasks.add_special_tokens(encoder.encoder)
        if specials.n_vocab != fitted['n_vocab']:
            raise CheckpointError(f"{path}: its BPE files hold {specials.n_vocab} tokens: expected the "
                                  f"{fitted['n_vocab']} the estimator was fitted with")
        task = _as_checkpoint_error(tasks.custom_task, config_path, fitted['task_type'], fitted['classes'],
                                    fitted['n_choices'], kind.__name__)
        data = types.SimpleNamespace(clf_token=specials.classify, task=task, n_special=specials.n_special,
                                     n_ctx=fitted['n_ctx'], vocab=specials.first_position + fitted['n_ctx'])
        cfg = _as_checkpoint_error(est._config, config_path, find_files=False)  # the save holds its own BPE files
        if not 1 <= fitted['n_ctx'] <= cfg.source.n_ctx:
            raise CheckpointError(f"{config_path}: fitted.n_ctx is {fitted['n_ctx']}: expected 1 to the n_ctx "
                                  f"parameter {cfg.source.n_ctx}")
        sizes = dict(vars(cfg.model), **fitted.get('model', {}))
        check_params_shapes(os.path.join(path, SAVE_PARAMS), config_path, data.vocab, sizes['n_embd'],
                            sizes['n_layer'])
        cfg = dataclasses.replace(  # the saved weights replace the initial ones, of a bidirectional model where
            cfg, source=dataclasses.replace(cfg.source, init='random'),  # pretrain.py --objective electra made it
            model=dataclasses.replace(cfg.model, causal=fitted.get('causal', True), **fitted.get('model', {})))
        model = finetune.build_model(cfg, data, resolve_device(est.device, est.amp))
        load_params(model, os.path.join(path, SAVE_PARAMS))
        est.model_ = model.eval()
        est.task_, est.text_encoder_, est.n_ctx_, est.bpe_files_ = task, encoder, fitted['n_ctx'], bpe_files
        est.n_updates_, est.n_truncated_ = fitted['n_updates'], fitted['n_truncated']
        return est


def _is_empty_dir(path):
    return os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path)


def _is_save(path):
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, SAVE_CONFIG))


def _swap_in(tmp, path):
    """Rename the folder tmp to path, replacing an earlier save (or an empty folder) there."""
    old = None
    if os.path.lexists(path):
        old = tempfile.mkdtemp(dir=os.path.dirname(tmp), prefix=f'.{os.path.basename(path)}.', suffix='.old')
        os.rmdir(old)
        os.rename(path, old)
    os.rename(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _saved_bpe_names(path):
    """The names of the BPE files in a save: GPT-2's release names where they are there, else GPT-1's."""
    if all(os.path.isfile(os.path.join(path, name)) for name in GPT2_RELEASE_FILES):
        return GPT2_RELEASE_FILES
    return RELEASE_BPE_FILES


def _read_config(path):
    """The estimator.json of a save, checked; MissingFileError / CheckpointError."""
    if not os.path.isdir(path):
        raise MissingFileError(f"estimator folder {path} does not exist: expected a folder written by save()")
    config_path = os.path.join(path, SAVE_CONFIG)
    missing = [name for name in (SAVE_CONFIG, SAVE_PARAMS, *_saved_bpe_names(path))
               if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise CheckpointError(f"{path} is not an estimator save ({', '.join(missing)} missing): expected a folder "
                              f"written by save()")
    config = read_json(config_path, "the file save() wrote", error=CheckpointError)
    keys = {'format', 'version', 'estimator', 'params', 'fitted'}
    if not keys <= set(config) or config['format'] != SAVE_FORMAT:
        raise CheckpointError(f"{config_path} is not an estimator save's config: expected {SAVE_FORMAT!r} with "
                              f"{', '.join(sorted(keys))}")
    if config['version'] != SAVE_VERSION:
        raise CheckpointError(f"{config_path}: save format version {config['version']!r}: expected {SAVE_VERSION}")
    return config


_FITTED_TYPES = {'task_type': (str,), 'classes': (list, type(None)), 'n_choices': (int, type(None)),
                 'n_ctx': (int,), 'n_vocab': (int,), 'n_special': (int,), 'n_updates': (int,),
                 'n_truncated': (int,)}
_TYPE_NAMES = {str: 'a string', list: 'a list', int: 'an integer', type(None): 'null'}


def _check_params(params, kind, config_path):
    """estimator.json's params, checked to be an object of `kind`'s parameters; CheckpointError."""
    if not isinstance(params, dict):
        raise CheckpointError(f"{config_path}: params is a {type(params).__name__}: expected an object of "
                              f"{kind.__name__}'s parameters")
    known = kind().get_params()
    for key in params:
        if key not in known:
            raise CheckpointError(f"{config_path}: params holds {key!r}, not a parameter of {kind.__name__}: "
                                  f"expected only {', '.join(known)}")
    return params


def _check_fitted(fitted, config_path):
    """estimator.json's fitted state, checked to hold every key load reads, each of its type; CheckpointError."""
    if not isinstance(fitted, dict):
        raise CheckpointError(f"{config_path}: fitted is a {type(fitted).__name__}: expected an object with "
                              f"{', '.join(_FITTED_TYPES)}")
    for key, types_ in _FITTED_TYPES.items():
        if key not in fitted:
            raise CheckpointError(f"{config_path}: fitted lacks {key}: expected the fitted state save() writes")
        value = fitted[key]
        if isinstance(value, bool) or not isinstance(value, types_):
            raise CheckpointError(f"{config_path}: fitted.{key} is {value!r}: expected "
                                  f"{' or '.join(_TYPE_NAMES[t] for t in types_)}")
    model = fitted.get('model', {})
    if not isinstance(model, dict) or not set(model) <= set(MODEL_SIZES):
        raise CheckpointError(f"{config_path}: fitted.model is {model!r}: expected an object of "
                              f"{', '.join(MODEL_SIZES)}")
    if not isinstance(fitted.get('causal', True), bool):
        raise CheckpointError(f"{config_path}: fitted.causal is {fitted['causal']!r}: expected true or false")
    return fitted


def _as_checkpoint_error(check, config_path, *args, **kwargs):
    """check(*args, **kwargs), whose InputError (a saved parameter that cannot work) is re-raised
    as CheckpointError naming the save's estimator.json."""
    try:
        return check(*args, **kwargs)
    except InputError as err:
        raise CheckpointError(f"{config_path}: {err}") from None


# ------------------------------------------------------------------ the estimators

def _label_kind(value):
    """'text', 'bool', 'number' or the type's name: labels of one kind sort and compare alike."""
    if isinstance(value, str):
        return 'text'
    if isinstance(value, (bool, np.bool_)):
        return 'bool'
    return 'number' if isinstance(value, numbers.Number) else type(value).__name__


class _Probabilities:
    """predict and predict_proba of a classifier: the model's logits over classes_ (classes
    or answers), the argmax of each row and its softmax."""

    def _predictions(self, outputs):
        return self.classes_[np.argmax(outputs, axis=1)]

    def predict_proba(self, X):
        """(n, len(classes_)) float64 probabilities, columns in classes_ order."""
        return np_softmax(self._outputs(X))


class _ClassesMixin(_Probabilities):
    """Classifiers over labels given by the user: classes_ (the fitted task's classes) is their
    sorted distinct values."""

    def _make_task(self, task_type, fields, y):
        name = type(self).__name__
        kinds = sorted({_label_kind(v) for v in y})
        if len(kinds) > 1:
            raise InputError(f"{name} y: labels of mixed types ({', '.join(kinds)}): expected labels of one type")
        for i, value in enumerate(y):
            if value != value:  # NaN: never found again among the classes, so no class could hold it
                raise InputError(f"{name} y[{i}] is {value!r}: expected a label equal to itself (not NaN)")
        classes = np.unique(np.asarray(y))
        if len(classes) < 2:
            raise InputError(f"{name} y: every label is {classes[0]!r}: expected at least two classes")
        return tasks.custom_task(task_type, classes=classes.tolist(), name=name)

    @property
    def classes_(self):
        return np.asarray(self.task_.classes)


class Classifier(_ClassesMixin, ClassifierMixin, GPT1Estimator):
    """Text classification (figure 1's 'classification': SST-2, CoLA) or, for X of (premise,
    hypothesis) pairs, entailment (SNLI, MNLI, RTE: the pair joined by the delimiter).
    predict gives labels from classes_, predict_proba their probabilities, score the accuracy."""

    def _fields(self, X):
        name = type(self).__name__
        if _is_text(X[0]):
            return 'classification', _texts(X, name)
        if _is_pair(X[0]):
            return 'entailment', _pairs(X, name)
        raise InputError(f"{name} X[0]: got {_describe(X[0])}: expected a text (str) or a pair of texts (a, b)")


class SimilarityClassifier(_ClassesMixin, ClassifierMixin, GPT1Estimator):
    """Classifies (a, b) pairs with no natural order (paraphrase: MRPC, QQP): the model reads
    both orders and adds their states. predict, predict_proba and score as Classifier."""

    def _fields(self, X):
        return 'similarity', _pairs(X, type(self).__name__)


class Regressor(RegressorMixin, GPT1Estimator):
    """A graded score for (a, b) pairs read in both orders (STS-B), trained with squared
    error. predict gives (n,) float64 scores, score the R^2 (RegressorMixin)."""

    def _fields(self, X):
        return 'regression', _pairs(X, type(self).__name__)

    def _make_task(self, task_type, fields, y):
        return tasks.custom_task(task_type, name=type(self).__name__)

    def _predictions(self, outputs):
        return outputs


class MultipleChoice(_Probabilities, ClassifierMixin, GPT1Estimator):
    """Picks the right answer of (context, [answer, ...]) examples (ROCStories, RACE): each
    answer is read after the context and scored; y is the right answer's index. Every
    example of a call has the same number k of answers; classes_ is 0..k-1 of the training
    examples, but the fitted model scores any k. predict gives answer indices,
    predict_proba (n, k) probabilities, score the accuracy."""

    def _fields(self, X):
        return 'multiple_choice', _choices(X, type(self).__name__)

    def _make_task(self, task_type, fields, y):
        counts = sorted({len(answers) for answers in fields[1]})
        if len(counts) > 1:
            raise InputError(f"{type(self).__name__} X: examples with {counts} answers: expected the same number in "
                             f"every example")
        return tasks.custom_task(task_type, n_choices=counts[0], name=type(self).__name__)

    @property
    def classes_(self):
        return np.arange(self.task_.n_choices)

    def _predictions(self, outputs):
        return np.argmax(outputs, axis=1)  # the index of the answer, however many there are


ESTIMATORS = {kind.__name__: kind for kind in (Classifier, SimilarityClassifier, Regressor, MultipleChoice)}
