"""The Definite Pronoun Resolution Dataset (Rahman and Ng, 2012), the Winograd schemas the paper's
zero-shot heuristics score (heuristics.py): read from its released text files or from JSONL.

The release's files (train.c.txt, test.c.txt) hold one schema per block of four lines, blocks
separated by blank lines: the sentence, the definite pronoun, the two candidates as "a,b", and the
right candidate. A JSONL file holds one object per line with the same fields: sentence, pronoun,
candidates (a list of two, or "a,b"), answer. The pronoun is found as a whole word, its first
occurrence in the sentence (case-sensitive, else in any case).
"""
import json
import os
import re
from typing import NamedTuple

from datasets import numbered_lines, shown
from errors import DataError, MissingFileError

DPRD_FILES = {'train': ('train.c.txt', 'train.jsonl'), 'test': ('test.c.txt', 'test.jsonl')}
DPRD_LAYOUT = ("the DPRD folder with train.c.txt and test.c.txt (blocks of four lines: sentence, pronoun, "
               "candidates 'a,b', answer; blank lines between) or train.jsonl and test.jsonl (sentence, pronoun, "
               "candidates, answer), or one such file")
FIELDS = ('sentence', 'pronoun', 'candidates', 'answer')


class Schema(NamedTuple):
    """One Winograd schema: the sentence, the pronoun's span in it (start, end), the two candidates,
    the index of the right one, and where it was read (path, line)."""
    sentence: str
    span: tuple
    candidates: tuple
    answer: int
    path: str
    line: int

    @property
    def pronoun(self):
        return self.sentence[self.span[0]:self.span[1]]


def pronoun_span(sentence, pronoun):
    """(start, end) of the first whole-word occurrence of `pronoun` in `sentence`, matched with its
    case first, then in any case; None when it does not occur."""
    for flags in (0, re.IGNORECASE):
        found = re.search(rf'(?<!\w){re.escape(pronoun)}(?!\w)', sentence, flags)
        if found:
            return found.span()
    return None


def make_schema(path, line, sentence, pronoun, candidates, answer):
    """The Schema of one block's fields (str each; candidates a list of two or "a,b"), checked:
    DataError naming the file, the line and the value for a pronoun not in its sentence, other than
    two candidates, or an answer that is neither."""
    where = f"DPRD file {path}: line {line}"
    for name, value in zip(FIELDS, (sentence, pronoun, candidates, answer)):
        if name != 'candidates' and (not isinstance(value, str) or not value.strip()):
            raise DataError(f"{where}: {name} is {shown(value)}, expected non-empty text")
    if isinstance(candidates, str):
        candidates = candidates.split(',')
    if not isinstance(candidates, list) or len(candidates) != 2 or not all(
            isinstance(c, str) and c.strip() for c in candidates):
        raise DataError(f"{where}: candidates {shown(candidates)}: expected two non-empty candidates, 'a,b'")
    candidates = tuple(c.strip() for c in candidates)
    span = pronoun_span(sentence, pronoun.strip())
    if span is None:
        raise DataError(f"{where}: the pronoun {pronoun.strip()!r} is not a word of the sentence {shown(sentence)}: "
                        f"expected the definite pronoun as it occurs in the sentence")
    keys = [c.lower() for c in candidates]
    if answer.strip().lower() not in keys:
        raise DataError(f"{where}: the answer {answer.strip()!r} is not one of the candidates "
                        f"{', '.join(map(repr, candidates))}")
    return Schema(sentence.strip(), span, candidates, keys.index(answer.strip().lower()), path, line)


def _text_blocks(path):
    """Yield (first line number, [the block's lines]) of a file of blocks separated by blank lines."""
    block, first = [], None
    for number, text in numbered_lines(path, 'DPRD'):
        text = text.rstrip('\r\n')
        if text.strip():
            first = number if not block else first
            block.append(text)
        elif block:
            yield first, block
            block = []
    if block:
        yield first, block


def read_dprd_file(path):
    """The schemas of one DPRD file: the release's blocks of four lines, or JSONL (by its name's
    ending). DataError naming the file and line for a block of another layout."""
    schemas = []
    if path.endswith('.jsonl'):
        for number, text in numbered_lines(path, 'DPRD'):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except ValueError as err:
                raise DataError(f"DPRD file {path}: line {number} is not JSON ({err}); expected one object per line "
                                f"with {', '.join(FIELDS)}") from None
            missing = [name for name in FIELDS if not isinstance(row, dict) or name not in row]
            if missing:
                raise DataError(f"DPRD file {path}: line {number} has no {', '.join(missing)}; expected the fields "
                                f"{', '.join(FIELDS)}")
            schemas.append(make_schema(path, number, *(row[name] for name in FIELDS)))
    else:
        for number, block in _text_blocks(path):
            if len(block) != 4:
                raise DataError(f"DPRD file {path}: line {number} starts a block of {len(block)} lines "
                                f"({shown(block[0])}): expected 4 (sentence, pronoun, candidates 'a,b', answer)")
            schemas.append(make_schema(path, number, *block))
    if not schemas:
        raise DataError(f"DPRD file {path} holds no schemas; expected {DPRD_LAYOUT}")
    return schemas


def read_dprd(data_dir):
    """{'train', 'test'} lists of Schema from a DPRD folder (the release's .c.txt files, else .jsonl),
    or {'test': ...} of one file. MissingFileError naming what was expected."""
    if os.path.isfile(data_dir):
        return {'test': read_dprd_file(data_dir)}
    if not os.path.isdir(data_dir):
        raise MissingFileError(f"DPRD data {data_dir} not found; expected {DPRD_LAYOUT}")
    splits = {}
    for split, names in DPRD_FILES.items():
        path = next((os.path.join(data_dir, n) for n in names if os.path.isfile(os.path.join(data_dir, n))), None)
        if path is not None:
            splits[split] = read_dprd_file(path)
    if not splits:
        raise MissingFileError(f"DPRD folder {data_dir} holds none of {', '.join(sum(DPRD_FILES.values(), ()))}; "
                               f"expected {DPRD_LAYOUT}")
    return splits
