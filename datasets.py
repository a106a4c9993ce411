"""Dataset readers: ROCStories / Story Cloze Test (spring 2016), split as in OpenAI's
finetune-transformer-lm, and the paper's other tasks (GLUE, SNLI, SciTail, RACE) and the
user's own files, each read from its release layout into `Split`s (see `READERS`)."""
import codecs
import collections
import csv
import dataclasses
import io
import json
import math
import os
import warnings

import numpy as np
from sklearn.model_selection import train_test_split
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


def _named_rows(path, what, rows, names, kind):
    """Take a file's path, the dataset's name, its rows as (line number, list of fields), the
    column names of a file without a header row (None: the first row is the header) and the kind
    of separator (for messages); yield (line number, {column: field}) per row after the header,
    blank rows skipped. Raises DataError for a row whose field count differs from the header's."""
    header = names
    for number, fields in rows:
        if header is None:
            header = fields
        elif fields not in ([], ['']):
            if len(fields) != len(header):
                raise DataError(f"{what} file {path}: line {number} has {len(fields)} {kind} fields, expected "
                                f"{len(header)} ({', '.join(header)}): {_excerpt(' | '.join(fields))}")
            yield number, dict(zip(header, fields))


def _tsv_rows(path, what, names=None, verbose=False):
    """Take a TSV file's path, the dataset's name, the column names of a file without a header row
    (None: the first line is the header) and verbose; yield (line number, {column: field}) per
    row. Fields are split on tabs alone, as csv's QUOTE_NONE does: GLUE's files hold quote
    characters that are text, not quoting."""
    rows = ((number, text.rstrip('\r\n').split('\t')) for number, text in _lines(path, what, verbose))
    return _named_rows(path, what, rows, names, 'tab-separated')


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
        for fields in reader:
            start, line = line, reader.line_num + 1
            yield start, fields
    except csv.Error as err:
        raise DataError(f"{what} file {path} is malformed CSV at line {line}: {err}; expected comma-separated "
                        f"fields with balanced double quotes") from None


@dataclasses.dataclass(frozen=True)
class _Columns:
    """Where a file's fields are: the text columns in the task's order, the label column, and the id
    column (where a file lacks it, an example's id is its row number among the data rows, from 0)."""
    texts: tuple
    label: str
    id: str = None


def _plain_texts(columns, values):
    """Take text column names and one row's values of them; return the values, each checked to be
    a str (raises ValueError saying which is not)."""
    for name, value in zip(columns, values):
        if not isinstance(value, str):
            raise ValueError(f"{name} is {_excerpt(json.dumps(value))}, expected text")
    return tuple(values)


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
            has_label, has_id = need_label or columns.label in row, columns.id in row
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
                                f"{_excerpt(str(row[columns.label]))}, {err}") from None
            if label is None:
                dropped += 1
                continue
            labels.append(label)
        texts = texts or tuple([] for _ in fields)
        for values, field in zip(texts, fields):
            values.append(field)
        ids.append(str(row[columns.id]) if has_id else str(index))
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
            rows = _tsv_rows(path, release.name, release.names.get(name), verbose)
        splits[split], dropped = _read_split(path, release.name, rows, release.columns, release.parse,
                                             need_label=not split.startswith('test'))
        if dropped:
            warnings.warn(f"{release.name} file {path}: left out {dropped} of {dropped + len(splits[split])} "
                          f"examples without a gold label ({release.columns.label} '-')", DataWarning)
    return splits


_GLUE_FILES = {'train': 'train', 'valid': 'dev', 'test': 'test'}  # split -> file stem


def _glue(folder, columns, parse, files=None, names=None):
    """Take a GLUE task's folder name, its _Columns, label parser, {split: file stem} (default
    train, dev, test) and the column names of files without a header; return its _Release."""
    files = {split: (f'{stem}.tsv',) for split, stem in (files or _GLUE_FILES).items()}
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
                f"snli_1.0_test.jsonl (or the .txt files) ({SNLI_URL})",
        (('snli10',), ('snli',)),
        {split: (f'snli_1.0_{stem}.jsonl', f'snli_1.0_{stem}.txt', f'{stem}.tsv')
         for split, stem in (('train', 'train'), ('valid', 'dev'), ('test', 'test'))},
        _Columns(('sentence1', 'sentence2'), 'gold_label', 'pairID'), _one_of(LABELS['snli'], drop=('-',))),
    'scitail': _Release(
        'SciTail', f"SciTail's tsv_format folder (or SciTailV1.1 holding it) with scitail_1.0_train.tsv, "
                   f"scitail_1.0_dev.tsv, scitail_1.0_test.tsv ({SCITAIL_URL})",
        (('tsvformat',), ('scitailv11', 'tsvformat'), ('scitailv1', 'tsvformat'), ('scitail', 'tsvformat')),
        {split: (f'scitail_1.0_{stem}.tsv',) for split, stem in (('train', 'train'), ('valid', 'dev'), ('test', 'test'))},
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


def read_mrpc(data_dir, verbose=False):
    """Take GLUE's MRPC folder (or one holding it) and verbose; return {'train', 'valid', 'test'}
    Splits of (#1 String, #2 String), labels '0' / '1' (Quality: 1 is a paraphrase); test ids are
    GLUE's index, train and valid ids row numbers from 0."""
    return _read_release(_RELEASES['mrpc'], data_dir, verbose)


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


READERS = {
    'sst2': read_sst2, 'cola': read_cola, 'mnli': read_mnli, 'qnli': read_qnli, 'rte': read_rte,
    'mrpc': read_mrpc, 'qqp': read_qqp, 'stsb': read_stsb, 'snli': read_snli, 'scitail': read_scitail,
}
