"""token_store.py: the corpus encoded once into uint16 memory maps, read back as windows."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import token_store
from corpus import find_inputs
from errors import DataError, DataWarning, InputError, MissingFileError
from tests.conftest import BPE_PATH, ENCODER_PATH, ROOT
from text_utils import CharTokenizer, TextEncoder
from token_store import build_token_store, open_token_store

DOCS = ['First document.\nIt has two lines.\n', 'Second one, shorter.', 'A third: ünïcödé ☃ and more text.\n\n']


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / 'corpus'
    folder.mkdir()
    for i, text in enumerate(DOCS):
        (folder / f'{i}.txt').write_text(text, encoding='utf-8')
    return folder


def test_char_store_round_trips_ids_and_offsets(tmp_path, corpus):
    tok = CharTokenizer.fit([str(corpus)])
    assert tok.chars == sorted(set(''.join(DOCS)))
    store = build_token_store([str(corpus)], tok, str(tmp_path / 'cache'), verbose=False)
    train = store['train']
    assert store['valid'] is None and store['meta']['n_docs'] == 3
    assert tok.decode(train.tokens) == ''.join(DOCS)
    np.testing.assert_array_equal(train.offsets, np.cumsum([0] + [len(d) for d in DOCS[:-1]]))
    assert train.tokens.dtype == np.uint16


def test_windows_never_read_past_the_end(tmp_path, corpus):
    tok = CharTokenizer.fit([str(corpus)])
    train = build_token_store([str(corpus)], tok, str(tmp_path / 'cache'), verbose=False)['train']
    n = len(train)
    starts = train.sample_starts(np.random.default_rng(0), 5000, 20)
    assert starts.min() == 0 and starts.max() == n - 20  # both ends reached, never beyond
    x = train.windows(starts[:3], 20)
    assert x.shape == (3, 20) and x.dtype == np.int64
    np.testing.assert_array_equal(x[0], np.asarray(train.tokens[starts[0]:starts[0] + 20]))
    with pytest.raises(DataError, match=rf'holds {n} tokens, fewer than one window of {n + 1}'):
        train.sample_starts(np.random.default_rng(0), 1, n + 1)
    with pytest.raises(InputError, match='reads past'):
        train.windows([n - 5], 20)


def test_valid_split_by_document_and_for_one_document(tmp_path, corpus):
    tok = CharTokenizer.fit([str(corpus)])
    many = tmp_path / 'many'
    many.mkdir()
    texts = [f'document number {i}\n' for i in range(200)]
    for i, t in enumerate(texts):
        (many / f'{i:03d}.txt').write_text(t)
    many_tok = CharTokenizer.fit([str(many)])
    store = build_token_store([str(many)], many_tok, str(tmp_path / 'cache'), valid_fraction=0.1, verbose=False)
    n_valid_docs = len(store['valid'].offsets)
    assert 5 <= n_valid_docs <= 40 and n_valid_docs + len(store['train'].offsets) == 200
    decoded = many_tok.decode(store['train'].tokens) + many_tok.decode(store['valid'].tokens)
    assert sorted(decoded.splitlines()) == sorted(t.strip() for t in texts)  # every document once, whole
    one = build_token_store([str(corpus / '0.txt')], tok, str(tmp_path / 'c1'),
                            valid_fraction=0.25, verbose=False)
    assert tok.decode(one['train'].tokens) + tok.decode(one['valid'].tokens) == DOCS[0]
    assert len(one['valid']) == int(len(DOCS[0]) * 0.25)


def test_cache_is_reused_and_invalidated_by_inputs_and_tokenizer(tmp_path, corpus, monkeypatch):
    tok = CharTokenizer.fit([str(corpus)])
    cache = str(tmp_path / 'cache')
    calls = []
    real = CharTokenizer.encode_chunk
    monkeypatch.setattr(CharTokenizer, 'encode_chunk', lambda self, text: calls.append(1) or real(self, text))
    first = build_token_store([str(corpus)], tok, cache, verbose=False, workers=1)  # counted in this process
    n = len(calls)
    again = build_token_store([str(corpus)], tok, cache, verbose=False, workers=1)
    assert len(calls) == n and n > 0  # reused: nothing encoded
    np.testing.assert_array_equal(first['train'].tokens, again['train'].tokens)
    (corpus / '1.txt').write_text('one, Second shorter.')  # the same characters
    changed = build_token_store([str(corpus)], tok, cache, verbose=False, workers=1)
    assert len(calls) > n and tok.decode(changed['train'].tokens) != tok.decode(first['train'].tokens)
    other = CharTokenizer(tok.chars + ['Z'])
    assert len(os.listdir(cache)) == 2
    build_token_store([str(corpus)], other, cache, verbose=False)
    assert len(os.listdir(cache)) == 3
    folder = os.path.join(cache, token_store.store_key(find_inputs([str(corpus)]), tok, None, 0.0))
    with pytest.raises(DataError, match='built with tokenizer .* not this one'):
        open_token_store(folder, other)


def test_an_interrupted_build_leaves_nothing(tmp_path, corpus, monkeypatch):
    tok = CharTokenizer.fit([str(corpus)])
    real, calls = CharTokenizer.encode_chunk, []

    def encode(self, text):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, text)
    monkeypatch.setattr(CharTokenizer, 'encode_chunk', encode)
    cache = tmp_path / 'cache'
    with pytest.raises(KeyboardInterrupt):
        build_token_store([str(corpus)], tok, str(cache), verbose=False, workers=1)
    assert os.listdir(cache) == []


def test_parallel_encoding_equals_serial(tmp_path, corpus):
    tok = CharTokenizer.fit([str(corpus)])
    serial = build_token_store([str(corpus)], tok, str(tmp_path / 'a'), verbose=False, workers=1)['train']
    parallel = build_token_store([str(corpus)], tok, str(tmp_path / 'b'), verbose=False, workers=2)['train']
    np.testing.assert_array_equal(serial.tokens, parallel.tokens)
    np.testing.assert_array_equal(serial.offsets, parallel.offsets)


def test_bpe_chunks_give_the_ids_of_the_whole_text(tmp_path, monkeypatch):
    text = ''.join(f"Line {i}: Karen was assigned a roommate -- her first year!\n" for i in range(60))
    (tmp_path / 'book.txt').write_text(text)
    monkeypatch.setattr(token_store, 'CHUNK_CHARS', 200)  # many chunks
    tok = TextEncoder(str(ENCODER_PATH), str(BPE_PATH))
    store = build_token_store([str(tmp_path / 'book.txt')], tok, str(tmp_path / 'cache'), verbose=False)
    whole = tok.encode([text], verbose=False)[0] + [tok.newline_id]
    np.testing.assert_array_equal(store['train'].tokens, whole)


def test_bad_corpora_are_one_line_errors(tmp_path):
    tok = CharTokenizer(list('abc \n'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(MissingFileError, match='no text found'):
        build_token_store([str(empty)], tok, str(tmp_path / 'c'))
    with pytest.raises(MissingFileError, match='no such file or folder'):
        build_token_store([str(tmp_path / 'nowhere')], tok, str(tmp_path / 'c'))
    (empty / 'blank.txt').write_text('  \n \n')
    with pytest.raises(DataError, match='empty or only whitespace'):
        build_token_store([str(empty)], tok, str(tmp_path / 'c'), verbose=False)
    (tmp_path / 'latin1.txt').write_bytes('abc\nabc caf\xe9\n'.encode('latin-1'))
    with pytest.raises(DataError, match=r'latin1\.txt: not UTF-8 near line'):
        build_token_store([str(tmp_path / 'latin1.txt')], tok, str(tmp_path / 'c'), verbose=False)
    (tmp_path / 'bad.jsonl').write_text('{"text": "abc"}\n{"body": "abc"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl line 2: expected an object with a 'text' string"):
        build_token_store([str(tmp_path / 'bad.jsonl')], tok, str(tmp_path / 'c'), verbose=False)
    with pytest.raises(DataError, match='70000 distinct characters: .* at most 65536'):
        CharTokenizer(chr(i) for i in range(70000))
    with pytest.raises(InputError, match=r"character 'z' .* not in the character vocabulary"):
        tok.encode(['abz'])
    assert not [p for p in tmp_path.glob('c/*')]  # nothing half-built left


# VmHWM, not ru_maxrss: ru_maxrss keeps the parent's peak across fork and exec (pytest's, torch loaded),
# which would hide the build's.
BOUNDED = '''
import sys
from text_utils import CharTokenizer
from token_store import build_token_store
tok = CharTokenizer(list('abcdefghij \\n'))
build_token_store([sys.argv[1]], tok, sys.argv[2], verbose=False)
print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')))
'''


def test_memory_stays_bounded_on_a_generated_corpus(tmp_path):
    """Peak RSS of a build over 64 MB of text is within a few MB of the build over 1 MB:
    the corpus never sits in memory."""
    rng = np.random.default_rng(0)
    line = ''.join(rng.choice(list('abcdefghij '), 999)) + '\n'
    peaks = []
    for name, n_lines in (('small', 1 << 10), ('big', 1 << 16)):
        path = tmp_path / f'{name}.txt'
        with open(path, 'w') as f:
            for _ in range(n_lines):
                f.write(line)
        out = subprocess.run([sys.executable, '-c', BOUNDED, str(path), str(tmp_path / name)], capture_output=True,
                             text=True, env={'PYTHONPATH': str(ROOT), 'PATH': '/usr/bin:/bin'}, timeout=300)
        assert out.returncode == 0, out.stderr
        peaks.append(int(out.stdout) / 1024)  # MiB
    assert os.path.getsize(tmp_path / 'big.txt') == 1000 << 16  # 65.5 MB
    assert peaks[1] - peaks[0] < 16, peaks


def test_non_utf8_files_are_skipped_with_a_count_or_refused_when_strict(tmp_path, corpus):
    (corpus / '1.txt').write_bytes('caf\xe9 au lait\nmore\n'.encode('latin-1'))  # replaces DOCS[1]
    (corpus / '3.jsonl').write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    tok = CharTokenizer.fit([str(corpus)])
    assert tok.chars == sorted(set(DOCS[0] + DOCS[2]))  # nothing of the skipped files, not even 'ok'
    store = build_token_store([str(corpus)], tok, str(tmp_path / 'cache'), verbose=False, workers=1)
    assert tok.decode(store['train'].tokens) == DOCS[0] + DOCS[2]
    assert len(store['train'].offsets) == 2 and store['meta']['n_docs'] == 2
    skipped = store['meta']['skipped']
    assert len(skipped) == 2 and '1.txt: not UTF-8 near line 1' in skipped[0] and '3.jsonl: not UTF-8' in skipped[1]
    with pytest.raises(token_store.NotUTF8Error, match=r'1\.txt: not UTF-8 near line 1'):
        CharTokenizer.fit([str(corpus)], strict=True)
    with pytest.raises(token_store.NotUTF8Error, match=r'1\.txt: not UTF-8'):
        build_token_store([str(corpus)], tok, str(tmp_path / 'strict'), verbose=False, workers=1, strict=True)
    assert os.listdir(tmp_path / 'strict') == []
    with pytest.raises(DataError, match=r'1\.txt: not UTF-8'):  # the cached store of the first build
        build_token_store([str(corpus)], tok, str(tmp_path / 'cache'), verbose=False, strict=True)


def test_separator_ends_every_document_once(tmp_path, corpus):
    tok = CharTokenizer.fit([str(corpus)])
    nl = tok.encode(['\n'])[0][0]
    store = build_token_store([str(corpus)], tok, str(tmp_path / 'cache'), verbose=False, sep_id=nl)
    # DOCS[0] and DOCS[2] end with a newline already; DOCS[1] gets one
    assert tok.decode(store['train'].tokens) == DOCS[0] + DOCS[1] + '\n' + DOCS[2]
    np.testing.assert_array_equal(store['train'].offsets, [0, len(DOCS[0]), len(DOCS[0]) + len(DOCS[1]) + 1])


def test_a_character_outside_the_vocabulary_names_its_file(tmp_path, corpus):
    tok = CharTokenizer(DOCS[0])  # lacks characters of the other documents
    with pytest.raises(InputError, match=r"1\.txt: character 'S' \(U\+0053\) is not in the character vocabulary"):
        build_token_store([str(corpus)], tok, str(tmp_path / 'cache'), verbose=False, workers=1)
    assert os.listdir(tmp_path / 'cache') == []


def _digests(folder):
    """{relative path: sha256} of every file under folder."""
    return {os.path.relpath(os.path.join(root, f), folder): token_store.file_digest(os.path.join(root, f))
            for root, _, files in os.walk(folder) for f in files}


@pytest.fixture
def alarm():
    """Fail (TimeoutError) instead of hanging when the code under test blocks."""
    def expire(signum, frame):
        raise TimeoutError('blocked')
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_named_pipes_are_skipped_with_a_count(tmp_path, corpus, alarm):
    os.mkfifo(corpus / '1b.txt')
    os.mkfifo(tmp_path / 'pipe.jsonl')
    paths = [str(corpus), str(tmp_path / 'pipe.jsonl')]
    tok = CharTokenizer.fit(paths)
    store = build_token_store(paths, tok, str(tmp_path / 'cache'), verbose=False, workers=1)
    assert tok.decode(store['train'].tokens) == ''.join(DOCS) and store['meta']['n_docs'] == 3
    skipped = store['meta']['skipped']
    assert len(skipped) == 2 and '1b.txt: not a regular file' in skipped[0] and 'pipe.jsonl' in skipped[1]
    again = build_token_store(paths, tok, str(tmp_path / 'cache'), verbose=False, workers=1)
    assert again['meta']['skipped'] == skipped  # reused, still counted
    with pytest.raises(MissingFileError, match=r'no text found \(1 not regular files left out\)'):
        find_inputs([str(tmp_path / 'pipe.jsonl')])


def _damage(folder, how):
    """Damage a store's files the way a bad copy or a disk error would."""
    train = os.path.join(folder, 'train.u16')
    if how == 'cut':
        os.truncate(train, 100)
    elif how == 'odd size':
        os.truncate(train, os.path.getsize(train) - 1)
    elif how == 'id 65535':
        with open(train, 'r+b') as f:
            f.seek(6)
            f.write(b'\xff\xff')
    elif how == 'offsets deleted':
        os.remove(os.path.join(folder, 'train_offsets.npy'))
    else:
        with open(os.path.join(folder, 'meta.json'), 'w') as f:
            f.write('{"n_docs": 3')


@pytest.mark.parametrize('how', ['cut', 'odd size', 'id 65535', 'offsets deleted', 'meta cut'])
def test_a_damaged_store_is_refused_on_open_and_rebuilt_on_build(tmp_path, how):
    folder = tmp_path / 'corpus'
    folder.mkdir()
    for i in range(3):
        (folder / f'{i}.txt').write_text(f'document {i}: ' + 'some text here. ' * 50)
    tok = CharTokenizer.fit([str(folder)])
    cache = str(tmp_path / 'cache')
    store = build_token_store([str(folder)], tok, cache, verbose=False, workers=1)
    before = _digests(store['folder'])
    del store
    _damage(os.path.join(cache, os.listdir(cache)[0]), how)
    path = os.path.join(cache, os.listdir(cache)[0])
    with pytest.raises(DataError) as err:
        open_token_store(path, tok)
    assert '\n' not in str(err.value) and path in str(err.value), str(err.value)
    with pytest.warns(DataWarning, match='rebuilt'):
        again = build_token_store([str(folder)], tok, cache, verbose=False, workers=1)
    assert _digests(again['folder']) == before and os.listdir(cache) == [os.path.basename(path)]
    assert len(again['train']) == again['meta']['n_train_tokens']


def test_a_killed_build_leaves_no_folder_after_the_next_build(tmp_path, corpus):
    tok = CharTokenizer.fit([str(corpus)])
    cache = tmp_path / 'cache'
    done = build_token_store([str(corpus / '0.txt')], tok, str(cache), verbose=False, workers=1)['folder']
    script = (f"import time, text_utils, token_store\n"
              f"text_utils.CharTokenizer.encode_chunk = lambda self, text: print('encoding', flush=True) or "
              f"time.sleep(600)\n"
              f"token_store.build_token_store([{str(corpus)!r}], text_utils.CharTokenizer({''.join(tok.chars)!r}), "
              f"{str(cache)!r}, verbose=False, workers=1)\n")
    builds, temporary = [], []
    try:
        for _ in range(2):  # one after the other, to know which temporary folder is whose
            builds.append(subprocess.Popen([sys.executable, '-c', script], cwd=ROOT, stdout=subprocess.PIPE, text=True))
            assert builds[-1].stdout.readline() == 'encoding\n'
            temporary += [name for name in os.listdir(cache) if name.startswith('.') and name not in temporary]
        assert len(temporary) == 2
        old = cache / ('.' + '0' * 32 + '.older')  # an older version's leftover: no owner file
        old.mkdir()
        (old / '0.train.u16').write_bytes(b'\x00\x01')
        os.utime(old / '0.train.u16', (0, 0))
        os.utime(old, (0, 0))
        kept = _digests(done)
        builds[0].kill()
        builds[0].wait()
        live = temporary[1:]
        live_before = _digests(cache / live[0])
        build_token_store([str(corpus / '2.txt')], tok, str(cache), verbose=False, workers=1)
        assert sorted(name for name in os.listdir(cache) if name.startswith('.')) == live
        assert _digests(cache / live[0]) == live_before and _digests(done) == kept
    finally:
        for p in builds:
            p.kill()
            p.wait()


def _small_files(folder, sizes):
    """One text file per size (characters, a newline last), distinct texts; returns them in order."""
    folder.mkdir()
    texts = []
    for i, size in enumerate(sizes):
        head = f'file {i:03d} '
        texts.append((head + 'abcdefgh ' * size)[:size - 1] + '\n')
        (folder / f'{i:03d}.txt').write_text(texts[-1])
    return texts


def test_a_few_dozen_files_get_a_validation_split_of_whole_documents(tmp_path):
    texts = _small_files(tmp_path / 'corpus', [100] * 40)
    tok = CharTokenizer.fit([str(tmp_path / 'corpus')])
    cache = str(tmp_path / 'cache')
    drawn = build_token_store([str(tmp_path / 'corpus')], tok, cache, valid_fraction=0.01, verbose=False)
    assert drawn['valid'] is None  # 1% of 40 documents: the hash draws none
    store = build_token_store([str(tmp_path / 'corpus')], tok, cache, valid_fraction=0.01, min_valid_tokens=250,
                              verbose=False)
    assert tok.decode(store['valid'].tokens) == ''.join(texts[-3:])  # as few last documents as hold 250 tokens
    assert tok.decode(store['train'].tokens) == ''.join(texts[:-3])
    np.testing.assert_array_equal(store['valid'].offsets, [0, 100, 200])
    assert (store['meta']['n_train_tokens'], store['meta']['n_valid_tokens']) == (3700, 300)
    assert store['folder'] != drawn['folder'] and len(os.listdir(cache)) == 2


def test_a_long_last_document_gives_its_last_tokens(tmp_path):
    texts = _small_files(tmp_path / 'corpus', [100] * 20 + [3000])
    tok = CharTokenizer.fit([str(tmp_path / 'corpus')])
    store = build_token_store([str(tmp_path / 'corpus')], tok, str(tmp_path / 'cache'), valid_fraction=0.01,
                              min_valid_tokens=250, verbose=False)
    assert tok.decode(store['valid'].tokens) == texts[-1][-250:]  # max(1% of 5000, 250) tokens
    assert tok.decode(store['train'].tokens) == ''.join(texts)[:-250]
    one = build_token_store([str(tmp_path / 'corpus' / '020.txt')], tok, str(tmp_path / 'cache'),
                            valid_fraction=0.05, min_valid_tokens=250, verbose=False)
    assert tok.decode(one['valid'].tokens) == texts[-1][-250:]  # a single document: max(5% of 3000, 250)
    few = build_token_store([str(tmp_path / 'corpus' / '000.txt')], tok, str(tmp_path / 'cache'),
                            valid_fraction=0.05, min_valid_tokens=60, verbose=False)
    assert few['valid'].tokens.size == 5  # no room for two windows: left as drawn


def test_a_corpus_whose_draw_suffices_keeps_its_split_and_key(tmp_path):
    _small_files(tmp_path / 'corpus', [100] * 200)
    tok = CharTokenizer.fit([str(tmp_path / 'corpus')])
    cache = str(tmp_path / 'cache')
    plain = build_token_store([str(tmp_path / 'corpus')], tok, cache, valid_fraction=0.1, verbose=False)
    before = _digests(plain['folder'])
    store = build_token_store([str(tmp_path / 'corpus')], tok, cache, valid_fraction=0.1, min_valid_tokens=500,
                              verbose=False)
    assert store['folder'] == plain['folder'] and os.listdir(cache) == [os.path.basename(plain['folder'])]
    assert _digests(store['folder']) == before and store['meta']['n_valid_tokens'] >= 500


def test_gpt2_store_holds_the_releases_ids_in_uint16_with_endoftext_between_documents(tmp_path, corpus,
                                                                                       monkeypatch):
    """GPT-2's 50,257 ids fit uint16 unsigned (<|endoftext|> is 50256): each document is its ids as
    the whole text's, then 50256 (the separator pretraining.separator_id gives GPT2Encoder), in
    chunks as small as 16 characters too."""
    from pretraining import separator_id
    from tests.conftest import GPT2_DIR
    from text_utils import GPT2Encoder
    tok = GPT2Encoder(str(GPT2_DIR / 'encoder.json'), str(GPT2_DIR / 'vocab.bpe'))
    assert separator_id(tok) == tok.encoder['<|endoftext|>'] == 50256
    monkeypatch.setattr(token_store, 'CHUNK_CHARS', 16)
    store = build_token_store([str(corpus)], tok, str(tmp_path / 'cache'), verbose=False, sep_id=separator_id(tok))
    tokens = store['train'].tokens
    expected = [i for ids in tok.encode(DOCS, verbose=False) for i in ids + [50256]]
    assert tokens.dtype == np.uint16 and store['meta']['vocab_size'] == 50257
    np.testing.assert_array_equal(np.asarray(tokens, dtype=np.int64), expected)
    ends = np.flatnonzero(np.asarray(tokens) == 50256)
    np.testing.assert_array_equal(store['train'].offsets, np.concatenate([[0], ends[:-1] + 1]))
    assert [tok.decode(tokens[a:b]) for a, b in zip(store['train'].offsets, ends)] == DOCS
