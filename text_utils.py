"""The tokenizers: one interface (Tokenizer), GPT-1's BPE (TextEncoder) and characters (CharTokenizer).

GPT-1's text pipeline: ftfy, standardize, spaCy tokens, lower-case, 40,000-merge BPE.
Token ids are identical to OpenAI's finetune-transformer-lm encoder for every input,
quirks included (see TextEncoder.bpe). Encoding is faster than the original: texts go
to spaCy's tokenizer without the pipeline around it, repeated texts are encoded once,
every word's ids are cached, and ftfy is skipped where it cannot change anything.

A model folder holds its tokenizer's files beside the weights (Tokenizer.save: vocab.json
and merges.txt for BPE, char_vocab.json for characters); load_tokenizer(folder) reads back
whichever one is there.
"""
import abc
import hashlib
import json
import os
import re
import shutil

import ftfy
import numpy as np
import spacy
from tqdm import tqdm

from errors import DataError, InputError, MissingFileError
from token_store import MAX_U16, NotUTF8Error, file_digest, find_inputs, iter_documents
from utils import read_json

# Runs of one repeated character among - ~ ! " ; ? + , ) ( / * [ ] } { | _
# (the spaCy tokenizer of 2018 split these badly on the books corpus). Not the
# backslash: the original's pattern was a plain string, so the '\\+' in its source
# reached the regex engine as '\+', a literal plus, and backslashes were never padded.
_SPACED_RUN = re.compile(r'''(([-~!";?+,)(/*\[\]}{|_])\2*)''')
_NEWLINE_RUN = re.compile(r'\s*\n\s*')
_OTHER_SPACE_RUN = re.compile(r'[^\S\n]+')
_REPLACEMENTS = (('\u2014', '-'), ('\u2013', '-'), ('\u2015', '-'), ('\u2026', '...'), ('\u00b4', "'"))

END_OF_WORD = '</w>'
CHAR_VOCAB = 'char_vocab.json'  # a character model's vocabulary, beside the weights
UNKNOWN = '<unk>'  # id 0 in OpenAI's vocabulary; encode() maps every unknown symbol to id 0
RELEASE_BPE_FILES = ('encoder_bpe_40000.json', 'vocab_40000.bpe')  # OpenAI's model/ folder
HF_BPE_FILES = ('vocab.json', 'merges.txt')  # a Hugging Face openai-gpt folder: the same BPE
_ENCODER_HINT = ("encoder_bpe_40000.json from OpenAI's finetune-transformer-lm model/ folder "
                 "(or vocab.json from a Hugging Face openai-gpt folder)")
_MERGES_HINT = ("vocab_40000.bpe from OpenAI's finetune-transformer-lm model/ folder "
                "(or merges.txt from a Hugging Face openai-gpt folder)")
# spaCy yields '\n ' for the ' \n ' that standardize leaves; its BPE joins to this string,
# which the original rewrote to the vocabulary's newline symbol.
_NEWLINE_BPE = '\n  ' + END_OF_WORD
_NEWLINE_SYMBOL = '\n' + END_OF_WORD


def text_standardize(text):
    """Take a str, return it standardized as the original did before tokenizing.

    Dashes and ellipses are replaced by ASCII, runs of the characters above get
    a space on each side, a whitespace run holding a newline becomes ' \\n ',
    any other whitespace run becomes one space, and the ends are stripped.
    """
    for old, new in _REPLACEMENTS:
        text = text.replace(old, new)
    text = _SPACED_RUN.sub(r' \1 ', text)
    if text.isprintable():
        # The only whitespace a printable str can hold is ' ' (tests check every
        # code point), so split() and join() do the two regexes below, faster.
        return ' '.join(text.split())
    text = _NEWLINE_RUN.sub(' \n ', text)
    text = _OTHER_SPACE_RUN.sub(' ', text)
    return text.strip()


def _fix_text(text):
    """str -> ftfy.fix_text(str), skipping ftfy where it provably changes nothing.

    ftfy only alters non-ASCII text, control characters, line breaks and HTML
    entities, so printable ASCII without '&' comes back unchanged (a test
    checks this against ftfy); skipping it saves a third of the encoding time.
    """
    if text.isascii() and text.isprintable() and '&' not in text:
        return text
    return ftfy.fix_text(text)


def _read_text(path, kind, expected):
    """Read a vocabulary or merges file as UTF-8 text with universal newlines, as open() did.

    kind names the file in messages ('BPE merges file'), expected says which file
    belongs there. Returns the str. Raises MissingFileError if `path` is not a
    file, DataError if it cannot be read or is not UTF-8 (naming the line).
    """
    if not os.path.isfile(path):
        raise MissingFileError(f"{kind} {path} not found: expected {expected}")
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as err:
        raise DataError(f"{kind} {path} could not be read: {err.strerror or err}") from None
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as err:
        line = data.count(b'\n', 0, err.start) + 1
        raise DataError(f"{kind} {path} is not UTF-8 text: line {line} holds the byte 0x{data[err.start]:02x}, "
                        f"expected {expected}") from None
    return text.replace('\r\n', '\n').replace('\r', '\n')


def _load_encoder(path):
    """Path of encoder_bpe_40000.json (or Hugging Face's vocab.json) -> dict symbol -> id, ids exactly 0..len-1."""
    text = _read_text(path, 'BPE vocabulary file', _ENCODER_HINT)
    try:
        encoder = json.loads(text)
    except ValueError as err:
        raise DataError(f"BPE vocabulary file {path} is malformed: expected a JSON object of symbol -> id "
                        f"(line {err.lineno}: {err.msg})") from None
    if not isinstance(encoder, dict) or not encoder:
        raise DataError(f"BPE vocabulary file {path} is malformed: expected a non-empty JSON object of symbol -> id, "
                        f"got {type(encoder).__name__}")
    # Ids must cover 0..n-1 so that every id encode() returns indexes the embedding.
    if any(type(i) is not int for i in encoder.values()) or sorted(encoder.values()) != list(range(len(encoder))):
        raise DataError(f"BPE vocabulary file {path} is malformed: expected the ids to be the integers "
                        f"0..{len(encoder) - 1}, each once")
    return encoder


def _load_merges(path):
    """Path of vocab_40000.bpe (or Hugging Face's merges.txt) -> list of (left, right) pairs in rank order.

    The first line is the '#version' line; trailing empty lines are ignored.
    """
    lines = _read_text(path, 'BPE merges file', _MERGES_HINT).split('\n')
    if not lines[0].startswith('#version'):
        raise DataError(f"BPE merges file {path} is malformed: expected a '#version' first line, got {lines[0][:40]!r}")
    while lines and lines[-1] == '':
        lines.pop()
    merges = []
    for number, line in enumerate(lines[1:], start=2):
        pair = tuple(line.split())
        if len(pair) != 2:
            raise DataError(f"BPE merges file {path} is malformed: line {number} is {line[:40]!r}, "
                            "expected two symbols separated by a space")
        merges.append(pair)
    return merges


def _check_merges_match(encoder, merges, encoder_path, bpe_path):
    """Raise DataError unless the merges build exactly the vocabulary's multi-character symbols.

    In OpenAI's files (and Hugging Face's copies) every symbol longer than one
    character ('</w>' aside), '<unk>' excepted, is made by exactly one merge and
    every merge makes one of them: a merges file cut short or from another
    vocabulary would still load but tokenize differently.
    """
    built = {symbol for symbol in encoder if len(symbol.removesuffix(END_OF_WORD)) > 1} - {UNKNOWN}
    if len(merges) != len(built):
        raise DataError(f"BPE merges file {bpe_path} holds {len(merges)} merges, expected {len(built)}: one per "
                        f"multi-character symbol of {encoder_path} (a file cut short, or from another vocabulary?)")
    missing = built - {left + right for left, right in merges}
    if missing:
        raise DataError(f"BPE merges file {bpe_path} builds {len(built) - len(missing)} of the {len(built)} "
                        f"multi-character symbols of {encoder_path}, expected all: none builds {min(missing)!r} "
                        f"(repeated merges, or from another vocabulary?)")


def find_bpe_files(model_dir):
    """Take a model folder; return (encoder_path, bpe_path) of the BPE files in it.

    OpenAI's release pair encoder_bpe_40000.json and vocab_40000.bpe when both
    are there, else a Hugging Face openai-gpt folder's vocab.json and merges.txt
    (the same vocabulary and merges). Raises MissingFileError naming both pairs
    when neither is complete.
    """
    for names in (RELEASE_BPE_FILES, HF_BPE_FILES):
        paths = tuple(os.path.join(model_dir, name) for name in names)
        if all(os.path.isfile(p) for p in paths):
            return paths
    where = f"{model_dir} holds" if os.path.isdir(model_dir) else f"model folder {model_dir} does not exist: it holds"
    raise MissingFileError(f"{where} neither OpenAI's BPE files {' and '.join(RELEASE_BPE_FILES)} "
                           f"nor a Hugging Face openai-gpt folder's {' and '.join(HF_BPE_FILES)}")


class Tokenizer(abc.ABC):
    """Text to token ids and back, the vocabulary's size and the files that keep it beside a model.

    Every script reads text through this interface; TextEncoder (GPT-1's BPE) and
    CharTokenizer (one id per character) implement it. Ids run 0 .. vocab_size - 1.
    """

    @abc.abstractmethod
    def encode(self, texts, verbose=True):
        """Take a list of str, return one list of int ids per text (a tqdm bar when verbose and slow)."""

    @abc.abstractmethod
    def decode(self, ids):
        """Take a sequence of int ids, return their text."""

    @property
    @abc.abstractmethod
    def vocab_size(self):
        """The number of ids, special tokens included."""

    @property
    @abc.abstractmethod
    def special_tokens(self):
        """{token: id} of the ids that stand for no text."""

    @property
    @abc.abstractmethod
    def newline_id(self):
        """The id of a line break, which ends each document of a token store; None when there is none."""

    @abc.abstractmethod
    def fingerprint(self):
        """A str that names the vocabulary and its rules exactly: a token store keeps it and refuses
        any tokenizer with another."""

    @abc.abstractmethod
    def files(self):
        """{file name: write(path)} of the files that hold this tokenizer in a model folder."""

    @classmethod
    @abc.abstractmethod
    def found_in(cls, folder):
        """Whether `folder` holds this kind of tokenizer's files."""

    @classmethod
    @abc.abstractmethod
    def load(cls, folder):
        """The tokenizer whose files `save` wrote into `folder`."""

    @abc.abstractmethod
    def stream_decoder(self, continuation=False):
        """A decoder of ids one at a time: push(id) -> the text to print now, flush() -> the rest; the
        pieces join to decode(ids), or with `continuation` to continuation_text(ids)."""

    def save(self, folder):
        """Write files() into `folder` (made if missing); returns their paths."""
        os.makedirs(folder, exist_ok=True)
        paths = []
        for name, write in self.files().items():
            paths.append(os.path.join(folder, name))
            write(paths[-1])
        return paths

    def continuation_text(self, ids):
        """The text of ids generated after a prompt, as it is printed: decode's, with any
        whitespace decode drops at either end but a continuation keeps."""
        return self.decode(ids)

    def encode_chunk(self, text):
        """(n,) uint16 ids of one piece of a document cut after a line break: what a token store
        writes for it, the pieces of a document one after another."""
        return np.asarray(self.encode([text], verbose=False)[0], dtype=np.uint16)


class TextEncoder(Tokenizer):
    """Encode texts to GPT-1 BPE ids and decode ids back to text.

    `encoder` maps symbol -> id, `decoder` maps id -> symbol, `bpe_ranks` maps
    a symbol pair -> its merge rank, `paths` is (encoder_path, bpe_path). Symbols a
    caller adds to `encoder` (fine-tuning's _start_, _delimiter_, _classify_) are
    special tokens, like '<unk>'.
    """

    def __init__(self, encoder_path, bpe_path):
        """Take the paths of encoder_bpe_40000.json and vocab_40000.bpe (or of a Hugging Face
        folder's vocab.json and merges.txt; see find_bpe_files).

        Raises MissingFileError for a missing file, DataError for a malformed one
        or for merges that do not build the vocabulary's symbols.
        """
        self.paths = (encoder_path, bpe_path)
        self.encoder = _load_encoder(encoder_path)
        self._n_symbols = len(self.encoder)  # ids from here on are special tokens added later
        self.decoder = {v: k for k, v in self.encoder.items()}
        merges = _load_merges(bpe_path)
        _check_merges_match(self.encoder, merges, encoder_path, bpe_path)
        # A repeated merge keeps its last rank, as dict(zip(merges, ranks)) did in the original.
        self.bpe_ranks = {pair: rank for rank, pair in enumerate(merges)}
        # spacy.load('en') of the original is gone in spaCy 3; the blank English
        # pipeline has the same tokenizer and needs no model download.
        self.nlp = spacy.blank('en')
        # Only token texts are used; the lexical attributes spaCy computes for each
        # new word (like_num, shape, ...) do not affect tokenization and cost a
        # third of the first encoding pass.
        self.nlp.vocab.lex_attr_getters = {}
        self._ids_cache = {}

    def bpe(self, token):
        """Take one lower-cased token, return its BPE symbols joined by single spaces.

        Merges the lowest-ranked adjacent pair, every non-overlapping occurrence
        left to right, until no adjacent pair has a rank. Like the original, a
        token holding spaces yields a string that splits into empty symbols, and
        spaCy's '\\n ' token is rewritten to the newline symbol.
        """
        word = list(token[:-1])
        word.append(token[-1] + END_OF_WORD)
        ranks = self.bpe_ranks
        while len(word) > 1:
            best_rank = None
            for pair in zip(word, word[1:]):
                rank = ranks.get(pair)
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, first, second = rank, pair[0], pair[1]
            if best_rank is None:
                break
            merged = []
            i, n = 0, len(word)
            while i < n:
                if i < n - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        joined = ' '.join(word)
        return _NEWLINE_SYMBOL if joined == _NEWLINE_BPE else joined

    def _token_ids(self, token):
        """spaCy Token -> list of ids, stored in the cache; unknown symbols -> 0, as in the original."""
        ids = [self.encoder.get(symbol, 0) for symbol in self.bpe(token.text.lower()).split(' ')]
        self._ids_cache[token.orth] = ids
        return ids

    def encode(self, texts, verbose=True):
        """Take a list of str, return a list of lists of int ids, one list per text.

        The ids are those of the original encoder; every id is below len(encoder). Shows a tqdm bar over the distinct
        texts when verbose. Raises TypeError naming the position of any item that is not a str.
        """
        texts = list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"TextEncoder.encode: texts[{index}] is {type(text).__name__} {text!r:.60}, "
                                "expected str")
        # Equal texts encode equally, so each distinct one is tokenized once.
        distinct = list(dict.fromkeys(texts))
        cleaned = (text_standardize(_fix_text(text)) for text in distinct)
        docs = self.nlp.tokenizer.pipe(cleaned)
        if verbose:
            docs = tqdm(docs, total=len(distinct), ncols=80, leave=False)
        cache = self._ids_cache
        encoded = {}
        for text, doc in zip(distinct, docs):
            ids = []
            for token in doc:
                # Keyed by spaCy's hash of the token text, which its own caches rely on
                # too: reading it skips building a str per token.
                token_ids = cache.get(token.orth)
                ids += self._token_ids(token) if token_ids is None else token_ids
            encoded[text] = ids
        # Fresh lists, so a caller mutating one result cannot alter another.
        return [list(encoded[text]) for text in texts]

    def symbols(self, ids):
        """Take a sequence of int ids, return the list of their symbols ('</w>' kept).

        Ids added to `encoder` after construction (special tokens) are picked
        up; an id known to neither raises InputError (a ValueError).
        """
        ids = [int(i) for i in ids]
        if any(i not in self.decoder for i in ids):
            self.decoder = {v: k for k, v in self.encoder.items()}
        unknown = [i for i in ids if i not in self.decoder]
        if unknown:
            raise InputError(f"TextEncoder.decode: id {unknown[0]} is not in the vocabulary of "
                             f"{len(self.decoder)} symbols")
        return [self.decoder[i] for i in ids]

    def decode(self, ids):
        """Take a sequence of int ids, return readable text: symbols joined, '</w>' as a space, stripped.

        Special tokens and unknown ids: see symbols().
        """
        return ''.join(self.symbols(ids)).replace(END_OF_WORD, ' ').strip()

    def stream_decoder(self, continuation=False):
        """Return a fresh StreamDecoder: decode ids one at a time while they are generated."""
        return StreamDecoder(self, strip=' ' if continuation else None)

    def continuation_text(self, ids):
        """decode's text, except that line breaks at either end are kept (decode strips them, so a
        continuation of line breaks would read as '')."""
        return ''.join(self.symbols(ids)).replace(END_OF_WORD, ' ').strip(' ')

    def encode_chunk(self, text):
        """encode's ids of `text` as uint16, plus the newline symbol when `text` ends with a line break.

        The standardization strips a text's trailing line break, so a document cut after
        each line break would lose the newline symbol its whole text has there: with it
        added back, a document's pieces give the ids of its whole text, plus one newline
        symbol at its end when it ends with a line break."""
        ids = self.encode([text], verbose=False)[0]
        if text.rstrip(' \t').endswith('\n') and text.strip() and self.newline_id is not None:
            ids.append(self.newline_id)
        return np.asarray(ids, dtype=np.uint16)

    @property
    def vocab_size(self):
        return len(self.encoder)

    @property
    def special_tokens(self):
        added = {symbol: i for symbol, i in self.encoder.items() if i >= self._n_symbols}
        return {UNKNOWN: self.encoder[UNKNOWN], **added} if UNKNOWN in self.encoder else added

    @property
    def newline_id(self):
        return self.encoder.get(_NEWLINE_SYMBOL)

    def fingerprint(self):
        """'bpe:' and the sha256 of each of its two files."""
        return 'bpe:' + ':'.join(file_digest(p) for p in self.paths)

    def files(self):
        """The two BPE files as a Hugging Face folder names them (vocab.json, merges.txt), copied
        byte for byte (so that the copy's fingerprint is this one's)."""
        return {name: lambda dest, src=src: shutil.copyfile(src, dest) for name, src in zip(HF_BPE_FILES, self.paths)}

    @classmethod
    def found_in(cls, folder):
        return any(all(os.path.isfile(os.path.join(folder, n)) for n in names)
                   for names in (RELEASE_BPE_FILES, HF_BPE_FILES))

    @classmethod
    def load(cls, folder, encoder_path=None, bpe_path=None):
        """The BPE of `folder` (find_bpe_files); `encoder_path` and `bpe_path`, where given, replace
        its files (then the folder needs no BPE files of its own)."""
        if not (encoder_path and bpe_path):
            found = find_bpe_files(folder)
            encoder_path, bpe_path = encoder_path or found[0], bpe_path or found[1]
        return cls(encoder_path, bpe_path)


class StreamDecoder:
    """Decode ids one at a time for printing as they arrive, never splitting a word.

    push(id) returns the text to print now (often ''), flush() the rest after
    the last id. Guarantee: for any ids, the pieces of push(ids[0]), ...,
    push(ids[-1]), flush() concatenated equal text_encoder.decode(ids) exactly
    (continuation_text(ids) with strip=' '). A word (the symbols up to one ending
    in '</w>') is printed whole, in one piece; the whitespace after a word (with
    strip=' ', the spaces) is held back and printed before the next one, so no
    piece ends in it and nothing trails the output.
    """

    def __init__(self, text_encoder, strip=None):
        """Take the TextEncoder whose vocabulary the ids index, and the characters stripped at
        either end: None (any whitespace) as decode, ' ' as continuation_text."""
        self.text_encoder = text_encoder
        self.strip = strip
        self._held = ''  # decoded text not printed yet: an unfinished word and/or the whitespace before it
        self._started = False  # whether anything was printed: leading whitespace is dropped, as decode strips it

    def push(self, token_id):
        """Take one id (int-like); return the text to print now: '' until a word ends."""
        symbol = self.text_encoder.symbols([token_id])[0]
        self._held += symbol.replace(END_OF_WORD, ' ')
        return self._release() if symbol.endswith(END_OF_WORD) else ''

    def flush(self):
        """Return what is left (a word cut off by the end of generation); the decoder starts afresh."""
        piece = self._release()
        self._held, self._started = '', False
        return piece

    def _release(self):
        """The held text up to its last non-space character, now printable; keep the trailing whitespace."""
        body = self._held.rstrip(self.strip)
        piece = body if self._started else body.lstrip(self.strip)
        if piece:
            self._started = True
            self._held = self._held[len(body):]
        return piece


class CharTokenizer(Tokenizer):
    """Each distinct character of the training text is one id, in code point order.

    `chars` is the vocabulary (a sorted list of str of one character each); `fit(paths)`
    reads a corpus once to collect its characters. decode(encode([text])[0]) == text for
    any text made of these characters; there are no special tokens.
    """

    def __init__(self, chars):
        chars = sorted(set(chars))
        if not chars:
            raise DataError("the corpus has no characters: expected some text")
        if len(chars) > MAX_U16 + 1:
            raise DataError(f"the corpus has {len(chars)} distinct characters: a character vocabulary holds at "
                            f"most {MAX_U16 + 1} (ids are stored as uint16)")
        self.chars = chars
        self._points = np.array([ord(c) for c in chars], dtype=np.uint32)

    @classmethod
    def fit(cls, paths, verbose=False, strict=False, extra=''):
        """The characters of every input under `paths` (token_store.find_inputs) plus those of
        `extra`. A file that is not UTF-8 is left out (as build_token_store leaves it out), or
        with `strict` refused with NotUTF8Error."""
        seen = set(extra)
        for path in tqdm(find_inputs(paths), desc='characters', disable=not verbose, leave=False):
            try:
                for document in iter_documents(path):
                    for chunk in document:
                        seen.update(chunk)
            except NotUTF8Error:
                if strict:
                    raise
        return cls(seen)

    def encode(self, texts, verbose=True):
        """Take a list of str, return one list of int ids per text (verbose has no effect: it is fast).

        Raises InputError for a character outside the vocabulary, TypeError for an item that is not a str."""
        if isinstance(texts, str):
            raise TypeError(f"CharTokenizer.encode: texts is the str {texts!r:.60}, expected a list of str")
        return [self.encode_chunk(text).tolist() for text in texts]

    def encode_chunk(self, text):
        """(len(text),) uint16 ids of `text`, one per character."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode: got {type(text).__name__} {text!r:.60}, expected str")
        points = np.frombuffer(text.encode('utf-32-le', 'surrogatepass'), dtype=np.uint32)
        ids = np.searchsorted(self._points, points)
        bad = (ids >= len(self._points)) | (self._points[np.minimum(ids, len(self._points) - 1)] != points)
        if bad.any():
            c = chr(int(points[np.argmax(bad)]))
            raise InputError(f"character {c!r} (U+{ord(c):04X}) is not in the character vocabulary of "
                             f"{self.vocab_size} symbols: expected text made of the training corpus' characters")
        return ids.astype(np.uint16)

    def decode(self, ids):
        return ''.join(self.chars[int(i)] for i in ids)

    @property
    def vocab_size(self):
        return len(self.chars)

    @property
    def special_tokens(self):
        return {}

    @property
    def newline_id(self):
        i = int(np.searchsorted(self._points, ord('\n')))
        return i if i < len(self.chars) and self.chars[i] == '\n' else None

    def fingerprint(self):
        """'char:' and the sha256 of the characters."""
        return 'char:' + hashlib.sha256(''.join(self.chars).encode('utf-8', 'surrogatepass')).hexdigest()

    def stream_decoder(self, continuation=False):
        return _CharStream(self)

    def files(self):
        """char_vocab.json: {"chars": the characters in id order, "kind": "char"}."""
        return {CHAR_VOCAB: self._write}

    def _write(self, path):
        text = json.dumps({'kind': 'char', 'chars': ''.join(self.chars)}, indent=1, sort_keys=True) + '\n'
        tmp = f'{path}.tmp-{os.getpid()}'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, path)

    @classmethod
    def found_in(cls, folder):
        return os.path.isfile(os.path.join(folder, CHAR_VOCAB))

    @classmethod
    def load(cls, folder):
        """The vocabulary in `folder`'s char_vocab.json. Raises MissingFileError without one, DataError
        for a file that is not one."""
        path = os.path.join(folder, CHAR_VOCAB)
        expected = "the character vocabulary pretrain.py --tokenizer char writes"
        chars = read_json(path, expected).get('chars')
        if not isinstance(chars, str):
            raise DataError(f"{path} holds no string 'chars': expected {expected}")
        return cls(chars)


class _CharStream:
    """Every character is whole: push(id) returns it at once."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def push(self, token_id):
        return self.tokenizer.decode([token_id])

    def flush(self):
        return ''


def load_tokenizer(folder, encoder_path=None, bpe_path=None):
    """The tokenizer whose files a model folder holds: its char_vocab.json (CharTokenizer), else
    GPT-1's BPE files (TextEncoder.load; `encoder_path` and `bpe_path` replace the folder's).
    Raises MissingFileError naming the files expected when there are none."""
    if CharTokenizer.found_in(folder):
        return CharTokenizer.load(folder)
    return TextEncoder.load(folder, encoder_path, bpe_path)
