"""GPT-1 text pipeline: ftfy, standardize, spaCy tokens, lower-case, 40,000-merge BPE.

Token ids are identical to OpenAI's finetune-transformer-lm encoder for every
input, quirks included (see TextEncoder.bpe). Encoding is faster than the
original: texts go to spaCy's tokenizer without the pipeline around it,
repeated texts are encoded once, every word's ids are cached, and ftfy is
skipped where it cannot change anything.
"""
import json
import os
import re

import ftfy
import spacy
from tqdm import tqdm

from errors import DataError, InputError, MissingFileError

# Runs of one repeated character among - ~ ! " ; ? + , ) ( / * [ ] } { | _
# (the spaCy tokenizer of 2018 split these badly on the books corpus). Not the
# backslash: the original's pattern was a plain string, so the '\\+' in its source
# reached the regex engine as '\+', a literal plus, and backslashes were never padded.
_SPACED_RUN = re.compile(r'''(([-~!";?+,)(/*\[\]}{|_])\2*)''')
_NEWLINE_RUN = re.compile(r'\s*\n\s*')
_OTHER_SPACE_RUN = re.compile(r'[^\S\n]+')
_REPLACEMENTS = (('\u2014', '-'), ('\u2013', '-'), ('\u2015', '-'), ('\u2026', '...'), ('\u00b4', "'"))

END_OF_WORD = '</w>'
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


class TextEncoder:
    """Encode texts to GPT-1 BPE ids and decode ids back to text.

    `encoder` maps symbol -> id, `decoder` maps id -> symbol, `bpe_ranks` maps
    a symbol pair -> its merge rank.
    """

    def __init__(self, encoder_path, bpe_path):
        """Take the paths of encoder_bpe_40000.json and vocab_40000.bpe (or of a Hugging Face
        folder's vocab.json and merges.txt; see find_bpe_files).

        Raises MissingFileError for a missing file, DataError for a malformed one
        or for merges that do not build the vocabulary's symbols.
        """
        self.encoder = _load_encoder(encoder_path)
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

    def stream_decoder(self):
        """Return a fresh StreamDecoder: decode ids one at a time while they are generated."""
        return StreamDecoder(self)


class StreamDecoder:
    """Decode ids one at a time for printing as they arrive, never splitting a word.

    push(id) returns the text to print now (often ''), flush() the rest after
    the last id. Guarantee: for any ids, the pieces of push(ids[0]), ...,
    push(ids[-1]), flush() concatenated equal text_encoder.decode(ids) exactly.
    A word (the symbols up to one ending in '</w>') is printed whole, in one
    piece; the whitespace after a word is held back and printed before the
    next one, so no piece ends in whitespace and nothing trails the output.
    """

    def __init__(self, text_encoder):
        """Take the TextEncoder whose vocabulary the ids index."""
        self.text_encoder = text_encoder
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
        body = self._held.rstrip()
        piece = body if self._started else body.lstrip()
        if piece:
            self._started = True
            self._held = self._held[len(body):]
        return piece
