"""A deliberately plain re-statement of GPT-2's released tokenizer (openai/gpt-2, src/encoder.py).

It is the reference that tests/test_gpt2_tokenizer.py and bench/bench_gpt2_tokenizer.py
compare `text_utils.GPT2Encoder` against, so it is written straight from SPEC.md
("GPT-2's release", Tokenizer) and shares no code with the library: the `regex`
module's pattern, a table of byte -> printable character, and a merge loop that
joins the lowest-ranked adjacent pair (every non-overlapping occurrence, left to
right) until no pair has a rank. No cache. Keep it slow and obvious.
"""
import json

import regex

PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def byte_to_char_table():
    """{byte value: one printable character}: the printable Latin-1 bytes stand for
    themselves, the other 68 bytes take the code points from 256 up, in byte order."""
    printable = (list(range(ord('!'), ord('~') + 1)) + list(range(ord('\u00a1'), ord('\u00ac') + 1))
                 + list(range(ord('\u00ae'), ord('\u00ff') + 1)))
    table = {b: chr(b) for b in printable}
    extra = 256
    for b in range(256):
        if b not in table:
            table[b] = chr(extra)
            extra += 1
    return table


class PlainGPT2Encoder:
    """encode(text) -> list of ids and decode(ids) -> text, as the release computes them."""

    def __init__(self, encoder_path, bpe_path):
        with open(encoder_path, encoding='utf-8') as f:
            self.encoder = json.load(f)
        self.decoder = {i: symbol for symbol, i in self.encoder.items()}
        with open(bpe_path, encoding='utf-8') as f:
            lines = f.read().split('\n')[1:]  # the first line is '#version: 0.2'
        merges = [tuple(line.split()) for line in lines if line]
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.byte_to_char = byte_to_char_table()
        self.char_to_byte = {c: b for b, c in self.byte_to_char.items()}

    def bpe(self, piece):
        """One piece of the pattern, as printable characters -> list of its symbols."""
        word = list(piece)
        while len(word) > 1:
            pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
            ranked = [pair for pair in pairs if pair in self.ranks]
            if not ranked:
                break
            best = min(ranked, key=lambda pair: self.ranks[pair])
            merged = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text):
        """str -> list of int ids."""
        ids = []
        for piece in PATTERN.findall(text):
            chars = ''.join(self.byte_to_char[b] for b in piece.encode('utf-8'))
            ids += [self.encoder[symbol] for symbol in self.bpe(chars)]
        return ids

    def decode(self, ids):
        """list of int ids -> str (bytes that are not UTF-8 become U+FFFD)."""
        chars = ''.join(self.decoder[i] for i in ids)
        return bytes(self.char_to_byte[c] for c in chars).decode('utf-8', errors='replace')
