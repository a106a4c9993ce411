"""GPT-1's text pipeline around its BPE: the original's cleaning before it, word-wise printing after it.

fix_text and text_standardize prepare a text as OpenAI's finetune-transformer-lm did before
tokenizing (ftfy, then dashes, ellipses, spaced runs of punctuation and whitespace);
StreamDecoder prints generated ids word by word. ftfy loads on the first text that needs it.
"""
import re

from bpe_files import END_OF_WORD

# Runs of one repeated character among - ~ ! " ; ? + , ) ( / * [ ] } { | _
# (the spaCy tokenizer of 2018 split these badly on the books corpus). Not the
# backslash: the original's pattern was a plain string, so the '\\+' in its source
# reached the regex engine as '\+', a literal plus, and backslashes were never padded.
_SPACED_RUN = re.compile(r'''(([-~!";?+,)(/*\[\]}{|_])\2*)''')
_NEWLINE_RUN = re.compile(r'\s*\n\s*')
_OTHER_SPACE_RUN = re.compile(r'[^\S\n]+')
_REPLACEMENTS = (('\u2014', '-'), ('\u2013', '-'), ('\u2015', '-'), ('\u2026', '...'), ('\u00b4', "'"))


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


def fix_text(text):
    """str -> ftfy.fix_text(str), skipping ftfy where it provably changes nothing.

    ftfy only alters non-ASCII text, control characters, line breaks and HTML
    entities, so printable ASCII without '&' comes back unchanged (a test
    checks this against ftfy); skipping it saves a third of the encoding time.
    """
    if text.isascii() and text.isprintable() and '&' not in text:
        return text
    import ftfy  # loaded by the first text that needs it: a script's --help stays light
    return ftfy.fix_text(text)


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
