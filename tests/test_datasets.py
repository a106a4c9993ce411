"""datasets.rocstories reads the Story Cloze CSVs and splits them exactly as the original did."""
import csv
import io
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

import datasets
from errors import DataError, DataWarning, InputError, MissingFileError
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
    with pytest.raises(ValueError, match='n_train=1500 and n_valid=374 must be positive and sum to at most '
                                         'the 1871 stories'):
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
    with pytest.raises(ValueError, match=r"cloze_test_ALL_val.csv is malformed: row 1 is .*"
                                         r"expected the header InputStoryid,"):
        datasets.rocstories(tiny_dir)
    (tiny_dir / VAL).write_text('')
    with pytest.raises(ValueError, match=r"cloze_test_ALL_val.csv is malformed: the file is empty, "
                                         r"expected the header InputStoryid,"):
        datasets.rocstories(tiny_dir)
    (tiny_dir / VAL).write_bytes(b'\xff\xfe\x00bad')
    with pytest.raises(ValueError, match=r"cloze_test_ALL_val.csv is UTF-16 .*expected UTF-8"):
        datasets.rocstories(tiny_dir)


# ---------------------------------------------------------------- bad and suspicious files
# Each case starts from the real files' header and first stories (real_dir) and breaks one thing.

N_VAL, N_TEST = 10, 5  # stories kept of each real file


@pytest.fixture(scope='module')
def real_lines(rocstories_dir):
    """{file name: its header line and first stories' lines, line breaks kept} of the real files."""
    def head(name, n):
        with open(rocstories_dir / name, newline='', encoding='utf-8') as f:
            return [next(f) for _ in range(n + 1)]
    return {VAL: head(VAL, N_VAL), TEST: head(TEST, N_TEST)}


@pytest.fixture
def real_dir(tmp_path, real_lines):
    """A folder with the two real files cut to their header and first stories."""
    for name, lines in real_lines.items():
        (tmp_path / name).write_bytes(''.join(lines).encode('utf-8'))
    return tmp_path


def _rows(lines):
    """The CSV rows (header first) of a list of lines."""
    return list(csv.reader(io.StringIO(''.join(lines), newline='')))


def _load(folder):
    return datasets.rocstories(folder, n_train=N_VAL - 3, n_valid=3)


def _message(error, call, *parts):
    """Run call(), expecting `error`; check its message is one line holding every str of `parts`; return it."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert '\n' not in message and all(part in message for part in parts), message
    return message


def test_cut_real_files_load_without_warnings(real_dir, rocstories_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        _load(real_dir)
        datasets.rocstories(rocstories_dir)
        datasets.rocstories_test_labels(rocstories_dir)
    assert [str(w.message) for w in caught if issubclass(w.category, DataWarning)] == []


def test_missing_folder_and_file_are_missing_file_errors(real_dir):
    _message(MissingFileError, lambda: _load(real_dir / 'nope'), 'nope', VAL, TEST)
    (real_dir / VAL).unlink()
    _message(MissingFileError, lambda: _load(real_dir), str(real_dir / VAL))


@pytest.mark.parametrize('row, broken, what', [
    (N_VAL + 1, lambda line: '"' + line, 'the last row opens a quote it never closes'),
    (5, lambda line: '"' + line.replace(',', '"x,', 1), 'text after a closing quote'),
])
def test_malformed_csv_names_row_and_line(real_dir, real_lines, row, broken, what):
    lines = list(real_lines[VAL])
    lines[row - 1] = broken(lines[row - 1])
    (real_dir / VAL).write_text(''.join(lines), encoding='utf-8')
    story_id = lines[row - 1][1:37]
    _message(DataError, lambda: _load(real_dir), f'{VAL} is malformed CSV: row {row}, starting at line {row}',
             story_id, 'expected comma-separated fields with balanced double quotes')


def test_wrong_field_counts(real_dir, real_lines):
    rows = _rows(real_lines[VAL])
    rows[5] = rows[5][:-1]
    _write_csv(real_dir, VAL, rows, header=None)
    _message(DataError, lambda: _load(real_dir), VAL, 'row 6 has 7 fields, expected 8', 'line 6 reads',
             rows[5][0])
    rows[5] = rows[6] + ['extra']
    _write_csv(real_dir, VAL, rows, header=None)
    _message(DataError, lambda: _load(real_dir), VAL, 'row 6 has 9 fields, expected 8')


def test_empty_and_header_only_files(real_dir, real_lines):
    for name in (VAL, TEST):
        (real_dir / name).write_bytes(b'')
        _message(DataError, lambda: _load(real_dir), name, 'the file is empty, expected the header InputStoryid,')
        (real_dir / name).write_text(real_lines[name][0], encoding='utf-8')
        _message(DataError, lambda: _load(real_dir), name, 'holds no stories: it has only the header row')
        (real_dir / name).write_text(''.join(real_lines[name]), encoding='utf-8')


def test_not_utf8_names_the_line_and_byte(real_dir, real_lines):
    data = ''.join(real_lines[VAL]).encode('utf-8')
    at = data.index(b"wasn't")  # row 2; a Windows-1252 right quote in place of the apostrophe
    (real_dir / VAL).write_bytes(data[:at + 3] + b'\x92' + data[at + 4:])
    _message(DataError, lambda: _load(real_dir), f'{VAL} is not UTF-8: line 2 holds the byte 0x92',
             'expected UTF-8')


@pytest.mark.parametrize('encoding, expected', [
    ('utf-16', 'is UTF-16 (it starts with a UTF-16 byte-order mark): expected UTF-8'),
    ('utf-16-le', 'is UTF-16 or binary: line 1 holds a NUL byte; expected UTF-8'),
])
def test_utf16_is_refused(real_dir, real_lines, encoding, expected):
    (real_dir / TEST).write_bytes(''.join(real_lines[TEST]).encode(encoding))
    _message(DataError, lambda: _load(real_dir), f'{TEST} {expected}')


def test_utf8_byte_order_mark_is_accepted(real_dir, real_lines):
    plain = _load(real_dir)
    for name in (VAL, TEST):
        (real_dir / name).write_bytes(''.join(real_lines[name]).encode('utf-8-sig'))
    with_bom = _load(real_dir)
    assert repr(with_bom) == repr(plain)
    assert datasets.rocstories_test_labels(real_dir).tolist() == [int(r[-1]) - 1 for r in _rows(real_lines[TEST])[1:]]


def test_missing_column_lists_found_and_expected(real_dir, real_lines):
    rows = [row[:3] + row[4:] for row in _rows(real_lines[VAL])]  # no InputSentence3
    _write_csv(real_dir, VAL, rows, header=None)
    _message(DataError, lambda: _load(real_dir), VAL, f"row 1 is {','.join(rows[0])!r}",
             f"expected the header {','.join(HEADER)}", 'missing columns: InputSentence3')


def test_columns_are_found_by_name(real_dir, real_lines):
    plain = _load(real_dir)
    order = [7, 0, 6, 1, 2, 3, 4, 5]
    for name in (VAL, TEST):
        _write_csv(real_dir, name, [[row[i] for i in order] for row in _rows(real_lines[name])], header=None)
    assert repr(_load(real_dir)) == repr(plain)


@pytest.mark.parametrize('name', [VAL, TEST])
@pytest.mark.parametrize('label', ['3', 'x', '', '0'])
def test_bad_label_names_row_id_and_value(real_dir, real_lines, name, label):
    rows = _rows(real_lines[name])
    rows[4][-1] = label
    _write_csv(real_dir, name, rows, header=None)
    expected = f"row 5 has AnswerRightEnding {label!r}, expected 1 or 2 (story id {rows[4][0]!r}, line 5)"
    _message(DataError, lambda: _load(real_dir), name, expected)


def test_test_labels_are_optional_for_training_only(real_dir, real_lines):
    plain = _load(real_dir)
    _write_csv(real_dir, TEST, [row[:-1] for row in _rows(real_lines[TEST])], header=None)
    assert repr(_load(real_dir)) == repr(plain)
    _message(DataError, lambda: datasets.rocstories_test_labels(real_dir), TEST, 'missing columns: AnswerRightEnding')


def test_empty_sentences_are_empty_strings(real_dir, real_lines, encoder_path, bpe_path):
    rows = _rows(real_lines[TEST])
    rows[1][2] = ''  # pandas would read these two as NaN
    rows[2][1:5] = ['NA', 'nan', '', 'null']
    _write_csv(real_dir, TEST, rows, header=None)
    teX1 = _load(real_dir)[2][0]
    assert teX1[0] == ' '.join(rows[1][1:5]) and '  ' in teX1[0] and teX1[1] == 'NA nan  null'
    encoder = TextEncoder(encoder_path, bpe_path)
    assert encoder.encode([teX1[0]], verbose=False) == encoder.encode([' '.join(rows[1][1:5:2] + rows[1][4:5])],
                                                                      verbose=False)


def _data_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        call()
    return [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def test_duplicate_ids_warn(real_dir, real_lines):
    rows = _rows(real_lines[VAL])
    rows[4][0] = rows[6][0] = rows[1][0]
    _write_csv(real_dir, VAL, rows, header=None)
    messages = _data_warnings(lambda: _load(real_dir))
    assert messages == [f"ROCStories file {real_dir / VAL}: 2 duplicate InputStoryid values among {N_VAL} rows "
                        f"(first: {rows[1][0]!r}, rows 2 and 5); expected unique ids"]


def test_repeated_rows_warn(real_dir, real_lines):
    rows = _rows(real_lines[TEST])
    rows[3:6] = [list(rows[2]) for _ in range(3)]
    rows[5][0] = 'new-id'  # a copy under another id is still a copy
    _write_csv(real_dir, TEST, rows, header=None)
    messages = _data_warnings(lambda: _load(real_dir))
    assert len(messages) == 2
    assert f"{TEST}: 2 duplicate InputStoryid values among {N_TEST} rows (first: {rows[2][0]!r}, rows 3 and 4)" \
        in messages[0]
    assert messages[1] == (f"ROCStories file {real_dir / TEST}: 3 of {N_TEST} rows repeat the sentences, endings and "
                           f"label of an earlier row (first: row 4, story id {rows[2][0]!r}, repeats row 3); "
                           f"expected distinct stories")


def test_empty_stories_warn(real_dir, real_lines):
    rows = _rows(real_lines[VAL])
    rows[3][1:5] = ['', ' ', '', '']
    rows[8][1:5] = [''] * 4
    _write_csv(real_dir, VAL, rows, header=None)
    messages = _data_warnings(lambda: _load(real_dir))
    assert messages == [f"ROCStories file {real_dir / VAL}: 2 of {N_VAL} stories have all four sentences empty "
                        f"(first: row 4, story id {rows[3][0]!r}); expected four sentences per story"]


def test_split_sizes_errors(real_dir):
    _message(InputError, lambda: datasets.rocstories(real_dir, n_train=5, n_valid=0), 'n_valid=0')
    _message(DataError, lambda: datasets.rocstories(real_dir, n_train=8, n_valid=3),
             f'n_train=8 and n_valid=3 must be positive and sum to at most the {N_VAL} stories of', VAL)


def test_stories_the_split_leaves_out_warn(real_dir, real_lines):
    messages = _data_warnings(lambda: datasets.rocstories(real_dir, n_train=N_VAL - 5, n_valid=3))
    assert messages == [f"ROCStories file {real_dir / VAL} holds {N_VAL} stories; the split uses {N_VAL - 2} "
                        f"({N_VAL - 5} train + 3 valid): the last 2 of the shuffled order are left out"]
    assert _data_warnings(lambda: _load(real_dir)) == []


def test_trailing_blank_lines_are_accepted(real_dir, real_lines):
    expected = _load(real_dir)
    (real_dir / VAL).write_bytes(''.join(real_lines[VAL] + ['\r\n', '\n']).encode('utf-8'))
    (real_dir / TEST).write_bytes(''.join(real_lines[TEST] + ['\n']).encode('utf-8'))
    assert repr(_load(real_dir)) == repr(expected)
    lines = list(real_lines[VAL])
    lines.insert(3, '\n')
    (real_dir / VAL).write_bytes(''.join(lines).encode('utf-8'))
    _message(DataError, lambda: _load(real_dir), 'row 4 has 0 fields')


def test_a_field_over_the_csv_module_limit_is_read_whole(real_dir, real_lines):
    rows = _rows(real_lines[VAL])
    long_sentence = 'word ' * 40000
    rows[2][1] = long_sentence
    _write_csv(real_dir, VAL, rows, header=None)
    (trX1, _, _, _), (vaX1, _, _, _), _ = _load(real_dir)
    assert sum(story.startswith(long_sentence) for story in trX1 + vaX1) == 1
    assert csv.field_size_limit() == 131072


def test_an_abandoned_csv_reader_leaves_the_csv_module_limit_as_it_was(tmp_path):
    path = tmp_path / 'long.csv'
    path.write_text('text,label\n' + ''.join(f'"{"word " * 40000}",{i}\n' for i in range(3)))
    rows = datasets.csv_fields(str(path), 'custom')
    next(rows), next(rows)
    assert csv.field_size_limit() == 131072  # the generator, not closed, holds no global setting
    assert len(list(rows)) == 2
