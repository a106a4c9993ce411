"""ROCStories / Story Cloze Test (spring 2016), read and split as in OpenAI's
finetune-transformer-lm, and the checked reading of text files (UTF-8 lines, CSV, TSV, JSON
lines) into `Split`s that readers.py builds the paper's other tasks and the user's files on."""
import codecs
import collections
import contextlib
import csv
import dataclasses
import io
import json
import os
import warnings

import numpy as np
from tqdm import tqdm

from errors import DataError, DataWarning, InputError, MissingFileError

ROCSTORIES_URL = 'https://cs.rochester.edu/nlp/rocstories/'
VAL_FILE = 'cloze_test_val__spring2016 - cloze_test_ALL_val.csv'
TEST_FILE = 'cloze_test_test__spring2016 - cloze_test_ALL_test.csv'
HEADER = ['InputStoryid', 'InputSentence1', 'InputSentence2', 'InputSentence3', 'InputSentence4',
          'RandomFifthSentenceQuiz1', 'RandomFifthSentenceQuiz2', 'AnswerRightEnding']
LABEL = HEADER[-1]
# The original's seed: with it the train/valid split is the one the paper's runs used.
SEED = 3535999445

# Python's csv refuses a field over 131,072 characters; a long field is read whole so that
# the length checks downstream (--n_ctx) name it, rather than calling the file malformed.
CSV_FIELD_LIMIT = 2 ** 31 - 1
# Characters an id or class name may not hold: the submission file is a TSV, unquoted as GLUE's are.
TSV_BREAKERS = '\t\n\r'

# One story of a file: its row number (the header is row 1), the line that row starts on,
# its id, its four sentences, its two endings and its label (AnswerRightEnding - 1, or None
# in a test file without that column).
Record = collections.namedtuple('Record', ['row', 'line', 'id', 'sentences', 'ending1', 'ending2', 'label'])
# one Story Cloze file read: stories (four sentences joined), the two endings, labels (None without the column), ids
Cloze = collections.namedtuple('Cloze', ['stories', 'endings1', 'endings2', 'labels', 'ids'])


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


def shown(value, n=80):
    """Take a value read from a file (str or JSON); return it for a message: a str as _excerpt
    does, anything else as its JSON text cut to n characters."""
    if isinstance(value, str):
        return _excerpt(value, n)
    text = json.dumps(value)
    return text[:n] + ('...' if len(text) > n else '')


def _decode_utf8(data, path, what, line_of):
    """Take bytes of a file, its path, the dataset's name and a function from an offset in the bytes
    to its line number; return the bytes decoded as UTF-8. Raises DataError naming the line of a
    NUL byte (csv would read NULs as text: UTF-16 without a byte-order mark has one per ASCII
    character) or of the first byte that is not UTF-8."""
    nul = data.find(b'\x00')
    if nul >= 0:
        raise DataError(f"{what} file {path} is UTF-16 or binary: line {line_of(nul)} "
                        f"holds a NUL byte; expected UTF-8 text")
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as err:
        raise DataError(f"{what} file {path} is not UTF-8: line {line_of(err.start)} holds "
                        f"the byte 0x{data[err.start]:02x} ({err.reason}); expected UTF-8 text") from None


def _read_text(path):
    """Take the path of a file; return its text, decoded as UTF-8 (a leading byte-order mark
    dropped). Raises DataError naming the line of the first byte that is not UTF-8."""
    with open(path, 'rb') as f:
        data = f.read()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"ROCStories file {path} is UTF-16 (it starts with a UTF-16 byte-order mark): "
                        f"expected UTF-8 text; save it as UTF-8")
    text = _decode_utf8(data, path, 'ROCStories', lambda offset: _line_of(data, offset))
    # A spreadsheet program may have added a UTF-8 byte-order mark.
    return text[1:] if text.startswith('\ufeff') else text


@contextlib.contextmanager
def _long_csv_fields():
    """Within the block, csv reads fields of any length (up to CSV_FIELD_LIMIT)."""
    previous = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _csv_rows(path, text):
    """Take a file's path and text; return its CSV rows as (row number, first line, fields)
    triples, the header being row 1, blank lines at the end of the file left out. Raises
    DataError for malformed CSV (unbalanced quotes)."""
    reader = csv.reader(io.StringIO(text, newline=''), strict=True)
    rows, line = [], 1
    try:
        with _long_csv_fields():
            for fields in reader:
                rows.append((len(rows) + 1, line, fields))
                line = reader.line_num + 1
    except csv.Error as err:
        start = io.StringIO(text, newline='').readlines()[line - 1]
        raise DataError(f"ROCStories file {path} is malformed CSV: row {len(rows) + 1}, starting at line {line} "
                        f"({_excerpt(start.rstrip())}): {err}; expected comma-separated fields with balanced double "
                        f"quotes") from None
    while rows and not rows[-1][2]:
        rows.pop()
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

    Returns a Cloze (stories, endings1, endings2, labels, ids): three lists of str,
    a story being its four sentences joined by a space (an empty field is ''), a
    list of int labels AnswerRightEnding - 1, or None when the file has no such
    column and not need_label, and the story ids. Raises MissingFileError for a missing folder or file and
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
        raise DataError(f"ROCStories file {path} is malformed: the file is empty, "
                        f"expected the header {','.join(HEADER)}")
    header = rows[0][2]
    columns = _columns(path, header, need_label)
    if len(rows) == 1:
        raise DataError(f"ROCStories file {path} holds no stories: it has only the header row; expected one story "
                        f"per row after it")
    records = [_record(path, header, columns, row) for row in rows[1:]]
    _warn_suspicious(path, records)
    labels = [r.label for r in records] if LABEL in columns else None
    stories = [' '.join(r.sentences) for r in records]
    return Cloze(stories, [r.ending1 for r in records], [r.ending2 for r in records], labels, [r.id for r in records])


def is_cloze_file(path):
    """Whether the file at `path` starts with the Story Cloze header's first column."""
    with open(path, encoding='utf-8-sig', errors='replace') as f:
        return f.readline().lstrip('"').startswith(HEADER[0])


def read_cloze_file(path):
    """One Story Cloze CSV with the release's columns (AnswerRightEnding optional) as a Split:
    texts (stories, [[ending 1, ending 2], ...]), labels (the right ending's index) or None, ids
    (the story ids). Raises as rocstories() does."""
    cloze = _read_cloze_csv(os.path.dirname(path) or '.', os.path.basename(path), need_label=False)
    return Split((cloze.stories, [[a, b] for a, b in zip(cloze.endings1, cloze.endings2)]), cloze.labels, cloze.ids)


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
    stories, endings1, endings2, labels, _ = _read_cloze_csv(data_dir, VAL_FILE)
    teX1, teX2, teX3, _, _ = _read_cloze_csv(data_dir, TEST_FILE, need_label=False)
    if n_valid < 1 or n_train < 1 or n_train + n_valid > len(stories):
        error = InputError if min(n_train, n_valid) < 1 else DataError
        raise error(f"rocstories: n_train={n_train} and n_valid={n_valid} must be positive and sum to at most "
                    f"the {len(stories)} stories of {os.path.join(data_dir, VAL_FILE)}")
    # One call over the parallel lists, as the original did, so every story keeps its endings and label.
    from sklearn.model_selection import train_test_split  # scikit-learn loads only for this split
    trX1, vaX1, trX2, vaX2, trX3, vaX3, trY, vaY = train_test_split(
        stories, endings1, endings2, labels, train_size=n_train, test_size=n_valid, random_state=SEED)
    if n_train + n_valid < len(stories):
        warnings.warn(f"ROCStories file {os.path.join(data_dir, VAL_FILE)} holds {len(stories)} stories; the split "
                      f"uses {n_train + n_valid} ({n_train} train + {n_valid} valid): the last "
                      f"{len(stories) - n_train - n_valid} of the shuffled order are left out", DataWarning)
    trY = np.asarray(trY, dtype=np.int32)
    vaY = np.asarray(vaY, dtype=np.int32)
    return (trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3)


def rocstories_test_labels(data_dir):
    """Take the folder of the two CSVs; return the test set's right-ending indices, a numpy int32
    array of 0/1. Raises DataError when the test file has no AnswerRightEnding column."""
    return np.asarray(_read_cloze_csv(data_dir, TEST_FILE).labels, dtype=np.int32)



# A verbose read shows a progress bar for files from this size (bytes): MNLI's or QQP's training file.
LARGE_FILE = 16 << 20


def numbered_lines(path, what, verbose=False):
    """Take a file's path, the dataset's name (for messages) and verbose; yield (line number from 1,
    text of the line with its line end), decoding UTF-8 one line at a time (a leading byte-order
    mark dropped) with a progress bar over the bytes when verbose and the file is large.
    Raises DataError naming the line of a byte that is not UTF-8 or of a NUL byte (UTF-16)."""
    size = os.path.getsize(path)
    bar = tqdm(total=size, unit='B', unit_scale=True, desc=os.path.basename(path), ncols=80, leave=False,
               disable=not verbose or size < LARGE_FILE)
    with open(path, 'rb') as f, bar:
        for number, raw in enumerate(f, 1):
            bar.update(len(raw))
            text = _decode_utf8(raw, path, what, lambda offset: number)
            yield number, text[1:] if number == 1 and text.startswith('\ufeff') else text


def _annotator_columns(header):
    """Take a header; return the (start, end) slice of its run of annotator label columns label1,
    label2, ... or None. GLUE's SNLI train.tsv names label1 alone yet has rows with label1 to label5,
    so rows of such files may hold more or fewer of them than the header; the columns after the
    run (gold_label) are then the row's last fields."""
    starts = [i for i, name in enumerate(header) if name == 'label1']
    if not starts:
        return None
    end = starts[0] + 1
    while end < len(header) and header[end] == f'label{end - starts[0] + 1}':
        end += 1
    return starts[0], end


def named_rows(path, what, rows, names, kind, ragged=False):
    """Take a file's path, the dataset's name, its rows as (line number, list of fields), the
    column names of a file without a header row (None: the first row is the header), the kind
    of separator (for messages) and whether the count of annotator label columns may vary (see
    _annotator_columns); yield (line number, {column: field}) per row after the header, blank
    rows skipped. Raises DataError for a column name the header holds twice and for a row whose
    field count differs from the header's."""
    header = names
    for number, fields in rows:
        if header is None:
            header = fields
            twice = [name for i, name in enumerate(header) if name in header[:i]]
            if twice:
                raise DataError(f"{what} file {path}: line {number} names column {twice[0]!r} twice: expected "
                                f"distinct column names")
            continue
        if fields in ([], ['']):
            continue
        if len(fields) == len(header):
            yield number, dict(zip(header, fields))
            continue
        span = ragged and _annotator_columns(header)
        if not span or len(fields) < span[0] + len(header) - span[1]:
            raise DataError(f"{what} file {path}: line {number} has {len(fields)} {kind} fields, expected "
                            f"{len(header)} ({', '.join(header)}): {_excerpt(' | '.join(fields))}")
        start, end = span
        after = len(header) - end
        yield number, {**dict(zip(header[:start], fields)), **dict(zip(header[end:], fields[len(fields) - after:]))}


def tsv_rows(path, what, names=None, verbose=False, ragged=False):
    """Take a TSV file's path, the dataset's name, the column names of a file without a header row
    (None: the first line is the header), verbose and ragged (see named_rows); yield (line
    number, {column: field}) per row. Fields are split on tabs alone, as csv's QUOTE_NONE does:
    GLUE's files hold quote characters that are text, not quoting."""
    rows = ((number, text.rstrip('\r\n').split('\t')) for number, text in numbered_lines(path, what, verbose))
    return named_rows(path, what, rows, names, 'tab-separated', ragged)


def jsonl_rows(path, what, verbose=False):
    """Take a JSON lines file's path, the dataset's name and verbose; yield (line number, object)
    per non-blank line. Raises DataError for a line that is not a JSON object."""
    for number, text in numbered_lines(path, what, verbose):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{what} file {path}: line {number} is not JSON ({err.msg}): {_excerpt(text.strip())}; "
                            f"expected one JSON object per line") from None
        if not isinstance(row, dict):
            raise DataError(f"{what} file {path}: line {number} is {_excerpt(text.strip())}, expected a JSON object "
                            f"(one example per line)")
        yield number, row


def csv_fields(path, what, verbose=False):
    """Take a CSV file's path (fields may be quoted and span lines), the dataset's name and
    verbose; yield (line number the row starts on, list of fields). Raises DataError for
    malformed CSV."""
    reader = csv.reader((text for _, text in numbered_lines(path, what, verbose)), strict=True)
    line = 1
    while True:
        try:
            with _long_csv_fields():  # around each row only: a caller may abandon the generator between rows
                fields = next(reader, None)
        except csv.Error as err:
            raise DataError(f"{what} file {path} is malformed CSV at line {line}: {err}; expected comma-separated "
                            f"fields with balanced double quotes") from None
        if fields is None:
            return
        start, line = line, reader.line_num + 1
        yield start, fields
