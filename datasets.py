"""Dataset readers: ROCStories / Story Cloze Test (spring 2016), split as in OpenAI's
finetune-transformer-lm, and (see `Split`) the paper's other tasks."""
import codecs
import collections
import csv
import dataclasses
import io
import os
import warnings

import numpy as np
from sklearn.model_selection import train_test_split

from errors import DataError, DataWarning, InputError, MissingFileError

ROCSTORIES_URL = 'https://cs.rochester.edu/nlp/rocstories/'
VAL_FILE = 'cloze_test_val__spring2016 - cloze_test_ALL_val.csv'
TEST_FILE = 'cloze_test_test__spring2016 - cloze_test_ALL_test.csv'
HEADER = ['InputStoryid', 'InputSentence1', 'InputSentence2', 'InputSentence3', 'InputSentence4',
          'RandomFifthSentenceQuiz1', 'RandomFifthSentenceQuiz2', 'AnswerRightEnding']
LABEL = HEADER[-1]
# The original's seed: with it the train/valid split is the one the paper's runs used.
SEED = 3535999445

# One story of a file: its row number (the header is row 1), the line that row starts on,
# its id, its four sentences, its two endings and its label (AnswerRightEnding - 1, or None
# in a test file without that column).
Record = collections.namedtuple('Record', ['row', 'line', 'id', 'sentences', 'ending1', 'ending2', 'label'])


@dataclasses.dataclass
class Split:
    """One split of a dataset as read from its files, before any encoding.

    texts: a tuple with one list of str per text field, in the task's order: (texts,) for
        classification, (first, second) for a pair (premise and hypothesis, the two
        sentences of a similarity pair); for multiple choice (contexts, choices) where
        choices[i] is the list of the k answer strings of example i.
    labels: one per example: the class name as a str (classification, entailment,
        similarity with classes), a float (regression), the index of the right choice
        (multiple choice); None when the split has no labels (GLUE's test sets).
    ids: one per example: the example's id in the release (GLUE's `index` column, a
        RACE file name and question number, ...), used by submission files.
    groups: None, or one str per example naming its sub-collection (RACE 'middle'/'high')
        for metrics reported per group.
    """
    texts: tuple
    labels: list = None
    ids: list = None
    groups: list = None

    def __len__(self):
        return len(self.texts[0])


def _missing(what, path):
    """Build the MissingFileError for a missing ROCStories folder or file."""
    return MissingFileError(
        f"ROCStories {what} {path} not found: expected a folder holding '{VAL_FILE}' and '{TEST_FILE}', "
        f"the Story Cloze Test (spring 2016) files from {ROCSTORIES_URL}")


def _line_of(data, offset):
    """Take bytes and an offset in them; return the 1-based number of the line holding that byte."""
    return data.count(b'\n', 0, offset) + 1


def _excerpt(text, n=80):
    """Take a str; return its repr, cut to its first n characters with '...' after when longer."""
    return repr(text[:n]) + ('...' if len(text) > n else '')


def _read_text(path):
    """Take the path of a file; return its text, decoded as UTF-8 (a leading byte-order mark
    dropped). Raises DataError naming the line of the first byte that is not UTF-8."""
    with open(path, 'rb') as f:
        data = f.read()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"ROCStories file {path} is UTF-16 (it starts with a UTF-16 byte-order mark): "
                        f"expected UTF-8 text; save it as UTF-8")
    nul = data.find(b'\x00')
    if nul >= 0:
        # csv would read the NULs as text: UTF-16 without a byte-order mark has one per ASCII character.
        raise DataError(f"ROCStories file {path} is UTF-16 or binary: line {_line_of(data, nul)} "
                        f"holds a NUL byte; expected UTF-8 text")
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as err:
        raise DataError(f"ROCStories file {path} is not UTF-8: line {_line_of(data, err.start)} holds "
                        f"the byte 0x{data[err.start]:02x} ({err.reason}); expected UTF-8 text") from None
    # A spreadsheet program may have added a UTF-8 byte-order mark.
    return text[1:] if text.startswith('\ufeff') else text


def _csv_rows(path, text):
    """Take a file's path and text; return its CSV rows as (row number, first line, fields)
    triples, the header being row 1. Raises DataError for malformed CSV (unbalanced quotes)."""
    reader = csv.reader(io.StringIO(text, newline=''), strict=True)
    rows, line = [], 1
    try:
        for fields in reader:
            rows.append((len(rows) + 1, line, fields))
            line = reader.line_num + 1
    except csv.Error as err:
        start = io.StringIO(text, newline='').readlines()[line - 1]
        raise DataError(f"ROCStories file {path} is malformed CSV: row {len(rows) + 1}, starting at line {line} "
                        f"({_excerpt(start.rstrip())}): {err}; expected comma-separated fields with balanced double "
                        f"quotes") from None
    return rows


def _columns(path, header, need_label):
    """Take a file's path and header row; return {column name: index} of the columns of
    HEADER it has. Raises DataError listing the missing ones (LABEL may be missing unless
    need_label)."""
    required = HEADER if need_label else HEADER[:-1]
    missing = [name for name in required if name not in header]
    if missing:
        expected = ','.join(required) + ('' if need_label else f'[,{LABEL}]')
        raise DataError(f"ROCStories file {path} is malformed: row 1 is {_excerpt(','.join(header), 200)}, "
                        f"expected the header {expected}; missing columns: {','.join(missing)}")
    return {name: header.index(name) for name in HEADER if name in header}


def _record(path, header, columns, row):
    """Take a file's path, header, columns (from _columns) and one (row number, line, fields)
    of its body; return its Record. Raises DataError for a wrong field count or label."""
    number, line, fields = row
    if len(fields) != len(header):
        raise DataError(f"ROCStories file {path} is malformed: row {number} has {len(fields)} fields, expected "
                        f"{len(header)} ({','.join(header)}); line {line} reads {_excerpt(','.join(fields))}")
    story_id = fields[columns[HEADER[0]]]
    label = None
    if LABEL in columns:
        value = fields[columns[LABEL]]
        if value.strip() not in ('1', '2'):
            raise DataError(f"ROCStories file {path}: row {number} has {LABEL} {value!r}, expected 1 or 2 "
                            f"(story id {story_id!r}, line {line})")
        label = int(value) - 1
    return Record(number, line, story_id, tuple(fields[columns[name]] for name in HEADER[1:5]),
                  fields[columns[HEADER[5]]], fields[columns[HEADER[6]]], label)


def _repeats(records, key):
    """Take Records and a function of one; return (record, row of the earlier record with the same key)
    for every record whose key an earlier one had, in file order."""
    first_row, repeats = {}, []
    for record in records:
        k = key(record)
        if k in first_row:
            repeats.append((record, first_row[k]))
        else:
            first_row[k] = record.row
    return repeats


def _warn_suspicious(path, records):
    """Emit a DataWarning per kind of suspicious data among a file's Records: repeated story ids,
    rows repeating an earlier row (the id aside), stories whose four sentences are all empty."""
    n = len(records)
    same_id = _repeats(records, lambda r: r.id)
    if same_id:
        record, earlier = same_id[0]
        warnings.warn(f"ROCStories file {path}: {len(same_id)} duplicate {HEADER[0]} values among {n} rows (first: "
                      f"{record.id!r}, rows {earlier} and {record.row}); expected unique ids", DataWarning)
    same_row = _repeats(records, lambda r: (r.sentences, r.ending1, r.ending2, r.label))
    if same_row:
        record, earlier = same_row[0]
        warnings.warn(f"ROCStories file {path}: {len(same_row)} of {n} rows repeat the sentences, endings and label "
                      f"of an earlier row (first: row {record.row}, story id {record.id!r}, repeats row {earlier}); "
                      f"expected distinct stories", DataWarning)
    empty = [r for r in records if not any(sentence.strip() for sentence in r.sentences)]
    if empty:
        warnings.warn(f"ROCStories file {path}: {len(empty)} of {n} stories have all four sentences empty (first: "
                      f"row {empty[0].row}, story id {empty[0].id!r}); expected four sentences per story", DataWarning)


def _read_cloze_csv(data_dir, name, need_label=True):
    """Read one Story Cloze CSV of `data_dir`.

    Returns (stories, endings1, endings2, labels): three lists of str, a story
    being its four sentences joined by a space (an empty field is ''), and a list
    of int labels AnswerRightEnding - 1, or None when the file has no such column
    and not need_label. Raises MissingFileError for a missing folder or file and
    DataError naming the file and row for anything malformed; warns (DataWarning)
    about suspicious data.
    """
    if not os.path.isdir(data_dir):
        raise _missing('data folder', data_dir)
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        raise _missing('file', path)
    rows = _csv_rows(path, _read_text(path))
    if not rows:
        raise DataError(f"ROCStories file {path} is malformed: the file is empty, expected the header {','.join(HEADER)}")
    header = rows[0][2]
    columns = _columns(path, header, need_label)
    if len(rows) == 1:
        raise DataError(f"ROCStories file {path} holds no stories: it has only the header row; expected one story "
                        f"per row after it")
    records = [_record(path, header, columns, row) for row in rows[1:]]
    _warn_suspicious(path, records)
    labels = [r.label for r in records] if LABEL in columns else None
    stories = [' '.join(r.sentences) for r in records]
    return stories, [r.ending1 for r in records], [r.ending2 for r in records], labels


def rocstories(data_dir, n_train=1497, n_valid=374):
    """Load the Story Cloze Test as the original did.

    Takes the folder of the two CSVs. The validation file (1,871 stories) is
    split into train and valid by scikit-learn's train_test_split with the
    original's seed; the test file is the test set, its AnswerRightEnding column
    optional (checked when there). n_train=1497 with n_valid=374 is the whole
    file, exactly the original split; a smaller n_train keeps a prefix of the
    same shuffled order. Suspicious data (duplicate ids, repeated rows, empty
    stories) loads, with one DataWarning per kind and file.

    Returns ((trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3)):
    X1 stories, X2 and X3 the two endings (lists of str), Y the index of the
    right ending (numpy int32 array of 0/1).
    """
    stories, endings1, endings2, labels = _read_cloze_csv(data_dir, VAL_FILE)
    teX1, teX2, teX3, _ = _read_cloze_csv(data_dir, TEST_FILE, need_label=False)
    if n_valid < 1 or n_train < 1 or n_train + n_valid > len(stories):
        error = InputError if min(n_train, n_valid) < 1 else DataError
        raise error(f"rocstories: n_train={n_train} and n_valid={n_valid} must be positive and sum to at most "
                    f"the {len(stories)} stories of {os.path.join(data_dir, VAL_FILE)}")
    # One call over the parallel lists, as the original did, so every story keeps its endings and label.
    trX1, vaX1, trX2, vaX2, trX3, vaX3, trY, vaY = train_test_split(
        stories, endings1, endings2, labels, train_size=n_train, test_size=n_valid, random_state=SEED)
    trY = np.asarray(trY, dtype=np.int32)
    vaY = np.asarray(vaY, dtype=np.int32)
    return (trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3)


def rocstories_test_labels(data_dir):
    """Take the folder of the two CSVs; return the test set's right-ending indices, a numpy int32
    array of 0/1. Raises DataError when the test file has no AnswerRightEnding column."""
    return np.asarray(_read_cloze_csv(data_dir, TEST_FILE)[3], dtype=np.int32)
