"""The readers of the paper's other datasets, on tiny files the tests write in each release's layout."""
import json
import random
import warnings

import pytest

import datasets
from errors import DataError, DataWarning, MissingFileError

# Each GLUE task's layout as released (facts of the releases, written here independently of
# datasets.py): its folder, per file its columns (None: no header row, then `positions` are used),
# the text columns, the label column, the id column and the classes (None: a 0-5 score).
MNLI_COLUMNS = ['index', 'promptID', 'pairID', 'genre', 'sentence1_binary_parse', 'sentence2_binary_parse',
                'sentence1_parse', 'sentence2_parse', 'sentence1', 'sentence2']
STSB_COLUMNS = ['index', 'genre', 'filename', 'year', 'old_index', 'source1', 'source2', 'sentence1', 'sentence2']
GLUE = {
    'sst2': dict(folder='SST-2', texts=['sentence'], label='label', id='index', classes=['0', '1'],
                 files={'train.tsv': ['sentence', 'label'], 'dev.tsv': ['sentence', 'label'],
                        'test.tsv': ['index', 'sentence']}),
    'cola': dict(folder='CoLA', texts=['sentence'], label='label', id='index', classes=['0', '1'],
                 files={'train.tsv': None, 'dev.tsv': None, 'test.tsv': ['index', 'sentence']},
                 positions=['source', 'label', 'original_label', 'sentence']),
    'mnli': dict(folder='MNLI', texts=['sentence1', 'sentence2'], label='gold_label', id='index',
                 classes=['entailment', 'neutral', 'contradiction'],
                 files={'train.tsv': MNLI_COLUMNS + ['label1', 'gold_label'],
                        'dev_matched.tsv': MNLI_COLUMNS + [f'label{i}' for i in range(1, 6)] + ['gold_label'],
                        'dev_mismatched.tsv': MNLI_COLUMNS + [f'label{i}' for i in range(1, 6)] + ['gold_label'],
                        'test_matched.tsv': MNLI_COLUMNS, 'test_mismatched.tsv': MNLI_COLUMNS}),
    'qnli': dict(folder='QNLI', texts=['question', 'sentence'], label='label', id='index',
                 classes=['entailment', 'not_entailment'],
                 files={'train.tsv': ['index', 'question', 'sentence', 'label'],
                        'dev.tsv': ['index', 'question', 'sentence', 'label'],
                        'test.tsv': ['index', 'question', 'sentence']}),
    'rte': dict(folder='RTE', texts=['sentence1', 'sentence2'], label='label', id='index',
                classes=['entailment', 'not_entailment'],
                files={'train.tsv': ['index', 'sentence1', 'sentence2', 'label'],
                       'dev.tsv': ['index', 'sentence1', 'sentence2', 'label'],
                       'test.tsv': ['index', 'sentence1', 'sentence2']}),
    'mrpc': dict(folder='MRPC', texts=['#1 String', '#2 String'], label='Quality', id='index', classes=['0', '1'],
                 files={'train.tsv': ['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'],
                        'dev.tsv': ['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'],
                        'test.tsv': ['index', '#1 ID', '#2 ID', '#1 String', '#2 String']}),
    'qqp': dict(folder='QQP', texts=['question1', 'question2'], label='is_duplicate', id='id', classes=['0', '1'],
                files={'train.tsv': ['id', 'qid1', 'qid2', 'question1', 'question2', 'is_duplicate'],
                       'dev.tsv': ['id', 'qid1', 'qid2', 'question1', 'question2', 'is_duplicate'],
                       'test.tsv': ['id', 'question1', 'question2']}),
    'stsb': dict(folder='STS-B', texts=['sentence1', 'sentence2'], label='score', id='index', classes=None,
                 files={'train.tsv': STSB_COLUMNS + ['score'], 'dev.tsv': STSB_COLUMNS + ['score'],
                        'test.tsv': STSB_COLUMNS}),
}
SPLIT_OF = {'train.tsv': 'train', 'dev.tsv': 'valid', 'test.tsv': 'test', 'dev_matched.tsv': 'valid',
            'dev_mismatched.tsv': 'valid_mismatched', 'test_matched.tsv': 'test',
            'test_mismatched.tsv': 'test_mismatched'}


def write_lines(path, lines, encoding='utf-8'):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(''.join(line + '\n' for line in lines).encode(encoding))


def glue_rows(spec, name, n, rng):
    """n rows of one GLUE file as {column: value}, texts holding the quote characters GLUE has."""
    columns = spec['files'][name] or spec['positions']
    rows = []
    for i in range(n):
        row = {column: f'{column}-{i}' for column in columns}
        for column in spec['texts']:
            row[column] = rng.choice(['He said "no', "it's 'fine'", '"quoted"', 'plain']) + f' {name} {column} {i}'
        if spec['label'] in columns:
            row[spec['label']] = (rng.choice(spec['classes']) if spec['classes']
                                  else f'{rng.uniform(0, 5):.3f}')
        if spec['id'] in columns:
            row[spec['id']] = str(100 + 7 * i)
        rows.append(row)
    return rows


def write_glue(folder, spec, sizes, rng):
    """Write a GLUE task's files in `folder`; return {split: rows written}."""
    written = {}
    for name, header in spec['files'].items():
        rows = glue_rows(spec, name, sizes[name], rng)
        columns = header or spec['positions']
        lines = ([] if header is None else ['\t'.join(header)]) + ['\t'.join(row[c] for c in columns) for row in rows]
        write_lines(folder / name, lines)
        written[SPLIT_OF[name]] = rows
    return written


def check_split(split, spec, rows, labelled=True):
    assert len(split) == len(rows)
    assert split.texts == tuple([row[c] for row in rows] for c in spec['texts'])
    has_label = spec['label'] in rows[0]
    if not has_label:
        assert split.labels is None
    elif spec['classes']:
        assert split.labels == [row[spec['label']] for row in rows]
    else:
        assert split.labels == [float(row[spec['label']]) for row in rows]
    ids = [row[spec['id']] for row in rows] if spec['id'] in rows[0] else [str(i) for i in range(len(rows))]
    assert split.ids == ids
    assert split.groups is None


@pytest.mark.parametrize('task', sorted(GLUE))
def test_glue_reader_reads_the_release_layout(tmp_path, task):
    spec = GLUE[task]
    sizes = {name: 3 + i for i, name in enumerate(spec['files'])}
    written = write_glue(tmp_path / 'glue' / spec['folder'], spec, sizes, random.Random(task))
    reader = datasets.READERS[task]
    for data_dir in (tmp_path / 'glue', tmp_path / 'glue' / spec['folder']):  # GLUE's root or the task's folder
        splits = reader(str(data_dir))
        assert sorted(splits) == sorted(written)
        for split, rows in written.items():
            check_split(splits[split], spec, rows)
    # The GLUE test sets have no labels: their predictions go to the submission file.
    assert all(splits[split].labels is None for split in splits if split.startswith('test'))
    assert all(splits[split].labels is not None for split in splits if not split.startswith('test'))


def test_label_lists_match_the_releases():
    for task, spec in GLUE.items():
        assert datasets.LABELS[task] == spec['classes'], task
    assert datasets.LABELS['snli'] == ['entailment', 'neutral', 'contradiction']
    assert datasets.LABELS['scitail'] == ['entails', 'neutral']


@pytest.mark.parametrize('folder', ['sst2', 'sst-2', 'SST2'])
def test_glue_folder_name_variants(tmp_path, folder):
    spec = GLUE['sst2']
    written = write_glue(tmp_path / folder, spec, {'train.tsv': 2, 'dev.tsv': 2, 'test.tsv': 2}, random.Random(0))
    splits = datasets.read_sst2(str(tmp_path))
    check_split(splits['train'], spec, written['train'])


def write_snli(folder, sizes, rng, fmt='jsonl'):
    """Write SNLI 1.0's three files ('-' gold labels among them); return {split: rows written}."""
    written = {}
    for split, stem in (('train', 'train'), ('valid', 'dev'), ('test', 'test')):
        rows = []
        for i in range(sizes[split]):
            gold = rng.choice(['entailment', 'neutral', 'contradiction', '-'])
            rows.append({'annotator_labels': [gold], 'captionID': f'{i}.jpg#0', 'gold_label': gold,
                         'pairID': f'{stem}{i}.jpg#0r1e', 'sentence1': f'A "man" {stem} {i}.',
                         'sentence1_binary_parse': '( A man )', 'sentence1_parse': '(ROOT (NP A man))',
                         'sentence2': f"It's {stem} {i}", 'sentence2_binary_parse': '( It )',
                         'sentence2_parse': '(ROOT (NP It))'})
        if fmt == 'jsonl':
            write_lines(folder / f'snli_1.0_{stem}.jsonl', [json.dumps(row) for row in rows])
        else:
            header = ['gold_label', 'sentence1_binary_parse', 'sentence2_binary_parse', 'sentence1_parse',
                      'sentence2_parse', 'sentence1', 'sentence2', 'captionID', 'pairID',
                      'label1', 'label2', 'label3', 'label4', 'label5']
            lines = ['\t'.join(header)] + ['\t'.join(row.get(c, row['gold_label']) for c in header) for row in rows]
            write_lines(folder / f'snli_1.0_{stem}.txt', lines)
        written[split] = rows
    return written


@pytest.mark.parametrize('fmt', ['jsonl', 'txt'])
def test_snli_drops_and_counts_examples_without_gold_label(tmp_path, fmt):
    sizes = {'train': 30, 'valid': 12, 'test': 9}
    written = write_snli(tmp_path / 'snli_1.0', sizes, random.Random(1), fmt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        splits = datasets.read_snli(str(tmp_path))
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    for split, rows in written.items():
        kept = [row for row in rows if row['gold_label'] != '-']
        assert splits[split].texts == ([r['sentence1'] for r in kept], [r['sentence2'] for r in kept])
        assert splits[split].labels == [r['gold_label'] for r in kept]
        assert splits[split].ids == [r['pairID'] for r in kept]
        dropped = len(rows) - len(kept)
        said = [m for m in messages if f'_{"dev" if split == "valid" else split}.' in m]
        if dropped:
            assert len(said) == 1 and f'left out {dropped} of {len(rows)} ' in said[0]
        else:
            assert not said
    assert any(len(rows) > len([r for r in rows if r['gold_label'] != '-']) for rows in written.values())


@pytest.mark.parametrize('where', ['SciTailV1.1/tsv_format', 'SciTailV1/tsv_format', 'tsv_format', '.'])
def test_scitail_reads_the_headerless_tsv_release(tmp_path, where):
    rng = random.Random(2)
    written = {}
    for split, stem, n in (('train', 'train', 5), ('valid', 'dev', 3), ('test', 'test', 4)):
        rows = [(f'Premise "{stem}" {i}.', f"Hypothesis {stem}'s {i}.", rng.choice(['entails', 'neutral']))
                for i in range(n)]
        write_lines(tmp_path / where / f'scitail_1.0_{stem}.tsv', ['\t'.join(row) for row in rows])
        written[split] = rows
    for data_dir in (tmp_path, tmp_path / where):
        splits = datasets.read_scitail(str(data_dir))
        for split, rows in written.items():
            assert splits[split].texts == ([r[0] for r in rows], [r[1] for r in rows])
            assert splits[split].labels == [r[2] for r in rows]
            assert splits[split].ids == [str(i) for i in range(len(rows))]


# Bad input: one clear error each.

def sst2_folder(tmp_path, sizes=None):
    folder = tmp_path / 'SST-2'
    write_glue(folder, GLUE['sst2'], sizes or {'train.tsv': 3, 'dev.tsv': 2, 'test.tsv': 2}, random.Random(3))
    return folder


def one_line(err):
    message = str(err.value)
    assert '\n' not in message
    return message


def test_missing_folder_and_file_name_the_layout(tmp_path):
    with pytest.raises(MissingFileError) as err:
        datasets.read_sst2(str(tmp_path / 'nowhere'))
    assert 'nowhere' in one_line(err) and 'train.tsv, dev.tsv, test.tsv' in str(err.value)
    folder = sst2_folder(tmp_path)
    (folder / 'dev.tsv').unlink()
    with pytest.raises(MissingFileError) as err:
        datasets.read_sst2(str(tmp_path))
    assert 'dev.tsv' in one_line(err) and str(folder) in str(err.value) and "GLUE's SST-2 folder" in str(err.value)
    with pytest.raises(MissingFileError) as err:
        datasets.read_mnli(str(tmp_path))
    assert 'train.tsv' in one_line(err) and 'dev_mismatched.tsv' in str(err.value)


def test_missing_column_lists_the_columns_found(tmp_path):
    folder = sst2_folder(tmp_path)
    write_lines(folder / 'dev.tsv', ['text\tlabel', 'good\t1'])
    with pytest.raises(DataError) as err:
        datasets.read_sst2(str(tmp_path))
    message = one_line(err)
    assert 'dev.tsv' in message and "'sentence'" in message and 'columns found: text, label' in message


def test_label_outside_the_classes(tmp_path):
    folder = sst2_folder(tmp_path)
    write_lines(folder / 'train.tsv', ['sentence\tlabel', 'good\t1', 'bad\tpositive'])
    with pytest.raises(DataError) as err:
        datasets.read_sst2(str(tmp_path))
    message = one_line(err)
    assert 'train.tsv' in message and 'line 3' in message and "'positive'" in message and 'one of 0, 1' in message


@pytest.mark.parametrize('score', ['high', 'nan', 'inf', '', '5.5', '-1'])
def test_stsb_score_must_be_a_number_from_0_to_5(tmp_path, score):
    spec = GLUE['stsb']
    folder = tmp_path / 'STS-B'
    write_glue(folder, spec, {'train.tsv': 2, 'dev.tsv': 2, 'test.tsv': 2}, random.Random(4))
    header = spec['files']['dev.tsv']
    write_lines(folder / 'dev.tsv', ['\t'.join(header), '\t'.join(['0'] * (len(header) - 1) + [score])])
    with pytest.raises(DataError) as err:
        datasets.read_stsb(str(tmp_path))
    message = one_line(err)
    assert 'dev.tsv' in message and 'line 2' in message and repr(score) in message and 'from 0 to 5' in message


def test_empty_split(tmp_path):
    folder = sst2_folder(tmp_path)
    write_lines(folder / 'test.tsv', ['index\tsentence'])
    with pytest.raises(DataError) as err:
        datasets.read_sst2(str(tmp_path))
    assert 'test.tsv' in one_line(err) and 'no examples' in str(err.value)


def test_all_examples_without_gold_label_is_an_empty_split(tmp_path):
    write_snli(tmp_path, {'train': 2, 'valid': 2, 'test': 2}, random.Random(5))
    write_lines(tmp_path / 'snli_1.0_dev.jsonl', [json.dumps({'sentence1': 'a', 'sentence2': 'b', 'gold_label': '-',
                                                              'pairID': 'x'})])
    with pytest.raises(DataError) as err, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        datasets.read_snli(str(tmp_path))
    assert 'snli_1.0_dev.jsonl' in one_line(err) and '1 left out without a label' in str(err.value)


def test_not_utf8_names_file_and_line(tmp_path):
    folder = sst2_folder(tmp_path)
    (folder / 'train.tsv').write_bytes('sentence\tlabel\ngood\t1\ncaf\u00e9\t0\n'.encode('latin-1'))
    with pytest.raises(DataError) as err:
        datasets.read_sst2(str(tmp_path))
    message = one_line(err)
    assert 'train.tsv' in message and 'not UTF-8' in message and 'line 3' in message and '0xe9' in message


def test_utf16_is_refused(tmp_path):
    folder = sst2_folder(tmp_path)
    write_lines(folder / 'dev.tsv', ['sentence\tlabel', 'good\t1'], encoding='utf-16-le')
    with pytest.raises(DataError) as err:
        datasets.read_sst2(str(tmp_path))
    assert 'dev.tsv' in one_line(err) and 'UTF-16' in str(err.value) and 'line 1' in str(err.value)


def test_byte_order_mark_is_dropped(tmp_path):
    folder = sst2_folder(tmp_path)
    (folder / 'dev.tsv').write_bytes('\ufeffsentence\tlabel\ngood\t1\n'.encode('utf-8'))
    assert datasets.read_sst2(str(tmp_path))['valid'].texts == (['good'],)


def test_wrong_field_count(tmp_path):
    folder = sst2_folder(tmp_path)
    write_lines(folder / 'train.tsv', ['sentence\tlabel', 'good\t1', 'a tab\there\t0'])
    with pytest.raises(DataError) as err:
        datasets.read_sst2(str(tmp_path))
    message = one_line(err)
    assert 'train.tsv' in message and 'line 3 has 3 tab-separated fields, expected 2 (sentence, label)' in message


def test_bad_json_line(tmp_path):
    write_snli(tmp_path, {'train': 2, 'valid': 2, 'test': 2}, random.Random(6))
    with open(tmp_path / 'snli_1.0_test.jsonl', 'a') as f:
        f.write('{"sentence1": "a",\n')
    with pytest.raises(DataError) as err, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        datasets.read_snli(str(tmp_path))
    assert 'snli_1.0_test.jsonl' in one_line(err) and 'line 3 is not JSON' in str(err.value)


def test_progress_bar_only_when_verbose_and_large(tmp_path, capsys, monkeypatch):
    sst2_folder(tmp_path, {'train.tsv': 50, 'dev.tsv': 2, 'test.tsv': 2})
    datasets.read_sst2(str(tmp_path), verbose=True)
    assert 'train.tsv' not in capsys.readouterr().err  # small files: no bar
    monkeypatch.setattr(datasets, 'LARGE_FILE', 100)
    datasets.read_sst2(str(tmp_path))
    assert 'train.tsv' not in capsys.readouterr().err  # not verbose: no bar
    datasets.read_sst2(str(tmp_path), verbose=True)
    assert 'train.tsv' in capsys.readouterr().err
