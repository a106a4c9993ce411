"""text_utils: TextEncoder gives the original GPT-1 token ids, checked against independent references;
TextEncoder and CharTokenizer implement the Tokenizer interface alike."""
import ast
import contextlib
import json
import os
import random
import re
import sys
import warnings

import ftfy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.bench_encode import rocstories_fields
from bench.plain_encoder import PlainEncoder, plain_standardize
from errors import DataError, InputError, MissingFileError
from gpt1_text import StreamDecoder, text_standardize
from text_utils import CHAR_VOCAB, CharTokenizer, TextEncoder, Tokenizer, find_bpe_files, load_tokenizer

HARD_CASES = [
    '', ' ', '   \t  ', '\n', '\n\n\n', 'a\nb', 'Line one.\r\nLine two.\n\n  Line three.',
    "don't can't won't I'm y'all rock'n'roll o'clock", "He said \"hi\" -- twice.",
    'Wait\u2014what\u2013now\u2015ok\u2026 right\u00b4s', 'So... wait.... what?!?!',
    '---~~~!!!""";;;???+++,,,)))(((\\\\///***[[[]]]}}}{{{|||___',
    'The â€œquotedâ€\x9d text', 'cafÃ© naÃ¯ve', 'It\ufffd\ufffd\ufffds very quiet.', '&amp; &lt;b&gt; &eacute;',
    '<b>bold &amp; html</b>',
    'café naïve résumé Ångström façade', 'cafe\u0301', 'ﬁne ﬂower', 'ＬＯＵＤ　ＮＯＩＳＥＳ', 'İstanbul ǅ ß ẞ',
    'Привет, мир!', '你好，世界。', 'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया', 'こんにちは、世界', '한국어 텍스트',
    'Mixed: hello Привет 你好 مرحبا 😀!', '😀😃🎉 emoji 👨‍👩‍👧 family', '🇺🇸 flag',
    'x\ud800y lone surrogate', '\x00\x01\x02\x1b[31mred\x1b[0m\x7f', 'a\u200bb\u200dc\ufeffd',
    'tab\tand\x0bvertical\x0cfeed',
    'line\u2028sep\u2029para\x85next', 'nbsp\u00a0here\u3000ideo', 'a' * 300, 'supercalifragilisticexpialidocious' * 20,
    'ababababababababab', 'aaaaaaaaaaaaaaaaaaa', 'http://example.com/path?q=1&x=2 e-mail@example.org',
    'U.S.A. e.g. i.e. Mr. Dr. St. 3:30pm $5.00 50% #hashtag @user', ':) :-( <3 ;)', '1,000,000 3.14159 -42 1/2',
    '\\n literal backslash n', 'end with newline\n', '\n  start with newline', '\uf8ff private \U000f0000',
    '\U0010ffff\uffff unassigned', 'Ἀθῆναι Ελληνικά',
    'back\\slash', 'C:\\Users\\me\\file.txt', 'a \\ b', '\\', '\\\\\\', 'x\\\\y', '\\+\\+', '+\\++\\\\+',
    '\\(x\\)', 'slash\\/both/\\', 'end\\', '\\start', '\\n\\t escaped', 'ok\\\n\\next',
]


@pytest.fixture(scope='module')
def encoder(encoder_path, bpe_path):
    return TextEncoder(encoder_path, bpe_path)


@pytest.fixture(scope='module')
def plain(encoder_path, bpe_path):
    return PlainEncoder(encoder_path, bpe_path)


@pytest.fixture(scope='module')
def roc_texts(rocstories_dir):
    return rocstories_fields(rocstories_dir)


@pytest.fixture(scope='module')
def roc_ids(encoder, roc_texts):
    """encoder's ids of every ROCStories text, encoded once for the tests that read them."""
    return encoder.encode(roc_texts, verbose=False)


@pytest.mark.slow
def test_rocstories_ids_match_plain_original(roc_ids, plain, roc_texts):
    assert len(roc_texts) == 11226
    assert roc_ids == plain.encode(roc_texts)


@pytest.mark.parametrize('text', HARD_CASES)
def test_hard_case_ids_match_plain_original(encoder, plain, text):
    ids = encoder.encode([text], verbose=False)[0]
    assert ids == plain.encode([text])[0]
    assert all(0 <= i < len(encoder.encoder) for i in ids)


def test_hard_cases_in_one_batch_match_one_by_one(encoder_path, bpe_path, plain):
    # A fresh encoder, so batching, deduplication and the caches start from scratch.
    batch = HARD_CASES + HARD_CASES[::-1]
    assert TextEncoder(encoder_path, bpe_path).encode(batch, verbose=False) == plain.encode(batch)


def test_newline_quirk(encoder):
    # standardize leaves ' \n ', spaCy yields the token '\n ', its BPE joins to '\n  </w>',
    # which the original rewrote to '\n</w>': every newline run is one newline id.
    newline = encoder.encoder['\n</w>']
    assert newline == 40477
    a, b = encoder.encoder['a</w>'], encoder.encoder['b</w>']
    assert encoder.encode(['a\nb', 'a \n\n\t b', 'a\r\nb'], verbose=False) == [[a, newline, b]] * 3
    assert encoder.bpe('\n ') == '\n</w>'
    # Leading and trailing newlines are stripped away.
    assert encoder.encode(['\n\na\n'], verbose=False) == [[a]]


def test_unknown_symbols_are_id_0(encoder):
    assert encoder.decoder[0] == '<unk>'
    assert encoder.encode(['😀'], verbose=False) == [[0]]
    # Inside a word an unknown character stays one symbol that merges with nothing.
    assert encoder.encode(['a\u0800b'], verbose=False) == [[encoder.encoder['a'], 0, encoder.encoder['b</w>']]]


def test_encode_returns_fresh_lists_and_shows_progress(encoder, capsys):
    out = encoder.encode(['same text', 'same text'], verbose=True)
    out[0].append(-1)
    assert out[1] != out[0]
    assert encoder.encode(['same text'], verbose=False) == [out[1]]
    assert encoder.encode([], verbose=False) == []


def test_encode_rejects_non_str(encoder):
    with pytest.raises(TypeError, match=r'texts\[1\] is NoneType None, expected str'):
        encoder.encode(['fine', None])
    with pytest.raises(TypeError, match=r'texts\[0\] is float nan, expected str'):
        encoder.encode([float('nan')])


def test_decode_gives_back_standardized_lower_text(encoder, roc_texts, roc_ids):
    checked = 0
    for text, text_ids in zip(roc_texts, roc_ids):
        if 0 in text_ids:  # unknown symbols decode to '<unk>'; checked below
            continue
        # Up to spacing: decode puts a space after every token, spaCy split words from punctuation.
        standardized = text_standardize(ftfy.fix_text(text))
        assert encoder.decode(text_ids).split(' ') == [token.text.lower() for token in encoder.nlp(standardized)]
        assert ''.join(encoder.decode(text_ids).split()) == ''.join(standardized.lower().split())
        checked += 1
    assert checked > 11000
    assert encoder.decode(encoder.encode(['Hello, World!\nBye'], verbose=False)[0]) == 'hello , world ! \n bye'
    assert encoder.decode(encoder.encode(['a\u0800b 😀'], verbose=False)[0]) == 'a<unk>b <unk>'


def test_decode_special_tokens_and_bad_ids(encoder_path, bpe_path):
    enc = TextEncoder(encoder_path, bpe_path)
    enc.encoder['_start_'] = len(enc.encoder)
    assert enc.decode([len(enc.encoder) - 1] + enc.encode(['hi'], verbose=False)[0]) == '_start_hi'
    with pytest.raises(ValueError, match='id 99999 is not in the vocabulary of 40479 symbols'):
        enc.decode([99999])


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_any_unicode_encodes_inside_vocabulary(encoder, plain, text):
    ids = encoder.encode([text], verbose=False)[0]
    assert all(0 <= i < len(encoder.encoder) for i in ids)
    assert ids == plain.encode([text])[0]


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from('ab \n\t\r\x0b\u00a0\u2028-~!";?+,)(\\/*[]}{|_'
                                        '\u2014\u2013\u2015\u2026\u00b4.\''), max_size=30))
def test_standardize_matches_plain(text):
    assert text_standardize(text) == plain_standardize(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60))
def test_ftfy_leaves_printable_ascii_alone(text):
    # text_utils skips ftfy for printable ASCII without '&'; this is the fact it relies on.
    if '&' not in text:
        assert ftfy.fix_text(text) == text


def test_only_printable_whitespace_is_space():
    # text_standardize's fast path for printable text relies on this.
    assert [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() and c.isprintable()] == [' ']


def test_text_standardize_examples():
    assert text_standardize('  Hi\u2014there\u2026 you\u00b4re  "ok"?!  ') == 'Hi - there... you\'re " ok " ? !'
    assert text_standardize('a--b ~~c;;d') == 'a -- b ~~ c ;; d'
    assert text_standardize('x\t\ty\n \n z') == 'x y \n z'
    assert text_standardize('') == ''


@contextlib.contextmanager
def _without_project_on_path():
    """Hide the project's datasets.py, which shadows Hugging Face `datasets`, while importing transformers."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    saved_path = list(sys.path)
    saved_module = sys.modules.pop('datasets', None)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != root]
    try:
        yield
    finally:
        sys.path[:] = saved_path
        if saved_module is not None:
            sys.modules['datasets'] = saved_module


def test_bpe_matches_transformers_openai_gpt_bpe(encoder, roc_texts, encoder_path, bpe_path):
    # transformers 5.x's OpenAIGPTTokenizer no longer uses spaCy and ftfy (it pre-tokenizes with
    # BERT's normalizer and pre-tokenizer), so its full pipeline is not the original's and is not
    # compared. Its BPE model (the Rust `tokenizers` BPE, '</w>' suffix, unknown -> '<unk>' id 0)
    # is still an independent implementation of the BPE step: compare it word by word.
    with _without_project_on_path():
        pytest.importorskip('transformers')
        from transformers import OpenAIGPTTokenizer
    with open(encoder_path, encoding='utf-8') as f:
        vocab = json.load(f)
    with open(bpe_path, encoding='utf-8') as f:
        merges = [tuple(line.split()) for line in f.read().split('\n')[1:-1]]
    hf_bpe = OpenAIGPTTokenizer(vocab=vocab, merges=merges).backend_tokenizer.model
    words = {token.text.lower()
             for doc in encoder.nlp.tokenizer.pipe(text_standardize(ftfy.fix_text(t)) for t in roc_texts + HARD_CASES)
             for token in doc}
    # Tokens holding whitespace take the original's space-joining quirk, which is not BPE.
    words = sorted(w for w in words if not any(c.isspace() for c in w))
    assert len(words) > 9000
    ours = {w: [encoder.encoder.get(s, 0) for s in encoder.bpe(w).split(' ')] for w in words}
    mismatches = [w for w in words if [t.id for t in hf_bpe.tokenize(w)] != ours[w]]
    assert mismatches == []


def _tiny_files(folder, vocab=None, merges='#version: 0.2\na b</w>\n'):
    """Write a small vocabulary and merges file; return their paths."""
    enc, bpe = folder / 'encoder_bpe_40000.json', folder / 'vocab_40000.bpe'
    enc.write_text(json.dumps(vocab if vocab is not None else {'<unk>': 0, 'a': 1, 'b</w>': 2, 'ab</w>': 3}))
    bpe.write_text(merges)
    return enc, bpe


def test_tiny_vocabulary_works(tmp_path):
    enc = TextEncoder(*_tiny_files(tmp_path))
    assert enc.encode(['ab AB c'], verbose=False) == [[3, 3, 0]]


def test_missing_vocabulary_or_merges_file(tmp_path, encoder_path, bpe_path):
    with pytest.raises(FileNotFoundError,
                       match=r'BPE vocabulary file .*nothing.json not found: expected encoder_bpe_40000.json'):
        TextEncoder(tmp_path / 'nothing.json', bpe_path)
    with pytest.raises(FileNotFoundError, match=r'BPE merges file .*nothing.bpe not found: expected vocab_40000.bpe'):
        TextEncoder(encoder_path, tmp_path / 'nothing.bpe')


@pytest.mark.parametrize('content, message', [
    ('{"a": 0,', r'is malformed: expected a JSON object of symbol -> id'),
    ('["a", "b"]', r'is malformed: expected a non-empty JSON object of symbol -> id, got list'),
    ('{}', r'is malformed: expected a non-empty JSON object of symbol -> id, got dict'),
    ('{"a": 0, "b": 2}', r'is malformed: expected the ids to be the integers 0..1, each once'),
    ('{"a": 0, "b": "1"}', r'is malformed: expected the ids to be the integers 0..1, each once'),
])
def test_malformed_vocabulary(tmp_path, content, message):
    enc, bpe = _tiny_files(tmp_path)
    enc.write_text(content)
    with pytest.raises(ValueError, match=r'BPE vocabulary file .*encoder_bpe_40000.json ' + message):
        TextEncoder(enc, bpe)


@pytest.mark.parametrize('content, message', [
    ('', r"expected a '#version' first line, got ''"),
    ('a b\nc d\n', r"expected a '#version' first line, got 'a b'"),
    ('#version: 0.2\na b\nabc\n', r"line 3 is 'abc', expected two symbols separated by a space"),
    ('#version: 0.2\na b c\n', r"line 2 is 'a b c', expected two symbols"),
])
def test_malformed_merges(tmp_path, content, message):
    enc, bpe = _tiny_files(tmp_path, merges=content)
    with pytest.raises(ValueError, match=r'BPE merges file .*vocab_40000.bpe is malformed: ' + message):
        TextEncoder(enc, bpe)


# ---------------------------------------------------------------- the original's patterns, as Python read them

# The three lines of the original text_standardize (openai/finetune-transformer-lm, text_utils.py)
# that hold regular expressions, as source text. Their patterns are plain strings, not raw ones:
# Python resolves the escapes it knows ('\\' -> '\', '\n' -> newline) before the regex engine
# sees the pattern, and keeps the ones it does not know ('\?', '\s', ...) as written.
ORIGINAL_SOURCE = r"""
text = re.sub('''(-+|~+|!+|"+|;+|\?+|\++|,+|\)+|\(+|\\+|\/+|\*+|\[+|\]+|}+|{+|\|+|_+)''', r' \1 ', text)
text = re.sub('\s*\n\s*', ' \n ', text)
text = re.sub('[^\S\n]+', ' ', text)
"""
STANDARDIZE_ALPHABET = ('ab. \n\t\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u00a0\u1680\u2000\u2028\u2029\u3000'
                        '-~!";?+,)(\\/*[]}{|_\u2014\u2013\u2015\u2026\u00b4\'')


def original_substitutions():
    """[(pattern, replacement)] of the three re.sub calls, evaluated from their source as Python does."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # '\?' and the like: invalid escape warnings, kept as written
        tree = ast.parse(ORIGINAL_SOURCE)
    return [(ast.literal_eval(node.value.args[0]), ast.literal_eval(node.value.args[1])) for node in tree.body]


def original_standardize(text):
    """The original's standardize: the five replacements of SPEC.md, then its own three re.sub calls."""
    for old, new in [('\u2014', '-'), ('\u2013', '-'), ('\u2015', '-'), ('\u2026', '...'), ('\u00b4', "'")]:
        text = text.replace(old, new)
    for pattern, replacement in original_substitutions():
        text = re.sub(pattern, replacement, text)
    return text.strip()


def test_original_patterns_as_the_regex_engine_saw_them():
    (spaced, _), (newline, _), (other_space, _) = original_substitutions()
    # '\\+' in the source is '\+' for the engine: a literal plus; no alternative matches a backslash.
    assert '|\\+|\\/+|' in spaced and '\\\\' not in spaced
    assert re.search(spaced, 'a\\b') is None and re.fullmatch(spaced, '+++')
    # The whitespace patterns hold a real newline character where the source wrote '\n'.
    assert newline == '\\s*\n\\s*' and other_space == '[^\\S\n]+'
    assert original_standardize('back\\slash') == 'back\\slash'


@pytest.mark.parametrize('standardize', [text_standardize, plain_standardize], ids=['text_utils', 'plain'])
def test_standardize_equals_the_original_patterns_on_hard_cases_and_rocstories(standardize, roc_texts):
    texts = HARD_CASES + roc_texts + [''.join(random.Random(seed).choices(STANDARDIZE_ALPHABET, k=40))
                                      for seed in range(2000)]
    assert [standardize(t) for t in texts] == [original_standardize(t) for t in texts]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(STANDARDIZE_ALPHABET), max_size=40) | st.text(max_size=40))
def test_standardize_equals_the_original_patterns_on_any_text(text):
    assert text_standardize(text) == original_standardize(text)
    assert plain_standardize(text) == original_standardize(text)


def test_backslash_is_one_token_with_its_word(encoder, plain):
    # SPEC.md: `back\slash` stays one spaCy token, BPE back, \, slash</w>.
    e = encoder.encoder
    assert encoder.encode(['back\\slash'], verbose=False) == [[e['back'], e['\\'], e['slash</w>']]]
    assert plain.encode(['back\\slash']) == [[e['back'], e['\\'], e['slash</w>']]]
    assert text_standardize('a\\\\b \\ c') == 'a\\\\b \\ c'


# ---------------------------------------------------------------- merges that do not fit the vocabulary

def _real_merge_lines(bpe_path):
    with open(bpe_path, encoding='utf-8') as f:
        return f.read().split('\n')


def test_the_merges_rule_holds_exactly_for_the_real_files(encoder_path, bpe_path):
    # The rule TextEncoder checks: the merges build exactly the multi-character symbols, '<unk>' aside.
    with open(encoder_path, encoding='utf-8') as f:
        vocab = json.load(f)
    merges = [tuple(line.split()) for line in _real_merge_lines(bpe_path)[1:-1]]
    built = {s for s in vocab if len(s[:-4] if s.endswith('</w>') else s) > 1} - {'<unk>'}
    assert len(merges) == len(built) == 40000
    assert [a + b for a, b in merges] and {a + b for a, b in merges} == built


@pytest.mark.parametrize('keep, found', [(1, 0), (20001, 20000), (39999, 39998)])
def test_truncated_merges_file_is_refused(tmp_path, encoder_path, bpe_path, keep, found):
    cut = tmp_path / 'vocab_40000.bpe'
    cut.write_text('\n'.join(_real_merge_lines(bpe_path)[:keep]) + '\n', encoding='utf-8')
    with pytest.raises(DataError, match=rf'BPE merges file .*vocab_40000.bpe holds {found} merges, expected 40000: '
                                        rf'one per multi-character symbol of .*encoder_bpe_40000.json') as err:
        TextEncoder(encoder_path, cut)
    assert '\n' not in str(err.value)


def test_merges_that_build_other_symbols_are_refused(tmp_path, encoder_path, bpe_path):
    lines = _real_merge_lines(bpe_path)
    swapped = tmp_path / 'swapped.bpe'
    swapped.write_text('\n'.join(lines[:2] + [lines[1]] + lines[3:]), encoding='utf-8')  # merge 2 repeats merge 1
    with pytest.raises(DataError, match=r"swapped.bpe builds 39999 of the 40000 multi-character symbols of "
                                        r".*encoder_bpe_40000.json, expected all: none builds 'in'"):
        TextEncoder(encoder_path, swapped)


def test_no_trailing_newline_still_loads_every_merge(tmp_path, encoder_path, bpe_path, encoder):
    bare = tmp_path / 'bare.bpe'
    bare.write_text('\n'.join(_real_merge_lines(bpe_path)).rstrip('\n'), encoding='utf-8')
    assert TextEncoder(encoder_path, bare).bpe_ranks == encoder.bpe_ranks


@pytest.mark.parametrize('which', ['encoder', 'merges'])
def test_non_utf8_files_name_the_line(tmp_path, which):
    enc, bpe = _tiny_files(tmp_path)
    path = enc if which == 'encoder' else bpe
    path.write_bytes(path.read_bytes().replace(b'a', b'\n\xff', 1))
    kind = 'vocabulary' if which == 'encoder' else 'merges'
    line = 1 if which == 'encoder' else 2
    with pytest.raises(DataError, match=rf'BPE {kind} file .*{path.name} is not UTF-8 text: line {line + 1} holds '
                                        rf'the byte 0xff') as err:
        TextEncoder(enc, bpe)
    assert '\n' not in str(err.value)


def test_malformed_json_names_the_line(tmp_path):
    enc, bpe = _tiny_files(tmp_path)
    enc.write_text('{\n"a": 0,\n"b": 1,\n}\n')
    with pytest.raises(DataError, match=r'encoder_bpe_40000.json is malformed: expected a JSON object of symbol -> id '
                                        r'\(line 4: '):
        TextEncoder(enc, bpe)


def test_missing_files_are_missing_file_errors(tmp_path, encoder_path, bpe_path):
    with pytest.raises(MissingFileError, match=r'nothing.json not found: expected encoder_bpe_40000.json .*vocab.json'):
        TextEncoder(tmp_path / 'nothing.json', bpe_path)
    with pytest.raises(MissingFileError, match=r'nothing.bpe not found: expected vocab_40000.bpe .*merges.txt'):
        TextEncoder(encoder_path, tmp_path / 'nothing.bpe')
    with pytest.raises(MissingFileError):  # a folder is not the file
        TextEncoder(tmp_path, bpe_path)


# ---------------------------------------------------------------- Hugging Face's vocab.json and merges.txt

@pytest.fixture(scope='module')
def hf_bpe_folder(tmp_path_factory, encoder_path, bpe_path):
    """vocab.json and merges.txt, as in the hub's openai-gpt folder, written by transformers from the release files.

    transformers 5's tokenizer save_pretrained writes tokenizer.json only, so the pair is written
    by its BPE model's own save(), the files a Hugging Face folder of the tokenizer holds."""
    with _without_project_on_path():
        from transformers import OpenAIGPTTokenizer
    with open(encoder_path, encoding='utf-8') as f:
        vocab = json.load(f)
    merges = [tuple(line.split()) for line in _real_merge_lines(bpe_path)[1:-1]]
    folder = tmp_path_factory.mktemp('hf_openai_gpt')
    saved = OpenAIGPTTokenizer(vocab=vocab, merges=merges).backend_tokenizer.model.save(str(folder))
    assert sorted(os.path.basename(p) for p in saved) == ['merges.txt', 'vocab.json']
    return folder


def test_find_bpe_files_prefers_the_release_then_hugging_face(tmp_path, openai_dir, hf_bpe_folder):
    assert find_bpe_files(str(openai_dir)) == (str(openai_dir / 'encoder_bpe_40000.json'),
                                               str(openai_dir / 'vocab_40000.bpe'))
    assert find_bpe_files(str(hf_bpe_folder)) == (str(hf_bpe_folder / 'vocab.json'), str(hf_bpe_folder / 'merges.txt'))
    both = tmp_path / 'both'
    both.mkdir()
    for name in ('vocab.json', 'merges.txt', 'encoder_bpe_40000.json'):
        (both / name).write_text('{}')
    # the release pair is incomplete here, so the Hugging Face pair is taken
    assert find_bpe_files(str(both)) == (str(both / 'vocab.json'), str(both / 'merges.txt'))
    (both / 'vocab_40000.bpe').write_text('#version: 0.2\n')
    assert find_bpe_files(str(both)) == (str(both / 'encoder_bpe_40000.json'), str(both / 'vocab_40000.bpe'))


def test_find_bpe_files_names_both_pairs_when_neither_is_there(tmp_path):
    (tmp_path / 'vocab.json').write_text('{}')
    message = r'holds neither .*encoder_bpe_40000.json and vocab_40000.bpe nor .*vocab.json and merges.txt'
    with pytest.raises(MissingFileError, match=str(tmp_path) + ' ' + message):
        find_bpe_files(str(tmp_path))
    with pytest.raises(MissingFileError, match=r'model folder .*nowhere does not exist: it ' + message):
        find_bpe_files(str(tmp_path / 'nowhere'))


def test_hugging_face_files_give_the_release_ids(encoder, hf_bpe_folder, roc_texts, roc_ids):
    hf = TextEncoder(*find_bpe_files(str(hf_bpe_folder)))
    assert hf.encoder == encoder.encoder and hf.bpe_ranks == encoder.bpe_ranks
    assert hf.encode(roc_texts + HARD_CASES, verbose=False) == roc_ids + encoder.encode(HARD_CASES, verbose=False)


# ---------------------------------------------------------------- streaming decoding

def stream(decoder, ids):
    """-> (the pieces push() returned, the piece flush() returned)."""
    return [decoder.push(i) for i in ids], decoder.flush()


def check_stream(encoder, ids):
    """The stream's pieces concatenate to decode(ids) and each push piece ends a word of it."""
    pieces, rest = stream(encoder.stream_decoder(), ids)
    text = encoder.decode(ids)
    assert ''.join(pieces) + rest == text
    end = 0
    for piece, symbol in zip(pieces, encoder.symbols(ids)):
        assert piece == '' or symbol.endswith('</w>')  # text appears only when a word is complete
        end += len(piece)
        assert piece == '' or (not piece[-1].isspace() and (end == len(text) or text[end].isspace()))


def test_stream_pieces_equal_decode_on_random_ids(encoder):
    rng = random.Random(0)
    ws = [encoder.encoder[s] for s in ('\n</w>', '<unk>', '.</w>', 'a', 'b</w>')]
    for n in range(400):
        ids = [rng.choice(ws) if rng.random() < 0.3 else rng.randrange(len(encoder.encoder)) for _ in range(n % 40)]
        check_stream(encoder, ids)


def test_stream_pieces_equal_decode_on_real_text(encoder, roc_texts):
    for ids in encoder.encode(roc_texts[::7] + HARD_CASES, verbose=False):
        check_stream(encoder, ids)


def test_stream_never_splits_a_word(encoder):
    ids = encoder.encode(['Anna Karenina\n\nsaid'], verbose=False)[0]
    assert [encoder.decoder[i] for i in ids] == ['anna</w>', 'kar', 'en', 'ina</w>', '\n</w>', 'said</w>']
    pieces, rest = stream(encoder.stream_decoder(), ids)
    assert pieces == ['anna', '', '', ' karenina', '', ' \n said'] and rest == ''
    # cut mid-word: flush gives the unfinished word
    decoder = encoder.stream_decoder()
    assert [decoder.push(i) for i in ids[:3]] == ['anna', '', ''] and decoder.flush() == ' karen'
    assert decoder.push(ids[0]) == 'anna'  # flush started afresh: no leading space


def test_stream_decoder_special_tokens_and_bad_ids(encoder_path, bpe_path):
    enc = TextEncoder(encoder_path, bpe_path)
    decoder = enc.stream_decoder()
    assert isinstance(decoder, StreamDecoder)
    enc.encoder['_start_'] = len(enc.encoder)
    hi = enc.encode(['hi'], verbose=False)[0]
    assert stream(decoder, [len(enc.encoder) - 1] + hi) == (['', '_start_hi'], '')
    with pytest.raises(InputError, match='id 99999 is not in the vocabulary of 40479 symbols'):
        decoder.push(99999)


# ---------------------------------------------------------------- progress bars

def test_verbose_false_writes_nothing(encoder_path, bpe_path, capfd):
    enc = TextEncoder(encoder_path, bpe_path)
    enc.encode(['a few words', 'and more'], verbose=False)
    assert capfd.readouterr() == ('', '')
    enc.encode(['a few words', 'other words'])
    assert capfd.readouterr().err != ''  # the default still shows the bar


# ---------------------------------------------------------------- the Tokenizer interface

# The fingerprints token stores keep: a store built by an earlier version opens only while these stay.
RELEASE_BPE_FINGERPRINT = ('bpe:fdf49b19e7de236852091da09b84a7a3cd5e7b0e79916376cf45f6b8127b8078:'
                           '0ea9b51ae695073cd871e0358f7016311d671a7ff3963e367d5236522f294725')
CHAR_FINGERPRINTS = {'abc \n': 'char:059c394ebbdb2722be6510f4e140ee34eba3764e4b812d8d194e49d5ec49872d',
                     'The cat sat.\nünïcödé ☃': 'char:67cb065f9a71d3e11c69b4a90a4739634e4086ba1773a5cba26e31e4ea660cb5'}
CHAR_TEXT = 'The cat sat.\nünïcödé ☃'


def test_both_tokenizers_implement_the_interface(encoder):
    char = CharTokenizer(CHAR_TEXT)
    for tok in (encoder, char):
        assert isinstance(tok, Tokenizer)
    assert (encoder.vocab_size, encoder.newline_id, encoder.special_tokens) == (40478, 40477, {'<unk>': 0})
    assert char.vocab_size == len(set(CHAR_TEXT)) and char.special_tokens == {}
    assert char.newline_id == char.chars.index('\n') and CharTokenizer('ab').newline_id is None
    with pytest.raises(TypeError, match='abstract'):
        Tokenizer()


def test_fingerprints_are_those_stores_were_built_with(encoder):
    assert encoder.fingerprint() == RELEASE_BPE_FINGERPRINT
    for text, fingerprint in CHAR_FINGERPRINTS.items():
        assert CharTokenizer(text).fingerprint() == fingerprint
    assert CharTokenizer('abc').fingerprint() != CharTokenizer('abcd').fingerprint()


def test_special_tokens_added_to_the_bpe_vocabulary(encoder_path, bpe_path):
    enc = TextEncoder(encoder_path, bpe_path)
    for name in ('_start_', '_delimiter_', '_classify_'):
        enc.encoder[name] = len(enc.encoder)
    assert enc.special_tokens == {'<unk>': 0, '_start_': 40478, '_delimiter_': 40479, '_classify_': 40480}
    assert enc.vocab_size == 40481 and enc.fingerprint() == RELEASE_BPE_FINGERPRINT


def test_char_encode_and_decode_round_trip():
    tok = CharTokenizer(CHAR_TEXT)
    ids = tok.encode([CHAR_TEXT, 'cat', ''])
    assert ids[1] == [tok.chars.index(c) for c in 'cat'] and ids[2] == [] and tok.decode(ids[0]) == CHAR_TEXT
    assert tok.encode_chunk(CHAR_TEXT).dtype == 'uint16' and tok.encode_chunk(CHAR_TEXT).tolist() == ids[0]
    with pytest.raises(InputError, match=r"character 'z' \(U\+007A\) is not in the character vocabulary of 17 symbols"):
        tok.encode(['zebra'])
    with pytest.raises(TypeError, match='expected a list of str'):
        tok.encode('cat')


@pytest.mark.parametrize('kind', ['bpe', 'char'])
def test_save_and_load_beside_a_model_round_trip(kind, encoder, tmp_path):
    tok = encoder if kind == 'bpe' else CharTokenizer(CHAR_TEXT)
    written = tok.save(str(tmp_path / 'model'))
    names = {'bpe': ['vocab.json', 'merges.txt'], 'char': [CHAR_VOCAB]}[kind]
    assert written == [str(tmp_path / 'model' / name) for name in names]
    back = load_tokenizer(str(tmp_path / 'model'))
    assert type(back) is type(tok) and back.fingerprint() == tok.fingerprint()
    texts = ['The cat sat.\n', 'ünï ☃']
    assert back.encode(texts, verbose=False) == tok.encode(texts, verbose=False)


def test_load_tokenizer_prefers_a_character_vocabulary_and_names_what_is_missing(tmp_path, encoder_path, bpe_path):
    folder = tmp_path / 'model'
    with pytest.raises(MissingFileError, match='holds neither .*encoder_bpe_40000.json .* nor .*vocab.json'):
        load_tokenizer(str(folder))
    given = load_tokenizer(str(folder), str(encoder_path), str(bpe_path))  # the files named instead of the folder's
    assert given.paths == (str(encoder_path), str(bpe_path))
    CharTokenizer('ab\n').save(str(folder))
    assert isinstance(load_tokenizer(str(folder), str(encoder_path), str(bpe_path)), CharTokenizer)


def test_a_bad_character_vocabulary_is_refused(tmp_path):
    with pytest.raises(MissingFileError, match=f'{CHAR_VOCAB} is missing'):
        CharTokenizer.load(str(tmp_path))
    (tmp_path / CHAR_VOCAB).write_text('{"kind": "char"}')
    with pytest.raises(DataError, match="holds no string 'chars'"):
        CharTokenizer.load(str(tmp_path))
    (tmp_path / CHAR_VOCAB).write_text('[1, 2]')
    with pytest.raises(DataError, match='holds a JSON list'):
        CharTokenizer.load(str(tmp_path))


def test_bpe_chunks_add_back_the_newline_the_standardization_strips(encoder):
    nl = encoder.newline_id
    assert encoder.encode_chunk('Hello there.\nA second line\n').tolist() == [3570, 655, 239, nl, 246, 1420, 1584, nl]
    assert encoder.encode_chunk('x \n ').tolist() == [272, nl]  # spaces after the line break
    assert encoder.encode_chunk('  \n').tolist() == []  # no text: nothing to end
    assert encoder.encode_chunk('no line break').tolist() == encoder.encode(['no line break'])[0]


def test_continuation_stream_joins_to_the_continuation_text(encoder):
    rng = random.Random(1)
    ws = [encoder.encoder[s] for s in ('\n</w>', '.</w>', 'a', 'b</w>')]
    for n in range(300):
        ids = [rng.choice(ws) if rng.random() < 0.5 else rng.randrange(len(encoder.encoder)) for _ in range(n % 30)]
        pieces, rest = stream(encoder.stream_decoder(continuation=True), ids)
        assert ''.join(pieces) + rest == encoder.continuation_text(ids)
        assert all(not piece.endswith(' ') for piece in pieces)
    newlines = [encoder.newline_id] * 2
    assert encoder.continuation_text(newlines) == '\n \n' and encoder.decode(newlines) == ''
    char = CharTokenizer(' ab\n')
    ids = char.encode([' a\nb \n'])[0]
    assert stream(char.stream_decoder(continuation=True), ids) == (list(' a\nb \n'), '')
    assert char.continuation_text(ids) == char.decode(ids) == ' a\nb \n'
