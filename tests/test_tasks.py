"""tasks.py: the registry, the four input transformations (ids checked position by
position), truncation, the encoding cache and the submission files."""
import dataclasses
import os
import warnings

import numpy as np
import pytest

import tasks
import finetune
import task_data
import train
from errors import DataError, DataWarning, InputError

# A tiny vocabulary of 10 tokens, then the three special tokens, then positions.
SP = tasks.Specials(start=10, delimiter=11, classify=12, n_vocab=10, n_special=3)
S, D, C = SP.start, SP.delimiter, SP.classify
P0 = 13  # first position row


def _rows(X, M, i, j):
    """The token ids under the mask of example i, sequence j."""
    return X[i, j, M[i, j] == 1, 0].tolist()


def _check_padding_and_positions(X, M, n_ctx):
    assert X.dtype == np.int32 and M.dtype == np.float32
    assert (X[..., 1] == P0 + np.arange(n_ctx)).all()
    assert (X[..., 0][M == 0] == 0).all()
    lengths = M.sum(-1).astype(int)
    for idx in np.ndindex(*M.shape[:2]):  # the mask is a prefix: ones then zeros
        assert (M[idx][:lengths[idx]] == 1).all() and (M[idx][lengths[idx]:] == 0).all()


# ------------------------------------------------------------------ the four layouts

def test_classification_layout():
    X, M = tasks.transform('classification', ([[1, 2, 3], [4]],), SP, n_ctx=6, cap=512)
    assert X.shape == (2, 1, 6, 2) and M.shape == (2, 1, 6)
    assert X[0, 0, :, 0].tolist() == [S, 1, 2, 3, C, 0]
    assert X[1, 0, :, 0].tolist() == [S, 4, C, 0, 0, 0]
    assert M[0, 0].tolist() == [1, 1, 1, 1, 1, 0] and M[1, 0].tolist() == [1, 1, 1, 0, 0, 0]
    _check_padding_and_positions(X, M, 6)


def test_entailment_layout():
    X, M = tasks.transform('entailment', ([[1, 2], [3]], [[4], [5, 6, 7]]), SP, n_ctx=7, cap=512)
    assert X.shape == (2, 1, 7, 2)
    assert X[0, 0, :, 0].tolist() == [S, 1, 2, D, 4, C, 0]
    assert X[1, 0, :, 0].tolist() == [S, 3, D, 5, 6, 7, C]
    _check_padding_and_positions(X, M, 7)


@pytest.mark.parametrize('task_type', ['similarity', 'regression'])
def test_similarity_layout_has_both_orders(task_type):
    X, M = tasks.transform(task_type, ([[1, 2]], [[3]]), SP, n_ctx=6, cap=512)
    assert X.shape == (1, 2, 6, 2)
    assert X[0, 0, :, 0].tolist() == [S, 1, 2, D, 3, C]
    assert X[0, 1, :, 0].tolist() == [S, 3, D, 1, 2, C]
    _check_padding_and_positions(X, M, 6)


def test_multiple_choice_layout():
    contexts = [[1, 2], [3]]
    choices = [[[4], [5, 6], [7]], [[8, 9], [1], [2, 3, 4]]]
    X, M = tasks.transform('multiple_choice', (contexts, choices), SP, n_ctx=8, cap=512)
    assert X.shape == (2, 3, 8, 2)
    assert [_rows(X, M, 0, k) for k in range(3)] == [[S, 1, 2, D, 4, C], [S, 1, 2, D, 5, 6, C], [S, 1, 2, D, 7, C]]
    assert [_rows(X, M, 1, k) for k in range(3)] == [[S, 3, D, 8, 9, C], [S, 3, D, 1, C], [S, 3, D, 2, 3, 4, C]]
    _check_padding_and_positions(X, M, 8)


def test_wrong_fields_are_refused():
    with pytest.raises(InputError, match="'entailment' takes 2 text field"):
        tasks.transform('entailment', ([[1]],), SP, 4)
    with pytest.raises(InputError, match="fields of different lengths"):
        tasks.transform('entailment', ([[1]], [[1], [2]]), SP, 4)
    with pytest.raises(InputError, match="task type 'ranking' is not one of classification"):
        tasks.transform('ranking', ([[1]],), SP, 4)
    with pytest.raises(DataError, match=r"multiple-choice examples have \[2, 3\] answers"):
        tasks.transform('multiple_choice', ([[1], [2]], [[[1], [2]], [[1], [2], [3]]]), SP, 8)


def test_special_tokens_added_once_as_make_roc_data():
    encoder = {'a</w>': 0, 'b</w>': 1}
    sp = tasks.add_special_tokens(encoder)
    assert sp == tasks.Specials(2, 3, 4, 2, 3) and sp.first_position == 5
    assert tasks.add_special_tokens(encoder) == sp and len(encoder) == 5


# ------------------------------------------------------------------ ROCStories as today

@pytest.fixture(scope='module')
def roc(rocstories_dir, encoder_path, bpe_path):
    """ROCStories encoded with the real vocabulary as train.py does (a few seconds), and its
    fields in datasets.Split's multiple-choice layout (contexts, choices)."""
    args = train.parse_args(['--data_dir', str(rocstories_dir), '--encoder_path', str(encoder_path),
                             '--bpe_path', str(bpe_path)])
    text_encoder, encoded = task_data.encode_rocstories(args, verbose=False)
    sp = tasks.add_special_tokens(text_encoder.encoder)
    fields = {name: (split[0], [list(pair) for pair in zip(split[1], split[2])])
              for name, split in zip(('train', 'valid', 'test'), encoded)}
    return text_encoder, encoded, sp, fields


@pytest.mark.parametrize('n_ctx,truncate', [(512, False), (40, True)])
def test_rocstories_arrays_equal_make_roc_data(roc, n_ctx, truncate):
    text_encoder, encoded, sp, fields = roc
    data = task_data.make_roc_data(text_encoder, encoded, n_ctx, truncate=truncate)
    inputs = tasks.prepare_inputs(tasks.TASKS['rocstories'], fields, sp, n_ctx, 'always' if truncate else 'fit')
    assert inputs.n_ctx == data.n_ctx and sp.first_position == data.n_vocab + data.n_special
    assert sp.classify == data.clf_token
    for split, prefix in (('train', 'tr'), ('valid', 'va'), ('test', 'te')):
        X, M = inputs.arrays(split)
        np.testing.assert_array_equal(X, getattr(data, prefix + 'X'))
        np.testing.assert_array_equal(M, getattr(data, prefix + 'M'))
    # and transform_roc itself, on the same cut
    X, M = tasks.transform('multiple_choice', fields['valid'], sp, data.n_ctx, cap=n_ctx)
    Xr, Mr = task_data.transform_roc(*encoded[1][:3], text_encoder.encoder, data.n_ctx, n_ctx // 2 - 2,
                                 data.n_vocab, data.n_special)
    np.testing.assert_array_equal(X, Xr)
    np.testing.assert_array_equal(M, Mr)
    assert (sum(inputs.n_truncated.values()) > 0) == truncate


def test_batches_built_lazily_equal_the_whole_split(roc):
    _, _, sp, fields = roc
    inputs = tasks.prepare_inputs(tasks.TASKS['rocstories'], fields, sp)
    X, M = inputs.arrays('valid')
    idx = [5, 0, 373, 17]
    Xb, Mb = inputs.arrays('valid', idx)
    np.testing.assert_array_equal(Xb, X[idx])
    np.testing.assert_array_equal(Mb, M[idx])


def test_padded_views_index_as_the_arrays_do(roc):
    _, _, sp, fields = roc
    inputs = tasks.prepare_inputs(tasks.TASKS['rocstories'], fields, sp)
    X, M = inputs.arrays('valid')
    Xv, Mv = inputs.views('valid')
    assert (Xv.shape, Mv.shape, Xv.dtype, Mv.dtype, len(Xv)) == (X.shape, M.shape, X.dtype, M.dtype, len(X))
    for index in (7, -1, slice(3, 11), slice(None, None, 50), np.array([373, 0, 5]), [2, 2], np.arange(374) % 3 == 0,
                  np.array([], dtype=np.int64)):
        np.testing.assert_array_equal(Xv[index], X[index])
        np.testing.assert_array_equal(Mv[index], M[index])
    np.testing.assert_array_equal(np.asarray(Xv), X)
    np.testing.assert_array_equal(Mv.lengths(), M.sum(-1).max(-1))


# ------------------------------------------------------------------ truncation

def test_halves_cut_every_segment_to_max_len_and_count_examples():
    task = tasks.custom_task('entailment', classes=('yes', 'no'))
    a = [list(range(1, 8)), [1]]  # 7 tokens, 1 token
    b = [[2], [3, 4, 5, 6]]
    inputs = tasks.prepare_inputs(task, {'train': (a, b)}, SP, n_ctx=10, truncate='always')  # max_len = 3
    assert inputs.n_truncated == {'train': 2}
    assert inputs.seqs['train'][0][0] == [S, 1, 2, 3, D, 2, C]
    assert inputs.seqs['train'][1][0] == [S, 1, D, 3, 4, 5, C]
    assert inputs.n_ctx == 7  # the longest after the cut
    # the original's rule cuts a 7-token segment at n_ctx 16 (max_len 6), though the pair would fit
    assert tasks.prepare_inputs(task, {'train': (a, b)}, SP, n_ctx=16, truncate='always').n_truncated == {'train': 1}


def test_fit_cuts_only_the_examples_that_do_not_fit_and_never_refuses_them():
    task = tasks.custom_task('entailment', classes=('yes', 'no'))
    a = [list(range(1, 8)), [1]]  # whole: 7 + 1 + 3 = 11 and 1 + 4 + 3 = 8 tokens
    b = [[2], [3, 4, 5, 6]]
    fit = tasks.prepare_inputs(task, {'train': (a, b)}, SP, n_ctx=10)
    assert fit.n_truncated == {'train': 1}  # only the 11-token example, by the original's rule
    assert fit.seqs['train'] == [[[S, 1, 2, 3, D, 2, C]], [[S, 1, D, 3, 4, 5, 6, C]]] and fit.n_ctx == 8
    whole = tasks.prepare_inputs(task, {'train': (a, b)}, SP, n_ctx=11)
    assert whole.n_truncated == {'train': 0} and whole.n_ctx == 11
    with pytest.raises(InputError, match=r"^--no_truncate: custom train example 0 needs --n_ctx 11 to keep all "
                                         r"its tokens but --n_ctx is 10 \(1 train examples would be cut\); "
                                         r"expected --n_ctx >= 11, or drop --no_truncate"):
        tasks.prepare_inputs(task, {'train': (a, b)}, SP, n_ctx=10, truncate='never')
    assert tasks.prepare_inputs(task, {'train': (a, b)}, SP, n_ctx=11, truncate='never').n_ctx == 11
    with pytest.raises(InputError, match=r"truncate='some': expected one of fit, always, never"):
        tasks.prepare_inputs(task, {'train': (a, b)}, SP, n_ctx=11, truncate='some')


def test_no_cut_and_n_ctx_is_the_longest_when_everything_fits():
    task = tasks.TASKS['sst2']
    inputs = tasks.prepare_inputs(task, {'train': ([[1, 2, 3], [4]],), 'test': ([[5] * 6],)}, SP, n_ctx=512,
                                  truncate='never')
    assert inputs.n_ctx == 8 and inputs.n_truncated == {'train': 0, 'test': 0}


def test_one_segment_keeps_n_ctx_minus_2():
    seqs, n = tasks.build_sequences('classification', ([list(range(1, 10)), [1, 2]],), SP, n_ctx=6)
    assert seqs == [[[S, 1, 2, 3, 4, C]], [[S, 1, 2, C]]] and n == 1


def test_context_tail_keeps_the_question_and_the_answers():
    # context = article (1..9) then question (7, 8, 9); answers cut to n_ctx // 2 - 2 = 3
    contexts = [list(range(1, 10)), [1, 2]]
    choices = [[[5], [6, 7]], [[3], [4]]]
    seqs, n = tasks.build_sequences('multiple_choice', (contexts, choices), SP, n_ctx=10,
                                    truncation='context_tail')
    # budget for the context: 10 - 3 - 2 (the longest answer) = 5 tokens, the last ones
    assert seqs[0] == [[S, 5, 6, 7, 8, 9, D, 5, C], [S, 5, 6, 7, 8, 9, D, 6, 7, C]]
    assert seqs[1] == [[S, 1, 2, D, 3, C], [S, 1, 2, D, 4, C]] and n == 1
    long_answer = [[[1] * 9, [2]]]
    seqs, _ = tasks.build_sequences('multiple_choice', ([[7] * 9], long_answer), SP, n_ctx=10,
                                    truncation='context_tail')
    assert seqs[0][0] == [S, 7, 7, 7, 7, D, 1, 1, 1, C] and all(len(s) <= 10 for s in seqs[0])


@pytest.mark.parametrize('n_ctx', [3, 1025])
def test_n_ctx_out_of_range_is_refused(n_ctx):
    """At most GPT-2's 1,024 positions (a run's own checkpoint is model_source's check)."""
    with pytest.raises(InputError, match=rf"--n_ctx {n_ctx}: expected 4 to 1024 \(the positions of OpenAI's "
                                         rf"checkpoints: GPT-1's 512, GPT-2's 1024\)"):
        tasks.prepare_inputs(tasks.TASKS['sst2'], {'train': ([[1]],)}, SP, n_ctx)


def test_longer_than_the_model_says_so():
    task = tasks.TASKS['sst2']
    with pytest.raises(InputError, match=r"train example 0 needs --n_ctx 602 .*expected --n_ctx >= 602"):
        tasks.prepare_inputs(task, {'train': ([[1] * 600],)}, SP, 512, truncate='never')
    with pytest.raises(InputError, match=r"train example 0 needs --n_ctx 1102 .*OpenAI's checkpoints have at most "
                                         r"1024 positions \(GPT-1's 512\)"):
        tasks.prepare_inputs(task, {'train': ([[1] * 1100],)}, SP, 1024, truncate='never')


# ------------------------------------------------------------------ the registry

def test_registry_entries_are_consistent():
    assert set(tasks.TASKS) == {'rocstories', 'race', 'snli', 'mnli', 'qnli', 'rte', 'scitail', 'mrpc', 'qqp',
                                'stsb', 'cola', 'sst2'}
    for name, task in tasks.TASKS.items():
        assert task.name == name and task.task_type in tasks.TASK_TYPES
        assert len(task.submission_files) == len(task.test_splits)
        assert (task.classes is None) == (task.task_type == 'regression' or name == 'rocstories')
        with pytest.raises(dataclasses.FrozenInstanceError):
            task.name = 'x'
    assert tasks.TASKS['mnli'].valid_splits == ('valid', 'valid_mismatched')
    assert tasks.TASKS['mnli'].classes == ('entailment', 'neutral', 'contradiction')


def test_every_registered_head_builds():
    from model_pytorch import DEFAULT_CONFIG, ClfHead, MultipleChoiceHead, SimilarityHead, make_task_head
    kinds = {'multiple_choice': MultipleChoiceHead, 'similarity': SimilarityHead, 'inference': ClfHead}
    for task in tasks.TASKS.values():
        head = make_task_head(5, DEFAULT_CONFIG, task.head)
        assert isinstance(head, kinds.get(task.head if isinstance(task.head, str) else
                                          task.head[0].replace('classification', 'inference')))
        if task.classes and task.task_type != 'multiple_choice':
            assert head.clf.b.numel() == len(task.classes)


def test_get_task_and_custom_task():
    assert tasks.get_task('cola') is tasks.TASKS['cola']
    with pytest.raises(InputError, match=r"unknown task 'glue': expected one of rocstories, race, .*sst2 "
                                         r"\(or custom\)"):
        tasks.get_task('glue')
    t = tasks.custom_task('similarity', classes=['same', 'different'])
    assert t.head == ('similarity', 2) and t.classes == ('same', 'different') and t.label_strings
    assert tasks.custom_task('regression').head == 'similarity'
    assert tasks.custom_task('multiple_choice', n_choices=3).n_choices == 3
    with pytest.raises(InputError, match="needs its class names"):
        tasks.custom_task('classification')
    with pytest.raises(InputError, match="n_choices=1: expected 2 or more"):
        tasks.custom_task('multiple_choice', n_choices=1)
    with pytest.raises(InputError, match="task type 'tagging' is not one of"):
        tasks.custom_task('tagging')


def test_label_ids():
    assert tasks.label_ids(tasks.TASKS['mnli'], ['neutral', 'entailment', 'contradiction']).tolist() == [1, 0, 2]
    y = tasks.label_ids(tasks.TASKS['stsb'], ['4.5', 0, 2.25])
    assert y.dtype == np.float32 and y.tolist() == [4.5, 0.0, 2.25]
    assert tasks.label_ids(tasks.TASKS['race'], [3, 0]).dtype == np.int64
    with pytest.raises(DataError, match=r"MNLI valid: label 'maybe' is not a class: expected one of entailment, "
                                        r"neutral, contradiction"):
        tasks.label_ids(tasks.TASKS['mnli'], ['neutral', 'maybe'], where='valid')
    with pytest.raises(DataError, match=r"STS-B labels: label 'high' is not a number"):
        tasks.label_ids(tasks.TASKS['stsb'], [1, 'high'])
    with pytest.raises(DataError, match=r"label 'nan' is not finite"):
        tasks.label_ids(tasks.TASKS['stsb'], [1, 'nan'])
    with pytest.raises(DataError, match=r"RACE labels: label 4: expected the index of the right answer, 0..3"):
        tasks.label_ids(tasks.TASKS['race'], [0, 4])


# ------------------------------------------------------------------ the encoding cache

class CountingEncoder:
    """A TextEncoder stand-in: ids from the characters, counting the texts it encodes."""

    def __init__(self, vocab=('a', 'b')):
        self.encoder = {s: i for i, s in enumerate(vocab)}
        # Fillers up to the largest id encode gives here (ord of the tests' characters): cached ids are checked
        # against the vocabulary's size.
        self.encoder.update({f'<{i}>': i for i in range(len(vocab), 9000)})
        self.bpe_ranks = {('a', 'b'): 0}
        self.calls = 0

    def encode(self, texts, verbose=True):
        self.calls += 1
        return [[ord(ch) for ch in text] for text in texts]


def test_cache_hit_returns_the_same_ids_without_encoding(tmp_path):
    enc = CountingEncoder()
    texts = ['ab', '', 'é\u2014z', 'ab']
    first = tasks.encode_cached(texts, enc, str(tmp_path), verbose=False)
    assert first == [[97, 98], [], [233, 8212, 122], [97, 98]] and enc.calls == 1
    again = tasks.encode_cached(texts, enc, str(tmp_path), verbose=False)
    assert again == first and enc.calls == 1
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(tasks.cache_path(texts, enc, str(tmp_path)))]


def test_cache_misses_when_texts_or_encoder_change(tmp_path):
    enc = CountingEncoder()
    tasks.encode_cached(['ab', 'c'], enc, str(tmp_path), verbose=False)
    tasks.encode_cached(['a', 'bc'], enc, str(tmp_path), verbose=False)  # same characters, other boundaries
    assert enc.calls == 2
    tasks.encode_cached(['c', 'ab'], enc, str(tmp_path), verbose=False)  # other order
    assert enc.calls == 3
    enc.bpe_ranks = {('b', 'a'): 0}  # other merges
    tasks.encode_cached(['ab', 'c'], enc, str(tmp_path), verbose=False)
    assert enc.calls == 4
    other = CountingEncoder(vocab=('a', 'b', 'c'))  # other vocabulary
    tasks.encode_cached(['ab', 'c'], other, str(tmp_path), verbose=False)
    assert other.calls == 1
    tasks.add_special_tokens(other.encoder)  # the special tokens do not change what encode gives
    tasks.encode_cached(['ab', 'c'], other, str(tmp_path), verbose=False)
    assert other.calls == 1


def test_cache_write_is_atomic_and_a_damaged_file_is_rebuilt(tmp_path, monkeypatch):
    enc = CountingEncoder()
    path = tasks.cache_path(['ab'], enc, str(tmp_path))

    def broken_savez(f, **arrays):
        f.write(b'PK\x03\x04 half a file')
        raise OSError('disk full')
    monkeypatch.setattr(tasks.np, 'savez', broken_savez)
    with pytest.raises(OSError, match='disk full'):
        tasks.encode_cached(['ab'], enc, str(tmp_path), verbose=False)
    assert list(tmp_path.iterdir()) == []  # neither the entry nor a temporary file
    monkeypatch.undo()
    with open(path, 'wb') as f:  # a damaged entry (say, copied half-way) is not trusted
        f.write(b'PK\x03\x04 junk')
    assert tasks.encode_cached(['ab'], enc, str(tmp_path), verbose=False) == [[97, 98]] and enc.calls == 2
    assert tasks.encode_cached(['ab'], enc, str(tmp_path), verbose=False) == [[97, 98]] and enc.calls == 2


def _rewrite_cache(path, **changes):
    """Rewrite the cache file at path with some of its arrays replaced (its stored digest kept)."""
    with np.load(path) as f:
        arrays = {name: f[name] for name in f.files}
    arrays.update(changes)
    with open(path, 'wb') as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize('damage', ['beyond the vocabulary', 'plausible ids'])
def test_a_cache_file_whose_content_is_damaged_is_rebuilt_with_a_warning(tmp_path, damage):
    enc = CountingEncoder()
    texts = ['ab', 'ba']
    assert tasks.encode_cached(texts, enc, str(tmp_path), verbose=False) == [[97, 98], [98, 97]]
    path = tasks.cache_path(texts, enc, str(tmp_path))
    wrong = np.array([97, 98, 98, 65535 if damage == 'beyond the vocabulary' else 96], dtype=np.int32)
    _rewrite_cache(path, ids=wrong)
    with pytest.warns(DataWarning) as caught:
        assert tasks.encode_cached(texts, enc, str(tmp_path), verbose=False) == [[97, 98], [98, 97]]
    assert enc.calls == 2 and len(caught) == 1
    message = str(caught[0].message)
    assert path in message and 'rebuilt' in message and '\n' not in message, message
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert tasks.encode_cached(texts, enc, str(tmp_path), verbose=False) == [[97, 98], [98, 97]]
    assert enc.calls == 2


def test_cache_of_the_real_encoder_equals_encode(tmp_path, encoder_path, bpe_path, capsys):
    from text_utils import TextEncoder
    enc = TextEncoder(str(encoder_path), str(bpe_path))
    texts = ["Karen was assigned a roommate her first year of college.", "back\\slash -- ok", ""]
    direct = enc.encode(texts, verbose=False)
    assert tasks.encode_cached(texts, enc, str(tmp_path), verbose=True) == direct
    assert 'Encoding 3 texts' in capsys.readouterr().err
    enc.encode = None  # a hit does not encode
    assert tasks.encode_cached(texts, enc, str(tmp_path), verbose=True) == direct


# ------------------------------------------------------------------ submission files

def _read_bytes(path):
    with open(path, 'rb') as f:
        return f.read()


def test_rocstories_submission_is_train_write_submission_byte_for_byte(tmp_path):
    preds = np.array([1, 0, 0, 1], dtype=np.int64)
    ours = tasks.write_submission(tasks.TASKS['rocstories'], preds, str(tmp_path / 'a'))
    theirs = finetune.write_submission(preds, str(tmp_path / 'b'))
    assert os.path.basename(ours) == 'ROCStories.tsv'
    assert _read_bytes(ours) == _read_bytes(theirs) == b'index\tprediction\n0\t1\n1\t0\n2\t0\n3\t1\n'


def test_glue_submission_formats(tmp_path):
    d = str(tmp_path)
    path = tasks.write_submission(tasks.TASKS['mnli'], [2, 0, 1], d)
    assert os.path.basename(path) == 'MNLI-m.tsv'
    assert _read_bytes(path) == b'index\tprediction\n0\tcontradiction\n1\tentailment\n2\tneutral\n'
    path = tasks.write_submission(tasks.TASKS['mnli'], np.array([1]), d, split='test_mismatched', ids=[7])
    assert os.path.basename(path) == 'MNLI-mm.tsv' and _read_bytes(path) == b'index\tprediction\n7\tneutral\n'
    path = tasks.write_submission(tasks.TASKS['rte'], [1, 0], d, ids=['0', '1'])
    assert os.path.basename(path) == 'RTE.tsv'
    assert _read_bytes(path) == b'index\tprediction\n0\tnot_entailment\n1\tentailment\n'
    path = tasks.write_submission(tasks.TASKS['qnli'], [0], d)
    assert _read_bytes(path) == b'index\tprediction\n0\tentailment\n'
    for name, file in (('cola', 'CoLA.tsv'), ('sst2', 'SST-2.tsv'), ('mrpc', 'MRPC.tsv'), ('qqp', 'QQP.tsv')):
        path = tasks.write_submission(tasks.TASKS[name], np.array([0, 1, 1]), d)
        assert os.path.basename(path) == file and _read_bytes(path) == b'index\tprediction\n0\t0\n1\t1\n2\t1\n'
    path = tasks.write_submission(tasks.TASKS['stsb'], np.array([4.25, 0.0, 5.5], dtype=np.float32), d)
    assert os.path.basename(path) == 'STS-B.tsv'
    assert _read_bytes(path) == b'index\tprediction\n0\t4.250000\n1\t0.000000\n2\t5.500000\n'
    path = tasks.write_submission(tasks.TASKS['race'], [3, 0], d, ids=['high/1.txt-0', 'middle/2.txt-1'])
    assert _read_bytes(path) == b'index\tprediction\nhigh/1.txt-0\tD\nmiddle/2.txt-1\tA\n'
    assert sorted(os.listdir(d)) == sorted(['MNLI-m.tsv', 'MNLI-mm.tsv', 'RTE.tsv', 'QNLI.tsv', 'CoLA.tsv',
                                            'SST-2.tsv', 'MRPC.tsv', 'QQP.tsv', 'STS-B.tsv', 'RACE.tsv'])


def test_submission_bad_inputs_write_nothing(tmp_path):
    with pytest.raises(InputError, match=r"SST-2 has no submission file for split 'test_mismatched': expected one "
                                         r"of test"):
        tasks.write_submission(tasks.TASKS['sst2'], [0], str(tmp_path), split='test_mismatched')
    with pytest.raises(InputError, match=r"CoLA: 2 predictions for 1 ids"):
        tasks.write_submission(tasks.TASKS['cola'], [0, 1], str(tmp_path), ids=[0])
    assert list(tmp_path.iterdir()) == []


def test_submission_cells_with_a_tab_or_line_break_are_refused(tmp_path):
    with pytest.raises(InputError) as err:
        tasks.write_submission(tasks.TASKS['cola'], [0, 1], str(tmp_path), ids=['a', 'b\nc'])
    assert "'b\\nc'" in str(err.value) and 'tab or line break' in str(err.value), str(err.value)
    task = tasks.custom_task('classification', classes=['neg', 'very\tgood'])
    with pytest.raises(InputError) as err:
        tasks.write_submission(task, [0, 1], str(tmp_path))
    assert "'very\\tgood'" in str(err.value), str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_encode_fields_keeps_the_split_layout(tmp_path):
    enc = CountingEncoder()
    texts = (['ab', 'c'], [['x', 'yz'], ['', 'w']])  # (contexts, choices)
    fields = tasks.encode_fields(texts, enc, str(tmp_path), verbose=False)
    assert fields == ([[97, 98], [99]], [[[120], [121, 122]], [[], [119]]]) and enc.calls == 1
    assert tasks.encode_fields(texts, enc, str(tmp_path), verbose=False) == fields and enc.calls == 1
    pair = tasks.encode_fields((['a', 'b'], ['c', 'd']), enc, None, verbose=False)
    assert pair == ([[97], [98]], [[99], [100]]) and enc.calls == 2
    assert tasks.encode_fields(([],), enc, None, verbose=False) == ([],)


def test_similarity_head_is_symmetric_in_its_two_inputs():
    """Both orders through the transformer, added: swapping the sentences gives the same score."""
    import torch
    from model_pytorch import DEFAULT_CONFIG, DoubleHeadModel, dotdict
    cfg = dotdict(DEFAULT_CONFIG, n_embd=16, n_head=4, n_layer=2)
    n_ctx = 9
    torch.manual_seed(0)
    model = DoubleHeadModel(cfg, SP.classify, tasks.TASKS['stsb'].head, vocab=P0 + n_ctx, n_ctx=n_ctx).eval()
    a, b = [[1, 2, 3], [4]], [[5], [6, 7, 8, 9]]
    Xab, _ = tasks.transform('regression', (a, b), SP, n_ctx, cap=512)
    Xba, _ = tasks.transform('regression', (b, a), SP, n_ctx, cap=512)
    with torch.no_grad():
        score_ab = model(torch.from_numpy(Xab).long())[1]
        score_ba = model(torch.from_numpy(Xba).long())[1]
        one_order = model(torch.from_numpy(Xab[:, :1].repeat(2, axis=1)).long())[1]
    assert score_ab.shape == (2,)  # one number per pair: the regression output
    torch.testing.assert_close(score_ab, score_ba, rtol=0, atol=1e-6)
    assert not torch.allclose(score_ab, one_order)  # the second order does count


TINY_FIELDS = {'classification': ([[1, 2], [3]],), 'entailment': ([[1], [2, 3]], [[4, 5], [6]]),
               'regression': ([[1], [2, 3]], [[4, 5], [6]]), 'similarity': ([[1], [2, 3]], [[4, 5], [6]]),
               'multiple_choice': ([[1, 2], [3]], [[[4], [5], [6], [7]], [[8], [9], [1], [2]]])}
@pytest.mark.parametrize('name', list(tasks.TASKS))
def test_each_tasks_input_goes_through_its_head(name):
    """X of every task (n_seq 1 included) is what DoubleHeadModel with the task's head takes."""
    import torch
    from model_pytorch import DEFAULT_CONFIG, DoubleHeadModel, dotdict
    task = tasks.TASKS[name]
    fields = TINY_FIELDS[task.task_type]
    if task.task_type == 'multiple_choice':
        fields = (fields[0], [answers[:task.n_choices] for answers in fields[1]])
    X, _ = tasks.transform(task.task_type, fields, SP, 8, cap=512)
    model = DoubleHeadModel(dotdict(DEFAULT_CONFIG, n_embd=16, n_head=4, n_layer=1), SP.classify, task.head,
                            vocab=P0 + 8, n_ctx=8).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(X).long())[1]
    expected = {'multiple_choice': (2, task.n_choices), 'regression': (2,)}.get(task.task_type,
                                                                               (2, len(task.classes or ())))
    assert tuple(logits.shape) == expected
