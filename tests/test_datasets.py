"""datasets.rocstories reads the Story Cloze CSVs and splits them exactly as the original did."""
import csv

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

import datasets
from text_utils import TextEncoder
from utils import encode_dataset

VAL = 'cloze_test_val__spring2016 - cloze_test_ALL_val.csv'
TEST = 'cloze_test_test__spring2016 - cloze_test_ALL_test.csv'
HEADER = ['InputStoryid', 'InputSentence1', 'InputSentence2', 'InputSentence3', 'InputSentence4',
          'RandomFifthSentenceQuiz1', 'RandomFifthSentenceQuiz2', 'AnswerRightEnding']


@pytest.fixture(scope='module')
def splits(rocstories_dir):
    return datasets.rocstories(rocstories_dir)


@pytest.fixture(scope='module')
def frames(rocstories_dir):
    """The two CSVs read by pandas, independently of datasets.py."""
    val = pd.read_csv(rocstories_dir / VAL, dtype=str, keep_default_na=False)
    test = pd.read_csv(rocstories_dir / TEST, dtype=str, keep_default_na=False)
    for frame in (val, test):
        frame['story'] = frame[HEADER[1:5]].agg(' '.join, axis=1)
    return val, test


def test_sizes_and_types(splits):
    (trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3) = splits
    assert [len(x) for x in (trX1, trX2, trX3, trY)] == [1497] * 4
    assert [len(x) for x in (vaX1, vaX2, vaX3, vaY)] == [374] * 4
    assert [len(x) for x in (teX1, teX2, teX3)] == [1871] * 3
    for y in (trY, vaY):
        assert isinstance(y, np.ndarray) and y.dtype == np.int32 and set(np.unique(y)) == {0, 1}
    assert all(isinstance(s, str) for s in trX1 + vaX2 + teX3)


def test_split_is_deterministic(rocstories_dir, splits):
    again = datasets.rocstories(rocstories_dir)
    for split, split_again in zip(splits, again):
        for field, field_again in zip(split, split_again):
            assert list(field) == list(field_again)


def test_split_matches_original_split_of_story_ids(splits, frames):
    # The original split the parallel lists in one train_test_split call; splitting only the story
    # ids with the same size and seed picks the same rows in the same order.
    val, test = frames
    tr_ids, va_ids = train_test_split(list(val['InputStoryid']), test_size=374, random_state=3535999445)
    by_id = val.set_index('InputStoryid')
    (trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3) = splits
    for ids, X1, X2, X3, Y in ((tr_ids, trX1, trX2, trX3, trY), (va_ids, vaX1, vaX2, vaX3, vaY)):
        rows = by_id.loc[ids]
        assert X1 == list(rows['story'])
        assert X2 == list(rows['RandomFifthSentenceQuiz1'])
        assert X3 == list(rows['RandomFifthSentenceQuiz2'])
        assert Y.tolist() == [int(a) - 1 for a in rows['AnswerRightEnding']]
    # A few rows spelled out, so a change in scikit-learn's shuffling would show here too.
    assert tr_ids[:2] == list(val['InputStoryid'].iloc[np.random.RandomState(3535999445).permutation(1871)[374:376]])
    assert teX1 == list(test['story']) and teX2 == list(test['RandomFifthSentenceQuiz1'])
    assert teX3 == list(test['RandomFifthSentenceQuiz2'])


def test_smaller_train_keeps_prefix_of_the_same_order(rocstories_dir, splits):
    (trX1, _, _, trY), (vaX1, _, _, _), _ = datasets.rocstories(rocstories_dir, n_train=100)
    assert trX1 == splits[0][0][:100] and trY.tolist() == splits[0][3][:100].tolist()
    assert vaX1 == splits[1][0]
    with pytest.raises(ValueError, match='n_train=1500 and n_valid=374 must be positive and sum to at most the 1871 stories'):
        datasets.rocstories(rocstories_dir, n_train=1500)


def test_test_labels(rocstories_dir, frames):
    labels = datasets.rocstories_test_labels(rocstories_dir)
    assert labels.dtype == np.int32 and labels.shape == (1871,)
    assert labels.tolist() == [int(a) - 1 for a in frames[1]['AnswerRightEnding']]


def test_n_ctx_is_77_with_the_real_vocabulary(splits, encoder_path, bpe_path):
    encoded = encode_dataset(*splits, encoder=TextEncoder(encoder_path, bpe_path))
    max_len = 512 // 2 - 2
    # [_start_] story [_delimiter_] ending [_classify_]: three special tokens per choice.
    n_ctx = 0
    for split in encoded:
        for x1, x2, x3 in zip(*split[:3]):
            n_ctx = max(n_ctx, len(x1[:max_len]) + max(len(x2[:max_len]), len(x3[:max_len])) + 3)
    assert n_ctx == 77


def _write_csv(folder, name, rows, header=HEADER):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)


def _row(i, label='1'):
    return [f'id{i}', f'S1 {i}.', 'S2.', 'S3.', 'S4.', 'End one.', 'End two.', label]


@pytest.fixture
def tiny_dir(tmp_path):
    """A folder with two small, well-formed Story Cloze files (synthetic rows)."""
    _write_csv(tmp_path, VAL, [_row(i, '12'[i % 2]) for i in range(10)])
    _write_csv(tmp_path, TEST, [_row(i) for i in range(4)])
    return tmp_path


def test_tiny_files_load(tiny_dir):
    (trX1, _, _, trY), (vaX1, _, _, vaY), (teX1, teX2, teX3) = datasets.rocstories(tiny_dir, n_train=7, n_valid=3)
    assert len(trX1) == 7 and len(vaX1) == 3 and teX1[0] == 'S1 0. S2. S3. S4.' and teX3[0] == 'End two.'
    assert sorted(trY.tolist() + vaY.tolist()) == [0] * 5 + [1] * 5


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data folder .*nope not found: expected a folder holding "
                       r"'cloze_test_val__spring2016 - cloze_test_ALL_val.csv' and "
                       r"'cloze_test_test__spring2016 - cloze_test_ALL_test.csv'.*https://cs.rochester.edu/nlp/rocstories/"):
        datasets.rocstories(tmp_path / 'nope')


def test_missing_file(tiny_dir):
    (tiny_dir / TEST).unlink()
    with pytest.raises(FileNotFoundError, match=r"file .*cloze_test_ALL_test.csv not found: .*Story Cloze Test"):
        datasets.rocstories(tiny_dir)
    with pytest.raises(FileNotFoundError, match='cs.rochester.edu/nlp/rocstories'):
        datasets.rocstories_test_labels(tiny_dir)


def test_malformed_row(tiny_dir):
    rows = [_row(i) for i in range(10)]
    rows[4] = rows[4][:6]
    _write_csv(tiny_dir, VAL, rows)
    with pytest.raises(ValueError, match=r'cloze_test_ALL_val.csv is malformed: row 6 has 6 fields, expected 8'):
        datasets.rocstories(tiny_dir, n_train=7, n_valid=3)


def test_bad_label(tiny_dir):
    _write_csv(tiny_dir, TEST, [_row(0), _row(1, '3')])
    with pytest.raises(ValueError, match=r"cloze_test_ALL_test.csv: row 3 has AnswerRightEnding '3', expected 1 or 2"):
        datasets.rocstories_test_labels(tiny_dir)


def test_bad_header_and_empty_file(tiny_dir):
    _write_csv(tiny_dir, VAL, [_row(0)], header=None)
    with pytest.raises(ValueError, match=r"cloze_test_ALL_val.csv is malformed: row 1 is .*expected the header InputStoryid,"):
        datasets.rocstories(tiny_dir)
    (tiny_dir / VAL).write_text('')
    with pytest.raises(ValueError, match=r"cloze_test_ALL_val.csv is malformed: the file is empty, expected the header InputStoryid,"):
        datasets.rocstories(tiny_dir)
    (tiny_dir / VAL).write_bytes(b'\xff\xfe\x00bad')
    with pytest.raises(ValueError, match=r"cloze_test_ALL_val.csv is malformed: .*utf-8"):
        datasets.rocstories(tiny_dir)
