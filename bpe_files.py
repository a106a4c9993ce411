"""The two files of a BPE vocabulary, GPT-1's and GPT-2's: read, checked and told apart.

A vocabulary file is a JSON object symbol -> id (ids 0..n-1, each once); a merges file is
a '#version' line and then one merge per line, two symbols separated by a space, in rank
order. GPT-1's symbols are characters, a word's last one ending in '</w>' (40,000 merges).
GPT-2's are byte-level: each of the 256 bytes has a printable stand-in character
(byte_to_char), symbol ids follow the merges (256 + rank) and '<|endoftext|>' comes last
(50,000 merges, 50,257 ids). A Hugging Face folder of either model names the pair
vocab.json and merges.txt, so vocabulary_kind and merges_kind tell them apart by content.
"""
import json
import os

from errors import DataError, MissingFileError

END_OF_WORD = '</w>'
UNKNOWN = '<unk>'  # id 0 in GPT-1's vocabulary; its encode() maps every unknown symbol to id 0
END_OF_TEXT = '<|endoftext|>'  # GPT-2's document separator, its last id


def byte_to_char():
    """{byte value: its printable stand-in character}: bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for
    themselves, the other 68 take the code points from 256 up, in byte order (GPT-2's table)."""
    printable = [*range(0x21, 0x7f), *range(0xa1, 0xad), *range(0xae, 0x100)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(others)}}


def read_text(path, kind, expected):
    """Read a vocabulary or merges file as UTF-8 text with universal newlines, as open() does.

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


def load_vocabulary(path, expected):
    """Path of a vocabulary file -> dict symbol -> id, ids exactly 0..len-1 (DataError naming the first
    id missing or given twice otherwise); `expected` names the file that belongs there."""
    text = read_text(path, 'BPE vocabulary file', expected)
    try:
        encoder = json.loads(text)
    except ValueError as err:
        raise DataError(f"BPE vocabulary file {path} is malformed: expected a JSON object of symbol -> id "
                        f"(line {err.lineno}: {err.msg})") from None
    if not isinstance(encoder, dict) or not encoder:
        raise DataError(f"BPE vocabulary file {path} is malformed: expected a non-empty JSON object of symbol -> id, "
                        f"got {type(encoder).__name__}")
    # Ids must cover 0..n-1 so that every id encode() returns indexes the embedding.
    ids = sorted(i for i in encoder.values() if type(i) is int)
    if len(ids) != len(encoder) or ids != list(range(len(encoder))):
        raise DataError(f"BPE vocabulary file {path} is malformed: expected the ids to be the integers "
                        f"0..{len(encoder) - 1}, each once{_first_fault(encoder, ids)}")
    return encoder


def _first_fault(encoder, ids):
    """': <what is wrong first>' of a vocabulary whose ids are not 0..n-1 each once; '' if none is found."""
    wrong = next(((s, i) for s, i in encoder.items() if type(i) is not int), None)
    if wrong:
        return f": {wrong[0]!r} has the id {wrong[1]!r}"
    for expected, (before, i) in enumerate(zip([None] + ids, ids)):
        if i == before:
            return f": the id {i} is given twice"
        if i != expected:
            return f": the id {expected} is missing"
    return ''


def load_merges(path, expected):
    """Path of a merges file -> list of (left, right) pairs in rank order.

    The first line is the '#version' line; trailing empty lines are ignored.
    """
    lines = read_text(path, 'BPE merges file', expected).split('\n')
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


def vocabulary_kind(encoder):
    """'gpt2' for a byte-level vocabulary (all 256 byte symbols, no symbol ending in '</w>'), 'gpt1' for
    one whose words end in '</w>', None for neither."""
    if any(symbol.endswith(END_OF_WORD) for symbol in encoder):
        return 'gpt1'
    return 'gpt2' if all(c in encoder for c in byte_to_char().values()) else None


def merges_kind(merges):
    """'gpt1' when some merge makes a word's last symbol ('</w>'), 'gpt2' when some symbol holds 'Ġ' (the
    space byte's stand-in, in thousands of GPT-2's merges) and none ends in '</w>', else None."""
    if any(right.endswith(END_OF_WORD) for _, right in merges):
        return 'gpt1'
    space = byte_to_char()[ord(' ')]
    return 'gpt2' if any(space in left or space in right for left, right in merges) else None


def check_gpt1_merges(encoder, merges, encoder_path, bpe_path):
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


def check_gpt2_merges(encoder, merges, encoder_path, bpe_path):
    """Raise DataError unless the byte-level vocabulary is built by these merges in order: the 256 byte
    symbols, then merge r's symbol with id 256 + r, then '<|endoftext|>', the last id.

    GPT-2's files have this shape; it is what makes a symbol's id its merge priority."""
    for b, c in byte_to_char().items():
        if encoder.get(c, 256) >= 256:
            raise DataError(f"BPE vocabulary file {encoder_path} gives the byte 0x{b:02x} ({c!r}) the id "
                            f"{encoder.get(c)}: expected one of the ids 0..255 (GPT-2's byte symbols)")
    if len(merges) != len(encoder) - 257:
        raise DataError(f"BPE merges file {bpe_path} holds {len(merges)} merges, expected {len(encoder) - 257}: one "
                        f"per symbol of {encoder_path} between its 256 bytes and {END_OF_TEXT!r} (a file cut short, "
                        f"or from another vocabulary?)")
    for rank, (left, right) in enumerate(merges):
        if encoder.get(left + right) != 256 + rank:
            raise DataError(f"BPE merges file {bpe_path} line {rank + 2} merges {left!r} {right!r}, which "
                            f"{encoder_path} gives the id {encoder.get(left + right)}: expected {256 + rank} "
                            f"(256 + its rank; merges of another vocabulary?)")
    if encoder.get(END_OF_TEXT) != len(encoder) - 1:
        raise DataError(f"BPE vocabulary file {encoder_path} gives {END_OF_TEXT!r} the id {encoder.get(END_OF_TEXT)}: "
                        f"expected the last id, {len(encoder) - 1}")
