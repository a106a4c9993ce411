"""Test utilities: write checkpoints in the exact format of OpenAI's TF release (the
library's own writer, tf_checkpoint.write_tf_checkpoint, importable from here too);
read a parser's --help per flag; run a script's main(argv) in the tests' own process."""
import argparse
import contextlib
import re

import pytest

import task_data
from tf_checkpoint import tf_shapes, write_tf_checkpoint  # noqa: F401

# (data_dir, encoder_path, bpe_path, n_valid) -> what task_data.encode_rocstories returned
_ROCSTORIES_ENCODED = {}


@contextlib.contextmanager
def rocstories_encoded_once():
    """task_data.encode_rocstories memoized for the session: each data folder, BPE files and
    --n_valid are read and encoded once (several seconds of BPE), for runs whose encoding and
    data warnings (given by the first call only) are not what they check. The encoder is
    shared: make_roc_data gives it its special tokens once."""
    real = task_data.encode_rocstories

    def encode(cfg, verbose=True):
        key = (str(cfg.task.data_dir), str(cfg.source.encoder_path), str(cfg.source.bpe_path), cfg.task.n_valid)
        if key not in _ROCSTORIES_ENCODED:
            _ROCSTORIES_ENCODED[key] = real(cfg, verbose)
        return _ROCSTORIES_ENCODED[key]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(task_data, 'encode_rocstories', encode)
        yield


def run_main(main, cwd, argv):
    """main(argv) of a script in this process with `cwd` as the working folder: what
    `python script.py argv` in `cwd` runs, without a second start of Python and torch.
    Returns main's exit status (0 when it returns; a refusal's SystemExit gives its code)."""
    cwd.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(cwd):
        try:
            main(argv)
        except SystemExit as exit_:
            return 0 if exit_.code is None else exit_.code
    return 0


def help_chunks(parser):
    """{option string: its --help text} of every flag in parser.format_help()."""
    chunks, current = {}, None
    for line in parser.format_help().splitlines():
        match = re.match(r'  (-\S+)', line)
        if match:
            current = match.group(1).rstrip(',')
            chunks[current] = line
        elif current and line.startswith('   '):
            chunks[current] += ' ' + line.strip()
        else:
            current = None
    return chunks


def flags_without_default(parser):
    """(number of flags with a default, the --help texts of those whose text shows none)."""
    chunks = help_chunks(parser)
    flags = [a for a in parser._actions if a.option_strings and a.default is not argparse.SUPPRESS]
    texts = [' '.join(chunks[a.option_strings[0]].split()) for a in flags if not a.required]
    return len(flags), [text for text in texts if 'default' not in text]


class CountingOpt:
    """An optimizer stand-in that counts its steps and gradient resets."""

    def __init__(self):
        self.steps = self.zeros = 0

    def step(self):
        self.steps += 1

    def zero_grad(self, set_to_none=True):
        self.zeros += 1
