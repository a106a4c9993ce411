"""Use a finetuned ROCStories run: pick the right ending of new stories.

    python score.py --run save/rocstories --story "Karen was assigned a roommate ..." \\
        --ending "Karen became good friends with her roommate." --ending "Karen hated her roommate."

From Python::

    from score import load_run
    run = load_run('save/rocstories')                # config.json + best_params.safetensors
    probs = run.score(story, [ending_1, ending_2])   # (2,) probabilities
    run.export_hf('rocstories-hf/')                  # transformers' folder, with the run's BPE files

A run folder holds `config.json` (written by train.py when the run starts: the model's
size, n_ctx as cut, the vocabulary) and `best_params.safetensors` (with --submit). The
story and endings go through the same pipeline as training: the run's BPE files, then
`[_start_] story [_delimiter_] ending [_classify_]` for each ending.
"""
import argparse
import dataclasses
import os

import numpy as np
import torch

from checkpoint import BEST_PARAMS, RUN_CONFIG, load_params
from errors import DataError, GPT1Error, InputError, MissingFileError, exit_with_error
from hf_interop import export_hf
import finetune
from model_pytorch import DoubleHeadModel
from weights import check_params_shapes

SPECIALS = ('_start_', '_delimiter_', '_classify_')


REQUIRED = ('n_ctx', 'vocab', 'clf_token', 'max_len', 'encoder_path', 'bpe_path')  # what a run found, for scoring


def read_run_config(run_dir):
    """The finetune.RunRecord of {run_dir}/config.json (as train.py writes it, or the flat file of
    settings earlier versions wrote); MissingFileError or DataError when it is absent or not such a file."""
    path = os.path.join(run_dir, RUN_CONFIG)
    if not os.path.isfile(path):
        raise MissingFileError(f"{path} does not exist: expected a run folder of train.py ({{save_dir}}/{{desc}}/, "
                               f"which holds config.json and best_params.safetensors)")
    record = finetune.read_run_config(path)
    missing = [k for k in REQUIRED if k not in record.settings]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}: expected the config.json train.py writes")
    return record


def _check_multiple_choice(run_dir, config):
    """InputError unless the run's config.json describes a multiple-choice run: its task_type
    (the --task_type flag, null for a ROCStories run, replaced by the task's own for every other
    dataset) and its task head."""
    task_type = config.get('task_type') or 'multiple_choice'
    head = config.get('task_head_type', 'multiple_choice')
    if task_type != 'multiple_choice' or head != 'multiple_choice':
        raise InputError(f"--run {run_dir} is a {task_type} run (task head {head!r} in its {RUN_CONFIG}): score.py "
                         f"scores multiple-choice runs (ROCStories, or --task_type multiple_choice) only")


@dataclasses.dataclass
class FinetunedRun:
    """A finetuned run ready to score: the model (eval mode), its tokenizer (TextEncoder or
    GPT2Encoder) with the special tokens, and the run's config.json."""
    model: DoubleHeadModel
    text_encoder: object
    config: dict
    bpe_files: tuple = None  # (encoder_path, bpe_path) the text encoder was read from

    def export_hf(self, folder):
        """Write the run's transformer as a Hugging Face openai-gpt or gpt2 folder (hf_interop.export_hf),
        with the BPE files as its vocab.json and merges.txt; the special tokens are ids
        n_vocab.. (_start_, _delimiter_, _classify_), n_positions the run's n_ctx, the task head
        is left out. Returns the folder."""
        n_special = len(SPECIALS)
        n_vocab = self.config['clf_token'] + 1 - n_special
        return export_hf(self.model, folder, n_vocab=n_vocab, n_special=n_special, bpe_files=self.bpe_files)

    @torch.no_grad()
    def score(self, story, endings):
        """Probabilities (n_endings,) that each ending is the right one for `story` (str)."""
        if len(endings) < 2 or not all(isinstance(t, str) and t.strip() for t in [story, *endings]):
            raise InputError(f"expected a non-empty story and at least two non-empty endings, got {len(endings)} "
                             f"ending(s)")
        c = self.config
        X = encode_choices(self.text_encoder, story, endings, c['n_ctx'], c['max_len'], c.get('truncate', False))
        device = next(self.model.parameters()).device
        no_lm = torch.zeros(X.shape[:-1], dtype=torch.bool, device=device)
        keys = None
        if not self.model.transformer.causal:  # a bidirectional model must not read the padding
            ends = (X[..., 0] == self.config['clf_token']).argmax(-1) + 1  # each sequence ends at _classify_
            keys = torch.from_numpy(np.arange(X.shape[-2]) < ends[..., None]).reshape(-1, X.shape[-2]).to(device)
        _, clf_logits = self.model(torch.from_numpy(X).to(device), lm_mask=no_lm, key_mask=keys)
        return torch.softmax(clf_logits[0].float(), -1).cpu().numpy()


def load_run(run_dir, params=BEST_PARAMS, encoder_path=None, bpe_path=None, device='cpu'):
    """FinetunedRun of `run_dir` with the parameters `params` (a file name in run_dir, default
    the best ones); the BPE files default to those the run used (config.json keeps their
    absolute paths): GPT-1's BPE or GPT-2's, as the files say (text_utils.load_bpe)."""
    from text_utils import load_bpe

    record = read_run_config(run_dir)
    config = record.settings
    _check_multiple_choice(run_dir, config)
    bpe_files = (encoder_path or config['encoder_path'], bpe_path or config['bpe_path'])
    text_encoder = load_bpe(*bpe_files)
    for name in SPECIALS:
        text_encoder.encoder.setdefault(name, len(text_encoder.encoder))
    if text_encoder.encoder['_classify_'] != config['clf_token']:
        raise InputError(f"the BPE vocabulary gives _classify_ the id {text_encoder.encoder['_classify_']} but the run "
                         f"used {config['clf_token']}: expected the BPE files the run was trained with")
    cfg = dataclasses.replace(record.config.model, causal=config.get('causal', True))
    path = os.path.join(run_dir, params)
    if not os.path.isfile(path):
        raise MissingFileError(f"{path} does not exist: expected the parameters a run with --submit keeps")
    check_params_shapes(path, os.path.join(run_dir, RUN_CONFIG), config['vocab'], cfg.n_embd, cfg.n_layer)
    model = DoubleHeadModel(cfg, config['clf_token'], 'multiple_choice', config['vocab'], config['n_ctx'])
    load_params(model, path)
    return FinetunedRun(model.to(device).eval(), text_encoder, config, bpe_files)


def encode_choices(text_encoder, story, endings, n_ctx, max_len, truncate=False):
    """-> X (1, n_endings, n_ctx, 2) int64: `[_start_] story [_delimiter_] ending [_classify_]`
    per ending, positions in [..., 1], as train.transform_roc builds them. With truncate, story
    and endings are cut to max_len tokens as in training; without, a story and ending longer
    than n_ctx in all is refused with InputError."""
    enc = text_encoder.encoder
    ids = text_encoder.encode([story] + list(endings), verbose=False)
    story_ids, ending_ids = ids[0], ids[1:]
    if truncate:
        story_ids, ending_ids = story_ids[:max_len], [e[:max_len] for e in ending_ids]
    n_vocab = len(enc) - len(SPECIALS)
    X = np.zeros((1, len(endings), n_ctx, 2), dtype=np.int64)
    X[..., 1] = np.arange(n_vocab + len(SPECIALS), n_vocab + len(SPECIALS) + n_ctx)
    for j, e in enumerate(ending_ids):
        seq = [enc['_start_']] + story_ids + [enc['_delimiter_']] + e + [enc['_classify_']]
        if len(seq) > n_ctx:
            raise InputError(f"the story and ending {j + 1} are {len(seq)} tokens with the special tokens, more than "
                             f"the run's n_ctx {n_ctx}: expected a shorter story or ending")
        X[0, j, :len(seq), 0] = seq
    return X


def main(argv=None):
    p = argparse.ArgumentParser(description="Pick the right ending of a story with a finetuned ROCStories run.")
    p.add_argument('--run', required=True, help="the run folder: {save_dir}/{desc}/ of train.py --submit")
    p.add_argument('--story', required=True, help="the story (the four sentences)")
    p.add_argument('--ending', action='append', required=True, help="a candidate ending; give two (or more)")
    p.add_argument('--params', default=BEST_PARAMS, help="parameters file in the run folder")
    p.add_argument('--encoder_path', default=None, help="default: the one the run used")
    p.add_argument('--bpe_path', default=None, help="default: the one the run used")
    args = p.parse_args(argv)
    try:
        probs = load_run(args.run, args.params, args.encoder_path, args.bpe_path).score(args.story, args.ending)
    except GPT1Error as err:
        exit_with_error('score.py', err)
    for j, (ending, prob) in enumerate(zip(args.ending, probs)):
        mark = '*' if j == int(np.argmax(probs)) else ' '
        print(f"{mark} {prob:.3f}  {ending}")
    return probs


if __name__ == '__main__':
    main()
