"""A deliberately plain re-statement of the original GPT-1 text pipeline.

It is the reference that tests/test_text_utils.py and bench/bench_encode.py
compare `text_utils.TextEncoder` against, so it is written straight from the
description in SPEC.md ("Text pipeline") and shares no code with
text_utils.py: one text at a time, one spaCy call per text, a simple merge
loop per word, no caches. Keep it slow and obvious.
"""
import json

import ftfy
import spacy

# Characters whose runs the original surrounded with spaces. No backslash: the
# original's pattern was a plain string, in which the '\\+' it seems to hold is '\+'.
SPACED_CHARS = set('-~!";?+,)(/*[]}{|_')
REPLACEMENTS = [('\u2014', '-'), ('\u2013', '-'), ('\u2015', '-'), ('\u2026', '...'), ('\u00b4', "'")]


def plain_standardize(text):
    """str -> str: the original's standardize, written as character loops instead of regexes."""
    for old, new in REPLACEMENTS:
        text = text.replace(old, new)
    # Surround each run of one repeated special character with single spaces.
    pieces = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in SPACED_CHARS:
            j = i
            while j < len(text) and text[j] == ch:
                j += 1
            pieces.append(' ' + text[i:j] + ' ')
            i = j
        else:
            pieces.append(ch)
            i += 1
    text = ''.join(pieces)
    # A whitespace run that holds a newline becomes ' \n ' (the regex \s*\n\s*
    # swallows every newline of the run); any other whitespace run becomes ' '.
    out = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            j = i
            while j < len(text) and text[j].isspace():
                j += 1
            out.append(' \n ' if '\n' in text[i:j] else ' ')
            i = j
        else:
            out.append(text[i])
            i += 1
    return ''.join(out).strip()


def plain_bpe(token, ranks):
    """One lower-cased token -> the original's space-joined symbol string."""
    word = list(token[:-1]) + [token[-1] + '</w>']
    while len(word) > 1:
        pairs = {(word[k], word[k + 1]) for k in range(len(word) - 1)}
        first, second = min(pairs, key=lambda pair: ranks.get(pair, float('inf')))
        if (first, second) not in ranks:
            break
        merged = []
        k = 0
        while k < len(word):
            if k + 1 < len(word) and word[k] == first and word[k + 1] == second:
                merged.append(first + second)
                k += 2
            else:
                merged.append(word[k])
                k += 1
        word = merged
    joined = ' '.join(word)
    # The original rewrote this one string, the BPE of spaCy's '\n ' token.
    if joined == '\n  </w>':
        joined = '\n</w>'
    return joined


class PlainEncoder:
    """encode(list of str) -> list of list of int, exactly as the original did, slowly."""

    def __init__(self, encoder_path, bpe_path):
        with open(encoder_path, encoding='utf-8') as f:
            self.encoder = json.load(f)
        with open(bpe_path, encoding='utf-8') as f:
            lines = f.read().split('\n')[1:-1]
        self.ranks = {}
        for rank, line in enumerate(lines):
            self.ranks[tuple(line.split())] = rank
        self.nlp = spacy.blank('en')

    def encode(self, texts):
        out = []
        for text in texts:
            ids = []
            for token in self.nlp(plain_standardize(ftfy.fix_text(text))):
                for symbol in plain_bpe(token.text.lower(), self.ranks).split(' '):
                    ids.append(self.encoder.get(symbol, 0))
            out.append(ids)
        return out
