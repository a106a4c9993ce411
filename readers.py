"""The paper's other tasks (GLUE, SNLI, SciTail, RACE) and the user's own files, each read from
its release layout into `datasets.Split`s; `READERS` maps a --dataset name to its reader."""
import dataclasses
import json
import math
import os
import warnings

from tqdm import tqdm

from datasets import (TSV_BREAKERS, Split, csv_fields, is_cloze_file, jsonl_rows, named_rows, numbered_lines,
                      read_cloze_file, rocstories, rocstories_test_labels, shown, tsv_rows)
from errors import DataError, DataWarning, InputError, MissingFileError

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
            raise ValueError(f"{name} is {shown(value)}, expected text")
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
                                f"{shown(row[columns.label])}, {err}") from None
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
            rows = jsonl_rows(path, release.name, verbose)
        else:
            rows = tsv_rows(path, release.name, release.names.get(name), verbose, ragged=True)
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
    dev_ids = {tuple(row[c] for c in pair) for _, row in tsv_rows(paths['dev_ids'], 'MRPC', names=pair)}
    rows = list(tsv_rows(paths['train'], 'MRPC', verbose=verbose))
    if rows and not all(c in rows[0][1] for c in pair):  # every row has the header's columns
        raise DataError(f"MRPC file {paths['train']} has no column {', '.join(pair)}; columns found: "
                        f"{', '.join(rows[0][1])}")
    in_dev = [tuple(row[c] for c in pair) in dev_ids for _, row in rows]
    if not any(in_dev):
        raise DataError(f"MRPC file {paths['train']} has none of the pairs of {paths['dev_ids']}; expected GLUE's "
                        f"dev pairs among Microsoft's training pairs ({MRPC_DEV_IDS_URL})")
    parts = {'train': (paths['train'], [r for r, dev in zip(rows, in_dev) if not dev]),
             'valid': (paths['train'], [r for r, dev in zip(rows, in_dev) if dev]),
             'test': (paths['test'], tsv_rows(paths['test'], 'MRPC', verbose=verbose))}
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
    text = ''.join(line for _, line in numbered_lines(path, 'RACE'))
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
            raise DataError(f"RACE file {path}: question {number} has {shown(choices)} as options, "
                            f"expected a list of {n} answers")
        if answer not in LABELS['race']:
            raise DataError(f"RACE file {path}: question {number} has the answer {shown(answer)}, "
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
                raise ValueError(f"{columns[1]} is {shown(values[1])}, expected a JSON list of answers")
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
        return jsonl_rows(path, 'custom', verbose)
    if kind == 'TSV':
        return tsv_rows(path, 'custom', verbose=verbose)
    return named_rows(path, 'custom', csv_fields(path, 'custom', verbose), None, 'comma-separated')


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


def _parsers(task_type, classes=None):
    """(label parser, text unpacker) of a task type's rows; classes: the names a label must be
    one of (None: any, read from the training file)."""
    if task_type == 'multiple_choice':
        choices = _Choices()
        return choices.label, choices.unpack
    if task_type == 'regression':
        return _number(), _plain_texts
    return (_class_label if classes is None else _known_class(list(classes))), _plain_texts


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
    parse, unpack = _parsers(task_type, classes)
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


def read_examples(path, task_type, text_columns=None, label_column='label', id_column='id', need_id=False,
                  classes=None, verbose=False):
    """Read one file of new examples (score.py --input) into a Split: CSV, TSV or JSONL laid out as
    --dataset custom's (text columns default to CUSTOM_TEXT_COLUMNS[task_type]), or for multiple
    choice a Story Cloze CSV as released. Labels are read when the file has the label column
    (classes: the names allowed), ids when it has the id column (required when need_id; else row
    numbers). Raises InputError / MissingFileError for a bad path, DataError as read_custom."""
    ending = os.path.splitext(path)[1].lower()
    if ending not in CUSTOM_FORMATS or not os.path.isfile(path):
        raise (InputError if ending not in CUSTOM_FORMATS else MissingFileError)(
            f"--input {path}: expected an existing file ending in {', '.join(CUSTOM_FORMATS)} (CSV or TSV with a "
            f"header row, or JSON lines)")
    if task_type == 'multiple_choice' and ending == '.csv' and is_cloze_file(path):
        return read_cloze_file(path)
    columns = _Columns(tuple(text_columns or CUSTOM_TEXT_COLUMNS[task_type]), label_column, id_column, need_id)
    parse, unpack = _parsers(task_type, classes)
    split, _ = _read_split(path, 'input', _custom_rows(path, verbose), columns, parse, need_label=False,
                           unpack=unpack)
    return split


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
