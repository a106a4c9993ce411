"""The tokenizers: one interface (Tokenizer), GPT-1's BPE (TextEncoder), GPT-2's byte-level BPE
(GPT2Encoder) and characters (CharTokenizer).

GPT-1's text pipeline: ftfy, standardize, spaCy tokens, lower-case, 40,000-merge BPE.
Token ids are identical to OpenAI's finetune-transformer-lm encoder for every input,
quirks included (see TextEncoder.bpe). Encoding is faster than the original: texts go
to spaCy's tokenizer without the pipeline around it, repeated texts are encoded once,
every word's ids are cached, and ftfy is skipped where it cannot change anything.
spaCy and ftfy load when a TextEncoder is built, not on import.

GPT-2's tokenizer: the release's pattern splits the text, each piece's UTF-8 bytes are
merged by rank; ids are identical to openai/gpt-2's encoder.py for every str UTF-8 can
encode, and decode(encode(s)) == s. tiktoken runs it, built from the two files.

A model folder holds its tokenizer's files beside the weights (Tokenizer.save: vocab.json
and merges.txt for either BPE, char_vocab.json for characters); load_tokenizer(folder) reads
back whichever one is there, telling GPT-1's files from GPT-2's by their content.
"""
import abc
import codecs
import hashlib
import json
import os
import re
import shutil

import numpy as np
import regex
import tiktoken
from tqdm import tqdm

from bpe_files import (END_OF_TEXT, END_OF_WORD, UNKNOWN, byte_to_char, check_gpt1_merges, check_gpt2_merges,
                       load_merges, load_vocabulary, merges_kind, vocabulary_kind)
from corpus import NotUTF8Error, file_digest, find_inputs, iter_documents
from errors import DataError, InputError, MissingFileError
from gpt1_text import StreamDecoder, fix_text, text_standardize
from utils import read_json

MAX_ID = 65535  # encode_chunk's ids are uint16
CHAR_VOCAB = 'char_vocab.json'  # a character model's vocabulary, beside the weights
RELEASE_BPE_FILES = ('encoder_bpe_40000.json', 'vocab_40000.bpe')  # OpenAI's GPT-1 model/ folder
GPT2_RELEASE_FILES = ('encoder.json', 'vocab.bpe')  # a model folder of OpenAI's GPT-2 release
HF_BPE_FILES = ('vocab.json', 'merges.txt')  # a Hugging Face openai-gpt or gpt2 folder
_ENCODER_HINT = ("encoder_bpe_40000.json from OpenAI's finetune-transformer-lm model/ folder "
                 "(or vocab.json from a Hugging Face openai-gpt folder)")
_MERGES_HINT = ("vocab_40000.bpe from OpenAI's finetune-transformer-lm model/ folder "
                "(or merges.txt from a Hugging Face openai-gpt folder)")
_GPT2_ENCODER_HINT = "GPT-2's encoder.json (or vocab.json from a Hugging Face gpt2 folder)"
_GPT2_MERGES_HINT = "GPT-2's vocab.bpe (or merges.txt from a Hugging Face gpt2 folder)"
# spaCy yields '\n ' for the ' \n ' that standardize leaves; its BPE joins to this string,
# which the original rewrote to the vocabulary's newline symbol.
_NEWLINE_BPE = '\n  ' + END_OF_WORD
_NEWLINE_SYMBOL = '\n' + END_OF_WORD
# openai/gpt-2's src/encoder.py splits text with this pattern (the `regex` module's classes).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_SURROGATE = re.compile('[\ud800-\udfff]')
# Where a document's text may be cut for GPT2Encoder.encode_document: whitespace after other text.
_GPT2_CUT = regex.compile(r'\S(?=\s)', flags=regex.REVERSE)
_MAX_HELD = 1 << 22  # characters held without such a place before they are encoded anyway


def find_bpe_files(model_dir):
    """Take a model folder; return (encoder_path, bpe_path) of GPT-1's BPE files in it.

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


def _has_files(folder, names):
    return all(os.path.isfile(os.path.join(folder, name)) for name in names)


_KINDS = {'gpt1': ("GPT-1's", "words end in '</w>'", 'TextEncoder'), 'gpt2': ("GPT-2's", 'byte-level', 'GPT2Encoder')}


def _refuse_other_kind(encoder, merges, want, encoder_path, bpe_path):
    """Raise DataError when the two files are recognizably two models' (a mixed pair), or the other
    model's (bpe_files.vocabulary_kind and merges_kind): one line naming the files, what they hold and
    what was expected."""
    kinds = {'vocabulary': vocabulary_kind(encoder), 'merges': merges_kind(merges)}
    if None not in kinds.values() and len(set(kinds.values())) == 2:
        held = ', '.join(f"the {what} {_KINDS[kind][0]} ({_KINDS[kind][1]})" for what, kind in kinds.items())
        raise DataError(f"BPE files {encoder_path} and {bpe_path} are not one model's pair: {held}; expected "
                        f"both from one model's folder")
    for (what, kind), path in zip(kinds.items(), (encoder_path, bpe_path)):
        if kind not in (None, want):
            (found, how, reader), (wanted, wanted_how, _) = _KINDS[kind], _KINDS[want]
            raise DataError(f"BPE {what} file {path} holds {found} {what} ({how}): expected {wanted} "
                            f"({wanted_how}); {found} files are read by {reader}")


class Tokenizer(abc.ABC):
    """Text to token ids and back, the vocabulary's size and the files that keep it beside a model.

    Every script reads text through this interface; TextEncoder (GPT-1's BPE), GPT2Encoder (GPT-2's
    byte-level BPE) and CharTokenizer (one id per character) implement it. Ids run 0 .. vocab_size - 1.
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
        """The id that ends each document of a token store (pretraining's separator): the line break of
        GPT-1's BPE and of characters, '<|endoftext|>' of GPT-2's; None when there is none."""

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

    def encode_document(self, chunks):
        """Yield the uint16 ids of one document given as consecutive pieces of its text (cut after line
        breaks), as a token store writes them: here encode_chunk of each piece."""
        for chunk in chunks:
            yield self.encode_chunk(chunk)


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
        self.encoder = load_vocabulary(encoder_path, _ENCODER_HINT)
        self._n_symbols = len(self.encoder)  # ids from here on are special tokens added later
        self.decoder = {v: k for k, v in self.encoder.items()}
        merges = load_merges(bpe_path, _MERGES_HINT)
        _refuse_other_kind(self.encoder, merges, 'gpt1', encoder_path, bpe_path)
        check_gpt1_merges(self.encoder, merges, encoder_path, bpe_path)
        # A repeated merge keeps its last rank, as dict(zip(merges, ranks)) did in the original.
        self.bpe_ranks = {pair: rank for rank, pair in enumerate(merges)}
        # spacy.load('en') of the original is gone in spaCy 3; the blank English
        # pipeline has the same tokenizer and needs no model download.
        import spacy  # loaded with the first TextEncoder: a script's --help stays light
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
        cleaned = (text_standardize(fix_text(text)) for text in distinct)
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
        return _bpe_files_in(folder, None, None)[0] is cls

    @classmethod
    def load(cls, folder, encoder_path=None, bpe_path=None):
        """The BPE of `folder` (find_bpe_files); `encoder_path` and `bpe_path`, where given, replace
        its files (then the folder needs no BPE files of its own)."""
        if not (encoder_path and bpe_path):
            found = find_bpe_files(folder)
            encoder_path, bpe_path = encoder_path or found[0], bpe_path or found[1]
        return cls(encoder_path, bpe_path)


class GPT2Encoder(Tokenizer):
    """Encode texts to GPT-2's byte-level BPE ids and decode ids back to text, as openai/gpt-2's encoder.py.

    `encoder` maps symbol -> id (a symbol's characters stand for bytes, bpe_files.byte_to_char),
    `paths` is (encoder_path, bpe_path). '<|endoftext|>' (50256) ends each document of a token store
    (newline_id); encode never yields it, since the release encodes the text '<|endoftext|>' as text.
    Symbols a caller adds to `encoder` (finetuning's) are special tokens, like '<|endoftext|>'.
    """

    def __init__(self, encoder_path, bpe_path):
        """Take the paths of GPT-2's encoder.json and vocab.bpe (or of a Hugging Face gpt2 folder's
        vocab.json and merges.txt).

        Raises MissingFileError for a missing file, DataError for a malformed one, for GPT-1's
        files or for merges that do not build the vocabulary's symbols in id order.
        """
        self.paths = (encoder_path, bpe_path)
        self.encoder = load_vocabulary(encoder_path, _GPT2_ENCODER_HINT)
        merges = load_merges(bpe_path, _GPT2_MERGES_HINT)
        _refuse_other_kind(self.encoder, merges, 'gpt2', encoder_path, bpe_path)
        check_gpt2_merges(self.encoder, merges, encoder_path, bpe_path)
        self._n_symbols = 256 + len(merges)  # ids from here on are special tokens
        self._n_loaded = len(self.encoder)  # ids from here on were added by a caller: not tiktoken's
        self._fingerprint = 'gpt2:' + hashlib.sha256(json.dumps(
            [sorted(self.encoder, key=self.encoder.get), merges], ensure_ascii=False).encode('utf-8')).hexdigest()
        to_latin1 = {ord(c): b for b, c in byte_to_char().items()}  # a symbol's bytes, as Latin-1 characters
        # With each merge's symbol at id 256 + rank (check_gpt2_merges), a symbol's id is its merge's
        # priority, which is what tiktoken ranks pieces by: the ids equal the release's merge loop
        # (tests compare both on every code point and on generated text).
        ranks = {symbol.translate(to_latin1).encode('latin-1'): i for symbol, i in self.encoder.items()
                 if i < self._n_symbols}
        specials = {symbol: i for symbol, i in self.encoder.items() if i >= self._n_symbols}
        self._bpe = tiktoken.Encoding('gpt2-bpe', pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                      special_tokens=specials)

    def _ids(self, text, where='text'):
        """One str -> list of int ids. InputError for a lone surrogate (no UTF-8 bytes: the release raises)."""
        if not isinstance(text, str):
            raise TypeError(f"GPT2Encoder.encode: {where} is {type(text).__name__} {text!r:.60}, expected str")
        surrogate = not text.isascii() and _SURROGATE.search(text)
        if surrogate:
            raise InputError(f"GPT2Encoder.encode: {where} holds the lone surrogate U+{ord(surrogate[0]):04X} at "
                             f"position {surrogate.start()}: expected text that UTF-8 can encode")
        return self._bpe.encode_ordinary(text)

    def encode(self, texts, verbose=True):
        """Take a list of str, return one list of int ids per text (verbose has no effect: it is fast).

        Raises TypeError for a str given as the list or an item that is not a str, InputError for a
        text holding a lone surrogate."""
        if isinstance(texts, str):
            raise TypeError(f"GPT2Encoder.encode: texts is the str {texts!r:.60}, expected a list of str")
        return [self._ids(text, f'texts[{index}]') for index, text in enumerate(texts)]

    def encode_chunk(self, text):
        return np.asarray(self._ids(text), dtype=np.uint16)

    def encode_document(self, chunks):
        """Yield the uint16 ids of a document given in consecutive pieces; together they are the ids of
        the whole text. A piece's end is encoded with the next piece: the text is cut where a whitespace
        run follows other text, the one place where the pattern's pieces never depend on what follows."""
        held = ''
        for chunk in chunks:
            text = held + chunk
            cut = _GPT2_CUT.search(text)
            at = cut.start() + 1 if cut else (len(text) if len(text) > _MAX_HELD else 0)
            held = text[at:]
            if at:
                yield self.encode_chunk(text[:at])
        if held:
            yield self.encode_chunk(held)

    def _added(self):
        """{id: symbol} of the special tokens a caller added to `encoder`."""
        return {i: s for s, i in self.encoder.items() if i >= self._n_loaded}

    def token_bytes(self, token_id):
        """The bytes an id stands for ('<|endoftext|>' as its text); None for an added special token.
        InputError for an id outside the vocabulary."""
        i = int(token_id)
        if 0 <= i < self._n_loaded:
            return self._bpe.decode_single_token_bytes(i)
        if i in self._added():
            return None
        raise InputError(f"GPT2Encoder.decode: id {i} is not in the vocabulary of {self.vocab_size} symbols")

    def decode(self, ids):
        """Take a sequence of int ids, return their text: their bytes as UTF-8, each byte sequence that
        is not UTF-8 as U+FFFD (as the release); an added special token as its symbol."""
        ids = [int(i) for i in ids]
        if all(0 <= i < self._n_loaded for i in ids):
            return self._bpe.decode(ids, errors='replace')
        stream = self.stream_decoder()
        return ''.join(stream.push(i) for i in ids) + stream.flush()

    def stream_decoder(self, continuation=False):
        """A fresh _ByteStream: text is printed as soon as its UTF-8 characters are complete."""
        return _ByteStream(self)

    @property
    def vocab_size(self):
        return len(self.encoder)

    @property
    def special_tokens(self):
        return {symbol: i for symbol, i in self.encoder.items() if i >= self._n_symbols}

    @property
    def newline_id(self):
        return self.encoder[END_OF_TEXT]

    def fingerprint(self):
        """'gpt2:' and the sha256 of the symbols in id order and the merges: the same for the
        release's files and a Hugging Face copy of them."""
        return self._fingerprint

    def files(self):
        """The two files as a Hugging Face gpt2 folder names them (vocab.json, merges.txt), copied
        byte for byte."""
        return {name: lambda dest, src=src: shutil.copyfile(src, dest) for name, src in zip(HF_BPE_FILES, self.paths)}

    @classmethod
    def found_in(cls, folder):
        return _bpe_files_in(folder, None, None)[0] is cls

    @classmethod
    def load(cls, folder, encoder_path=None, bpe_path=None):
        """GPT-2's files in `folder` (encoder.json and vocab.bpe, else vocab.json and merges.txt);
        `encoder_path` and `bpe_path`, where given, replace them."""
        paths = _folder_pair(folder, (GPT2_RELEASE_FILES, HF_BPE_FILES), encoder_path, bpe_path)
        return cls(*paths)


class _ByteStream:
    """Decode GPT-2 ids one at a time: push(id) returns the text of the characters whose last byte
    it brings (a character split across ids prints whole, never as U+FFFD), flush() the rest (bytes
    that end no character, as U+FFFD). The pieces join to decode(ids)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder('utf-8')(errors='replace')

    def push(self, token_id):
        data = self.tokenizer.token_bytes(token_id)
        if data is None:  # an added special token: the bytes before it end there
            return self.flush() + self.tokenizer._added()[int(token_id)]
        return self._utf8.decode(data)

    def flush(self):
        piece = self._utf8.decode(b'', final=True)
        self._utf8.reset()
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
        if len(chars) > MAX_ID + 1:
            raise DataError(f"the corpus has {len(chars)} distinct characters: a character vocabulary holds at "
                            f"most {MAX_ID + 1} (ids are stored as uint16)")
        self.chars = chars
        self._points = np.array([ord(c) for c in chars], dtype=np.uint32)

    @classmethod
    def fit(cls, paths, verbose=False, strict=False, extra=''):
        """The characters of every input under `paths` (corpus.find_inputs) plus those of
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


def _folder_pair(folder, pairs, encoder_path, bpe_path):
    """(encoder_path, bpe_path): the first pair of file names in `pairs` that `folder` holds, each
    replaced by the path given. MissingFileError naming every pair when none is there."""
    if encoder_path and bpe_path:
        return encoder_path, bpe_path
    found = next((names for names in pairs if _has_files(folder, names)), None)
    if found is None:
        raise MissingFileError(_no_bpe_files(folder))
    return encoder_path or os.path.join(folder, found[0]), bpe_path or os.path.join(folder, found[1])


def _no_bpe_files(folder):
    where = f"{folder} holds" if os.path.isdir(folder) else f"model folder {folder} does not exist: it holds"
    return (f"{where} neither OpenAI's BPE files {' and '.join(RELEASE_BPE_FILES)} nor GPT-2's "
            f"{' and '.join(GPT2_RELEASE_FILES)} nor a Hugging Face folder's {' and '.join(HF_BPE_FILES)}")


def _bpe_files_in(folder, encoder_path, bpe_path):
    """(TextEncoder or GPT2Encoder, encoder_path, bpe_path) of the BPE files of `folder` (the paths
    given replace them); (None, None, None) when there are none. GPT-1's and GPT-2's release names
    say which; a Hugging Face folder's vocab.json and merges.txt, or files given, are told apart by
    their merges (bpe_files.merges_kind); the class's reader refuses a mixed pair."""
    pairs = (RELEASE_BPE_FILES, GPT2_RELEASE_FILES, HF_BPE_FILES)
    try:
        encoder_path, bpe_path = _folder_pair(folder, pairs, encoder_path, bpe_path)
    except MissingFileError:
        return None, None, None
    names = (os.path.basename(encoder_path), os.path.basename(bpe_path))
    if names in (RELEASE_BPE_FILES, GPT2_RELEASE_FILES):
        return (TextEncoder if names == RELEASE_BPE_FILES else GPT2Encoder), encoder_path, bpe_path
    try:
        kind = merges_kind(load_merges(bpe_path, 'a BPE merges file'))
    except DataError:  # the reader says what is wrong
        kind = None
    return (GPT2Encoder if kind == 'gpt2' else TextEncoder), encoder_path, bpe_path


def load_bpe(encoder_path, bpe_path):
    """TextEncoder or GPT2Encoder of two BPE files, told apart as load_tokenizer tells them (by their release
    names, else by their merges); DataError for files that are not one model's pair."""
    cls, encoder_path, bpe_path = _bpe_files_in(os.path.dirname(encoder_path), encoder_path, bpe_path)
    return cls(encoder_path, bpe_path)


def load_tokenizer(folder, encoder_path=None, bpe_path=None):
    """The tokenizer whose files a model folder holds: its char_vocab.json (CharTokenizer), else its
    BPE files, GPT-1's (TextEncoder) or GPT-2's (GPT2Encoder) by their names or content; `encoder_path`
    and `bpe_path` replace the folder's. Raises MissingFileError naming the files expected when there
    are none, DataError for files that are not one model's pair."""
    if CharTokenizer.found_in(folder):
        return CharTokenizer.load(folder)
    cls, encoder_path, bpe_path = _bpe_files_in(folder, encoder_path, bpe_path)
    if cls is None:
        raise MissingFileError(_no_bpe_files(folder))
    return cls(encoder_path, bpe_path)
