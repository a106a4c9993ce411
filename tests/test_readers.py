"""The readers of the paper's other datasets, on tiny files the tests write in each release's layout."""
import json
import random
import warnings

import pytest

import readers
import datasets as datasets_module
from datasets import rocstories, rocstories_test_labels
from errors import DataError, DataWarning, InputError, MissingFileError

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
    reader = readers.READERS[task]
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
        assert readers.LABELS[task] == spec['classes'], task
    assert readers.LABELS['snli'] == ['entailment', 'neutral', 'contradiction']
    assert readers.LABELS['scitail'] == ['entails', 'neutral']


@pytest.mark.parametrize('folder', ['sst2', 'sst-2', 'SST2'])
def test_glue_folder_name_variants(tmp_path, folder):
    spec = GLUE['sst2']
    written = write_glue(tmp_path / folder, spec, {'train.tsv': 2, 'dev.tsv': 2, 'test.tsv': 2}, random.Random(0))
    splits = readers.read_sst2(str(tmp_path))
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
        splits = readers.read_snli(str(tmp_path))
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


def test_annotator_label_columns_may_vary_per_row(tmp_path):
    # GLUE's SNLI train.tsv names label1 alone but has rows with label1 to label5; gold_label is last.
    header = ['index', 'captionID', 'pairID', 'sentence1_binary_parse', 'sentence2_binary_parse', 'sentence1_parse',
              'sentence2_parse', 'sentence1', 'sentence2', 'label1', 'gold_label']
    rng = random.Random(9)
    written = {}
    for split, stem in (('train', 'train'), ('valid', 'dev'), ('test', 'test')):
        rows = []
        for i in range(8):
            gold = rng.choice(['entailment', 'neutral', 'contradiction'])
            votes = [rng.choice(['entailment', 'neutral', 'contradiction']) for _ in range(rng.choice([1, 5]))]
            rows.append([str(i), f'{i}.jpg#0', f'{stem}{i}r1e', '( a )', '( b )', '(A)', '(B)', f'A {stem} {i}.',
                         f'B {stem} {i}.'] + votes + [gold])
        assert {len(row) for row in rows} == {11, 15}
        write_lines(tmp_path / 'SNLI' / f'{stem}.tsv', ['\t'.join(header)] + ['\t'.join(row) for row in rows])
        written[split] = rows
    splits = readers.read_snli(str(tmp_path))
    for split, rows in written.items():
        assert splits[split].texts == ([row[7] for row in rows], [row[8] for row in rows])
        assert splits[split].labels == [row[-1] for row in rows]
        assert splits[split].ids == [row[2] for row in rows]
    # SNLI's own .txt: gold_label first, label1 to label5 last, the unused ones possibly left off.
    header = ['gold_label', 'sentence1_binary_parse', 'sentence2_binary_parse', 'sentence1_parse', 'sentence2_parse',
              'sentence1', 'sentence2', 'captionID', 'pairID', 'label1', 'label2', 'label3', 'label4', 'label5']
    for stem in ('train', 'dev', 'test'):
        rows = [['neutral', '( a )', '( b )', '(A)', '(B)', 'A.', 'B.', '0.jpg#0', f'{stem}-0', 'neutral'],
                ['entailment', '( a )', '( b )', '(A)', '(B)', 'C.', 'D.', '1.jpg#0', f'{stem}-1'] + ['entailment'] * 5]
        write_lines(tmp_path / 'snli_1.0' / f'snli_1.0_{stem}.txt', ['\t'.join(header)] + ['\t'.join(r) for r in rows])
    splits = readers.read_snli(str(tmp_path / 'snli_1.0'))
    assert splits['valid'].texts == (['A.', 'C.'], ['B.', 'D.']) and splits['valid'].labels == ['neutral', 'entailment']
    assert splits['test'].ids == ['test-0', 'test-1']
    # Too few fields for the columns before the labels is still an error.
    write_lines(tmp_path / 'snli_1.0' / 'snli_1.0_dev.txt', ['\t'.join(header), 'neutral\tA.\tB.'])
    with pytest.raises(DataError) as err:
        readers.read_snli(str(tmp_path / 'snli_1.0'))
    assert 'snli_1.0_dev.txt: line 2 has 3 tab-separated fields, expected 14' in one_line(err)


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
        splits = readers.read_scitail(str(data_dir))
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
        readers.read_sst2(str(tmp_path / 'nowhere'))
    assert 'nowhere' in one_line(err) and 'train.tsv, dev.tsv, test.tsv' in str(err.value)
    folder = sst2_folder(tmp_path)
    (folder / 'dev.tsv').unlink()
    with pytest.raises(MissingFileError) as err:
        readers.read_sst2(str(tmp_path))
    assert 'dev.tsv' in one_line(err) and str(folder) in str(err.value) and "GLUE's SST-2 folder" in str(err.value)
    with pytest.raises(MissingFileError) as err:
        readers.read_mnli(str(tmp_path))
    assert 'train.tsv' in one_line(err) and 'dev_mismatched.tsv' in str(err.value)


def test_missing_column_lists_the_columns_found(tmp_path):
    folder = sst2_folder(tmp_path)
    write_lines(folder / 'dev.tsv', ['text\tlabel', 'good\t1'])
    with pytest.raises(DataError) as err:
        readers.read_sst2(str(tmp_path))
    message = one_line(err)
    assert 'dev.tsv' in message and "'sentence'" in message and 'columns found: text, label' in message


def test_label_outside_the_classes(tmp_path):
    folder = sst2_folder(tmp_path)
    write_lines(folder / 'train.tsv', ['sentence\tlabel', 'good\t1', 'bad\tpositive'])
    with pytest.raises(DataError) as err:
        readers.read_sst2(str(tmp_path))
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
        readers.read_stsb(str(tmp_path))
    message = one_line(err)
    assert 'dev.tsv' in message and 'line 2' in message and repr(score) in message and 'from 0 to 5' in message


def test_empty_split(tmp_path):
    folder = sst2_folder(tmp_path)
    write_lines(folder / 'test.tsv', ['index\tsentence'])
    with pytest.raises(DataError) as err:
        readers.read_sst2(str(tmp_path))
    assert 'test.tsv' in one_line(err) and 'no examples' in str(err.value)


def test_all_examples_without_gold_label_is_an_empty_split(tmp_path):
    write_snli(tmp_path, {'train': 2, 'valid': 2, 'test': 2}, random.Random(5))
    write_lines(tmp_path / 'snli_1.0_dev.jsonl', [json.dumps({'sentence1': 'a', 'sentence2': 'b', 'gold_label': '-',
                                                              'pairID': 'x'})])
    with pytest.raises(DataError) as err, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        readers.read_snli(str(tmp_path))
    assert 'snli_1.0_dev.jsonl' in one_line(err) and '1 left out without a label' in str(err.value)


def test_not_utf8_names_file_and_line(tmp_path):
    folder = sst2_folder(tmp_path)
    (folder / 'train.tsv').write_bytes('sentence\tlabel\ngood\t1\ncaf\u00e9\t0\n'.encode('latin-1'))
    with pytest.raises(DataError) as err:
        readers.read_sst2(str(tmp_path))
    message = one_line(err)
    assert 'train.tsv' in message and 'not UTF-8' in message and 'line 3' in message and '0xe9' in message


def test_utf16_is_refused(tmp_path):
    folder = sst2_folder(tmp_path)
    write_lines(folder / 'dev.tsv', ['sentence\tlabel', 'good\t1'], encoding='utf-16-le')
    with pytest.raises(DataError) as err:
        readers.read_sst2(str(tmp_path))
    assert 'dev.tsv' in one_line(err) and 'UTF-16' in str(err.value) and 'line 1' in str(err.value)


def test_byte_order_mark_is_dropped(tmp_path):
    folder = sst2_folder(tmp_path)
    (folder / 'dev.tsv').write_bytes('\ufeffsentence\tlabel\ngood\t1\n'.encode('utf-8'))
    assert readers.read_sst2(str(tmp_path))['valid'].texts == (['good'],)


def test_wrong_field_count(tmp_path):
    folder = sst2_folder(tmp_path)
    write_lines(folder / 'train.tsv', ['sentence\tlabel', 'good\t1', 'a tab\there\t0'])
    with pytest.raises(DataError) as err:
        readers.read_sst2(str(tmp_path))
    message = one_line(err)
    assert 'train.tsv' in message and 'line 3 has 3 tab-separated fields, expected 2 (sentence, label)' in message


def test_bad_json_line(tmp_path):
    write_snli(tmp_path, {'train': 2, 'valid': 2, 'test': 2}, random.Random(6))
    with open(tmp_path / 'snli_1.0_test.jsonl', 'a') as f:
        f.write('{"sentence1": "a",\n')
    with pytest.raises(DataError) as err, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        readers.read_snli(str(tmp_path))
    assert 'snli_1.0_test.jsonl' in one_line(err) and 'line 3 is not JSON' in str(err.value)


def test_progress_bar_only_when_verbose_and_large(tmp_path, capsys, monkeypatch):
    sst2_folder(tmp_path, {'train.tsv': 50, 'dev.tsv': 2, 'test.tsv': 2})
    readers.read_sst2(str(tmp_path), verbose=True)
    assert 'train.tsv' not in capsys.readouterr().err  # small files: no bar
    monkeypatch.setattr(datasets_module, 'LARGE_FILE', 100)
    readers.read_sst2(str(tmp_path))
    assert 'train.tsv' not in capsys.readouterr().err  # not verbose: no bar
    readers.read_sst2(str(tmp_path), verbose=True)
    assert 'train.tsv' in capsys.readouterr().err


# RACE: train|dev|test/high|middle/*.txt, one JSON article per file.

def race_article(rng, stem, group, k):
    questions = [rng.choice(['What is "it" about?', 'The author thinks _ .', "Who's there?"]) + f' {stem}{k}-{q}'
                 for q in range(rng.randint(1, 3))]
    return {'answers': [rng.choice('ABCD') for _ in questions],
            'options': [[f'{stem} {group} {k} {q} option {c}' for c in 'ABCD'] for q in range(len(questions))],
            'questions': questions, 'article': f'Article {stem}/{group}/{k}.\nIt says "hello".',
            'id': f'{group}{k}.txt'}


def write_race(root, rng, n_files=None):
    """Write a RACE folder; return {split: [(group, file name, article), ...]} in name order, high first."""
    written = {}
    for split, stem in (('train', 'train'), ('valid', 'dev'), ('test', 'test')):
        written[split] = []
        for group in ('high', 'middle'):
            (root / stem / group).mkdir(parents=True)
            for k in (n_files or [3, 12, 7]):
                article = race_article(rng, stem, group, k)
                (root / stem / group / f'{k}.txt').write_text(json.dumps(article), encoding='utf-8')
            for name in sorted(f'{k}.txt' for k in (n_files or [3, 12, 7])):
                written[split].append((group, name, json.loads((root / stem / group / name).read_text())))
    return written


@pytest.mark.parametrize('holder', ['', 'RACE'])
def test_race_reads_articles_questions_and_groups(tmp_path, holder):
    written = write_race(tmp_path / 'RACE', random.Random(7))
    splits = readers.read_race(str(tmp_path / holder))
    assert sorted(splits) == ['test', 'train', 'valid']
    for split, files in written.items():
        expected = [(f"{a['article']} {question}", options, 'ABCD'.index(answer), f'{group}/{name}#{q}', group)
                    for group, name, a in files
                    for q, (question, options, answer) in enumerate(zip(a['questions'], a['options'], a['answers']))]
        got = splits[split]
        assert list(zip(got.texts[0], got.texts[1], got.labels, got.ids, got.groups)) == expected
        assert {'high', 'middle'} == set(got.groups)
    assert readers.LABELS['race'] == ['A', 'B', 'C', 'D']


def test_race_bad_inputs(tmp_path):
    root = tmp_path / 'RACE'
    write_race(root, random.Random(8), n_files=[1, 2])
    article = json.loads((root / 'dev' / 'middle' / '2.txt').read_text())
    article['options'][0] = article['options'][0][:3]
    (root / 'dev' / 'middle' / '2.txt').write_text(json.dumps(article))
    with pytest.raises(DataError) as err:
        readers.read_race(str(tmp_path))
    message = one_line(err)
    assert '2.txt' in message and 'question 1' in message and 'expected a list of 4 answers' in message
    article['options'][0].append('fourth')
    article['answers'][-1] = 'E'
    (root / 'dev' / 'middle' / '2.txt').write_text(json.dumps(article))
    with pytest.raises(DataError) as err:
        readers.read_race(str(tmp_path))
    assert "answer 'E'" in one_line(err) and 'one of A, B, C, D' in str(err.value)
    (root / 'dev' / 'middle' / '2.txt').write_bytes(b'{"article": "caf\xe9"}')
    with pytest.raises(DataError) as err:
        readers.read_race(str(tmp_path))
    assert 'not UTF-8' in one_line(err) and 'line 1' in str(err.value)
    (root / 'dev' / 'middle' / '2.txt').write_text('{"article": "a",\n "questions": [}')
    with pytest.raises(DataError) as err:
        readers.read_race(str(tmp_path))
    assert '2.txt' in one_line(err) and 'line 2 is not JSON' in str(err.value)
    (root / 'dev' / 'middle' / '2.txt').write_text('{"article": "a"}')
    with pytest.raises(DataError) as err:
        readers.read_race(str(tmp_path))
    assert 'no field questions, options, answers' in one_line(err) and 'found: article' in str(err.value)
    for name in ('1.txt', '2.txt'):
        (root / 'dev' / 'middle' / name).unlink()
    for name in ('1.txt', '2.txt'):
        (root / 'dev' / 'high' / name).unlink()
    with pytest.raises(DataError) as err:
        readers.read_race(str(tmp_path))
    assert 'dev' in one_line(err) and 'no questions' in str(err.value)
    (root / 'test' / 'middle').rename(root / 'test' / 'Middle school')
    with pytest.raises(MissingFileError) as err:
        readers.read_race(str(tmp_path))
    assert 'middle' in one_line(err) and 'train/, dev/ and test/' in str(err.value)


# ROCStories through the same interface.

def test_rocstories_splits_are_those_of_rocstories(rocstories_dir):
    (trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3) = rocstories(str(rocstories_dir))
    splits = readers.READERS['rocstories'](str(rocstories_dir))
    for split, (x1, x2, x3, y) in (('train', (trX1, trX2, trX3, trY)), ('valid', (vaX1, vaX2, vaX3, vaY)),
                                   ('test', (teX1, teX2, teX3, rocstories_test_labels(str(rocstories_dir))))):
        assert splits[split].texts == (list(x1), [[a, b] for a, b in zip(x2, x3)])
        assert splits[split].labels == [int(v) for v in y]
    assert splits['test'].ids == [str(i) for i in range(len(teX1))]
    assert splits['train'].ids is None and splits['valid'].ids is None


# The registry.

def test_unknown_dataset_and_task_type_list_the_valid_names():
    with pytest.raises(InputError) as err:
        readers.get_reader('glue')
    message = one_line(err)
    assert "'glue'" in message and all(name in message for name in list(readers.READERS) + ['custom'])
    assert readers.get_reader('custom') is readers.read_custom
    assert all(readers.get_reader(name) is reader for name, reader in readers.READERS.items())
    assert sorted(readers.READERS) == sorted(readers.LABELS)
    with pytest.raises(InputError) as err:
        readers.read_custom('ranking', 'train.csv')
    assert "'ranking'" in one_line(err) and ', '.join(readers.TASK_TYPES) in str(err.value)


# The user's own files.

def write_csv(path, header, rows):
    import csv
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def write_jsonl(path, rows):
    write_lines(path, [json.dumps(row) for row in rows])
    return str(path)


def test_custom_classification_csv_with_string_labels(tmp_path):
    train = [('Great, "really" great\nsecond line', 'pos', 'a'), ('bad', 'neg', 'b'), ('meh', 'neutral', 'c'),
             ('fine', 'pos', 'd')]
    valid = [('ok', 'neutral', 'e'), ('awful', 'neg', 'f')]
    test = [('what', 'x1'), ('why', 'x2'), ('how', 'x3')]
    splits = readers.read_custom(
        'classification', write_csv(tmp_path / 'train.csv', ['review', 'stars', 'key'], train),
        write_csv(tmp_path / 'valid.csv', ['key', 'review', 'stars'], [(k, t, y) for t, y, k in valid]),
        write_csv(tmp_path / 'test.csv', ['review', 'key'], test),
        text_columns=['review'], label_column='stars', id_column='key')
    assert splits['train'].texts == ([t for t, _, _ in train],) and splits['train'].labels == [y for _, y, _ in train]
    assert splits['train'].ids == [k for _, _, k in train]
    assert splits['valid'].texts == ([t for t, _, _ in valid],) and splits['valid'].labels == ['neutral', 'neg']
    assert splits['test'].texts == ([t for t, _ in test],) and splits['test'].labels is None
    assert splits['test'].ids == ['x1', 'x2', 'x3']
    assert readers.class_names(splits['train'].labels) == ['neg', 'neutral', 'pos']
    # A validation label the training file does not have.
    write_csv(tmp_path / 'valid.csv', ['review', 'stars'], [('ok', 'neutral'), ('so so', 'mixed')])
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', str(tmp_path / 'train.csv'), str(tmp_path / 'valid.csv'),
                             text_columns=['review'], label_column='stars')
    message = one_line(err)
    assert 'valid.csv' in message and 'line 3' in message and "'mixed'" in message
    assert 'one of neg, neutral, pos' in message
    # Classes given (from a checkpoint): a training label outside them.
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', str(tmp_path / 'train.csv'), text_columns=['review'],
                             label_column='stars', classes=['neg', 'pos'])
    assert 'train.csv' in one_line(err) and "'neutral'" in str(err.value)


def test_class_names_sort_integers_as_numbers():
    assert readers.class_names(['10', '2', '1', '2']) == ['1', '2', '10']
    assert readers.class_names(['b', 'a', '10', 'b']) == ['10', 'a', 'b']
    assert readers.class_names(['-1', '1', '0']) == ['-1', '0', '1']
    assert readers.class_names(['--1', '1', '0']) == ['--1', '0', '1']


@pytest.mark.parametrize('task_type', ['entailment', 'similarity'])
def test_custom_pairs_tsv_and_jsonl(tmp_path, task_type):
    rows = [('A "man" sleeps.', 'Someone rests.', 'yes'), ("It's 'late'.", 'It is early.', 'no'),
            ('One.', 'Two.', 'yes')]
    first, second = readers.CUSTOM_TEXT_COLUMNS[task_type]
    write_lines(tmp_path / 'train.tsv', [f'{first}\t{second}\tlabel'] + ['\t'.join(row) for row in rows])
    write_jsonl(tmp_path / 'valid.jsonl', [{first: a, second: b, 'label': y, 'extra': 1} for a, b, y in rows[:2]])
    splits = readers.read_custom(task_type, str(tmp_path / 'train.tsv'), str(tmp_path / 'valid.jsonl'))
    for split, n in (('train', 3), ('valid', 2)):
        assert splits[split].texts == ([r[0] for r in rows[:n]], [r[1] for r in rows[:n]])
        assert splits[split].labels == [r[2] for r in rows[:n]]
        assert splits[split].ids == [str(i) for i in range(n)]
    assert sorted(splits) == ['train', 'valid']


def test_custom_jsonl_integer_labels_are_class_names(tmp_path):
    rows = [{'text': 'a', 'label': 1}, {'text': 'b', 'label': 0}, {'text': 'c', 'label': 2}]
    splits = readers.read_custom('classification', write_jsonl(tmp_path / 'train.jsonl', rows))
    assert splits['train'].labels == ['1', '0', '2']
    assert readers.class_names(splits['train'].labels) == ['0', '1', '2']
    write_jsonl(tmp_path / 'train.jsonl', rows + [{'text': 'd', 'label': None}])
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', str(tmp_path / 'train.jsonl'))
    assert 'line 4' in one_line(err) and 'label null' in str(err.value)


def test_custom_regression_scores(tmp_path):
    rows = [('a', 'b', '4.5'), ('c', 'd', '0'), ('e', 'f', '-1.25')]
    train = write_csv(tmp_path / 'train.csv', ['sentence1', 'sentence2', 'label'], rows)
    splits = readers.read_custom('regression', train)
    assert splits['train'].labels == [4.5, 0.0, -1.25]
    assert splits['train'].texts == (['a', 'c', 'e'], ['b', 'd', 'f'])
    write_csv(tmp_path / 'train.csv', ['sentence1', 'sentence2', 'label'], rows + [('g', 'h', 'high')])
    with pytest.raises(DataError) as err:
        readers.read_custom('regression', str(tmp_path / 'train.csv'))
    assert 'line 5' in one_line(err) and "'high'" in str(err.value) and 'a finite number' in str(err.value)


def test_custom_multiple_choice_list_column_and_answer_columns(tmp_path):
    rows = [('Story one.', ['end a', 'end "b"', 'end c'], 2), ('Story two.', ['x', 'y', 'z'], 0)]
    as_jsonl = readers.read_custom('multiple_choice', write_jsonl(
        tmp_path / 'train.jsonl', [{'context': c, 'choices': a, 'label': y} for c, a, y in rows]))
    as_csv = readers.read_custom('multiple_choice', write_csv(
        tmp_path / 'train.csv', ['context', 'choices', 'label'], [(c, json.dumps(a), y) for c, a, y in rows]))
    as_columns = readers.read_custom('multiple_choice', write_csv(
        tmp_path / 'columns.csv', ['story', 'e1', 'e2', 'e3', 'right'], [(c, *a, y) for c, a, y in rows]),
        text_columns=['story', 'e1', 'e2', 'e3'], label_column='right')
    for splits in (as_jsonl, as_csv, as_columns):
        assert splits['train'].texts == ([c for c, _, _ in rows], [a for _, a, _ in rows])
        assert splits['train'].labels == [2, 0]


@pytest.mark.parametrize('bad, expected', [
    ({'context': 'c', 'choices': ['a', 'b'], 'label': 0}, 'holds 2 answers, expected 3'),
    ({'context': 'c', 'choices': 'a or b', 'label': 0}, 'expected a JSON list of answers'),
    ({'context': 'c', 'choices': ['a', 'b', 7], 'label': 0}, 'choices[2] is 7, expected text'),
    ({'context': 'c', 'choices': ['a', 'b', 'd'], 'label': 3}, 'expected the index of the right answer, 0 to 2'),
])
def test_custom_multiple_choice_bad_rows(tmp_path, bad, expected):
    good = {'context': 'c', 'choices': ['a', 'b', 'd'], 'label': 1}
    write_jsonl(tmp_path / 'train.jsonl', [good, good])
    write_jsonl(tmp_path / 'valid.jsonl', [good, bad])
    with pytest.raises(DataError) as err:
        readers.read_custom('multiple_choice', str(tmp_path / 'train.jsonl'), str(tmp_path / 'valid.jsonl'))
    assert 'valid.jsonl: line 2' in one_line(err) and expected in str(err.value)


def test_custom_bad_arguments_fail_before_reading(tmp_path):
    train = write_csv(tmp_path / 'train.csv', ['text', 'label'], [('a', 'x')])
    with pytest.raises(InputError) as err:
        readers.read_custom('classification', train, str(tmp_path / 'valid.xlsx'))
    assert '--valid_file' in one_line(err) and 'valid.xlsx' in str(err.value) and '.csv, .tsv, .jsonl' in str(err.value)
    with pytest.raises(MissingFileError) as err:
        readers.read_custom('classification', train, test_file=str(tmp_path / 'test.csv'))
    assert '--test_file' in one_line(err) and 'test.csv' in str(err.value)
    with pytest.raises(InputError) as err:
        readers.read_custom('entailment', train, text_columns=['text'])
    assert '--text_columns text' in one_line(err) and 'takes 2 columns' in str(err.value)
    with pytest.raises(InputError) as err:
        readers.read_custom('multiple_choice', train, text_columns=['text'])
    assert 'context column' in one_line(err)
    with pytest.raises(InputError) as err:
        readers.read_custom('classification', None, train)
    assert '--train_file is missing' in one_line(err)


def test_custom_missing_column_empty_file_and_bad_csv(tmp_path):
    write_csv(tmp_path / 'train.csv', ['sentence', 'label'], [('a', 'x')])
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', str(tmp_path / 'train.csv'))
    assert "no column 'text'" in one_line(err) and 'columns found: sentence, label' in str(err.value)
    write_csv(tmp_path / 'train.csv', ['text', 'label'], [])
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', str(tmp_path / 'train.csv'))
    assert 'train.csv' in one_line(err) and 'no examples' in str(err.value)
    write_lines(tmp_path / 'train.csv', ['text,label', 'a,x', '"open quote,y'])
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', str(tmp_path / 'train.csv'))
    assert 'train.csv' in one_line(err) and 'malformed CSV at line 3' in str(err.value)
    (tmp_path / 'train.csv').write_bytes(b'text,label\na,x\nb\xff,y\n')
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', str(tmp_path / 'train.csv'))
    assert 'not UTF-8' in one_line(err) and 'line 3' in str(err.value)


def test_mrpc_from_microsofts_files_and_glues_dev_ids(tmp_path):
    # What GLUE's download script starts from: Microsoft's two files (a UTF-8 byte-order mark, a
    # Quality column in both) and the list of training pairs that form the dev set.
    rng = random.Random(10)
    header = ['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String']
    train = [[rng.choice('01'), str(1000 + i), str(2000 + i), f'"S" one {i}', f"S's two {i}"] for i in range(9)]
    test = [[rng.choice('01'), str(3000 + i), str(4000 + i), f'T one {i}', f'T two {i}'] for i in range(4)]
    dev = [row for i, row in enumerate(train) if i % 3 == 1]
    folder = tmp_path / 'MRPC'
    for name, rows in (('msr_paraphrase_train.txt', train), ('msr_paraphrase_test.txt', test)):
        write_lines(folder / name, ['\ufeff' + '\t'.join(header)] + ['\t'.join(row) for row in rows])
    write_lines(folder / 'mrpc_dev_ids.tsv', [f'{row[1]}\t{row[2]}' for row in dev])
    splits = readers.read_mrpc(str(tmp_path))
    for split, rows in (('train', [r for r in train if r not in dev]), ('valid', dev), ('test', test)):
        assert splits[split].texts == ([r[3] for r in rows], [r[4] for r in rows])
        assert splits[split].labels == [r[0] for r in rows]
        assert splits[split].ids == [str(i) for i in range(len(rows))]
    (folder / 'mrpc_dev_ids.tsv').unlink()
    with pytest.raises(MissingFileError) as err:
        readers.read_mrpc(str(tmp_path))
    assert 'mrpc_dev_ids.tsv' in one_line(err) and 'train.tsv, dev.tsv, test.tsv' in str(err.value)
    write_lines(folder / 'mrpc_dev_ids.tsv', ['1\t2'])
    with pytest.raises(DataError) as err:
        readers.read_mrpc(str(folder))
    assert 'none of the pairs of' in one_line(err)


def test_custom_csv_as_a_spreadsheet_saves_it(tmp_path):
    # A byte-order mark, CRLF line ends and a quoted field spanning lines.
    (tmp_path / 'train.csv').write_bytes('\ufefftext,label\r\n"two\r\nlines, ""quoted""",b\r\nplain,a\r\n'.encode())
    splits = readers.read_custom('classification', str(tmp_path / 'train.csv'))
    assert splits['train'].texts == (['two\r\nlines, "quoted"', 'plain'],) and splits['train'].labels == ['b', 'a']
    (tmp_path / 'train.csv').write_bytes(b'text,label\r\n"two\r\nlines",b\r\nplain\r\n')
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', str(tmp_path / 'train.csv'))
    assert 'line 4 has 1 comma-separated fields, expected 2 (text, label)' in one_line(err)


def test_custom_classification_needs_two_classes(tmp_path):
    train = write_csv(tmp_path / 'train.csv', ['text', 'label'], [('good', 'pos'), ('great', 'pos'), ('fine', 'pos')])
    for task_type in ('classification', 'entailment'):
        columns = ['text'] if task_type == 'classification' else ['text', 'text']
        with pytest.raises(DataError) as err:
            readers.read_custom(task_type, train, text_columns=columns)
        message = one_line(err)
        assert 'train.csv' in message and "'pos'" in message and 'two' in message, message
    write_csv(tmp_path / 'train.csv', ['text', 'label'], [('good', 'pos'), ('bad', 'neg')])
    assert readers.read_custom('classification', train)['train'].labels == ['pos', 'neg']


def test_custom_id_column_must_exist(tmp_path):
    train = write_csv(tmp_path / 'train.csv', ['text', 'label'], [('good', 'pos'), ('bad', 'neg')])
    test = write_csv(tmp_path / 'test.csv', ['text', 'key'], [('what', 'x1')])
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', train, test_file=test, id_column='ident')
    message = one_line(err)
    assert 'train.csv' in message and "'ident'" in message, message
    write_csv(tmp_path / 'train.csv', ['text', 'label', 'ident'], [('good', 'pos', 'a'), ('bad', 'neg', 'b')])
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', train, test_file=test, id_column='ident')
    assert 'test.csv' in one_line(err) and "'ident'" in one_line(err)
    write_csv(tmp_path / 'test.csv', ['text', 'ident'], [('what', 'x1')])
    assert readers.read_custom('classification', train, test_file=test, id_column='ident')['test'].ids == ['x1']


@pytest.mark.parametrize('suffix', ['.csv', '.tsv'])
def test_custom_duplicate_column_names_are_refused(tmp_path, suffix):
    path = tmp_path / f'train{suffix}'
    sep = ',' if suffix == '.csv' else '\t'
    write_lines(path, [sep.join(['text', 'label', 'text']), sep.join(['good', 'pos', 'other']),
                       sep.join(['bad', 'neg', 'more'])])
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', str(path))
    message = one_line(err)
    assert path.name in message and "'text'" in message and 'twice' in message, message


@pytest.mark.parametrize('where', ['id', 'label'])
@pytest.mark.parametrize('bad', ['a\tb', 'a\nb', 'a\rb'])
def test_custom_ids_and_labels_with_tabs_or_line_breaks_are_refused(tmp_path, where, bad):
    rows = [{'text': 'good', 'label': 'pos', 'key': 'k1'}, {'text': 'bad', 'label': 'neg', 'key': 'k2'}]
    rows[1]['key' if where == 'id' else 'label'] = bad
    train = write_jsonl(tmp_path / 'train.jsonl', rows)
    with pytest.raises(DataError) as err:
        readers.read_custom('classification', train, id_column='key')
    message = one_line(err)
    assert 'train.jsonl' in message and 'line 2' in message and repr(bad) in message, message
    assert 'tab' in message and 'line break' in message, message
