"""text_utils.GPT2Encoder: GPT-2's byte-level BPE, against the release's algorithm (bench/plain_gpt2_encoder.py,
written from SPEC.md) and `transformers`' GPT2Tokenizer built from the same files; and its files, told from GPT-1's."""
import json
import shutil

import numpy as np
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

import token_store
from bench.bench_encode import rocstories_fields
from bench.plain_gpt2_encoder import PlainGPT2Encoder
from errors import DataError, InputError, MissingFileError
from tests.conftest import BPE_PATH, ENCODER_PATH, SHARED
from tests.test_text_utils import _without_project_on_path
from text_utils import GPT2Encoder, TextEncoder, Tokenizer, load_tokenizer
from token_store import build_token_store

GPT2_DIR = SHARED / 'data' / 'gpt2'
GPT2_ENCODER, GPT2_BPE = GPT2_DIR / 'encoder.json', GPT2_DIR / 'vocab.bpe'

HARD_CASES = [
    '', ' ', '  ', '\n', '\n\n', ' \n', '\n ', 'a\n\nb', 'a \n b', 'a  b', 'a   ', '   a', '\t\ta', 'x\r\ny\rz',
    "don't can't won't I'm y'all rock'n'roll o'clock", "'s 't 're 've 'm 'll 'd", "'S 'T", "''s '''t", " 's",
    "He said 'hi'", 'Hello world', ' Hello world', 'Hello  world', 'Hello\tworld', 'end with spaces   ',
    'café naïve résumé Ångström', 'cafe\u0301', 'ﬁne ﬂower', 'ＬＯＵＤ　ＮＯＩＳＥＳ', 'İstanbul ǅ ß ẞ',
    'Привет, мир!', '你好，世界。', 'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया', 'こんにちは、世界', '한국어 텍스트',
    '😀😃🎉 emoji 👨‍👩‍👧 family', '🇺🇸 flag', ' 😀', '😀😀😀', 'a\u200bb\u200dc\ufeffd',
    '\x00\x01\x02\x1b[31mred\x1b[0m\x7f', '\x1c\x1d\x1e\x1f', 'tab\tand\x0bvertical\x0cfeed',
    'line\u2028sep\u2029para\x85next', 'nbsp\u00a0here\u3000ideo', '\u180e\u200b mongolian', 'a' * 300,
    'supercalifragilisticexpialidocious' * 20, 'ababababababababab', '1,000,000 3.14159 -42 1/2 ²³ ½ ٣',
    'http://example.com/path?q=1&x=2 e-mail@example.org', ':) :-( <3 ;)', '<|endoftext|>', 'a<|endoftext|>b',
    '\\n literal backslash n', 'C:\\Users\\me', '\uf8ff private \U000f0000', '\U0010ffff\uffff unassigned',
    'Ἀθῆναι Ελληνικά', '    def f(x):\n        return x\n', '$5.00 50% #hashtag @user', '...!!!???',
]


@pytest.fixture(scope='module')
def gpt2():
    return GPT2Encoder(str(GPT2_ENCODER), str(GPT2_BPE))


@pytest.fixture(scope='module')
def plain():
    return PlainGPT2Encoder(GPT2_ENCODER, GPT2_BPE)


@pytest.fixture(scope='module')
def hf_gpt2():
    """transformers' GPT2Tokenizer built from the same two files (transformers 5: the Rust `tokenizers` BPE)."""
    with _without_project_on_path():
        pytest.importorskip('transformers')
        from transformers import GPT2Tokenizer
    tok = GPT2Tokenizer(str(GPT2_ENCODER), str(GPT2_BPE))  # vocab(_file), merges(_file) in transformers 4 and 5
    # split_special_tokens: the text '<|endoftext|>' is text, as in the release.
    return lambda texts: tok(texts, split_special_tokens=True)['input_ids']


@pytest.fixture(scope='module')
def roc_texts(rocstories_dir):
    return rocstories_fields(rocstories_dir)


def test_rocstories_ids_equal_the_release_algorithm_and_transformers(gpt2, plain, hf_gpt2, roc_texts):
    ids = gpt2.encode(roc_texts)
    assert len(roc_texts) == 11226
    assert ids == [plain.encode(text) for text in roc_texts]
    assert ids == hf_gpt2(roc_texts)


def test_hard_cases_equal_the_release_algorithm_and_transformers(gpt2, plain, hf_gpt2):
    ids = gpt2.encode(HARD_CASES)
    assert ids == [plain.encode(text) for text in HARD_CASES]
    assert ids == hf_gpt2(HARD_CASES)
    assert [gpt2.decode(i) for i in ids] == HARD_CASES


def test_known_ids():
    enc = GPT2Encoder(str(GPT2_ENCODER), str(GPT2_BPE))
    assert enc.encode(['Hello world', ' Hello world', 'a\n\nb', 'a\n\n']) == [[15496, 995], [18435, 995],
                                                                              [64, 198, 198, 65], [64, 628]]


WHITESPACE_AND_CONTRACTIONS = st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000'sdtmlrveSa1.😀é", max_size=40)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), WHITESPACE_AND_CONTRACTIONS))
def test_any_text_equals_the_release_algorithm_and_round_trips(gpt2, plain, text):
    ids = gpt2.encode([text])[0]
    assert ids == plain.encode(text)
    assert gpt2.decode(ids) == text


@pytest.mark.slow
def test_every_assigned_code_point_in_context_equals_the_release_algorithm(gpt2, plain):
    """Each assigned code point beside letters, digits, spaces and a contraction (unassigned and private
    ones one in 97): the pattern's Unicode classes in tiktoken's engine are those of the `regex` module."""
    rare = regex.compile(r'[\p{Cn}\p{Co}\p{Cs}]')
    points = [c for c in map(chr, range(0x110000)) if not rare.match(c) or ord(c) % 97 == 0 and not '\ud800' <= c
              <= '\udfff']
    assert len(points) > 170000
    bad = []
    for start in range(0, len(points), 512):
        text = ''.join(f"a{c}b {c}1{c}{c} 's{c}\t{c}\n " for c in points[start:start + 512])
        if gpt2.encode([text])[0] != plain.encode(text):
            bad.append(points[start])
    assert bad == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 50256), max_size=30))
def test_decode_equals_the_release_on_any_ids(gpt2, plain, ids):
    assert gpt2.decode(ids) == plain.decode(ids)


def stream(tokenizer, ids):
    decoder = tokenizer.stream_decoder(continuation=True)
    return [decoder.push(i) for i in ids], decoder.flush()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 50256), max_size=30))
def test_stream_pieces_join_to_decode(gpt2, ids):
    pieces, rest = stream(gpt2, ids)
    assert ''.join(pieces) + rest == gpt2.decode(ids) == gpt2.continuation_text(ids)


def test_stream_prints_a_split_character_whole_never_garbage(gpt2):
    text = 'é😀 👨‍👩‍👧 你好'
    ids = gpt2.encode([text])[0]
    assert any(b'\xef\xbf\xbd' == gpt2.decode([i]).encode() for i in ids)  # some ids hold part of a character
    pieces, rest = stream(gpt2, ids)
    assert '\ufffd' not in ''.join(pieces) and ''.join(pieces) == text and rest == ''
    pieces, rest = stream(gpt2, ids[:2])  # cut inside the emoji: what is left prints as U+FFFD at the end
    assert pieces == ['é', ''] and rest == '\ufffd' == gpt2.decode(ids[:2])[1:]


def test_the_interface(gpt2):
    assert isinstance(gpt2, Tokenizer)
    assert (gpt2.vocab_size, gpt2.newline_id, gpt2.special_tokens) == (50257, 50256, {'<|endoftext|>': 50256})
    assert gpt2.decode([50256]) == '<|endoftext|>' and 50256 not in gpt2.encode(['<|endoftext|>'])[0]
    chunk = gpt2.encode_chunk('Hello world')
    assert chunk.dtype == np.uint16 and chunk.tolist() == [15496, 995]
    with pytest.raises(TypeError, match='expected a list of str'):
        gpt2.encode('Hello')
    with pytest.raises(TypeError, match=r'texts\[1\] is int'):
        gpt2.encode(['a', 3])
    with pytest.raises(InputError, match=r'texts\[0\] holds the lone surrogate U\+D800 at position 1: expected text '
                                         'that UTF-8 can encode'):
        gpt2.encode(['x\ud800y'])
    with pytest.raises(InputError, match='id 50257 is not in the vocabulary of 50257 symbols'):
        gpt2.decode([50257])


def test_end_of_text_separates_pretraining_documents(gpt2):
    from pretraining import separator_id
    assert separator_id(gpt2) == 50256 == gpt2.encoder['<|endoftext|>']


def test_special_tokens_added_by_finetuning():
    enc = GPT2Encoder(str(GPT2_ENCODER), str(GPT2_BPE))
    fingerprint = enc.fingerprint()
    for name in ('_start_', '_delimiter_', '_classify_'):
        enc.encoder[name] = len(enc.encoder)
    assert enc.vocab_size == 50260 and enc.special_tokens == {'<|endoftext|>': 50256, '_start_': 50257,
                                                              '_delimiter_': 50258, '_classify_': 50259}
    ids = [50257, *enc.encode(['Hi é'])[0], 50259]
    assert enc.decode(ids) == '_start_Hi é_classify_' and enc.fingerprint() == fingerprint
    assert ''.join(stream(enc, ids)[0]) == enc.decode(ids)
    assert enc.decode([enc.encode(['😀'])[0][0], 50258]) == '\ufffd_delimiter_'  # the bytes before it end there


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=['Cs']), max_size=80), st.lists(st.integers(0, 80)))
def test_a_document_in_pieces_gives_the_ids_of_the_whole(gpt2, text, cuts):
    cuts = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
    ids = [int(i) for part in gpt2.encode_document(iter(pieces)) for i in part]
    assert ids == gpt2.encode([text])[0]


def test_a_token_store_of_gpt2_ids(tmp_path, gpt2, monkeypatch):
    docs = ['First line.\n\nSecond   line  \n', ' spaces \n\n\n', 'no line break at all', '😀\n é\n']
    folder = tmp_path / 'corpus'
    folder.mkdir()
    for i, doc in enumerate(docs):
        (folder / f'{i}.txt').write_text(doc, encoding='utf-8')
    monkeypatch.setattr(token_store, 'CHUNK_CHARS', 4)  # a chunk per line or less
    store = build_token_store([str(folder)], gpt2, str(tmp_path / 'cache'), sep_id=gpt2.newline_id, verbose=False)
    expected = [i for doc in docs for i in gpt2.encode([doc])[0] + [50256]]
    assert store['train'].tokens.tolist() == expected and store['meta']['tokenizer'] == gpt2.fingerprint()


# ---------------------------------------------------------------- files: GPT-1's and GPT-2's, both namings

@pytest.fixture(scope='module')
def hf_gpt2_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp('gpt2-hf')
    shutil.copyfile(GPT2_ENCODER, folder / 'vocab.json')
    shutil.copyfile(GPT2_BPE, folder / 'merges.txt')
    return folder


def test_load_tokenizer_picks_gpt2_by_names_and_by_content(tmp_path, gpt2, hf_gpt2_folder):
    assert type(load_tokenizer(str(GPT2_DIR))) is GPT2Encoder
    from_hf = load_tokenizer(str(hf_gpt2_folder))
    assert type(from_hf) is GPT2Encoder and from_hf.fingerprint() == gpt2.fingerprint()
    assert GPT2Encoder.found_in(str(hf_gpt2_folder)) and not TextEncoder.found_in(str(hf_gpt2_folder))
    gpt1 = tmp_path / 'gpt1-hf'
    gpt1.mkdir()
    shutil.copyfile(ENCODER_PATH, gpt1 / 'vocab.json')
    shutil.copyfile(BPE_PATH, gpt1 / 'merges.txt')
    assert type(load_tokenizer(str(gpt1))) is TextEncoder and not GPT2Encoder.found_in(str(gpt1))
    given = load_tokenizer(str(tmp_path / 'none'), str(GPT2_ENCODER), str(GPT2_BPE))
    assert type(given) is GPT2Encoder and given.paths == (str(GPT2_ENCODER), str(GPT2_BPE))


def test_save_and_load_beside_a_model(tmp_path, gpt2):
    written = gpt2.save(str(tmp_path / 'model'))
    assert written == [str(tmp_path / 'model' / name) for name in ('vocab.json', 'merges.txt')]
    back = load_tokenizer(str(tmp_path / 'model'))
    assert type(back) is GPT2Encoder and back.fingerprint() == gpt2.fingerprint()
    assert back.encode(HARD_CASES[:20]) == gpt2.encode(HARD_CASES[:20])


def one_line_error(error, match, build):
    with pytest.raises(error, match=match) as err:
        build()
    assert '\n' not in str(err.value)


def test_files_of_the_other_model_are_named_as_such(tmp_path):
    one_line_error(DataError, r"encoder.json holds GPT-2's vocabulary \(byte-level\): expected GPT-1's \(words end "
                              r"in '</w>'\); GPT-2's files are read by GPT2Encoder",
                   lambda: TextEncoder(str(GPT2_ENCODER), str(GPT2_BPE)))
    one_line_error(DataError, r"encoder_bpe_40000.json holds GPT-1's vocabulary \(words end in '</w>'\): expected "
                              r"GPT-2's \(byte-level\); GPT-1's files are read by TextEncoder",
                   lambda: GPT2Encoder(str(ENCODER_PATH), str(BPE_PATH)))
    one_line_error(MissingFileError, r"holds neither .*encoder_bpe_40000.json .* nor GPT-2's encoder.json and "
                                     r"vocab.bpe nor .*vocab.json", lambda: load_tokenizer(str(tmp_path / 'none')))


@pytest.mark.parametrize('vocab, merges', [(ENCODER_PATH, GPT2_BPE), (GPT2_ENCODER, BPE_PATH)])
def test_a_mixed_pair_is_refused(tmp_path, vocab, merges):
    mixed = tmp_path / 'mixed'
    mixed.mkdir()
    shutil.copyfile(vocab, mixed / 'vocab.json')
    shutil.copyfile(merges, mixed / 'merges.txt')
    gpt1_first = vocab == ENCODER_PATH
    held = (r"the vocabulary GPT-1's \(words end in '</w>'\), the merges GPT-2's \(byte-level\)" if gpt1_first else
            r"the vocabulary GPT-2's \(byte-level\), the merges GPT-1's \(words end in '</w>'\)")
    message = rf"BPE files .*vocab.json and .*merges.txt are not one model's pair: {held}; expected both from one"
    for build in (TextEncoder, GPT2Encoder, lambda *paths: load_tokenizer(str(mixed))):
        one_line_error(DataError, message, lambda: build(str(mixed / 'vocab.json'), str(mixed / 'merges.txt')))


def _edited_vocabulary(tmp_path, edit):
    encoder = json.loads(GPT2_ENCODER.read_text(encoding='utf-8'))
    edit(encoder)
    path = tmp_path / 'encoder.json'
    path.write_text(json.dumps(encoder), encoding='utf-8')
    return path


@pytest.mark.parametrize('edit, message', [
    (lambda e: e.pop('Ġthe'), r'expected the ids to be the integers 0..50255, each once: the id 262 is missing'),
    (lambda e: e.update({'<|extra|>': 5}), r'expected the ids to be the integers 0..50257, each once: the id 5 is '
                                           r'given twice'),
    (lambda e: e.update({'Ġthe': '262'}), r"each once: 'Ġthe' has the id '262'"),
    (lambda e: e.update({'!': 262, 'Ġthe': 0}), r"gives the byte 0x21 \('!'\) the id 262: expected one of the ids "
                                                 r"0..255"),
])
def test_a_broken_vocabulary_is_refused(tmp_path, edit, message):
    path = _edited_vocabulary(tmp_path, edit)
    one_line_error(DataError, r'encoder.json .*' + message, lambda: GPT2Encoder(str(path), str(GPT2_BPE)))


def test_merges_of_another_vocabulary_are_refused(tmp_path):
    lines = GPT2_BPE.read_text(encoding='utf-8').split('\n')
    swapped = tmp_path / 'vocab.bpe'
    swapped.write_text('\n'.join(lines[:2] + [lines[3], lines[2]] + lines[4:]), encoding='utf-8')
    one_line_error(DataError, r"vocab.bpe line 3 merges 'h' 'e', which .*encoder.json gives the id 258: expected "
                              r"257 \(256 \+ its rank; merges of another vocabulary\?\)",
                   lambda: GPT2Encoder(str(GPT2_ENCODER), str(swapped)))
    cut = tmp_path / 'cut.bpe'
    cut.write_text('\n'.join(lines[:1000]), encoding='utf-8')
    one_line_error(DataError, r"cut.bpe holds 999 merges, expected 50000: one per symbol of .*encoder.json between its "
                              r"256 bytes and '<\|endoftext\|>' \(a file cut short, or from another vocabulary\?\)",
                   lambda: GPT2Encoder(str(GPT2_ENCODER), str(cut)))


def test_files_that_are_not_utf8_name_the_line(tmp_path):
    bad = tmp_path / 'merges.txt'
    bad.write_bytes(GPT2_BPE.read_bytes().replace(b'\n', b'\n\xff', 1))
    one_line_error(DataError, r'BPE merges file .*merges.txt is not UTF-8 text: line 2 holds the byte 0xff, '
                              r"expected GPT-2's vocab.bpe", lambda: GPT2Encoder(str(GPT2_ENCODER), str(bad)))
    one_line_error(MissingFileError, r"nothing.json not found: expected GPT-2's encoder.json",
                   lambda: GPT2Encoder(str(tmp_path / 'nothing.json'), str(GPT2_BPE)))
