"""estimators.py: the scikit-learn API on a tiny random model (n_embd 16, one layer) with the
real BPE files: fit/predict/predict_proba for each estimator, sklearn's clone and
cross_val_score, save/load, reproducibility, equality with train.py's run, bad inputs."""
import csv
import inspect
import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score

import estimators
import train
from checkpoint import read_checkpoint
from errors import CheckpointError, DataError, InputError, MissingFileError
from estimators import Classifier, GPT1Estimator, MultipleChoice, Regressor, SimilarityClassifier
from tests.conftest import BPE_PATH, ENCODER_PATH
from tests.helpers import tf_shapes, write_tf_checkpoint

TINY = dict(init='random', encoder_path=str(ENCODER_PATH), bpe_path=str(BPE_PATH), n_embd=16, n_layer=1, n_head=2,
            n_iter=2, n_batch=4, lm_coef=0, device='cpu')

TEXTS = ['a good movie', 'a bad film', 'great acting and a fine story', 'terrible plot', 'I loved it', 'hated it',
         'wonderful', 'boring and long', 'the best film this year', 'the worst', 'fun for everyone', 'dull']
LABELS = ['pos', 'neg'] * 6
PAIRS = [(a, b) for a, b in zip(TEXTS, TEXTS[::-1])]
SCORES = np.linspace(0, 5, 12)
CHOICES = [(a, [b, c, d]) for a, b, c, d in zip(TEXTS, TEXTS[1:] + TEXTS[:1], TEXTS[2:] + TEXTS[:2],
                                                 TEXTS[3:] + TEXTS[:3])]
ANSWERS = [0, 1, 2] * 4


@pytest.fixture(scope='module', autouse=True)
def one_thread_here():
    """One intra-op thread: the tiny model's matrices are too small to share out (with several
    threads on a busy machine a fit takes seconds instead of a tenth of one)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def fitted(one_thread_here):
    """One fitted estimator of each kind (fit once for the module)."""
    return {'classifier': Classifier(**TINY).fit(TEXTS, LABELS),
            'entailment': Classifier(**TINY).fit(PAIRS, LABELS),
            'similarity': SimilarityClassifier(**TINY).fit(PAIRS, [3, 7] * 6),
            'regressor': Regressor(**TINY).fit(PAIRS, SCORES),
            'choice': MultipleChoice(**TINY).fit(CHOICES, ANSWERS)}


def inputs(kind):
    return {'classifier': TEXTS, 'entailment': PAIRS, 'similarity': PAIRS, 'regressor': PAIRS,
            'choice': CHOICES}[kind]


def test_hyperparameters_are_train_flags():
    """Every hyperparameter but truncate, verbose and cache_dir is a train.py flag with the same
    default (cache_dir: None, nothing kept on disk unless asked)."""
    defaults = vars(train.build_parser().parse_args([]))
    params = Classifier().get_params()
    own = {'truncate': 'fit', 'verbose': False, 'cache_dir': None}
    assert {k: v for k, v in params.items() if k in own} == own
    assert {k: v for k, v in params.items() if k not in own} == {k: defaults[k] for k in params if k not in own}


@pytest.mark.parametrize('kind, classes', [('classifier', ['neg', 'pos']), ('entailment', ['neg', 'pos']),
                                           ('similarity', [3, 7]), ('choice', [0, 1, 2])])
def test_classifiers_predict_classes_and_probabilities(fitted, kind, classes):
    est, X = fitted[kind], inputs(kind)
    assert est.classes_.tolist() == classes
    pred = est.predict(X)
    assert pred.shape == (12,) and set(pred.tolist()) <= set(classes)
    assert type(pred[0].item()) is type(classes[0])  # labels come back as the type given to fit
    proba = est.predict_proba(X)
    assert proba.shape == (12, len(classes)) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-12)
    np.testing.assert_array_equal(est.classes_[proba.argmax(1)], pred)
    assert 0 <= est.score(X, est.predict(X)) == 1.0


def test_layouts(fitted):
    """Each estimator's model input is the paper's layout (figure 1) of its task type."""
    task_types = {k: est.task_.task_type for k, est in fitted.items()}
    assert task_types == {'classifier': 'classification', 'entailment': 'entailment', 'similarity': 'similarity',
                          'regressor': 'regression', 'choice': 'multiple_choice'}
    enc = fitted['classifier'].text_encoder_
    start, delim, clf = (enc.encoder[t] for t in ('_start_', '_delimiter_', '_classify_'))
    ids = enc.encode(['a good movie', 'dull'], verbose=False)
    X, M = fitted['similarity']._inputs([('a good movie', 'dull')])
    assert X.shape[:2] == (1, 2)
    for j, seq in enumerate(([start, *ids[0], delim, *ids[1], clf], [start, *ids[1], delim, *ids[0], clf])):
        assert X[0, j, :len(seq), 0].tolist() == seq and M[0, j].sum() == len(seq)


def test_predict_proba_is_the_softmax_of_the_models_logits(fitted):
    """An independent forward pass on the hand-built `[_start_] text [_classify_]` sequence."""
    est = fitted['classifier']
    enc, model = est.text_encoder_, est.model_
    first = len(enc.encoder)  # position rows follow the tokens and the special tokens
    seq = [enc.encoder['_start_'], *enc.encode(['terrible plot'], verbose=False)[0], enc.encoder['_classify_']]
    x = torch.tensor([[[[tok, first + p] for p, tok in enumerate(seq)]]])
    with torch.no_grad():
        logits = model(x)[1].double()
    np.testing.assert_allclose(est.predict_proba(['terrible plot'])[0], torch.softmax(logits, -1)[0].numpy(),
                               rtol=1e-6)


def test_regressor_predicts_scores(fitted):
    est = fitted['regressor']
    pred = est.predict(PAIRS)
    assert pred.shape == (12,) and pred.dtype == np.float64 and np.isfinite(pred).all()
    assert not hasattr(est, 'predict_proba') and not hasattr(est, 'classes_')
    r2 = est.score(PAIRS, SCORES)
    expected = 1 - ((SCORES - pred) ** 2).sum() / ((SCORES - SCORES.mean()) ** 2).sum()
    assert np.isfinite(r2) and r2 == pytest.approx(expected)


@pytest.mark.parametrize('k', [2, 4])
def test_multiple_choice_scores_any_number_of_answers(fitted, k):
    """The model scores each answer on its own: examples with 2 or 4 answers after fitting on 3."""
    X = [(c, (answers + [TEXTS[0]])[:k]) for c, answers in CHOICES]
    proba = fitted['choice'].predict_proba(X)
    assert proba.shape == (12, k)
    np.testing.assert_array_equal(fitted['choice'].predict(X), proba.argmax(1))


def test_a_failed_fit_leaves_the_fitted_estimator_as_it_was(fitted):
    est = clone(fitted['classifier']).fit(TEXTS, LABELS)
    before = est.predict(TEXTS)
    with pytest.raises(InputError, match='more than the 12 training examples'):
        est.set_params(n_batch=13).fit(TEXTS, ['a', 'b', 'c'] * 4)
    assert est.classes_.tolist() == ['neg', 'pos']
    np.testing.assert_array_equal(est.predict(TEXTS), before)


def test_seeded_fit_is_reproducible_and_clone_is_unfitted(fitted):
    est = fitted['entailment']
    copy = clone(est)
    assert copy.get_params() == est.get_params() and not hasattr(copy, 'model_')
    with pytest.raises(NotFittedError):
        copy.predict(PAIRS)
    np.testing.assert_array_equal(copy.fit(PAIRS, LABELS).predict_proba(PAIRS), est.predict_proba(PAIRS))
    other = clone(est).set_params(seed=7).fit(PAIRS, LABELS)
    assert not np.array_equal(other.predict_proba(PAIRS), est.predict_proba(PAIRS))


def test_fit_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    Classifier(**TINY).fit(TEXTS, LABELS)
    assert torch.equal(torch.get_rng_state(), before)


def test_lm_coef_adds_the_language_model_loss():
    a = Classifier(**TINY).fit(TEXTS, LABELS)
    b = Classifier(**dict(TINY, lm_coef=0.5)).fit(TEXTS, LABELS)
    assert not np.array_equal(a.predict_proba(TEXTS), b.predict_proba(TEXTS))


@pytest.mark.parametrize('est, X, y', [(Classifier(**TINY), TEXTS, LABELS), (Regressor(**TINY), PAIRS, SCORES),
                                       (MultipleChoice(**TINY), CHOICES, ANSWERS)])
def test_cross_val_score(est, X, y):
    scores = cross_val_score(est, X, y, cv=2)
    assert scores.shape == (2,) and np.isfinite(scores).all()


def write_csv(path, rows):
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['text', 'label'])
        writer.writerows(rows)


def test_fit_equals_train_py(tmp_path):
    """The estimator trains as train.py does: the same data as --dataset custom (the training
    file again as validation file, so that n_ctx is cut alike) gives the same parameters."""
    write_csv(tmp_path / 'train.csv', zip(TEXTS, LABELS))
    args = train.parse_args(['--dataset', 'custom', '--task_type', 'classification', '--train_file',
                             str(tmp_path / 'train.csv'), '--valid_file', str(tmp_path / 'train.csv'),
                             '--init', 'random', '--encoder_path', str(ENCODER_PATH), '--bpe_path', str(BPE_PATH),
                             '--n_embd', '16', '--n_layer', '1', '--n_head', '2', '--n_iter', '2', '--n_batch', '4',
                             '--lm_coef', '0.5', '--device', 'cpu', '--seed', '3', '--log_dir', str(tmp_path / 'log'),
                             '--save_dir', str(tmp_path / 'save'), '--cache_dir', str(tmp_path / 'cache')])
    train.run(args, verbose=False)
    expected = read_checkpoint(os.path.join(tmp_path, 'save', 'custom'))['model']
    est = Classifier(**dict(TINY, lm_coef=0.5, seed=3)).fit(TEXTS, LABELS)
    got = est.model_.state_dict()
    assert expected.keys() <= got.keys()
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name


def test_fit_and_predict_print_nothing(capsys):
    est = Classifier(**TINY).fit(TEXTS, LABELS)
    est.predict(TEXTS)
    assert capsys.readouterr() == ('', '')


def test_predict_cuts_examples_longer_than_the_fitted_n_ctx(fitted):
    est = fitted['classifier']
    long_text = ' '.join(TEXTS * 3)
    X, M = est._inputs([long_text])
    assert X.shape[2] == est.n_ctx_ and M.sum() == est.n_ctx_
    assert est.predict([long_text]).shape == (1,)
    strict = Classifier(**dict(TINY, truncate='never')).fit(TEXTS, LABELS)
    with pytest.raises(InputError, match='needs --n_ctx'):
        strict.predict([long_text])


@pytest.mark.parametrize('kind', ['entailment', 'regressor', 'choice'])
def test_save_and_load_give_the_same_predictions(fitted, kind, tmp_path):
    est, X = fitted[kind], inputs(kind)
    path = est.save(str(tmp_path / 'est'))
    assert sorted(os.listdir(tmp_path)) == ['est']  # no temporary folder left
    loaded = type(est).load(path)
    assert loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    if kind != 'regressor':
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
        np.testing.assert_array_equal(loaded.classes_, est.classes_)
    assert type(GPT1Estimator.load(path)) is type(est)
    assert loaded.n_ctx_ == est.n_ctx_ and loaded.task_ == est.task_


def test_a_fitted_estimator_pickles(fitted):
    """joblib and pickle, as sklearn's tools use them, keep the model and the classes."""
    est = fitted['similarity']
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(PAIRS), est.predict_proba(PAIRS))
    np.testing.assert_array_equal(copy.predict(PAIRS), est.predict(PAIRS))


def test_save_replaces_an_earlier_save_only(fitted, tmp_path):
    path = str(tmp_path / 'est')
    fitted['classifier'].save(path)
    fitted['regressor'].save(path)  # an earlier save is replaced whole
    assert type(GPT1Estimator.load(path)) is Regressor
    assert sorted(os.listdir(tmp_path)) == ['est']
    other = tmp_path / 'notes'
    other.mkdir()
    (other / 'a.txt').write_text('keep me')
    with pytest.raises(InputError, match='not an estimator save'):
        fitted['classifier'].save(str(other))
    assert os.listdir(other) == ['a.txt']


def test_a_save_holds_its_bpe_files(tmp_path):
    """A save loads and predicts after the model folder it was fitted from is gone."""
    model_dir = tmp_path / 'model'
    model_dir.mkdir()
    for src in (ENCODER_PATH, BPE_PATH):
        shutil.copyfile(src, model_dir / src.name)
    est = Classifier(**dict(TINY, encoder_path=None, bpe_path=None, model_dir=str(model_dir))).fit(TEXTS, LABELS)
    path = est.save(str(tmp_path / 'est'))
    shutil.rmtree(model_dir)
    loaded = Classifier.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), est.predict_proba(TEXTS))
    again = Classifier.load(loaded.save(str(tmp_path / 'again')))
    np.testing.assert_array_equal(again.predict_proba(TEXTS), est.predict_proba(TEXTS))


def test_load_refuses_what_is_not_a_save(fitted, tmp_path):
    with pytest.raises(MissingFileError, match='does not exist'):
        Classifier.load(str(tmp_path / 'nothing'))
    with pytest.raises(CheckpointError, match='is not an estimator save'):
        Classifier.load(str(tmp_path))
    path = fitted['regressor'].save(str(tmp_path / 'est'))
    with pytest.raises(CheckpointError, match='holds a Regressor save: expected a Classifier save'):
        Classifier.load(path)
    with open(os.path.join(path, estimators.SAVE_CONFIG), 'w') as f:
        f.write('{"format": "something else"')
    with pytest.raises(CheckpointError, match='is not readable JSON'):
        Regressor.load(path)


def edit_save(path, edit):
    """Rewrite a save's estimator.json after `edit(config)`."""
    p = os.path.join(path, estimators.SAVE_CONFIG)
    with open(p) as f:
        config = json.load(f)
    edit(config)
    with open(p, 'w') as f:
        json.dump(config, f)


@pytest.mark.parametrize('edit, match', [
    (lambda c: c['params'].update(colour='red'), r"params holds 'colour', not a parameter of Classifier: expected "),
    (lambda c: c.update(params=['n_iter']), r'params is a list: expected an object'),
    (lambda c: c['fitted'].pop('n_ctx'), r'fitted lacks n_ctx: expected '),
    (lambda c: c.update(fitted='fitted'), r'fitted is a str: expected an object'),
    (lambda c: c['fitted'].update(n_ctx='77'), r"fitted\.n_ctx is '77': expected an integer"),
    (lambda c: c['fitted'].update(classes='neg pos'), r"fitted\.classes is 'neg pos': expected a list"),
    (lambda c: c['fitted'].update(task_type='poetry'), r"estimator\.json: .*'poetry'"),
    (lambda c: c['fitted'].update(n_ctx=2 ** 31), r'fitted\.n_ctx is 2147483648: expected 1 to the n_ctx parameter'),
    (lambda c: c['fitted'].update(n_ctx=c['fitted']['n_ctx'] - 1),
     r'params\.safetensors: transformer\.embed\.weight has shape \(40\d+, 16\), expected \(40\d+, 16\) from '
     r'.*estimator\.json'),
    (lambda c: c['params'].update(n_embd=2 ** 20), r'transformer\.embed\.weight has shape \(40\d+, 16\), expected '
                                                  r'\(40\d+, 1048576\)'),
    (lambda c: c['params'].update(n_layer=3), r'params\.safetensors holds 1 blocks but .*estimator\.json has '
                                              r'n_layer 3'),
])
def test_load_refuses_a_damaged_estimator_json_in_one_line(fitted, tmp_path, edit, match):
    path = fitted['classifier'].save(str(tmp_path / 'est'))
    edit_save(path, edit)
    with pytest.raises(CheckpointError, match=match) as info:
        Classifier.load(path)
    assert estimators.SAVE_CONFIG in str(info.value) and '\n' not in str(info.value)


def test_load_refuses_a_save_whose_parameters_hold_nan(fitted, tmp_path):
    from test_checkpoint import poison
    path = fitted['classifier'].save(str(tmp_path / 'est'))
    name = poison(os.path.join(path, estimators.SAVE_PARAMS))
    with pytest.raises(CheckpointError, match=rf"{estimators.SAVE_PARAMS}: {name} holds 1 non-finite value"):
        Classifier.load(path)


@pytest.mark.parametrize('est, X, y, error, match', [
    (Classifier(**TINY), TEXTS, LABELS[:5], InputError, 'X has 12 examples but y has 5 labels'),
    (Classifier(**TINY), [], [], InputError, 'no examples'),
    (Classifier(**TINY), TEXTS, None, InputError, 'y: got NoneType: expected a list'),
    (Classifier(**TINY), 'one text', ['pos'], InputError, 'expected a list'),
    (Classifier(**TINY), TEXTS[:6] + PAIRS[6:], LABELS, InputError, r'X\[6\]: got tuple .*expected a text'),
    (Classifier(**TINY), [5] * 12, LABELS, InputError, r'X\[0\]: got int 5: expected a text \(str\) or a pair'),
    (Classifier(**TINY), TEXTS, ['pos'] * 12, InputError, 'expected at least two classes'),
    (Classifier(**TINY), TEXTS, ['pos', 1] * 6, InputError, 'mixed types'),
    (Classifier(**TINY), TEXTS, [0.0, 1.0] * 5 + [np.nan, 1.0], InputError,
     r'Classifier y\[10\] is nan: expected a label equal to itself'),
    (SimilarityClassifier(**TINY), PAIRS, [float('nan')] + [3, 7] * 5 + [3], InputError, r'y\[0\] is nan'),
    (SimilarityClassifier(**TINY), TEXTS, LABELS, InputError, r'X\[0\]: got str .*expected a pair of texts'),
    (Regressor(**TINY), PAIRS, ['high'] * 12, DataError, "label 'high' is not a number"),
    (MultipleChoice(**TINY), CHOICES, [3] * 12, DataError, 'expected the index of the right answer, 0..2'),
    (MultipleChoice(**TINY), CHOICES[:6] + [(c, a[:2]) for c, a in CHOICES[6:]], ANSWERS, InputError,
     r'examples with \[2, 3\] answers'),
    (MultipleChoice(**TINY), TEXTS, ANSWERS, InputError, r'X\[0\]: got str .*expected \(context, \[answer'),
    (Classifier(**dict(TINY, n_batch=0)), TEXTS, LABELS, InputError, r'n_batch=0\): expected a positive integer'),
    (Classifier(**dict(TINY, n_batch=13)), TEXTS, LABELS, InputError, 'more than the 12 training examples'),
    (Classifier(**dict(TINY, truncate='some')), TEXTS, LABELS, InputError, "truncate='some'"),
    (Classifier(**dict(TINY, n_head=3)), TEXTS, LABELS, InputError,
     r'Classifier\(n_head=3\): expected a divisor of n_embd 16'),
    (Classifier(**dict(TINY, lr=-1)), TEXTS, LABELS, InputError, r'Classifier\(lr=-1\): expected a finite'),
    (Classifier(**dict(TINY, lm_coef=-1)), TEXTS, LABELS, InputError,
     r'Classifier\(lm_coef=-1\): expected a finite weight >= 0'),
    (Classifier(**dict(TINY, lm_coef=float('nan'))), TEXTS, LABELS, InputError,
     r'Classifier\(lm_coef=nan\): expected a finite weight >= 0'),
    (Classifier(**dict(TINY, lm_coef='0.5')), TEXTS, LABELS, InputError,
     r"Classifier\(lm_coef='0.5'\): expected a finite weight"),
    (Classifier(**dict(TINY, device='tpu')), TEXTS, LABELS, InputError, "Classifier parameter device 'tpu'"),
    (Classifier(**TINY), [np.array([['a', 'b'], ['c', 'd']])] * 12, LABELS, InputError,
     r"X\[0\]: got ndarray array\(\[\['a', 'b'\], \['c', 'd'\]\]"),
    (Classifier(**dict(TINY, init='pretrained', model_dir='/nonexistent')), TEXTS, LABELS, MissingFileError,
     '/nonexistent'),
])
def test_bad_inputs(est, X, y, error, match):
    with pytest.raises(error, match=match) as info:
        est.fit(X, y)
    assert '\n' not in str(info.value)


def test_predict_refuses_another_layout(fitted):
    with pytest.raises(InputError, match='fitted on classification examples'):
        fitted['classifier'].predict(PAIRS)
    with pytest.raises(NotFittedError):
        Regressor(**TINY).predict(PAIRS)


def test_estimators_document_their_parameters():
    """sklearn's clone needs __init__ to take hyperparameters only, stored as given."""
    names = list(inspect.signature(GPT1Estimator.__init__).parameters)[1:]
    est = Classifier(**{name: f'v{i}' for i, name in enumerate(names)})
    assert est.get_params() == {name: f'v{i}' for i, name in enumerate(names)}


def test_pretrained_weights_are_loaded(tmp_path):
    """init='pretrained' starts from model_dir's checkpoint (here a tiny one in the TF release's
    format): after one update at a tiny learning rate the token and position rows are still
    the checkpoint's."""
    arrays = write_tf_checkpoint(tmp_path, tf_shapes(1, 16, 40478))
    est = Classifier(**dict(TINY, init='pretrained', model_dir=str(tmp_path), n_iter=1, n_batch=12, lr=1e-7))
    embed = est.fit(TEXTS, LABELS).model_.transformer.embed.weight.detach().numpy()
    n_vocab, n_ctx = 40478, est.n_ctx_
    np.testing.assert_allclose(embed[:n_vocab], arrays[1], atol=1e-5)
    np.testing.assert_allclose(embed[n_vocab + 3:], arrays[0][:n_ctx], atol=1e-5)
    assert est.n_updates_ == 1


def test_numpy_and_pandas_inputs(fitted):
    """Arrays and pandas objects (what notebooks hold, and what sklearn's splitters index) read
    as the lists they hold."""
    import pandas as pd
    est = fitted['entailment']
    expected = est.predict_proba(PAIRS)
    np.testing.assert_array_equal(est.predict_proba(np.array(PAIRS, dtype=object)), expected)
    frame = pd.DataFrame(PAIRS, columns=['premise', 'hypothesis'])
    np.testing.assert_array_equal(est.predict_proba(frame), expected)
    texts = fitted['classifier']
    np.testing.assert_array_equal(texts.predict(pd.Series(TEXTS)), texts.predict(TEXTS))
    scores = cross_val_score(Classifier(**TINY), np.array(TEXTS), np.array(LABELS), cv=2)
    assert np.isfinite(scores).all()


def test_cache_dir_keeps_the_encodings(fitted, tmp_path):
    est = Classifier(**dict(TINY, cache_dir=str(tmp_path))).fit(TEXTS, LABELS)
    assert len(os.listdir(tmp_path)) == 1
    np.testing.assert_array_equal(est.predict_proba(TEXTS), fitted['classifier'].predict_proba(TEXTS))
    assert len(os.listdir(tmp_path)) == 1  # the same texts: the same file


def test_verbose_shows_progress(capsys):
    Classifier(**dict(TINY, verbose=True)).fit(TEXTS, LABELS).predict(TEXTS)
    assert 'Encoding' in capsys.readouterr().err


# ------------------------------------------------------------------ GPT-2

def test_gpt2_release_folder_fits_saves_and_loads(gpt2_tiny_dir, gpt2_hf_dir, tmp_path):
    """model_dir a GPT-2 release folder: GPT-2's tokenizer and the checkpoint's layout and sizes with no
    other parameter; the save keeps GPT-2's files and those sizes; the Hugging Face copy of the same
    weights fits to the same parameters."""
    from text_utils import GPT2Encoder
    clf = Classifier(model_dir=str(gpt2_tiny_dir), n_iter=1, n_batch=4, device='cpu').fit(TEXTS, LABELS)
    cfg = clf.model_.transformer.config
    assert isinstance(clf.text_encoder_, GPT2Encoder) and clf.text_encoder_.encoder['_classify_'] == 50259
    assert (cfg.arch, cfg.n_embd, cfg.n_head, cfg.n_layer) == ('gpt2', 64, 4, 2)
    path = clf.save(str(tmp_path / 'est'))
    assert {'encoder.json', 'vocab.bpe'} <= set(os.listdir(path))
    loaded = GPT1Estimator.load(path)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6)
    hf = Classifier(model_dir=str(gpt2_hf_dir), n_iter=1, n_batch=4, device='cpu').fit(TEXTS, LABELS)
    ours, theirs = clf.model_.state_dict(), hf.model_.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.allclose(ours[k], theirs[k], atol=1e-6) for k in ours)


def test_gpt2_n_ctx_above_the_checkpoints_positions_is_refused(gpt2_tiny_dir):
    with pytest.raises(InputError, match=r"^Classifier\(n_ctx=129\): expected at most the 128 positions of the "
                                         r"checkpoint in .*gpt2-tiny-tf$"):
        Classifier(model_dir=str(gpt2_tiny_dir), n_ctx=129).fit(TEXTS, LABELS)
