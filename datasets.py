"""Dataset readers: ROCStories / Story Cloze Test (spring 2016), split as in OpenAI's
finetune-transformer-lm, and the paper's other tasks (GLUE, SNLI, SciTail, RACE) and the
user's own files, each read from its release layout into `Split`s (see `READERS`)."""
import codecs
import collections
import contextlib
import csv
import dataclasses
import io
import json
import math
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


def _shown(value, n=80):
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
    return np.asarray(_read_cloze_csv(data_dir, TEST_FILE)[3], dtype=np.int32)


# The paper's other tasks and the user's own files: each reader returns {split name: Split}.

GLUE_URL = 'https://gluebenchmark.com/tasks'
SNLI_URL = 'https://nlp.stanford.edu/projects/snli/'
SCITAIL_URL = 'https://allenai.org/data/scitail'
RACE_URL = 'https://www.cs.cmu.edu/~glai1/data/race/'

# Each dataset's classes as its release writes them, in the order of the label indices a model
# predicts: label i is LABELS[name][i]. For multiple choice, the answer names of the release
# (labels are then choice indices); None for a score (STS-B).
LABELS = {
    'rocstories': ['1', '2'],
    'sst2': ['0', '1'],
    'cola': ['0', '1'],
    'mnli': ['entailment', 'neutral', 'contradiction'],
    'qnli': ['entailment', 'not_entailment'],
    'rte': ['entailment', 'not_entailment'],
    'mrpc': ['0', '1'],
    'qqp': ['0', '1'],
    'stsb': None,
    'snli': ['entailment', 'neutral', 'contradiction'],
    'scitail': ['entails', 'neutral'],
    'race': ['A', 'B', 'C', 'D'],
}
TASK_TYPES = ('classification', 'entailment', 'similarity', 'regression', 'multiple_choice')
# A verbose read shows a progress bar for files from this size (bytes): MNLI's or QQP's training file.
LARGE_FILE = 16 << 20


def _lines(path, what, verbose=False):
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


def _named_rows(path, what, rows, names, kind, ragged=False):
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


def _tsv_rows(path, what, names=None, verbose=False, ragged=False):
    """Take a TSV file's path, the dataset's name, the column names of a file without a header row
    (None: the first line is the header), verbose and ragged (see _named_rows); yield (line
    number, {column: field}) per row. Fields are split on tabs alone, as csv's QUOTE_NONE does:
    GLUE's files hold quote characters that are text, not quoting."""
    rows = ((number, text.rstrip('\r\n').split('\t')) for number, text in _lines(path, what, verbose))
    return _named_rows(path, what, rows, names, 'tab-separated', ragged)


def _jsonl_rows(path, what, verbose=False):
    """Take a JSON lines file's path, the dataset's name and verbose; yield (line number, object)
    per non-blank line. Raises DataError for a line that is not a JSON object."""
    for number, text in _lines(path, what, verbose):
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


def _csv_fields(path, what, verbose=False):
    """Take a CSV file's path (fields may be quoted and span lines), the dataset's name and
    verbose; yield (line number the row starts on, list of fields). Raises DataError for
    malformed CSV."""
    reader = csv.reader((text for _, text in _lines(path, what, verbose)), strict=True)
    line = 1
    try:
        with _long_csv_fields():
            for fields in reader:
                start, line = line, reader.line_num + 1
                yield start, fields
    except csv.Error as err:
        raise DataError(f"{what} file {path} is malformed CSV at line {line}: {err}; expected comma-separated "
                        f"fields with balanced double quotes") from None


@dataclasses.dataclass(frozen=True)
class _Columns:
    """Where a file's fields are: the text columns in the task's order, the label column, and the id
    column (where a file lacks it, an example's id is its row number among the data rows, from 0,
    unless need_id: then a file without it is refused)."""
    texts: tuple
    label: str
    id: str = None
    need_id: bool = False


def _plain_texts(columns, values):
    """Take text column names and one row's values of them; return the values, each checked to be
    a str (raises ValueError saying which is not)."""
    for name, value in zip(columns, values):
        if not isinstance(value, str):
            raise ValueError(f"{name} is {_shown(value)}, expected text")
    return tuple(values)


def _one_line_id(path, what, line, value):
    """Take where an example's id is and the id as written; return it as a str. Raises DataError
    for an id holding a tab or a line break: it would break the submission file (a TSV, unquoted)."""
    text = str(value)
    if any(c in text for c in TSV_BREAKERS):
        raise DataError(f"{what} file {path}: line {line} has the id {text!r}: expected no tab or line break (the "
                        f"submission file is tab-separated, one line per example)")
    return text


def _read_split(path, what, rows, columns, parse, need_label, unpack=_plain_texts):
    """Read one file's examples into a Split.

    Takes the file's path, the dataset's name, its rows ((line number, {column: value}) pairs),
    its _Columns, a label parser (the value as written -> the label, None to leave the example
    out, ValueError for a bad one), whether labels are required, and unpack (text column names,
    one row's values of them -> that example's text fields; ValueError for bad ones). Labels are
    read when the first row has the label column or need_label. Returns (Split, number of
    examples left out). Raises DataError naming the file, line, column and value for a missing
    column, a bad text or label, or a file with no examples.
    """
    texts, labels, ids, needed, dropped = None, [], [], None, 0
    for index, (line, row) in enumerate(rows):
        if needed is None:
            has_label, has_id = need_label or columns.label in row, columns.need_id or columns.id in row
            needed = columns.texts + (columns.label,) * has_label + (columns.id,) * has_id
        missing = [name for name in needed if name not in row]
        if missing:
            raise DataError(f"{what} file {path}: line {line} has no column {', '.join(map(repr, missing))}; "
                            f"columns found: {', '.join(map(str, row))}")
        try:
            fields = unpack(columns.texts, [row[name] for name in columns.texts])
        except ValueError as err:
            raise DataError(f"{what} file {path}: line {line}: {err}") from None
        if has_label:
            try:
                label = parse(row[columns.label])
            except ValueError as err:
                raise DataError(f"{what} file {path}: line {line} has {columns.label} "
                                f"{_shown(row[columns.label])}, {err}") from None
            if label is None:
                dropped += 1
                continue
            labels.append(label)
        texts = texts or tuple([] for _ in fields)
        for values, field in zip(texts, fields):
            values.append(field)
        ids.append(_one_line_id(path, what, line, row[columns.id]) if has_id else str(index))
    if not ids:
        left_out = f' ({dropped} left out without a label)' if dropped else ''
        raise DataError(f"{what} file {path} holds no examples{left_out}; expected one example per row")
    return Split(texts, labels if has_label else None, ids), dropped


def _one_of(names, drop=()):
    """Take class names and values that mean "no label"; return a label parser that returns a value
    among names as is, None for one in drop, and raises ValueError for anything else."""
    allowed, drop = frozenset(names), frozenset(drop)

    def parse(value):
        if isinstance(value, str) and value in drop:
            return None
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"expected one of {', '.join(names)}")
        return value
    return parse


def _number(low=-math.inf, high=math.inf, expected='a finite number'):
    """Take bounds and what to say is expected; return a label parser that returns the value as a
    float and raises ValueError for a value that is not a finite number within the bounds."""
    def parse(value):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or not (math.isfinite(number) and low <= number <= high):
            raise ValueError(f"expected {expected}")
        return number
    return parse


@dataclasses.dataclass(frozen=True)
class _Release:
    """A dataset's release layout as users download it.

    name: the dataset's name in messages. layout: the expected layout in words (for messages).
    folders: where below the folder a user names the files may be, each a tuple of folder names
        compared without case, '-', '_' or '.' (() is that folder itself; ('sst2',) finds SST-2/).
    files: split name -> the file names it may have, in order of preference; a .jsonl file is
        JSON lines, any other a TSV with a header row unless `names` gives its columns.
    columns: a _Columns. parse: the label parser. names: file name -> column names of a file
        without a header row.
    """
    name: str
    layout: str
    folders: tuple
    files: dict
    columns: _Columns
    parse: object
    names: dict = dataclasses.field(default_factory=dict)


def _plain(name):
    """Take a folder name; return it lowercase without '-', '_' or '.' (SST-2, sst_2 -> sst2)."""
    return ''.join(c for c in name.lower() if c not in '-_.')


def _below(folder, names):
    """Take a folder and a tuple of plain folder names; return the path below folder whose folders
    match them in turn (any case, '-', '_' and '.' ignored), or None."""
    for name in names:
        found = [entry for entry in sorted(os.listdir(folder))
                 if _plain(entry) == name and os.path.isdir(os.path.join(folder, entry))]
        if not found:
            return None
        folder = os.path.join(folder, found[0])
    return folder


def _release_folder(release, data_dir):
    """Take a _Release and the folder a user named; return the folder holding its files: the first
    of release.folders (below data_dir) holding one of the training file's names, else data_dir.
    Raises MissingFileError when data_dir is not a folder."""
    if not os.path.isdir(data_dir):
        raise MissingFileError(f"{release.name} data folder {data_dir} not found; expected {release.layout}")
    for names in ((),) + release.folders:
        folder = _below(data_dir, names)
        if folder and any(os.path.isfile(os.path.join(folder, name)) for name in release.files['train']):
            return folder
    return data_dir


def _release_file(release, folder, split):
    """Take a _Release, its folder and a split name; return the path of the split's file.
    Raises MissingFileError naming the file and the expected layout."""
    for name in release.files[split]:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    names = ' or '.join(release.files[split])
    raise MissingFileError(f"{release.name} {split} file {names} not found in {folder}; expected {release.layout}")


def _read_release(release, data_dir, verbose=False):
    """Take a _Release, the folder a user named and verbose; return {split name: Split} of its
    files. Labels are required except in test splits (GLUE's have none). Warns (DataWarning) with
    the count of examples left out for want of a label (SNLI's '-')."""
    folder = _release_folder(release, data_dir)
    paths = {split: _release_file(release, folder, split) for split in release.files}
    splits = {}
    for split, path in paths.items():
        name = os.path.basename(path)
        if name.endswith('.jsonl'):
            rows = _jsonl_rows(path, release.name, verbose)
        else:
            rows = _tsv_rows(path, release.name, release.names.get(name), verbose, ragged=True)
        splits[split], dropped = _read_split(path, release.name, rows, release.columns, release.parse,
                                             need_label=not split.startswith('test'))
        if dropped:
            warnings.warn(f"{release.name} file {path}: left out {dropped} of {dropped + len(splits[split])} "
                          f"examples without a gold label ({release.columns.label} '-')", DataWarning)
    return splits


_SPLIT_STEMS = {'train': 'train', 'valid': 'dev', 'test': 'test'}  # split -> its file's stem in most releases


def _glue(folder, columns, parse, files=None, names=None):
    """Take a GLUE task's folder name, its _Columns, label parser, {split: file stem} (default
    train, dev, test) and the column names of files without a header; return its _Release."""
    files = {split: (f'{stem}.tsv',) for split, stem in (files or _SPLIT_STEMS).items()}
    listing = ', '.join(name for (name,) in files.values())
    return _Release(folder, f"GLUE's {folder} folder (or a folder holding it) with {listing} ({GLUE_URL})",
                    ((_plain(folder),),), files, columns, parse, names or {})


_COLA_COLUMNS = ('source', 'label', 'original_label', 'sentence')  # CoLA's train.tsv and dev.tsv have no header
# MNLI's 'valid' and 'test' are the matched (in-genre) sets.
_MNLI_FILES = {'train': 'train', 'valid': 'dev_matched', 'valid_mismatched': 'dev_mismatched', 'test': 'test_matched',
               'test_mismatched': 'test_mismatched'}
_RELEASES = {
    'sst2': _glue('SST-2', _Columns(('sentence',), 'label', 'index'), _one_of(LABELS['sst2'])),
    'cola': _glue('CoLA', _Columns(('sentence',), 'label', 'index'), _one_of(LABELS['cola']),
                  names={'train.tsv': _COLA_COLUMNS, 'dev.tsv': _COLA_COLUMNS}),
    'mnli': _glue('MNLI', _Columns(('sentence1', 'sentence2'), 'gold_label', 'index'),
                  _one_of(LABELS['mnli']), files=_MNLI_FILES),
    'qnli': _glue('QNLI', _Columns(('question', 'sentence'), 'label', 'index'), _one_of(LABELS['qnli'])),
    'rte': _glue('RTE', _Columns(('sentence1', 'sentence2'), 'label', 'index'), _one_of(LABELS['rte'])),
    'mrpc': _glue('MRPC', _Columns(('#1 String', '#2 String'), 'Quality', 'index'), _one_of(LABELS['mrpc'])),
    'qqp': _glue('QQP', _Columns(('question1', 'question2'), 'is_duplicate', 'id'), _one_of(LABELS['qqp'])),
    'stsb': _glue('STS-B', _Columns(('sentence1', 'sentence2'), 'score', 'index'),
                  _number(0, 5, 'a similarity score from 0 to 5')),
    'snli': _Release(
        'SNLI', f"SNLI 1.0's snli_1.0 folder (or a folder holding it) with snli_1.0_train.jsonl, snli_1.0_dev.jsonl, "
                f"snli_1.0_test.jsonl (or the .txt files, or GLUE's SNLI folder with train.tsv, dev.tsv, test.tsv) "
                f"({SNLI_URL})",
        (('snli10',), ('snli',)),
        {split: (f'snli_1.0_{stem}.jsonl', f'snli_1.0_{stem}.txt', f'{stem}.tsv')
         for split, stem in _SPLIT_STEMS.items()},
        _Columns(('sentence1', 'sentence2'), 'gold_label', 'pairID'), _one_of(LABELS['snli'], drop=('-',))),
    'scitail': _Release(
        'SciTail', f"SciTail's tsv_format folder (or SciTailV1.1 holding it) with scitail_1.0_train.tsv, "
                   f"scitail_1.0_dev.tsv, scitail_1.0_test.tsv ({SCITAIL_URL})",
        (('tsvformat',), ('scitailv11', 'tsvformat'), ('scitailv1', 'tsvformat'), ('scitail', 'tsvformat')),
        {split: (f'scitail_1.0_{stem}.tsv',) for split, stem in _SPLIT_STEMS.items()},
        _Columns(('premise', 'hypothesis'), 'label'), _one_of(LABELS['scitail']),
        {f'scitail_1.0_{stem}.tsv': ('premise', 'hypothesis', 'label') for stem in ('train', 'dev', 'test')}),
}


def read_sst2(data_dir, verbose=False):
    """Take GLUE's SST-2 folder (or one holding it) and verbose; return {'train', 'valid', 'test'}
    Splits of (sentences,), labels '0' (negative) / '1' (positive); valid is dev.tsv, test is
    unlabelled with GLUE's index as ids (train and valid ids: row numbers from 0)."""
    return _read_release(_RELEASES['sst2'], data_dir, verbose)


def read_cola(data_dir, verbose=False):
    """Take GLUE's CoLA folder (or one holding it) and verbose; return {'train', 'valid', 'test'}
    Splits of (sentences,), labels '0' (unacceptable) / '1' (acceptable). train.tsv and dev.tsv
    have no header (source, label, original label, sentence; ids: row numbers from 0); test.tsv
    has one (index, sentence) and no labels."""
    return _read_release(_RELEASES['cola'], data_dir, verbose)


def read_mnli(data_dir, verbose=False):
    """Take GLUE's MNLI folder (or one holding it) and verbose; return Splits of (premises,
    hypotheses) (sentence1, sentence2), labels entailment / neutral / contradiction (gold_label),
    ids GLUE's index: 'train', 'valid' (dev_matched.tsv), 'valid_mismatched', 'test'
    (test_matched.tsv, unlabelled) and 'test_mismatched'."""
    return _read_release(_RELEASES['mnli'], data_dir, verbose)


def read_qnli(data_dir, verbose=False):
    """Take GLUE's QNLI folder (or one holding it) and verbose; return {'train', 'valid', 'test'}
    Splits of (questions, sentences), labels entailment / not_entailment, ids GLUE's index."""
    return _read_release(_RELEASES['qnli'], data_dir, verbose)


def read_rte(data_dir, verbose=False):
    """Take GLUE's RTE folder (or one holding it) and verbose; return {'train', 'valid', 'test'}
    Splits of (sentence1s, sentence2s), labels entailment / not_entailment, ids GLUE's index."""
    return _read_release(_RELEASES['rte'], data_dir, verbose)


# MRPC as Microsoft releases it, with GLUE's list of the training pairs that form its dev set:
# GLUE's download script builds train.tsv, dev.tsv and test.tsv from these three files.
MRPC_SOURCE = {'train': 'msr_paraphrase_train.txt', 'test': 'msr_paraphrase_test.txt', 'dev_ids': 'mrpc_dev_ids.tsv'}
MRPC_DEV_IDS_URL = 'https://dl.fbaipublicfiles.com/glue/data/mrpc_dev_ids.tsv'


def _read_mrpc_source(folder, verbose=False):
    """Take a folder holding MRPC_SOURCE's files and verbose; return MRPC's Splits as GLUE's
    script makes them: 'valid' the training pairs listed in mrpc_dev_ids.tsv, 'train' the others,
    'test' msr_paraphrase_test.txt (labelled: it has the Quality column); ids row numbers from 0
    in each. Raises MissingFileError naming a missing file."""
    release, paths = _RELEASES['mrpc'], {}
    for key, name in MRPC_SOURCE.items():
        paths[key] = os.path.join(folder, name)
        if not os.path.isfile(paths[key]):
            raise MissingFileError(f"MRPC file {paths[key]} not found; expected {release.layout}, or Microsoft's "
                                   f"{MRPC_SOURCE['train']} and {MRPC_SOURCE['test']} with GLUE's "
                                   f"{MRPC_SOURCE['dev_ids']} ({MRPC_DEV_IDS_URL})")
    pair = ('#1 ID', '#2 ID')
    dev_ids = {tuple(row[c] for c in pair) for _, row in _tsv_rows(paths['dev_ids'], 'MRPC', names=pair)}
    rows = list(_tsv_rows(paths['train'], 'MRPC', verbose=verbose))
    if rows and not all(c in rows[0][1] for c in pair):  # every row has the header's columns
        raise DataError(f"MRPC file {paths['train']} has no column {', '.join(pair)}; columns found: "
                        f"{', '.join(rows[0][1])}")
    in_dev = [tuple(row[c] for c in pair) in dev_ids for _, row in rows]
    if not any(in_dev):
        raise DataError(f"MRPC file {paths['train']} has none of the pairs of {paths['dev_ids']}; expected GLUE's "
                        f"dev pairs among Microsoft's training pairs ({MRPC_DEV_IDS_URL})")
    parts = {'train': (paths['train'], [r for r, dev in zip(rows, in_dev) if not dev]),
             'valid': (paths['train'], [r for r, dev in zip(rows, in_dev) if dev]),
             'test': (paths['test'], _tsv_rows(paths['test'], 'MRPC', verbose=verbose))}
    return {split: _read_split(path, 'MRPC', part, release.columns, release.parse, need_label=split != 'test')[0]
            for split, (path, part) in parts.items()}


def read_mrpc(data_dir, verbose=False):
    """Take GLUE's MRPC folder (or one holding it) and verbose; return {'train', 'valid', 'test'}
    Splits of (#1 String, #2 String), labels '0' / '1' (Quality: 1 is a paraphrase); test ids are
    GLUE's index, train and valid ids row numbers from 0. A folder without train.tsv but with
    Microsoft's files and GLUE's dev ids is read by _read_mrpc_source."""
    release = _RELEASES['mrpc']
    folder = _release_folder(release, data_dir)
    if not os.path.isfile(os.path.join(folder, 'train.tsv')):
        source = next((f for f in (folder, _below(data_dir, ('mrpc',)))
                       if f and os.path.isfile(os.path.join(f, MRPC_SOURCE['train']))), None)
        if source:
            return _read_mrpc_source(source, verbose)
    return _read_release(release, data_dir, verbose)


def read_qqp(data_dir, verbose=False):
    """Take GLUE's QQP folder (or one holding it) and verbose; return {'train', 'valid', 'test'}
    Splits of (question1s, question2s), labels '0' / '1' (is_duplicate), ids the id column."""
    return _read_release(_RELEASES['qqp'], data_dir, verbose)


def read_stsb(data_dir, verbose=False):
    """Take GLUE's STS-B folder (or one holding it) and verbose; return {'train', 'valid', 'test'}
    Splits of (sentence1s, sentence2s), labels the float score (0 to 5), ids GLUE's index."""
    return _read_release(_RELEASES['stsb'], data_dir, verbose)


def read_snli(data_dir, verbose=False):
    """Take SNLI 1.0's folder (or one holding snli_1.0/) and verbose; return {'train', 'valid',
    'test'} Splits of (sentence1s, sentence2s), labels entailment / neutral / contradiction, ids
    pairID, from the .jsonl files (else the .txt TSVs, else GLUE's SNLI train/dev/test.tsv).
    Examples without a gold label ('-': no annotator consensus) are left out, with a DataWarning
    per file giving the count."""
    return _read_release(_RELEASES['snli'], data_dir, verbose)


def read_scitail(data_dir, verbose=False):
    """Take SciTail's tsv_format folder (or SciTailV1.1/ or a folder holding either) and verbose;
    return {'train', 'valid', 'test'} Splits of (premises, hypotheses), labels entails / neutral,
    ids row numbers from 0 (the TSVs have no header: premise, hypothesis, label)."""
    return _read_release(_RELEASES['scitail'], data_dir, verbose)


RACE_GROUPS = ('high', 'middle')
_RACE_LAYOUT = (f"the RACE folder (or a folder holding it) with train/, dev/ and test/, each holding high/ and middle/ "
                f"with one JSON article per .txt file ({RACE_URL})")


def _race_questions(path):
    """Take the path of one RACE article file (JSON with article, questions, options, answers);
    yield (context, choices, label) per question: the context is the article, a space and the
    question as written (a cloze question keeps its '_' blank: the paper's [z; q; $; a] with q as
    printed), choices the four options, label the right one's index (answer A-D -> 0-3).
    Raises DataError for malformed JSON, a missing field, mismatched lists, a question without
    four options or an answer outside A-D."""
    text = ''.join(line for _, line in _lines(path, 'RACE'))
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"RACE file {path}: line {err.lineno} is not JSON ({err.msg}); expected one JSON "
                        f"article per file") from None
    fields = ('article', 'questions', 'options', 'answers')
    missing = [name for name in fields if not isinstance(doc, dict) or name not in doc]
    if missing:
        found = ', '.join(doc) if isinstance(doc, dict) else type(doc).__name__
        raise DataError(f"RACE file {path} has no field {', '.join(missing)}; found: {found}; expected the fields "
                        f"{', '.join(fields)}")
    article, questions, options, answers = (doc[name] for name in fields)
    if not (isinstance(questions, list) and isinstance(options, list) and isinstance(answers, list)
            and len(questions) == len(options) == len(answers)):
        raise DataError(f"RACE file {path}: questions, options and answers are not lists of one length; expected "
                        f"one option list and one answer per question")
    n = len(LABELS['race'])
    for number, (question, choices, answer) in enumerate(zip(questions, options, answers), 1):
        if not isinstance(choices, list) or len(choices) != n:
            raise DataError(f"RACE file {path}: question {number} has {_shown(choices)} as options, "
                            f"expected a list of {n} answers")
        if answer not in LABELS['race']:
            raise DataError(f"RACE file {path}: question {number} has the answer {_shown(answer)}, "
                            f"expected one of {', '.join(LABELS['race'])}")
        try:
            _plain_texts(['article', 'question'] + [f'option {c}' for c in LABELS['race']],
                         [article, question] + choices)
        except ValueError as err:
            raise DataError(f"RACE file {path}: question {number}: {err}") from None
        yield f'{article} {question}', list(choices), LABELS['race'].index(answer)


def _race_split(folder, verbose=False):
    """Take a RACE split's folder (holding high/ and middle/) and verbose; return its Split: texts
    (contexts, choices), labels, ids '<group>/<file name>#<question number from 0>' and groups
    'high' / 'middle'; files in name order, high first. Raises DataError for a split without
    questions."""
    contexts, choices, labels, ids, groups = [], [], [], [], []
    for group in RACE_GROUPS:
        names = sorted(name for name in os.listdir(os.path.join(folder, group)) if name.endswith('.txt'))
        for name in tqdm(names, desc=f'RACE {os.path.basename(folder)}/{group}', ncols=80, leave=False,
                         disable=not verbose):
            for number, (context, options, label) in enumerate(_race_questions(os.path.join(folder, group, name))):
                contexts.append(context)
                choices.append(options)
                labels.append(label)
                ids.append(f'{group}/{name}#{number}')
                groups.append(group)
    if not ids:
        raise DataError(f"RACE folder {folder} holds no questions; expected {_RACE_LAYOUT}")
    return Split((contexts, choices), labels, ids, groups)


def read_race(data_dir, verbose=False):
    """Take the RACE folder (or one holding it: train/, dev/ and test/, each with high/ and
    middle/ holding one JSON article per .txt file) and verbose; return {'train', 'valid',
    'test'} Splits of (contexts, choices) (see _race_questions), labels the right choice's index
    0-3, groups 'high' / 'middle' per question. Raises MissingFileError naming a missing folder."""
    if not os.path.isdir(data_dir):
        raise MissingFileError(f"RACE data folder {data_dir} not found; expected {_RACE_LAYOUT}")
    root = data_dir if os.path.isdir(os.path.join(data_dir, 'train')) else _below(data_dir, ('race',)) or data_dir
    folders = {split: os.path.join(root, stem) for split, stem in _SPLIT_STEMS.items()}
    for folder in folders.values():
        for group in RACE_GROUPS:
            if not os.path.isdir(os.path.join(folder, group)):
                raise MissingFileError(f"RACE folder {os.path.join(folder, group)} not found; expected {_RACE_LAYOUT}")
    return {split: _race_split(folder, verbose) for split, folder in folders.items()}


def read_rocstories(data_dir, n_train=1497, n_valid=374, verbose=False):
    """`rocstories` as Splits (verbose is ignored: the files are small). Returns {'train',
    'valid', 'test'} of (stories, [ending1, ending2] per story), labels the right ending's index
    0/1 (test: from its AnswerRightEnding column when it has one, else None); ids: None for train
    and valid (the original's split keeps none), the row number from 0 for test (the original's
    submission index)."""
    (trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3) = rocstories(data_dir, n_train, n_valid)
    try:
        teY = rocstories_test_labels(data_dir)
    except DataError:  # the test file has no AnswerRightEnding column: rocstories() checked the rest
        teY = None

    def split(stories, endings1, endings2, labels, ids=None):
        labels = None if labels is None else [int(label) for label in labels]
        return Split((list(stories), [[e1, e2] for e1, e2 in zip(endings1, endings2)]), labels, ids)
    return {'train': split(trX1, trX2, trX3, trY), 'valid': split(vaX1, vaX2, vaX3, vaY),
            'test': split(teX1, teX2, teX3, teY, [str(i) for i in range(len(teX1))])}



# The user's own files: the text columns each task type takes by default, and their count.
CUSTOM_TEXT_COLUMNS = {'classification': ('text',), 'entailment': ('premise', 'hypothesis'),
                       'similarity': ('sentence1', 'sentence2'), 'regression': ('sentence1', 'sentence2'),
                       'multiple_choice': ('context', 'choices')}
CUSTOM_FORMATS = {'.csv': 'CSV', '.tsv': 'TSV', '.jsonl': 'JSONL', '.json': 'JSONL'}  # by file name ending


def check_task_type(task_type):
    """Take a task type; return it. Raises InputError listing TASK_TYPES for any other."""
    if task_type not in TASK_TYPES:
        raise InputError(f"--task_type {task_type!r} is not a task type: expected one of {', '.join(TASK_TYPES)}")
    return task_type


def class_names(labels):
    """Take a training split's class labels (str); return its classes, sorted (as numbers when all
    are integers, so '2' comes before '10'): the label-index order of a custom task."""
    try:
        return sorted(set(labels), key=int)
    except ValueError:
        return sorted(set(labels))


def _class_label(value):
    """The label parser of a custom task's training file: a non-empty str as is, a JSON integer
    as its digits; ValueError for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise ValueError("expected a class name (non-empty text)")
    if any(c in value for c in TSV_BREAKERS):
        raise ValueError("expected a class name without a tab or line break (predictions are written one per line "
                         "in a tab-separated submission file)")
    return value


def _known_class(names):
    """Take class names; return a label parser that reads a label as _class_label does and
    raises ValueError unless it is one of them."""
    known = _one_of(names)
    return lambda value: known(_class_label(value))


class _Choices:
    """Unpacks a custom multiple-choice row: a context column and either one column holding the
    answers as a JSON list (a list in JSON lines, the list's JSON text in CSV/TSV) or one column
    per answer. Every example must have as many answers as the first one read (the training
    file's first row); the label is the 0-based index of the right answer."""

    def __init__(self):
        self.n = None

    def unpack(self, columns, values):
        """Take the text column names and one row's values; return (context, list of answers).
        Raises ValueError for a context or answer that is not text, a list column that is not a
        JSON list, or a count of answers other than the first example's."""
        context, answers = values[0], values[1:]
        if len(columns) == 2:
            answers = answers[0]
            if isinstance(answers, str):
                try:
                    answers = json.loads(answers)
                except json.JSONDecodeError:
                    pass
            if not isinstance(answers, list):
                raise ValueError(f"{columns[1]} is {_shown(values[1])}, expected a JSON list of answers")
        self.n = self.n or len(answers)
        if len(answers) != self.n:
            raise ValueError(f"{' '.join(columns[1:])} holds {len(answers)} answers, expected {self.n} "
                             f"(as the first example of the training file)")
        if self.n < 2:
            raise ValueError(f"{' '.join(columns[1:])} holds {self.n} answers, expected 2 or more")
        names = [columns[0]] + [f'{columns[1]}[{i}]' for i in range(len(answers))] if len(columns) == 2 else columns
        context, *answers = _plain_texts(names, [context] + list(answers))
        return context, answers

    def label(self, value):
        """Take a label as written; return the answer index (int) it names, or raise ValueError."""
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not (isinstance(text, str) and text.isdecimal() and int(text) < self.n):
            raise ValueError(f"expected the index of the right answer, 0 to {self.n - 1}")
        return int(text)


def _custom_rows(path, verbose=False):
    """Take the path of a user's file and verbose; return its rows ((line number, {column: value})
    pairs), read by the file's ending (CUSTOM_FORMATS): TSV split on tabs alone (quotes are text,
    as in GLUE), CSV with its quoting, JSON lines."""
    kind = CUSTOM_FORMATS[os.path.splitext(path)[1].lower()]
    if kind == 'JSONL':
        return _jsonl_rows(path, 'custom', verbose)
    if kind == 'TSV':
        return _tsv_rows(path, 'custom', verbose=verbose)
    return _named_rows(path, 'custom', _csv_fields(path, 'custom', verbose), None, 'comma-separated')


def _check_custom_args(task_type, files, text_columns):
    """Take a task type, {flag: path or None} and the text column names; return the text column
    names as a tuple. Raises InputError for an unknown task type, a text column count the type does
    not take, no training file or a file name ending that is not CSV, TSV or JSONL, and
    MissingFileError for a file that is not there."""
    check_task_type(task_type)
    columns = tuple(text_columns or CUSTOM_TEXT_COLUMNS[task_type])
    if task_type == 'multiple_choice':
        fits, expected = len(columns) >= 2, 'a context column then a JSON-list column or 2 or more answer columns'
    else:
        n = 1 if task_type == 'classification' else 2
        fits, expected = len(columns) == n, f"{n} column{'s' * (n > 1)}"
    if not fits:
        raise InputError(f"--text_columns {','.join(columns)}: task type {task_type} takes {expected}")
    if files['train_file'] is None:
        raise InputError("--train_file is missing: --dataset custom needs a training file")
    for flag, path in files.items():
        if path is None:
            continue
        if os.path.splitext(path)[1].lower() not in CUSTOM_FORMATS:
            raise InputError(f"--{flag} {path}: expected a file ending in {', '.join(CUSTOM_FORMATS)} "
                             f"(CSV or TSV with a header row, or JSON lines)")
        if not os.path.isfile(path):
            raise MissingFileError(f"--{flag} {path} not found; expected a CSV, TSV or JSON lines file")
    return columns


def _check_classes(path, labels):
    """Take the training file's path and labels; raise DataError unless they hold two classes or more."""
    names = class_names(labels)
    if len(names) < 2:
        raise DataError(f"custom file {path}: every label is {names[0]!r}: expected at least two classes to "
                        f"learn from")


def read_custom(task_type, train_file, valid_file=None, test_file=None, text_columns=None, label_column='label',
                id_column=None, classes=None, verbose=False):
    """Read the user's own data (--dataset custom).

    Takes a task type (TASK_TYPES), the paths of the training, validation and test files (CSV or
    TSV with a header row, or JSON lines; valid and test optional), the text column names in the
    task's order (default CUSTOM_TEXT_COLUMNS[task_type]; multiple choice: the context column then
    one JSON-list column or one column per answer), the label column, the id column (None: row
    numbers from 0), the class names (None: read from the training file, see class_names) and
    verbose. Returns {'train', 'valid', 'test'} Splits (only those given): labels are class
    names (str) for classification, entailment and similarity, float scores for regression,
    answer indices for multiple choice; the test file's labels are read when it has the column.
    Raises InputError / MissingFileError for bad arguments (before reading anything) and
    DataError naming file, line and value for a missing column (the id column too, when named),
    a column named twice, a label outside the classes, a training file with one class, an id
    or class name holding a tab or line break, a non-numeric score, a wrong number of answers
    or an empty file.
    """
    files = {'train_file': train_file, 'valid_file': valid_file, 'test_file': test_file}
    columns = _Columns(_check_custom_args(task_type, files, text_columns), label_column, id_column,
                       need_id=id_column is not None)
    if task_type == 'multiple_choice':
        choices = _Choices()
        parse, unpack = choices.label, choices.unpack
    elif task_type == 'regression':
        parse, unpack = _number(), _plain_texts
    else:
        parse, unpack = (_class_label if classes is None else _known_class(list(classes))), _plain_texts
    splits = {}
    for path, split in zip(files.values(), ('train', 'valid', 'test')):
        if path is None:
            continue
        splits[split], _ = _read_split(path, 'custom', _custom_rows(path, verbose), columns, parse,
                                       need_label=split != 'test', unpack=unpack)
        if split == 'train' and parse is _class_label:
            _check_classes(path, splits['train'].labels)
            # Validation and test labels must be classes of the training file.
            parse = _known_class(class_names(splits['train'].labels))
    return splits


READERS = {
    'rocstories': read_rocstories, 'sst2': read_sst2, 'cola': read_cola, 'mnli': read_mnli, 'qnli': read_qnli,
    'rte': read_rte, 'mrpc': read_mrpc, 'qqp': read_qqp, 'stsb': read_stsb, 'snli': read_snli,
    'scitail': read_scitail, 'race': read_race,
}

DATASETS = tuple(READERS) + ('custom',)  # the names --dataset takes


def get_reader(name):
    """Take a dataset name; return its reader (READERS, or read_custom for 'custom'). Raises
    InputError listing DATASETS for any other name."""
    if name == 'custom':
        return read_custom
    if name not in READERS:
        raise InputError(f"--dataset {name!r} is not a dataset: expected one of {', '.join(DATASETS)}")
    return READERS[name]
