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

# Runs of one repeated character among - ~ ! " ; ? + , ) ( / * [ ] } { | _
# (the spaCy tokenizer of 2018 split these badly on the books corpus). Not the
# backslash: the original's pattern was a plain string, so the '\\+' in its source
# reached the regex engine as '\+', a literal plus, and backslashes were never padded.
_SPACED_RUN = re.compile(r'''(([-~!";?+,)(/*\[\]}{|_])\2*)''')
_NEWLINE_RUN = re.compile(r'\s*\n\s*')
_OTHER_SPACE_RUN = re.compile(r'[^\S\n]+')
_REPLACEMENTS = (('\u2014', '-'), ('\u2013', '-'), ('\u2015', '-'), ('\u2026', '...'), ('\u00b4', "'"))

END_OF_WORD = '</w>'
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


def _load_encoder(path):
    """Path of encoder_bpe_40000.json -> dict symbol -> id, ids exactly 0..len-1."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"BPE vocabulary file {path} not found: expected encoder_bpe_40000.json from OpenAI's finetune-transformer-lm model/ folder")
    try:
        with open(path, encoding='utf-8') as f:
            encoder = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"BPE vocabulary file {path} is malformed: expected a JSON object of symbol -> id ({e})") from None
    if not isinstance(encoder, dict) or not encoder:
        raise ValueError(f"BPE vocabulary file {path} is malformed: expected a non-empty JSON object of symbol -> id, got {type(encoder).__name__}")
    # Ids must cover 0..n-1 so that every id encode() returns indexes the embedding.
    if any(type(i) is not int for i in encoder.values()) or sorted(encoder.values()) != list(range(len(encoder))):
        raise ValueError(f"BPE vocabulary file {path} is malformed: expected the ids to be the integers 0..{len(encoder) - 1}, each once")
    return encoder


def _load_merges(path):
    """Path of vocab_40000.bpe -> dict (left, right) -> rank, rank = line order after the #version line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"BPE merges file {path} not found: expected vocab_40000.bpe from OpenAI's finetune-transformer-lm model/ folder")
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.read().split('\n')
    except UnicodeDecodeError as e:
        raise ValueError(f"BPE merges file {path} is malformed: not UTF-8 ({e})") from None
    if not lines[0].startswith('#version'):
        raise ValueError(f"BPE merges file {path} is malformed: expected a '#version' first line, got {lines[0][:40]!r}")
    while lines and lines[-1] == '':
        lines.pop()
    ranks = {}
    for number, line in enumerate(lines[1:], start=2):
        pair = tuple(line.split())
        if len(pair) != 2:
            raise ValueError(f"BPE merges file {path} is malformed: line {number} is {line[:40]!r}, expected two symbols separated by a space")
        # A repeated merge keeps its last rank, as dict(zip(merges, ranks)) did in the original.
        ranks[pair] = number - 2
    return ranks


class TextEncoder:
    """Encode texts to GPT-1 BPE ids and decode ids back to text.

    `encoder` maps symbol -> id, `decoder` maps id -> symbol, `bpe_ranks` maps
    a symbol pair -> its merge rank.
    """

    def __init__(self, encoder_path, bpe_path):
        """Take the paths of encoder_bpe_40000.json and vocab_40000.bpe."""
        self.encoder = _load_encoder(encoder_path)
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.bpe_ranks = _load_merges(bpe_path)
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

        The ids are those of the original encoder; every id is below len(encoder). Shows a tqdm bar over the distinct texts when verbose. Raises TypeError
        naming the position of any item that is not a str.
        """
        texts = list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"TextEncoder.encode: texts[{index}] is {type(text).__name__} {text!r:.60}, expected str")
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

    def decode(self, ids):
        """Take a sequence of int ids, return readable text: symbols joined, '</w>' as a space, stripped.

        Ids added to `encoder` after construction (special tokens) are picked
        up; an id known to neither raises ValueError.
        """
        ids = [int(i) for i in ids]
        if any(i not in self.decoder for i in ids):
            self.decoder = {v: k for k, v in self.encoder.items()}
        unknown = [i for i in ids if i not in self.decoder]
        if unknown:
            raise ValueError(f"TextEncoder.decode: id {unknown[0]} is not in the vocabulary of {len(self.decoder)} symbols")
        return ''.join(self.decoder[i] for i in ids).replace(END_OF_WORD, ' ').strip()
