"""winograd.py: DPRD's released text blocks and JSONL read, and every malformed block named by
its file, line and value."""
import json

import pytest

from errors import DataError
from tests.helpers import DPRD_TEXT
from winograd import pronoun_span, read_dprd


def test_bad_dprd_files_name_the_file_line_and_value(tmp_path):
    bad = tmp_path / 'test.c.txt'
    bad.write_text(DPRD_TEXT.replace('John could not lift his son because he was so weak.\nhe',
                                     'John could not lift his son because he was so weak.\nshe'))
    with pytest.raises(DataError, match=r"test\.c\.txt: line 11: the pronoun 'she' is not a word of the sentence"):
        read_dprd(str(tmp_path))
    bad.write_text('A sentence with it.\nit\na,b\n')
    with pytest.raises(DataError, match=r"line 1 starts a block of 3 lines .*expected 4"):
        read_dprd(str(bad))
    bad.write_text('A sentence with it.\nit\na,b\nc\n')
    with pytest.raises(DataError, match=r"the answer 'c' is not one of the candidates 'a', 'b'"):
        read_dprd(str(bad))
    jl = tmp_path / 'test.jsonl'
    jl.write_text(json.dumps(dict(sentence='Tom met Al and he smiled.', pronoun='he', candidates=['Tom', 'Al'],
                                  answer='Al')) + '\n{"sentence": "x"}\n')
    with pytest.raises(DataError, match=r"test\.jsonl: line 2 has no pronoun, candidates, answer"):
        read_dprd(str(jl))


def test_pronoun_is_a_whole_word_in_any_case():
    assert pronoun_span('Tit said it.', 'it') == (9, 11)
    assert pronoun_span('He left.', 'he') == (0, 2) and pronoun_span('Hello', 'he') is None
