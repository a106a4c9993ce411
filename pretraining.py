"""Pre-training GPT-1's language model on a token store: the steps pretrain.py runs (see its
docstring for the recipe) and a notebook can call. The tokenizer (`build_tokenizer`) and
corpus (`load_corpus`), the model (`build_model`: LMModel, or electra.py's MaskedLM or
Electra for --objective mlm and electra), the schedule's length and the optimizer, the
windows of an update (`sample_windows`), one update (`train_update`), validation
(`evaluate_lm`, `evaluate_objective`) and the output folder (`save_model_folder`); `cfg` is a
PretrainConfig (the corpus's settings in `CorpusConfig`). The module keeps no state.
"""
import dataclasses
import math
from dataclasses import field
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as tdist
import torch.nn.functional as F

import electra
from corpus import NotUTF8Error
from electra import ElectraConfig
from distributed import unwrap_model
from errors import CheckpointError, ConfigError, DataError, InputError, NonFiniteLossError
from flags import Config, ConfigGroup, check_number
from heuristics import ZeroShotEvalConfig
from hf_interop import export_hf
from loss import IGNORE_INDEX
from model_pytorch import LMModel, ModelConfig, TransformerModel
from opt import SCHEDULES, AdamConfig
from run_frame import GradientAccumulator, RunConfig, SourceConfig, autocast, eval_mode, sync_unless_last
from text_utils import CharTokenizer, GPT2Encoder, TextEncoder
from token_store import build_token_store
from weights import load_pretrained


# ------------------------------------------------------------------ configs

TOKENIZERS = ('bpe', 'gpt2', 'char')  # GPT-1's BPE, GPT-2's byte-level BPE, characters


@dataclasses.dataclass
class CorpusConfig(Config):
    """What pre-training reads and how: the text (--data), its tokenizer, the share kept for
    validation, whether a file that is not UTF-8 stops the run, and the warm-up in updates."""
    data: list[str] = field(metadata={
        'metavar': 'PATH', 'help': "text files, folders of them (*.txt, *.jsonl) or JSONL files with a 'text' field"})
    tokenizer: str = field(default='bpe', metadata={
        'choices': TOKENIZERS, 'help': "bpe: GPT-1's BPE; gpt2: GPT-2's byte-level BPE (its 50,257 ids, "
                                       "'<|endoftext|>' between documents); char: the corpus' characters. The BPE "
                                       "files come from --encoder_path/--bpe_path, else --model_dir"})
    valid_fraction: float = field(default=0.01, metadata={
        'help': "share of the documents (of a single document: of its tokens) kept for validation; 0: none"})
    strict: bool = field(default=False, metadata={'help': "refuse a file that is not UTF-8 instead of skipping it"})
    warmup_updates: int = field(default=2000, metadata={'help': "updates of linear warm-up"})

    def check(self):
        """Raise ConfigError naming the first field that cannot work."""
        if not isinstance(self.data, (list, tuple)) or not self.data or not all(isinstance(p, str) for p in self.data):
            raise ConfigError('data', self.data, "one or more paths of text files or folders")
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError('tokenizer', self.tokenizer, f"one of {', '.join(TOKENIZERS)}")
        check_number('valid_fraction', self.valid_fraction, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
        if isinstance(self.warmup_updates, bool) or not isinstance(self.warmup_updates, int) or self.warmup_updates < 1:
            raise ConfigError('warmup_updates', self.warmup_updates, "a positive integer")


# pretrain.py's defaults where they differ from the parts': the paper's pre-training
DEFAULTS = {'run': dict(desc='pretrain', n_iter=100, n_batch=64, eval_every=1000, cache_dir=None),
            'source': dict(init='random'), 'model': dict(dropout_masks='int'),
            'optimizer': dict(lr=2.5e-4, lr_schedule='warmup_cosine')}


@dataclasses.dataclass
class PretrainConfig(ConfigGroup):
    """Everything a pre-training run of pretrain.py is set up with: the corpus, the run frame's
    settings, the model's source and sizes, the optimizer, the objective and the zero-shot tasks
    scored at each validation. `flat()` is the flags by name, as the log's first line records
    them; config.json holds `to_dict()`."""
    SKIP = ('causal', 'clf_pdrop', 'lr_warmup')  # the objective sets causal; no task head; warmup_updates

    corpus: CorpusConfig
    run: RunConfig = field(default_factory=lambda: RunConfig(**DEFAULTS['run']))
    source: SourceConfig = field(default_factory=lambda: SourceConfig(**DEFAULTS['source']))
    model: ModelConfig = field(default_factory=lambda: ModelConfig(**DEFAULTS['model']))
    optimizer: AdamConfig = field(default_factory=lambda: AdamConfig(**DEFAULTS['optimizer']))
    objective: ElectraConfig = field(default_factory=ElectraConfig)
    zero_shot: ZeroShotEvalConfig = field(default_factory=ZeroShotEvalConfig)

    def check(self):
        """The checks that span parts (each part checked its own fields when built)."""
        if self.zero_shot.folders() and self.objective.objective != 'lm':
            raise ConfigError('zero_shot', self.zero_shot.zero_shot, "--objective lm: the heuristics read a causal "
                              "LM's next-token probabilities, which mlm and electra do not learn")
        n_ctx = self.source.n_ctx
        if n_ctx < 2:
            raise ConfigError('n_ctx', n_ctx, "at least 2 tokens per window (one prediction)")
        self.model.check_sizes(n_ctx + 1, n_ctx)
        self.objective.generator_size(self.model.n_embd, self.model.n_head)


# ------------------------------------------------------------------ tokenizer and corpus

BPE_TOKENIZERS = {'bpe': TextEncoder, 'gpt2': GPT2Encoder}  # --tokenizer -> the class reading its two files

def build_tokenizer(cfg, verbose=False):
    """The tokenizer of the run (a text_utils.Tokenizer): TextEncoder (bpe) or GPT2Encoder (gpt2) of
    --encoder_path/--bpe_path; for char, the vocabulary saved in --model_dir (--init pretrained) or
    the characters of the corpus plus '\\n'. Raises DataError for a corpus of more than 65,536
    characters, or for BPE files of the other kind."""
    if cfg.corpus.tokenizer in BPE_TOKENIZERS:
        return BPE_TOKENIZERS[cfg.corpus.tokenizer](cfg.source.encoder_path, cfg.source.bpe_path)
    if cfg.source.init == 'pretrained':
        return CharTokenizer.load(cfg.source.model_dir)
    try:
        return CharTokenizer.fit(cfg.corpus.data, verbose=verbose, strict=cfg.corpus.strict, extra='\n')
    except DataError as err:
        if isinstance(err, NotUTF8Error):  # names its file already
            raise
        raise DataError(f"--data {' '.join(cfg.corpus.data)}: {err}") from None


def separator_id(tokenizer):
    """The id that ends every document (the tokenizer's newline_id): GPT-1's newline symbol
    '\\n</w>' (bpe), '\\n' (char), GPT-2's '<|endoftext|>' (gpt2, id 50256: the release's end of
    text, from which its samplers start unconditional samples; GPT2Encoder.encode never yields it,
    so no text is read as a boundary). InputError for a vocabulary without one, where documents
    would run together."""
    if tokenizer.newline_id is None:
        raise InputError(f"the {type(tokenizer).__name__}'s vocabulary of {tokenizer.vocab_size} symbols has no "
                         f"line break: expected '\\n' in it, the separator that ends every document of the corpus")
    return tokenizer.newline_id


def load_corpus(cfg, tokenizer, verbose=True):
    """Encode (or reuse) the corpus of --data. Returns the token store dict ('train',
    'valid' or None, 'meta'); a validation split the --valid_fraction draw leaves shorter than
    one window is topped up to one where the corpus has the text (token_store._top_up_valid).
    Raises DataError when a split is shorter than one window, saying how many tokens there
    are and how many are needed."""
    corpus, need = cfg.corpus, cfg.source.n_ctx
    store = build_token_store(corpus.data, tokenizer, cfg.run.cache_dir, valid_fraction=corpus.valid_fraction,
                              sep_id=separator_id(tokenizer), verbose=verbose, strict=corpus.strict,
                              min_valid_tokens=need)
    meta, data = store['meta'], ' '.join(corpus.data)
    total = meta['n_train_tokens'] + meta['n_valid_tokens']
    if total < need:
        raise DataError(f"--data {data}: the corpus is {total} tokens, fewer than one window of "
                        f"--n_ctx {need}: expected at least {need} tokens (more text or a smaller --n_ctx)")
    if meta['n_train_tokens'] < need:
        raise DataError(f"--data {data}: the training split is {meta['n_train_tokens']} tokens, "
                        f"fewer than one window of --n_ctx {need}: expected at least {need} (a smaller "
                        f"--valid_fraction, more text or a smaller --n_ctx)")
    if corpus.valid_fraction > 0 and meta['n_valid_tokens'] < need:
        raise DataError(f"--data {data}: the validation split is {meta['n_valid_tokens']} tokens, "
                        f"fewer than one window of --n_ctx {need}: expected at least {need} (a larger "
                        f"--valid_fraction, more documents, a smaller --n_ctx, or --valid_fraction 0)")
    return store


# ------------------------------------------------------------------ model and optimizer

def build_model(cfg, n_vocab, device='cpu'):
    """LMModel of the config's size with n_vocab token rows and n_ctx position rows (no special
    rows): N(0, 0.02) weights, or with --init pretrained (unless resuming, which loads the
    checkpoint instead) every layer of --model_dir. With --objective mlm or electra,
    electra.build_objective_model's MaskedLM or Electra instead (the pretrained weights go into
    its encoder). Every transformer in it draws its dropout masks as --dropout_masks says."""
    source, n_ctx = cfg.source, cfg.source.n_ctx
    if cfg.objective.objective != 'lm':
        model = electra.build_objective_model(cfg.objective, cfg.model, n_vocab, n_ctx)
        encoder, n_special = model.encoder, electra.MASK_ROWS
    else:
        model = LMModel(cfg.model, vocab=n_vocab + n_ctx, n_ctx=n_ctx)
        model.transformer.set_attention(cfg.model.attn_impl)
        encoder, n_special = model, 0
    if source.init == 'pretrained' and not cfg.run.resume:
        try:
            load_pretrained(encoder, source.model_dir, n_ctx=n_ctx, n_special=n_special, n_transfer=cfg.model.n_layer)
        except (CheckpointError, ValueError) as err:
            raise CheckpointError(f"--model_dir {source.model_dir}: {err}") from None
    for m in model.modules():
        if isinstance(m, TransformerModel):
            m.set_dropout_masks(cfg.model.dropout_masks)
    return model.to(device)


def updates_per_epoch(n_train_tokens, cfg, world_size=1):
    """Updates that consume as many tokens as the training split holds (at least one)."""
    run = cfg.run
    return max(1, -(-n_train_tokens // (cfg.source.n_ctx * run.n_batch * run.n_acc * world_size)))


def n_updates_total(n_train_tokens, cfg, world_size=1):
    """The schedule's length, t_total: --n_iter epochs of updates, or --max_updates when fewer (the
    schedule ends at the run's last update, as nanoGPT's max_iters does)."""
    epochs = updates_per_epoch(n_train_tokens, cfg, world_size) * cfg.run.n_iter
    return min(epochs, cfg.run.max_updates) if cfg.run.max_updates else epochs


def warmup_fraction(cfg, t_total):
    """--warmup_updates as OpenAIAdam's warm-up, a fraction of t_total (at most 1)."""
    return min(1.0, cfg.corpus.warmup_updates / t_total)


def make_optimizer(cfg, model, t_total):
    """OpenAIAdam (cfg.optimizer's settings, the warm-up of --warmup_updates) over the model's parameters."""
    optimizer = dataclasses.replace(cfg.optimizer, lr_warmup=warmup_fraction(cfg, t_total))
    return optimizer.build(model.parameters(), t_total)


def scheduled_lr(cfg, n_updates, t_total):
    """The schedule's learning rate at update n_updates (1-based), without Adam's bias correction."""
    x = min((n_updates - 1) / t_total, 1.0)
    return cfg.optimizer.lr * SCHEDULES[cfg.optimizer.lr_schedule](x, warmup_fraction(cfg, t_total))


# ------------------------------------------------------------------ steps

def window_inputs(ids, n_vocab, device='cpu'):
    """ids (B, T) token ids -> (B, T, 2) long tensor on `device`: the tokens and their
    position rows n_vocab + t."""
    x = torch.as_tensor(np.asarray(ids), dtype=torch.long)
    positions = n_vocab + torch.arange(x.size(1)).expand_as(x)
    return torch.stack((x, positions), dim=-1).to(device)


def sample_windows(split, cfg, n_updates, rank=0):
    """The windows of the update after `n_updates` for process `rank`: (n_acc, n_batch,
    n_ctx) int64, at uniformly drawn places of `split` (a TokenSplit). The generator is
    seeded by (seed, rank, n_updates), so a resumed run draws what the uninterrupted one did."""
    run, n_ctx = cfg.run, cfg.source.n_ctx
    rng = np.random.default_rng([run.seed, rank, n_updates])
    starts = split.sample_starts(rng, run.n_acc * run.n_batch, n_ctx)
    return split.windows(starts, n_ctx).reshape(run.n_acc, run.n_batch, n_ctx)


def lm_loss(model, x, reduction='mean'):
    """x (B, T, 2) -> next-token cross entropy of the tokens at positions 1..T-1 over every
    row of the tied embedding: a scalar (reduction 'mean' or 'sum') or (B * T,) ('none',
    0 at each window's last position, which predicts nothing). The model computes it in
    chunks (LMModel's lm_targets), never holding the (B, T, vocab) logits."""
    targets = F.pad(x[:, 1:, 0], (0, 1), value=IGNORE_INDEX)
    loss = model(x, lm_targets=targets, reduction=reduction)
    return loss.reshape(-1) if reduction == 'none' else loss


def objective_loss(model, x):
    """(loss, {statistic: float}) of the run's objective on x (B, T, 2): lm_loss and no
    statistics for an LMModel, else electra.objective_loss (MaskedLM, Electra)."""
    if isinstance(unwrap_model(model), LMModel):
        return lm_loss(model, x), {}
    return electra.objective_loss(model, x)


def train_update(model, opt, windows, n_vocab, device='cpu', amp='none', scaler=None, stats=None):
    """One optimizer update over `windows` (n_acc, n_batch, n_ctx): each micro-batch's loss
    / n_acc back-propagated (under DDP the gradients are averaged at the last one only),
    then one step. n_vocab: the rows before the position rows. Returns the mean loss
    (float), and puts the mean of each of the objective's statistics into the dict `stats`
    when given; raises NonFiniteLossError before a NaN or inf loss reaches the parameters."""
    model.train()
    total, sums = 0.0, {}
    accumulator = GradientAccumulator(opt, len(windows), scaler)
    for k, ids in enumerate(windows):
        with sync_unless_last(model, k == len(windows) - 1):
            with autocast(device, amp):
                loss, values = objective_loss(model, window_inputs(ids, n_vocab, device))
            for name, v in values.items():
                sums[name] = sums.get(name, 0.0) + v / len(windows)
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(f"the loss is {value}: training cannot go on (too high a learning rate?)")
            accumulator.backward(loss)
        total += value
    if stats is not None:
        stats.update(sums)
    return total / len(windows)


def valid_starts(split, n_ctx, dist=None):
    """Starts of the non-overlapping windows of n_ctx tokens that tile `split` from its
    start (a tail shorter than a window left out); under torchrun, this rank's share."""
    starts = np.arange(0, len(split) - n_ctx + 1, n_ctx)
    return starts[dist.rank::dist.world_size] if dist is not None and dist.sharded else starts


def evaluate_objective(model, split, n_ctx, n_vocab, n_batch=64, device='cpu', amp='none', dist=None, seed=0):
    """electra.evaluate_objective of a MaskedLM or Electra on the windows that tile `split`
    (as evaluate_lm's), masked alike at every evaluation (seeded by `seed`). Returns
    {'loss': ..., statistic: ...}."""
    starts = valid_starts(split, n_ctx, dist)
    batches = (window_inputs(split.windows(starts[i:i + n_batch], n_ctx), n_vocab, device)
               for i in range(0, len(starts), n_batch))
    return electra.evaluate_objective(model, batches, lambda: autocast(device, amp), device, dist, seed)


class LMScore(NamedTuple):
    """evaluate_lm's result: the mean next-token cross entropy and its exp."""
    loss: float
    perplexity: float


def evaluate_lm(model, split, n_ctx, n_vocab, n_batch=64, device='cpu', amp='none', dist=None):
    """-> LMScore(loss, perplexity) on `split` (a TokenSplit): the mean next-token cross entropy
    over the non-overlapping windows of n_ctx tokens that tile it from its start (a tail
    shorter than a window is left out), and exp of it. `model` is the plain LMModel. Under
    torchrun (`dist`) a collective call: rank r scores every W-th window, the sums are
    all-reduced and every rank gets the same result."""
    starts = valid_starts(split, n_ctx, dist)
    sharded = dist is not None and dist.sharded
    sums = torch.zeros(2, dtype=torch.float64)  # loss, predictions
    with eval_mode(model):
        for i in range(0, len(starts), n_batch):
            x = window_inputs(split.windows(starts[i:i + n_batch], n_ctx), n_vocab, device)
            with autocast(device, amp):
                losses = lm_loss(model, x, reduction='none')
            sums += torch.tensor([losses.double().sum().item(), x.size(0) * (n_ctx - 1)], dtype=torch.float64)
    if sharded:
        reduced = sums.to(dist.device)
        tdist.all_reduce(reduced)
        sums = reduced.cpu()
    loss = float(sums[0] / sums[1])
    return LMScore(loss, math.exp(loss) if loss < 700 else math.inf)


# ------------------------------------------------------------------ output

def save_model_folder(model, folder, tokenizer):
    """Write `model` (an LMModel without special rows, or DDP around one) and its tokenizer
    as a Hugging Face openai-gpt or gpt2 folder (hf_interop.export_hf: config.json,
    model.safetensors, plus the tokenizer's files, Tokenizer.files as Tokenizer.save writes them:
    GPT-2's vocab.json and merges.txt make text_utils.load_tokenizer pick GPT2Encoder), all in one
    atomic folder write. Returns the folder."""
    model = unwrap_model(model)
    if not isinstance(model, LMModel):  # mlm, electra: the encoder, without the mask token's row
        return electra.export_encoder(model, folder, tokenizer.vocab_size, tokenizer.files())
    return export_hf(model, folder, n_vocab=tokenizer.vocab_size, n_special=0,
                     extra_files=tokenizer.files())
