"""Token log-probabilities of text under a causal language model: what every zero-shot heuristic
measures (heuristics.py), for any model `weights.load_pretrained` loads and a finetuned run's LM.

A scored sequence is `Scored(ids, start)`: token ids, of which ids[start:] are scored, each given
every id before it (start >= 1: the first id has nothing before it). An example is a list of such
sequences, its choices. `score_examples` computes, per choice, the log-probability of each scored
token, with the choices' shared context computed once: the longest run of first ids the choices
have in common (never past a scored id) runs once per example, its keys and values kept (the key/value
cache generation uses), and each choice's remainder runs against them, its positions continuing
the context's. With causal attention the hidden states of the shared ids do not depend on what
follows, so this equals running every choice whole (to float rounding; tests compare with
transformers' OpenAIGPTLMHeadModel).

The last id of a sequence is only predicted, never fed, so a sequence holds up to n_ctx + 1 ids.
The next-token distribution is the softmax over the tokenizer's text ids (the first n_vocab rows of
the tied output matrix): special-token rows (a finetuned run's _start_, _delimiter_, _classify_)
and position rows are left out, as transformers' vocabulary leaves the positions out.
"""
import os
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from checkpoint import BEST_PARAMS, RUN_CONFIG
from errors import CheckpointError, InputError
from hf_interop import has_hf_weights, resolve_hf_folder
from model_pytorch import LMModel, ModelConfig, transformer_of
from prefix import GatheredPast, token_batches
from text_utils import TextEncoder, Tokenizer, load_tokenizer
from weights import checkpoint_sizes, load_pretrained

DEFAULT_BUDGET = 4096  # tokens a pass holds, padding included
LOGIT_ROWS = 512  # output rows projected onto the vocabulary at a time


class Scored(NamedTuple):
    """A sequence of token ids, of which ids[start:] are scored (start >= 1)."""
    ids: list
    start: int


class LanguageModel(NamedTuple):
    """A causal LM ready to score: the LMModel (eval mode; a finetuned run's DoubleHeadModel, whose
    transformer and lm_head are used), its tokenizer, n_vocab (the rows the next-token softmax
    covers: the tokenizer's text ids), the format it was read from ('tf', 'gpt2-tf', 'hf', or 'run'
    for a finetuned run's folder) and its folder."""
    model: LMModel
    tokenizer: Tokenizer
    n_vocab: int
    source: str = 'model'
    path: Optional[str] = None

    @property
    def n_ctx(self):
        return transformer_of(self.model).n_ctx

    @property
    def separator(self):
        """The id every scored text starts from ([] without one): the tokenizer's document separator,
        which precedes each document in pretraining's token store (newline_id)."""
        sep = self.tokenizer.newline_id
        return [] if sep is None else [sep]


# ------------------------------------------------------------------ loading

def _text_vocab_size(tokenizer):
    """The ids a tokenizer's encode can give: its vocabulary less the special tokens a caller added."""
    return getattr(tokenizer, '_n_symbols', None) if isinstance(tokenizer, TextEncoder) else tokenizer.vocab_size


def _is_run_folder(path):
    return (os.path.isfile(os.path.join(path, BEST_PARAMS)) and os.path.isfile(os.path.join(path, RUN_CONFIG))
            and not has_hf_weights(path))


def _load_run(path, encoder_path=None, bpe_path=None):
    """(DoubleHeadModel, tokenizer, n_vocab) of a train.py run folder as finetuned.load_run reads it:
    its transformer and tied LM head score text (the task head is not used) over the n_vocab rows
    before the task's special tokens."""
    import tasks
    from finetuned import load_run, read_run_config  # finetune's modules load only for a run folder
    if not read_run_config(path).settings.get('causal', True):
        _refuse_bidirectional(path)
    run = load_run(path, encoder_path=encoder_path, bpe_path=bpe_path)
    return run.model, run.text_encoder, run.config['clf_token'] + 1 - len(tasks.SPECIAL_TOKENS)


def _refuse_bidirectional(path):
    raise CheckpointError(f"{path} holds a bidirectional encoder (causal false: pretrain.py --objective mlm or "
                          f"electra), which has no next-token LM head: expected a causal language model")


def load_language_model(path, n_head=None, device='cpu', encoder_path=None, bpe_path=None):
    """The LanguageModel of a folder: OpenAI's GPT-1 or GPT-2 release, a Hugging Face openai-gpt or gpt2
    folder, a pretrain.py model folder (BPE or characters), or a train.py run folder (its LM head).
    The tokenizer is the folder's own (text_utils.load_tokenizer; encoder_path and bpe_path replace
    its BPE files). n_head: for GPT-1's TF shards, which do not record it (default 12). Raises
    CheckpointError for a folder with no next-token LM head (a bidirectional encoder)."""
    if os.path.isdir(path) and _is_run_folder(path):
        model, tokenizer, n_vocab = _load_run(path, encoder_path, bpe_path)
        source = 'run'
    else:
        sizes = checkpoint_sizes(path)
        if not sizes['causal']:
            _refuse_bidirectional(path)
        folder = resolve_hf_folder(path) or path
        tokenizer = load_tokenizer(folder, encoder_path, bpe_path)
        cfg = ModelConfig(n_embd=sizes['n_embd'], n_head=sizes['n_head'] or n_head or 12, n_layer=sizes['n_layer'],
                          arch=sizes['arch'])
        n_vocab = tokenizer.vocab_size
        model = LMModel(cfg, vocab=n_vocab + sizes['n_ctx'], n_ctx=sizes['n_ctx'])
        source = load_pretrained(model, path, n_ctx=sizes['n_ctx'], n_special=0)
    return LanguageModel(model.to(device).eval(), tokenizer, n_vocab, source, path)


def as_language_model(model, tokenizer, n_vocab=None):
    """A LanguageModel of an LMModel (or a model with .transformer and .lm_head) and its tokenizer;
    n_vocab defaults to the tokenizer's text ids. What pretraining's validation passes."""
    return LanguageModel(model, tokenizer, _text_vocab_size(tokenizer) if n_vocab is None else n_vocab)


# ------------------------------------------------------------------ scoring

def shared_length(choices):
    """How many first ids every choice of an example has in common, never past the first scored id
    of any (0 for a single sequence: it runs whole)."""
    if len(choices) < 2:
        return 0
    first = choices[0].ids
    limit = min(c.start for c in choices)
    n = 0
    while n < limit and all(n < len(c.ids) and c.ids[n] == first[n] for c in choices[1:]):
        n += 1
    return n


def check_examples(examples, n_ctx, n_vocab):
    """InputError naming the first example whose sequence cannot be scored: a start outside 1..len-1,
    more than n_ctx + 1 ids, an id outside the n_vocab text ids."""
    for i, example in enumerate(examples):
        for j, seq in enumerate(example):
            where = f"example {i} sequence {j}"
            if not 1 <= seq.start < len(seq.ids):
                raise InputError(f"{where}: {len(seq.ids)} ids scored from {seq.start}: expected at least one "
                                 f"scored id after at least one given id")
            if len(seq.ids) > n_ctx + 1:
                raise InputError(f"{where} has {len(seq.ids)} ids: expected at most n_ctx + 1 = {n_ctx + 1} (the "
                                 f"last id is only predicted)")
            bad = [t for t in seq.ids if not 0 <= t < n_vocab]
            if bad:
                raise InputError(f"{where}: id {bad[0]} is outside the {n_vocab} text ids")


def _inputs(rows, lengths, offsets, first_position, n_ctx, device):
    """(N, W, 2) long: each row's ids right-padded with 0 to the longest, positions from its offset
    (padding positions clamped into the model's n_ctx rows; causal attention never lets a real
    query see them)."""
    W = max(lengths)
    x = torch.zeros(len(rows), W, 2, dtype=torch.long)
    for r, ids in enumerate(rows):
        x[r, :len(ids), 0] = torch.as_tensor(ids, dtype=torch.long)
    pos = torch.as_tensor(offsets, dtype=torch.long)[:, None] + torch.arange(W)
    x[..., 1] = first_position + pos.clamp(max=n_ctx - 1)
    return x.to(device)


def _batch_scores(lm, examples, device):
    """Log-probabilities of the scored ids of a batch of examples (lists of Scored): one float32
    tensor per sequence, in order."""
    transformer = transformer_of(lm.model)
    first = transformer.vocab - transformer.n_ctx
    P = [shared_length(ex) for ex in examples]
    Pm = max(P)
    seqs = [(b, seq) for b, ex in enumerate(examples) for seq in ex]
    hp = past = None
    if Pm:
        xp = _inputs([ex[0].ids[:p] for ex, p in zip(examples, P)], [Pm] * len(examples), [0] * len(examples),
                     first, transformer.n_ctx, device)
        hp, past = transformer(xp, use_cache=True)
    ex_of = torch.tensor([b for b, _ in seqs], device=device)
    rem = [seq.ids[P[b]:-1] for b, seq in seqs]  # what each sequence feeds after its shared context
    R = max(len(r) for r in rem)
    hr = None
    if R:
        xr = _inputs(rem, [R] * len(rem), [P[b] for b, _ in seqs], first, transformer.n_ctx, device)
        if Pm:
            kp = (torch.arange(Pm) < torch.tensor(P)[:, None]).to(device)
            key_mask = torch.cat((kp[ex_of], kp.new_ones(len(seqs), R)), 1)
            hr = transformer(xr, past=GatheredPast(past, ex_of, Pm), key_mask=key_mask)
        else:
            hr = transformer(xr)
    return _gather_logprobs(lm, seqs, P, Pm, R, hp, hr)


def _gather_logprobs(lm, seqs, P, Pm, R, hp, hr):
    """The scored ids' log-probabilities: id t is predicted by the state of id t - 1, the shared
    context's last state (hp) where t - 1 is its last id, else the remainder's (hr)."""
    states = torch.cat([h.reshape(-1, h.size(-1)) for h in (hp, hr) if h is not None])
    base = len(P) * Pm if hp is not None else 0
    rows, targets, counts = [], [], []
    for r, (b, seq) in enumerate(seqs):
        for t in range(seq.start, len(seq.ids)):
            rows.append(b * Pm + t - 1 if t - 1 < P[b] else base + r * R + t - 1 - P[b])
        targets += seq.ids[seq.start:]
        counts.append(len(seq.ids) - seq.start)
    rows = torch.tensor(rows, device=states.device)
    targets = torch.tensor(targets, device=states.device)
    weight = lm.model.lm_head.decoder.weight[:lm.n_vocab]
    out = []
    for chunk in range(0, len(rows), LOGIT_ROWS):
        logits = F.linear(states[rows[chunk:chunk + LOGIT_ROWS]], weight).float()
        logp = F.log_softmax(logits, -1)
        out.append(logp.gather(1, targets[chunk:chunk + LOGIT_ROWS, None])[:, 0])
    return torch.cat(out).cpu().split(counts)


@torch.inference_mode()
def score_examples(lm, examples, budget=DEFAULT_BUDGET, desc='scoring', verbose=True):
    """Per example, per choice, the log-probabilities (float64 arrays) of its scored ids under
    lm (a LanguageModel), with each example's shared context computed once. Examples run in
    order of length, at most `budget` tokens a pass (padding included); a labelled tqdm bar
    when verbose. The model is left in the mode it was in."""
    check_examples(examples, lm.n_ctx, lm.n_vocab)
    model = lm.model
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    cost = torch.tensor([len(ex) * max(len(s.ids) for s in ex) for ex in examples])
    out = [None] * len(examples)
    try:
        with tqdm(total=len(examples), desc=desc, ncols=80, leave=False, disable=not verbose) as bar:
            for idx in token_batches(cost, budget) if examples else []:
                idx = idx.tolist()
                scores = iter(_batch_scores(lm, [examples[i] for i in idx], device))
                for i in idx:
                    out[i] = [next(scores).double().numpy() for _ in examples[i]]
                bar.update(len(idx))
    finally:
        model.train(was_training)
    return out


def mean_logprob(logprobs):
    """The average token log-probability of one sequence's scored ids."""
    return float(np.mean(logprobs))
