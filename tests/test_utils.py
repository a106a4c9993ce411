"""utils: batching, dataset encoding, JSONL logging, softmax."""
import json

import numpy as np
import pytest

from errors import CheckpointError, DataError, MissingFileError
from utils import ResultLogger, encode_dataset, flatten, iter_data, make_path, np_softmax, read_json


def test_iter_data_single_array_yields_arrays():
    x = np.arange(10)
    batches = list(iter_data(x, n_batch=4))
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(isinstance(b, np.ndarray) for b in batches)


def test_iter_data_several_yield_tuples():
    x, y = np.arange(10), list('abcdefghij')
    batches = list(iter_data(x, y, n_batch=3))
    assert all(isinstance(b, tuple) and len(b) == 2 for b in batches)
    assert [b[1] for b in batches] == [list('abc'), list('def'), list('ghi'), list('j')]
    assert [b[0].tolist() for b in batches][-1] == [9]


def test_iter_data_truncate_and_max_batches(capsys):
    x = np.arange(10)
    assert [b.tolist() for b in iter_data(x, n_batch=4, truncate=True)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [b.tolist() for b in iter_data(x, n_batch=3, max_batches=2)] == [[0, 1, 2], [3, 4, 5]]
    assert [b.tolist() for b in iter_data(x, n_batch=3, max_batches=10)][-1] == [9]
    assert list(iter_data(x, n_batch=3, max_batches=0)) == []
    assert list(iter_data(np.arange(3), n_batch=4, truncate=True)) == []
    assert len(list(iter_data(x, n_batch=2, verbose=True))) == 5
    assert capsys.readouterr().out == ''


def test_iter_data_bad_arguments():
    with pytest.raises(ValueError, match=r'lengths \[3, 2\], expected equal lengths'):
        list(iter_data([1, 2, 3], [1, 2]))
    with pytest.raises(ValueError, match='n_batch is 0, expected a positive int'):
        list(iter_data([1, 2, 3], n_batch=0))


class _LengthEncoder:
    """Stands in for TextEncoder: each text becomes [its length]."""

    def __init__(self):
        self.calls = []
        self.verbose = []

    def encode(self, texts, verbose=True):
        self.calls.append(list(texts))
        self.verbose.append(verbose)
        return [[len(t)] for t in texts]


def test_encode_dataset_encodes_text_fields_and_keeps_labels():
    y = np.array([0, 1], dtype=np.int32)
    train = (['ab', 'cde'], ['f', 'gh'], ['', 'i'], y)
    test = (['jklm'],)
    encoder = _LengthEncoder()
    (e_train, e_test) = encode_dataset(train, test, encoder=encoder)
    assert e_train[:3] == [[[2], [3]], [[1], [2]], [[0], [1]]]
    assert e_train[3] is y
    assert e_test == [[[4]]]
    assert len(encoder.calls) == 4
    assert encoder.verbose == [True] * 4  # the default keeps the encoder's progress bars
    quiet = _LengthEncoder()
    assert encode_dataset(train, test, encoder=quiet, verbose=False)[1] == [[[4]]]
    assert quiet.verbose == [False] * 4


def test_verbose_false_draws_no_progress_bar(encoder_path, bpe_path, capfd):
    from text_utils import TextEncoder
    splits = ((['one story here', 'another story'], ['an ending', 'the end'], np.array([0, 1])), (['test text'],))
    encoder = TextEncoder(encoder_path, bpe_path)
    quiet = encode_dataset(*splits, encoder=encoder, verbose=False)
    list(iter_data(np.arange(10), n_batch=3, verbose=False))
    assert capfd.readouterr() == ('', '')
    assert encode_dataset(*splits, encoder=TextEncoder(encoder_path, bpe_path)) == quiet
    assert capfd.readouterr().err != ''  # verbose=True, the default, still shows the bars


def test_encode_dataset_recurses_into_nested_splits():
    nested = ((['ab'], np.zeros(1)), [(['xyz'],)])
    out = encode_dataset(nested, encoder=_LengthEncoder())
    assert out[0][0][0] == [[2]] and out[0][0][1].tolist() == [0.0] and out[0][1] == [[[[3]]]]


def test_result_logger_writes_jsonl(tmp_path):
    path = tmp_path / 'log' / 'deeper' / 'run.jsonl'
    logger = ResultLogger(str(path), desc='rocstories', lr=6.25e-5, n_iter=3)
    logger.log(n_epochs=1, va_acc=np.float32(85.5), tr_cost=np.float64(0.25), counts=np.array([1, 2]))
    # Each line is flushed at once: readable before close().
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2
    assert {k: lines[0][k] for k in ('desc', 'lr', 'n_iter')} == {'desc': 'rocstories', 'lr': 6.25e-5, 'n_iter': 3}
    assert lines[1]['va_acc'] == 85.5 and lines[1]['counts'] == [1, 2] and lines[1]['n_epochs'] == 1
    assert all(isinstance(line['time'], float) and line['time'] > 1.6e9 for line in lines)
    logger.log(time=5, note='given time kept')
    logger.close()
    assert json.loads(path.read_text().splitlines()[-1]) == {'time': 5, 'note': 'given time kept'}


def test_result_logger_context_manager_and_positional(tmp_path):
    path = tmp_path / 'r.jsonl'
    with ResultLogger(str(path), 'extra', seed=1) as logger:
        logger.log(x=1)
    first, second = [json.loads(line) for line in path.read_text().splitlines()]
    assert first['seed'] == 1 and first['args'] == ['extra'] and second['x'] == 1
    assert logger.f_log.closed


def test_result_logger_append_continues_a_log(tmp_path):
    path = tmp_path / 'gen.jsonl'
    with ResultLogger(str(path), run=1) as logger:
        logger.log(x=1)
    with ResultLogger(str(path), append=True, run=2) as logger:
        logger.log(x=2)
    with ResultLogger(str(path), append=True) as logger:  # no settings: no settings line
        logger.log(x=3)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line.get('run'), line.get('x')) for line in lines] == [(1, None), (None, 1), (2, None), (None, 2),
                                                                      (None, 3)]
    with ResultLogger(str(path), run=4):  # the default starts afresh, as the original did
        pass
    assert [json.loads(line)['run'] for line in path.read_text().splitlines()] == [4]


def test_make_path_and_flatten(tmp_path):
    target = tmp_path / 'a' / 'b' / 'f.txt'
    assert make_path(str(target)) == str(target)
    assert target.parent.is_dir() and not target.exists()
    assert make_path('plain_name.txt') == 'plain_name.txt'
    assert flatten([[1, 2], [], (3,), [[4]]]) == [1, 2, 3, [4]]


def test_np_softmax_matches_direct_formula():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5))
    direct = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(np_softmax(x), direct, rtol=1e-12)
    direct_t = np.exp(x / 0.5) / np.exp(x / 0.5).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(np_softmax(x, t=0.5), direct_t, rtol=1e-12)
    # Stable where the direct formula overflows.
    big = np.array([1000.0, 1001.0, 999.0])
    np.testing.assert_allclose(np_softmax(big), np_softmax(big - 1000.0), rtol=1e-12)
    assert np.all(np.isfinite(np_softmax(big)))
    np.testing.assert_allclose(np_softmax([[1.0, 1.0]]), [[0.5, 0.5]])


def test_encode_dataset_labels_each_field_s_bar(capsys):
    train = (['ab', 'cde'], ['f', 'gh'], np.array([0, 1]))
    test = (['jklm'], ['n'])
    out = encode_dataset(train, test, encoder=_LengthEncoder(), split_names=('train', 'test'),
                         field_names=('story', 'ending'))
    assert out[0][:2] == [[[2], [3]], [[1], [2]]] and out[1] == [[[4]], [[1]]]
    err = capsys.readouterr().err
    for label in ('encoding train story', 'encoding train ending', 'encoding test story', 'encoding test ending'):
        assert label in err, err
    encode_dataset(train, encoder=_LengthEncoder())
    assert 'encoding split 1 field 2' in capsys.readouterr().err
    encode_dataset(train, encoder=_LengthEncoder(), verbose=False, split_names=('train',))
    assert capsys.readouterr().err == ''


def test_read_json_returns_the_value_and_names_the_path_in_every_refusal(tmp_path):
    good = tmp_path / 'good.json'
    good.write_text('{"a": [1, 2]}')
    assert read_json(good, 'a config') == {'a': [1, 2]}
    (tmp_path / 'list.json').write_text('[1]')
    assert read_json(tmp_path / 'list.json', 'shapes', kind=list) == [1]
    with pytest.raises(MissingFileError, match=r'absent\.json is missing: expected a config$'):
        read_json(tmp_path / 'absent.json', 'a config')
    bad = tmp_path / 'bad.json'
    bad.write_text('{"a": ')
    with pytest.raises(DataError, match=r'bad\.json is not readable JSON .*: expected a config$'):
        read_json(bad, 'a config')
    bad.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(CheckpointError, match=r'bad\.json is not readable JSON'):
        read_json(bad, 'a config', error=CheckpointError)
    with pytest.raises(DataError, match=r'good\.json holds a JSON dict, not an array: expected shapes$'):
        read_json(good, 'shapes', kind=list)
