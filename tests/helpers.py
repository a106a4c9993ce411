"""Test utilities: write checkpoints in the exact format of OpenAI's TF release (the
library's own writer, tf_checkpoint.write_tf_checkpoint, importable from here too);
read a parser's --help per flag."""
import argparse
import re

from tf_checkpoint import tf_shapes, write_tf_checkpoint  # noqa: F401


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
