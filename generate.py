"""Sample text from OpenAI's GPT-1 or GPT-2 with a key/value cache.

The prompt is run once and each new token is then fed alone, attending to the
cached keys and values of every layer, so a step costs one position instead of
the whole sequence. Several prompts of different lengths are generated together:
they are left-padded to the same length, padding keys are masked out and every
row gets its own position ids (0, 1, ... from its first real token), so each row
gives the same tokens as it would alone.

Notebook use::

    import torch
    from model_pytorch import DEFAULT_CONFIG, LMModel
    from text_utils import load_tokenizer
    from weights import load_pretrained
    from generate import generate

    enc = load_tokenizer('model/')   # the folder's tokenizer: GPT-1's BPE (TextEncoder) here
    model = LMModel(DEFAULT_CONFIG, vocab=enc.vocab_size + 512, n_ctx=512)
    load_pretrained(model, 'model/')
    ids = generate(model, enc.encode(['the old house', 'she said'], verbose=False),
                   gen_len=20, top_k=10, seed=0)
    print([enc.decode(row) for row in ids])

Streaming, token by token, printing whole words only::

    stream = enc.stream_decoder(continuation=True)
    for step in iter_generate(model, enc.encode(['the old house'], verbose=False)[0], 20, top_k=10):
        print(stream.push(step.tokens[0]), end='', flush=True)
    print(stream.flush())

Command line::

    python generate.py --prompt "the old house" --gen_len 40 --seed 0
    python generate.py             # interactive: one prompt per line on stdin
    python generate.py --model_dir models/124M --unconditional --stop_at_eot   # GPT-2's release

Each step chooses the next token as GPT-2's release does (sampling.py): the logits divided
by the temperature, then top-k, then top-p, then one draw. With GPT-2's vocabulary the
flags left unset take the release's defaults (top_k 0, gen_len n_ctx // 2, its top-k and
top-p rule); with GPT-1's, this library's (top_k 10, gen_len 20).

A prompt longer than the model's `n_ctx` positions (512 for GPT-1's released
weights, 1,024 for GPT-2's) is refused up front with an InputError (a ValueError); nothing is
generated. A continuation may run past `n_ctx`: each token is then predicted
from the last `n_ctx` tokens (a sliding window, as minGPT and nanoGPT sample).

The size flags default to the checkpoint's own sizes (the TF shards' shapes, GPT-2's
hparams.json, a Hugging Face folder's config.json checked against its weights' shapes); a
flag that contradicts them is refused, but --n_ctx may ask for fewer positions.
Prompts are encoded and continuations decoded with the tokenizer the model folder
holds (text_utils.load_tokenizer): GPT-1's BPE, GPT-2's byte-level BPE, or a character vocabulary
(`char_vocab.json`, from pretrain.py --tokenizer char), one character per token.
"""
import argparse
import itertools
import numbers
import os
import sys
from collections import namedtuple
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

from distributed import resolve_device
from errors import EXIT_BAD_INPUT, InputError, MissingFileError, exit_with_error, one_line
from hf_interop import resolve_hf_folder
from model_pytorch import LayerCache, LMModel, ModelConfig
from run_frame import eval_mode
from sampling import FILTER_RULES, Sampling, check_sampling_args, filter_logits, sample_next
from text_utils import END_OF_TEXT, GPT2Encoder, Tokenizer, load_tokenizer
from utils import ResultLogger
from weights import CHECKPOINT_FORMATS, checkpoint_sizes, load_pretrained

PROG = 'generate.py'

__all__ = ['generate', 'iter_generate', 'filter_logits', 'sample_next', 'check_sampling_args', 'Sampling',
           'FILTER_RULES', 'GenerationStep', 'build_model', 'main']

GenerationStep = namedtuple('GenerationStep', ['step', 'tokens', 'logits'])
GenerationStep.__doc__ = """One decoding step of `iter_generate`.

step: 0-based index of the new token. tokens: list of the new ids, one per prompt.
logits: (n_prompts, n_vocab) float tensor, the model's next-token logits over the
token rows (before temperature and filtering) from which `tokens` were drawn."""


# ---------------------------------------------------------------- arguments

class ModelDims(NamedTuple):
    """An LMModel's embedding rows: n_vocab tokens, then n_special special rows, then n_ctx positions."""
    n_vocab: int
    n_special: int
    n_ctx: int


class Decoding(NamedTuple):
    """What one generation runs: gen_len new tokens per prompt chosen by `sampling` (a Sampling) from a
    model of `dims`, with the key/value cache or not (use_cache), each row ending at stop_id (None: none)."""
    gen_len: int
    sampling: Sampling
    dims: ModelDims
    use_cache: bool
    stop_id: Optional[int]


def _model_dims(model, n_special):
    """-> ModelDims of an LMModel's embedding."""
    transformer = getattr(model, 'transformer', model)
    vocab, n_ctx = getattr(transformer, 'vocab', None), getattr(transformer, 'n_ctx', None)
    if vocab is None or n_ctx is None:
        raise TypeError(f"expected an LMModel (a model with .transformer.vocab and .transformer.n_ctx), "
                        f"got {type(model).__name__}")
    if not getattr(transformer, 'causal', True):
        raise InputError("the model has bidirectional attention (causal=False): it was not trained to predict the "
                         "next token; generation needs a causal language model")
    if isinstance(n_special, bool) or not isinstance(n_special, numbers.Integral) or n_special < 0:
        raise InputError(f"n_special={n_special!r}: expected an integer >= 0")
    n_vocab = vocab - n_ctx - n_special
    if n_vocab <= 0:
        raise InputError(f"n_special={n_special}: the model's {vocab} embedding rows leave no token rows "
                         f"beside {n_ctx} positions and {n_special} special rows")
    return ModelDims(n_vocab, n_special, n_ctx)


def _as_prompts(prompt_ids, n_rows):
    """prompt_ids: one sequence of ids or a sequence of them -> (list of lists of int, single?)."""
    if isinstance(prompt_ids, torch.Tensor):
        prompt_ids = prompt_ids.tolist()
    if isinstance(prompt_ids, (str, bytes)) or not hasattr(prompt_ids, '__len__'):
        raise TypeError(f"prompt_ids: expected a list of token ids or a list of such lists, "
                        f"got {type(prompt_ids).__name__} (encode text with the tokenizer's encode first)")
    prompt_ids = list(prompt_ids)
    if not prompt_ids:
        raise InputError("empty prompt: expected at least one token id")
    single = all(isinstance(i, numbers.Integral) or (hasattr(i, 'ndim') and i.ndim == 0) for i in prompt_ids)
    rows = [prompt_ids] if single else prompt_ids
    prompts = []
    for r, row in enumerate(rows):
        if isinstance(row, torch.Tensor):
            row = row.tolist()
        if isinstance(row, (str, bytes)) or not hasattr(row, '__len__'):
            raise TypeError(f"prompt {r}: expected a list of token ids, got {type(row).__name__}")
        try:
            row = [int(i) for i in row]
        except (TypeError, ValueError):
            raise TypeError(f"prompt {r}: expected integer token ids, got {list(row)[:5]!r}...") from None
        if not row:
            raise InputError("empty prompt: expected at least one token id" if single else
                             f"empty prompt: prompt {r} has no token ids")
        bad = [i for i in row if not 0 <= i < n_rows]
        if bad:
            raise InputError(f"prompt {r}: token id {bad[0]} is outside the model's {n_rows} token and special rows")
        prompts.append(row)
    return prompts, single


# ---------------------------------------------------------------- decoding

def _forward(model, x, past, key_mask, use_cache):
    """(h, presents or None) for x (B, T, 2). An LMModel runs its transformer alone, so that the
    output layer is applied to the last position only (_next_logits); h is then the hidden states
    (B, T, n_embd). Any other module stands for one (tests): h is its output, its logits."""
    body = model.transformer if hasattr(model, 'lm_head') else model
    if not use_cache:
        return body(x, key_mask=key_mask), None
    return body(x, past=past, use_cache=True, key_mask=key_mask)


def _empty_cache(model, past, batch, n_ctx):
    """The key/value cache a new window fills: `past` emptied when it is the model's own preallocated
    cache, else a new one (TransformerModel.new_cache), or None for a stand-in without one."""
    if past is not None and all(isinstance(layer, LayerCache) for layer in past):
        for layer in past:
            layer.length = 0
        return past
    body = model.transformer if hasattr(model, 'lm_head') else model
    return body.new_cache(batch, n_ctx) if hasattr(body, 'new_cache') else None


# On a CPU, x @ W for a (n_embd, n_vocab) matrix streams at about twice the speed of x @ W.T for the
# tied (n_vocab, n_embd) one (14 against 8 GB/s, 2 EPYC cores); the copy costs about two steps of GPT-2 124M.
HEAD_COPY_MIN_TOKENS = 32


def _output_layer(model, n_vocab, gen_len, device):
    """A function: the last hidden states (B, n_embd) -> their logits (B, n_vocab) over the token rows
    of the tied output matrix, multiplied as they are, or, for float32 on a CPU and gen_len >=
    HEAD_COPY_MIN_TOKENS, as a transposed copy (n_embd, n_vocab) made for this generation. None for
    a stand-in without lm_head, whose output is its logits."""
    if not hasattr(model, 'lm_head'):
        return None
    rows = model.lm_head.decoder.weight[:n_vocab]
    # float32 only: without native bfloat16 kernels a one-row bfloat16 x @ W takes a plain loop
    if device.type == 'cpu' and rows.dtype == torch.float32 and gen_len >= HEAD_COPY_MIN_TOKENS:
        with torch.no_grad():
            columns = rows.t().contiguous()
        return lambda last: last @ columns
    return lambda last: F.linear(last, rows)


def _next_logits(model, h, n_vocab, head):
    """-> next-token logits (B, n_vocab), float32, at the last position of h (see _forward), by
    `head` (_output_layer). Only the token rows are multiplied: the position and special rows can
    never be picked. A model built with return_probs gives probabilities with those rows masked;
    their log, log_softmax over the token rows, serves as logits."""
    if head is None:
        return h[:, -1, :n_vocab].float()
    logits = head(h[:, -1]).float()
    return F.log_softmax(logits, dim=-1) if getattr(model, 'return_probs', False) else logits


def iter_generate(model, prompt_ids, gen_len, temperature=1.0, top_k=0, top_p=1.0, greedy=False, seed=None,
                  n_special=0, use_cache=True, filter_rule='smallest', stop_id=None):
    """Generate token by token; yield a GenerationStep after each new token.

    model: an LMModel (its embedding has n_vocab token rows, then n_special rows,
    then n_ctx position rows), in any floating dtype (its logits are taken as float32).
    prompt_ids: one list of ids or a list of lists (different lengths allowed). gen_len:
    new tokens per prompt. temperature, top_k, top_p, greedy, filter_rule: see
    sampling.sample_next. seed: an int makes sampling reproducible (a private
    torch.Generator); None uses torch's global RNG.
    n_special: special rows between the tokens and the positions (0 for the
    released LM); only the n_vocab token rows can ever be picked.
    use_cache: False recomputes the whole sequence for every token, as the
    earlier port did (a reference for tests and benchmarks; same tokens).
    stop_id: a token id (GPT-2's <|endoftext|>, 50256) that ends a row: once a row has
    drawn it, its later tokens are stop_id again, and generation ends early when every row has.

    Arguments are checked when this is called: InputError (a ValueError) for a
    bad setting or prompt, or for a prompt longer than the model's n_ctx (nothing
    is generated then). Generation goes on past n_ctx: each new token is then
    predicted from the last n_ctx tokens, at positions 0 .. n_ctx - 1.
    """
    dims = _model_dims(model, n_special)
    check_sampling_args(gen_len, temperature, top_k, top_p, dims.n_vocab, filter_rule)
    prompts, _ = _as_prompts(prompt_ids, dims.n_vocab + n_special)
    if stop_id is not None and not (isinstance(stop_id, numbers.Integral) and 0 <= stop_id < dims.n_vocab):
        raise InputError(f"stop_id={stop_id!r}: expected a token id from 0 to {dims.n_vocab - 1}")
    longest = max(len(p) for p in prompts)
    if longest > dims.n_ctx:
        raise InputError(f"a prompt of {longest} tokens is more than the model's n_ctx={dims.n_ctx} positions: "
                         f"shorten the prompt to at most {dims.n_ctx} tokens")
    sampling = Sampling(temperature, top_k, top_p, greedy, seed, filter_rule)
    return _decode_loop(model, prompts, Decoding(gen_len, sampling, dims, use_cache, stop_id))


def _window(tokens, real, pos0, width):
    """The last `width` columns of the left-padded sequences, ready for the model.

    tokens (B, W) long, real (B, W) bool (False at padding). Returns (x (B, w, 2) long with
    each row's positions counted from its first real token in the window, key_mask (B, w) bool)."""
    tokens, real = tokens[:, -width:], real[:, -width:]
    positions = torch.where(real, pos0 + real.long().cumsum(dim=1) - 1, torch.full_like(tokens, pos0))
    return torch.stack((tokens, positions), dim=-1), real


def _left_padded(prompts, device):
    """(tokens (B, L) long, real (B, L) bool): row b's ids in its last len_b columns, zeros before."""
    B, L = len(prompts), max(len(p) for p in prompts)
    tokens = torch.zeros(B, L, dtype=torch.long, device=device)
    real = torch.zeros(B, L, dtype=torch.bool, device=device)
    for b, p in enumerate(prompts):
        tokens[b, L - len(p):] = torch.tensor(p)
        real[b, L - len(p):] = True
    return tokens, real


def _decode_loop(model, prompts, plan):
    """Yield a GenerationStep per new token of `plan` (a Decoding). Past the model's n_ctx each row sees
    its last n_ctx tokens at positions 0 .. n_ctx - 1 (minGPT's and nanoGPT's window): every cached
    key then holds a stale position, so once the cache is full the window is run again as a whole
    (the last n_ctx - 1 tokens and the new one) and its keys and values become the cache."""
    device = next(iter(list(model.parameters()) + list(model.buffers())), torch.empty(0)).device
    s, (n_vocab, n_special, n_ctx) = plan.sampling, plan.dims
    generator = None
    if s.seed is not None and not s.greedy:
        generator = torch.Generator(device=device).manual_seed(int(s.seed))
    pos0 = n_vocab + n_special  # embedding row of position 0
    tokens, real = _left_padded(prompts, device)
    padded = not bool(real.all())
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    head = _output_layer(model, n_vocab, plan.gen_len, device)
    past, key_mask = None, None
    for step in range(plan.gen_len):
        with eval_mode(model):  # entered around each step: nothing leaks to a caller while suspended at a yield
            if plan.use_cache and past is not None and key_mask.size(1) < n_ctx:
                key_mask = torch.cat((key_mask, real[:, -1:]), dim=1)
                feed = torch.stack((tokens[:, -1], pos0 + key_mask.sum(dim=1) - 1), dim=-1)[:, None, :]
            else:
                feed, key_mask = _window(tokens, real, pos0, min(tokens.size(1), n_ctx))
                past = _empty_cache(model, past, len(prompts), n_ctx) if plan.use_cache else None
            h, past = _forward(model, feed, past, key_mask if padded else None, plan.use_cache)
            logits = _next_logits(model, h, n_vocab, head)
            new = sample_next(logits, s.temperature, s.top_k, s.top_p, s.greedy, generator, s.filter_rule)
            if plan.stop_id is not None:
                new = new.masked_fill(done, plan.stop_id)
                done |= new == plan.stop_id
            tokens = torch.cat((tokens, new[:, None]), dim=1)
            real = torch.cat((real, real.new_ones(len(prompts), 1)), dim=1)
        yield GenerationStep(step, new.tolist(), logits)
        if bool(done.all()):
            return


def generate(model, prompt_ids, gen_len, temperature=1.0, top_k=0, top_p=1.0, greedy=False, seed=None,
             n_special=0, callback=None, use_cache=True, filter_rule='smallest', stop_id=None):
    """Generate gen_len new tokens after each prompt and return their ids.

    prompt_ids: one list of token ids -> returns one list of gen_len new ids;
    a list of lists (any lengths) -> returns a list of such lists, one per prompt,
    generated together in one batch. The prompt is not repeated in the result.
    stop_id: each row ends with the first stop_id it draws (kept as its last id), so it may
    hold fewer than gen_len ids. callback: called as callback(step, tokens) after each step
    with the list of new ids (one per prompt), for streaming. Other arguments: see iter_generate.
    Runs under torch.inference_mode with dropout off; the model's train/eval
    mode is restored afterwards.
    """
    prompts, single = _as_prompts(prompt_ids, sys.maxsize)  # ids are range-checked by iter_generate
    steps = iter_generate(model, prompts, gen_len, temperature=temperature, top_k=top_k, top_p=top_p,
                          greedy=greedy, seed=seed, n_special=n_special, use_cache=use_cache,
                          filter_rule=filter_rule, stop_id=stop_id)
    out = [[] for _ in prompts]
    for s in steps:
        for row, t in zip(out, s.tokens):
            if not (row and row[-1] == stop_id):
                row.append(t)
        if callback is not None:
            callback(s.step, s.tokens)
    return out[0] if single else out


# ---------------------------------------------------------------- command line

RELEASE_SIZES = dict(n_ctx=512, n_embd=768, n_head=12, n_layer=12)  # OpenAI's checkpoint
DTYPES = {'float32': torch.float32, 'bf16': torch.bfloat16}
# The flags left unset take these defaults: GPT-1's (and a character model's) are this library's,
# GPT-2's vocabulary gets the release's sample.py settings (gen_len None: the checkpoint's n_ctx // 2).
DEFAULTS = {'gpt1': dict(gen_len=20, topk=10, filter_rule='smallest'),
            'gpt2': dict(gen_len=None, topk=0, filter_rule='release')}


def _model_folder(model_dir):
    """The folder holding the weights (a hub cache folder's snapshot), or model_dir itself."""
    try:
        return resolve_hf_folder(model_dir) or model_dir
    except MissingFileError:  # several snapshots: load_pretrained says so; look in the folder itself
        return model_dir


def model_sizes(args):
    """n_ctx, n_embd, n_head, n_layer and arch (the block layout) of the checkpoint in
    args.model_dir (weights.checkpoint_sizes: a Hugging Face folder's config.json checked
    against its weights' shapes, the TF shards' params_shapes.json, GPT-2's hparams.json); n_head,
    which the TF shards do not record, is the flag's, else the release's 12. --n_ctx may ask for
    fewer positions than the checkpoint holds; any other size flag must agree with it. Raises
    InputError for a flag that contradicts the checkpoint and for a bidirectional model
    (config.json's causal false)."""
    found = checkpoint_sizes(args.model_dir)
    if not found['causal']:
        raise InputError(f"--model_dir {args.model_dir}: {os.path.join(_model_folder(args.model_dir), 'config.json')} "
                         f"has causal false, a bidirectional encoder (pretrain.py --objective mlm or electra): it "
                         f"predicts no next token; expected a causal language model")
    for flag, what in (('n_embd', 'width {}'), ('n_layer', '{} blocks'), ('n_head', '{} attention heads')):
        given = getattr(args, flag)
        if given is not None and found[flag] is not None and given != found[flag]:
            raise InputError(f"--{flag} {given}: the checkpoint in {args.model_dir} has {what.format(found[flag])}: "
                             f"expected {found[flag]} or no --{flag}")
    if args.n_ctx is not None and args.n_ctx > found['n_ctx']:
        raise InputError(f"--n_ctx {args.n_ctx}: the checkpoint in {args.model_dir} has {found['n_ctx']} positions: "
                         f"expected 1 to {found['n_ctx']}")
    n_head = found['n_head'] or args.n_head or RELEASE_SIZES['n_head']
    return dict(n_ctx=args.n_ctx or found['n_ctx'], n_embd=found['n_embd'], n_head=n_head, n_layer=found['n_layer'],
                arch=found['arch'])


def build_model(model_dir, n_vocab, n_ctx=512, n_embd=768, n_head=12, n_layer=12, device='cpu', arch='gpt1',
                dtype='float32'):
    """(LMModel of this size and block layout (arch 'gpt1' or 'gpt2') with the pretrained
    weights of `model_dir` in eval mode, the checkpoint format found: 'tf', 'gpt2-tf' or 'hf').
    dtype: 'float32' or 'bf16' (the weights rounded to bfloat16 after loading)."""
    cfg = ModelConfig(n_embd=n_embd, n_head=n_head, n_layer=n_layer, arch=arch)
    model = LMModel(cfg, vocab=n_vocab + n_ctx, n_ctx=n_ctx)
    fmt = load_pretrained(model, model_dir, n_ctx=n_ctx, n_special=0, n_transfer=n_layer)
    return model.to(device=device, dtype=DTYPES[dtype]).eval(), fmt


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Sample text from OpenAI's GPT-1 or GPT-2 (key/value cache, one position per step). "
                    "With --prompt or --prompt_file, every prompt is continued in one batch and printed; with "
                    "--unconditional, samples start from <|endoftext|>; otherwise "
                    "prompts are read from stdin one line at a time and continued token by token "
                    "('q' or end of input quits). A prompt longer than --n_ctx tokens is refused before anything "
                    "is generated; past --n_ctx, each token is predicted from the last --n_ctx tokens. "
                    "A refused flag, file or prompt prints one line "
                    "'generate.py: error: ...' and exits with status 2; in interactive mode a refused line "
                    "is skipped and the exit status is 2 at the end. The log at --log_path is appended to.")
    parser.add_argument('--prompt', action='append', default=None, metavar='TEXT',
                        help='text to continue; repeat for several (default: read stdin)')
    parser.add_argument('--prompt_file', action='append', default=None, metavar='FILE',
                        help='a UTF-8 file whose whole text (less one final newline) is a prompt; repeat for several')
    parser.add_argument('--unconditional', action='store_true',
                        help="no prompt: each sample starts from <|endoftext|> (GPT-2's vocabulary), as the release's "
                             "generate_unconditional_samples.py")
    parser.add_argument('--n_samples', type=int, default=1, help='samples per prompt, drawn in one batch (default 1)')
    parser.add_argument('--gen_len', type=int, default=None,
                        help="new tokens per sample (default 20; for GPT-2's vocabulary the release's n_ctx // 2)")
    parser.add_argument('--topk', '--top_k', dest='topk', type=int, default=None,
                        help="sample among the k most likely tokens; 0 = all (default 10; for GPT-2's vocabulary "
                             "the release's 0)")
    parser.add_argument('--topp', '--top_p', dest='topp', type=float, default=1.0,
                        help='nucleus sampling mass in (0, 1]; 1 = off (default 1)')
    parser.add_argument('--filter_rule', choices=FILTER_RULES, default=None,
                        help="which tokens top-k and top-p keep at the edges: smallest (exactly k; the smallest set "
                             "reaching top_p) or release (GPT-2's sample.py: ties at the k-th kept; the set within "
                             "top_p). Default smallest; for GPT-2's vocabulary release")
    parser.add_argument('--temperature', type=float, default=1.0, help='> 0 (default 1)')
    parser.add_argument('--greedy', action='store_true', help='always take the most likely token')
    parser.add_argument('--stop_at_eot', action='store_true',
                        help="end each sample at the first <|endoftext|> it draws, which is not printed (GPT-2's "
                             "vocabulary)")
    parser.add_argument('--seed', type=int, default=None, help='make sampling reproducible')
    parser.add_argument('--model_dir', default='model/',
                        help="OpenAI's GPT-1 TF checkpoint folder, GPT-2's release folder (hparams.json, model.ckpt.*, "
                             "encoder.json, vocab.bpe) or a Hugging Face openai-gpt or gpt2 folder (default model/)")
    parser.add_argument('--encoder_path', default=None,
                        help='default: MODEL_DIR/encoder_bpe_40000.json, else MODEL_DIR/encoder.json (GPT-2), else '
                             'MODEL_DIR/vocab.json (Hugging Face)')
    parser.add_argument('--bpe_path', default=None,
                        help='default: MODEL_DIR/vocab_40000.bpe, else MODEL_DIR/vocab.bpe (GPT-2), else '
                             'MODEL_DIR/merges.txt (Hugging Face)')
    sizes = " (default: the checkpoint's own{}; a contradicting value is refused)"
    parser.add_argument('--n_ctx', type=int, default=None, help='positions' + sizes.format(', or fewer'))
    parser.add_argument('--n_embd', type=int, default=None, help='checkpoint width' + sizes.format(''))
    parser.add_argument('--n_head', type=int, default=None,
                        help='attention heads' + sizes.format('; 12 for the TF shards, which lack it'))
    parser.add_argument('--n_layer', type=int, default=None, help='blocks' + sizes.format(''))
    parser.add_argument('--dtype', choices=tuple(DTYPES), default='float32',
                        help='float32 (default) or bf16: the weights in bfloat16, half the bytes each step reads')
    parser.add_argument('--device', default=None,
                        help="auto, cpu, cuda or cuda:N (default: auto, cuda when available)")
    parser.add_argument('--log_path', default='log/generate.jsonl',
                        help='JSONL log, appended to: the settings, then each prompt and its continuation')
    return parser.parse_args(argv)


def _stream_print(tokenizer, tokens, out, stop_id=None):
    """Print the continuation as it grows, whole words only, then a newline; the text printed is
    the tokenizer's continuation_text (less a final stop_id). Returns the list of ids drawn."""
    stream = tokenizer.stream_decoder(continuation=True)
    ids = []
    for t in tokens:
        ids.append(t)
        if t != stop_id:
            out.write(stream.push(t))
            out.flush()
    out.write(stream.flush() + '\n')
    out.flush()
    return ids


def _utf8(data, where):
    """bytes -> str, or InputError naming `where`, the first byte that is not UTF-8 and its offset."""
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as err:
        raise InputError(f"{where} is not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start} "
                         f"({err.reason}); expected UTF-8") from None


def _read_prompts(stream, out):
    """Yield each line of `stream` (less its newline) until end of input or 'q'; a line that is not
    UTF-8 (read through stream.buffer where there is one) is yielded as its InputError."""
    interactive, raw = stream.isatty(), getattr(stream, 'buffer', None)
    for number in itertools.count(1):
        if interactive:
            out.write('Input some beginning words: ')
            out.flush()
        line = stream.readline() if raw is None else raw.readline()
        if not line:
            if interactive:  # end of input typed at the prompt: the shell's prompt goes on a line of its own
                out.write('\n')
                out.flush()
            return
        try:
            text = (line if raw is None else _utf8(line, f"stdin line {number}")).rstrip('\n')
        except InputError as err:
            yield err
            continue
        if text.strip() == 'q':
            return
        yield text


def print_refusal(err):
    """Print a refusal as one line on stderr, as exit_with_error does, without exiting."""
    print(f"{PROG}: error: {one_line(err)}", file=sys.stderr, flush=True)


def _read_prompt_file(path):
    """The text of a --prompt_file, less one final newline."""
    if not os.path.isfile(path):
        raise MissingFileError(f"--prompt_file {path} {'is not a file' if os.path.exists(path) else 'does not exist'}: "
                               f"expected a UTF-8 text file holding a prompt")
    with open(path, 'rb') as f:
        text = _utf8(f.read(), f"--prompt_file {path}")
    return text[:-1] if text.endswith('\n') else text


def _check_args(args):
    """Raise InputError for a flag that cannot work, before spaCy and the weights are loaded; read the
    --prompt_file texts into args.prompt (None: interactive, or --unconditional)."""
    check_sampling_args(args.gen_len or 0, args.temperature, args.topk or 0, args.topp)
    if args.n_samples < 1:
        raise InputError(f"--n_samples {args.n_samples}: expected an integer >= 1")
    if args.unconditional and (args.prompt or args.prompt_file):
        raise InputError("--unconditional with --prompt or --prompt_file: expected one or the other")
    for i, p in enumerate(args.prompt or []):
        if not p.strip():
            raise InputError(f"empty prompt (--prompt number {i + 1}): expected some text to continue")
    if args.prompt_file:
        args.prompt = (args.prompt or []) + [_read_prompt_file(path) for path in args.prompt_file]
    if args.n_ctx is not None and args.n_ctx < 1:
        raise InputError(f"--n_ctx {args.n_ctx}: expected 1 up to the checkpoint's positions")
    args.device = str(resolve_device(args.device or 'auto'))
    if not os.path.isdir(args.model_dir):
        what = 'is not a folder' if os.path.exists(args.model_dir) else 'does not exist'
        raise MissingFileError(f"model folder {args.model_dir!r} {what}: expected OpenAI's "
                               f"params_shapes.json and params_0.npy ... params_9.npy there "
                               f"(from https://github.com/openai/finetune-transformer-lm), GPT-2's release folder "
                               f"(hparams.json, model.ckpt.*, encoder.json, vocab.bpe) or a Hugging "
                               f"Face openai-gpt or gpt2 folder; set --model_dir")


def load_tokenizer_for(args):
    """The tokenizer the model folder holds (text_utils.load_tokenizer: its char_vocab.json, else its
    BPE files, which --encoder_path and --bpe_path replace; for a hub cache folder, its snapshot's)."""
    try:
        return load_tokenizer(_model_folder(args.model_dir), args.encoder_path, args.bpe_path)
    except MissingFileError as err:
        raise MissingFileError(f"{err}; or set --encoder_path and --bpe_path") from None


def _apply_defaults(args, tokenizer):
    """Set the flags left unset to GPT-2's release defaults for GPT-2's vocabulary, else to GPT-1's
    (DEFAULTS), and args.stop_id; InputError for --unconditional or --stop_at_eot without
    <|endoftext|> in the vocabulary."""
    eot = tokenizer.special_tokens.get(END_OF_TEXT)
    for flag, wanted in (('unconditional', args.unconditional), ('stop_at_eot', args.stop_at_eot)):
        if wanted and eot is None:
            raise InputError(f"--{flag}: the vocabulary of {args.model_dir} has no {END_OF_TEXT} token: expected "
                             f"GPT-2's vocabulary")
    kind = 'gpt2' if isinstance(tokenizer, GPT2Encoder) else 'gpt1'
    for flag, value in DEFAULTS[kind].items():
        if getattr(args, flag) is None:
            setattr(args, flag, args.n_ctx // 2 if value is None else value)
    args.stop_id = eot if args.stop_at_eot else None
    check_sampling_args(args.gen_len, args.temperature, args.topk, args.topp, tokenizer.vocab_size, args.filter_rule)


class Generator(NamedTuple):
    """What the command line generates with: the tokenizer, the model (eval mode), the
    checkpoint format it was read from ('tf', 'gpt2-tf' or 'hf') and the open log."""
    tokenizer: Tokenizer
    model: torch.nn.Module
    checkpoint_format: str
    logger: ResultLogger


def load_generator(args):
    """Check the flags, then load the tokenizer and the weights and open the log: a Generator."""
    _check_args(args)
    tokenizer = load_tokenizer_for(args)
    check_sampling_args(args.gen_len or 0, args.temperature, args.topk or 0, args.topp, tokenizer.vocab_size)
    vars(args).update(model_sizes(args))
    _apply_defaults(args, tokenizer)
    model, fmt = build_model(args.model_dir, tokenizer.vocab_size, args.n_ctx, args.n_embd, args.n_head,
                             args.n_layer, args.device, args.arch, args.dtype)
    logger = ResultLogger(args.log_path, append=True, **vars(args), checkpoint_format=fmt)
    return Generator(tokenizer, model, fmt, logger)


def main(argv=None, stdin=None, stdout=None):
    """Run the command line; returns the exit status.

    A refused flag, file or --prompt prints one line `generate.py: error: ...` on
    stderr and exits with status 2 (SystemExit, as argparse does). Interactive
    mode reports a refused prompt line the same way and goes on with the next;
    it then returns 2 at the end of input, else 0.
    """
    args = parse_args(argv)
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    try:
        gen = load_generator(args)
    except (ValueError, TypeError, OSError) as err:
        exit_with_error(PROG, err)
    print(f"{PROG}: loaded the {CHECKPOINT_FORMATS[gen.checkpoint_format]} from {args.model_dir}", file=sys.stderr)
    if args.dtype == 'bf16' and args.device == 'cpu' and not native_cpu_bf16():
        print(f"{PROG}: note: this CPU has no native bfloat16 matrix products (AVX512-BF16 or AMX): torch runs them "
              f"in fallback kernels, so --dtype bf16 is slower than float32 here", file=sys.stderr)
    with gen.logger:
        if args.prompt is not None or args.unconditional:
            return _run_prompts(args, gen, stdout)
        return _run_interactive(args, gen, stdin, stdout)


def native_cpu_bf16():
    """Whether torch runs bfloat16 matrix products natively on this CPU (oneDNN's AVX512-BF16 or AMX kernels)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def sampling_settings(args):
    """The keyword arguments of generate / iter_generate that the sampling flags set."""
    return dict(temperature=args.temperature, top_k=args.topk, top_p=args.topp, greedy=args.greedy, seed=args.seed,
                filter_rule=args.filter_rule, stop_id=args.stop_id)


def _sample_text(tokenizer, ids, stop_id):
    """The text printed for a sample: its continuation_text, less a final stop_id."""
    return tokenizer.continuation_text(ids[:-1] if ids and ids[-1] == stop_id else ids)


def _prompt_ids(args, tokenizer, texts):
    """The ids of each prompt text ([<|endoftext|>] with --unconditional); InputError for an empty one."""
    if args.unconditional:
        return [[tokenizer.special_tokens[END_OF_TEXT]]]
    ids = tokenizer.encode(texts, verbose=False)
    for text, row in zip(texts, ids):
        if not row:
            raise InputError(f"empty prompt: {text!r} encodes to no tokens")
    return ids


def _print_samples(args, gen, text, samples, stdout):
    """Print a line '=> continuation' per sample of the prompt `text`; log each."""
    for ids in samples:
        continuation = _sample_text(gen.tokenizer, ids, args.stop_id)
        stdout.write(f"=> {continuation}\n")
        gen.logger.log(prompt=text, ids=ids, continuation=continuation)
    stdout.flush()


def _run_prompts(args, gen, stdout):
    """Continue every prompt --n_samples times in one batch, print and log them. Returns 0; exits 2 on
    a refused prompt."""
    texts = [END_OF_TEXT] if args.unconditional else args.prompt
    try:
        batch = [row for row in _prompt_ids(args, gen.tokenizer, texts) for _ in range(args.n_samples)]
        new = generate(gen.model, batch, args.gen_len, **sampling_settings(args))
    except ValueError as err:
        exit_with_error(PROG, err)
    for i, text in enumerate(texts):
        stdout.write(f"{text}\n")
        _print_samples(args, gen, text, new[i * args.n_samples:(i + 1) * args.n_samples], stdout)
    return 0


def _run_interactive(args, gen, stdin, stdout):
    """Continue each line of stdin, streaming words as they come (several samples: printed when
    done); log each. Returns 2 if any line was refused, else 0."""
    status = 0
    for text in _read_prompts(stdin, stdout):
        try:
            if isinstance(text, InputError):
                raise text
            if not text.strip():
                raise InputError("empty prompt: type some text to continue ('q' quits)")
            ids = _prompt_ids(args, gen.tokenizer, [text])[0]
            if args.n_samples > 1:
                samples = generate(gen.model, [ids] * args.n_samples, args.gen_len, **sampling_settings(args))
            else:
                steps = iter_generate(gen.model, ids, args.gen_len, **sampling_settings(args))
        except ValueError as err:
            print_refusal(err)
            status = EXIT_BAD_INPUT
            continue
        if args.n_samples > 1:
            _print_samples(args, gen, text, samples, stdout)
            continue
        stdout.write('=> ')
        new = _stream_print(gen.tokenizer, (s.tokens[0] for s in steps), stdout, args.stop_id)
        gen.logger.log(prompt=text, ids=new, continuation=_sample_text(gen.tokenizer, new, args.stop_id))
    return status


if __name__ == '__main__':
    sys.exit(main())
