"""Test utilities: write checkpoints in the exact format of OpenAI's TF release (the
library's own writer, tf_checkpoint.write_tf_checkpoint, importable from here too);
read a parser's --help per flag; run a script's main(argv) in the tests' own process; score
sequences with transformers for the zero-shot tests (conftest's gpt1_folder and lm)."""
import argparse
import contextlib
import re

import numpy as np
import pytest
import torch

import task_data
from model_pytorch import LMModel, ModelConfig
from text_utils import CharTokenizer
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


# ------------------------------------------------------------------ zero-shot scoring

LM_N_VOCAB, LM_N_CTX = 40478, 64  # conftest's gpt1_folder: GPT-1's BPE, 64 positions
DPRD_TEXT = """The bee landed on the flower because it had pollen.
it
bee,flower
flower

The city councilmen refused the demonstrators a permit because they feared violence.
they
city councilmen,demonstrators
city councilmen

John could not lift his son because he was so weak.
he
John,his son
John
"""


def reference_logprobs(hf, seq):
    """The scored ids' log-probabilities by transformers on the whole sequence (its last id only predicted)."""
    ids = torch.tensor(seq.ids)[None]
    with torch.no_grad():
        logits = hf(ids[:, :-1]).logits[0].double()
    return torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[seq.start - 1:, 0].numpy()


def check_against_transformers(hf, data, result, reduce=np.mean):
    for ex, rec in zip(data.examples, result.records):
        expected = [reduce(reference_logprobs(hf, seq)) for seq in ex]
        np.testing.assert_allclose(rec['scores'] if 'scores' in rec else [rec['score']], expected, atol=1e-5)


def char_lm(chars, seed=0, n_ctx=16):
    torch.manual_seed(seed)
    tok = CharTokenizer(chars)
    return LMModel(ModelConfig(n_embd=16, n_head=2, n_layer=1), vocab=tok.vocab_size + n_ctx, n_ctx=n_ctx), tok
