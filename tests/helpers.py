"""Test utilities: write checkpoints in the exact format of OpenAI's TF release (the
library's own writer, model_pytorch.write_tf_checkpoint, kept importable from here);
read a parser's --help per flag."""
import re

from model_pytorch import tf_shapes, write_tf_checkpoint  # noqa: F401


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
