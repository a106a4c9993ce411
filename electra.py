"""ELECTRA (Clark et al., 2020) and the masked-LM baseline, around this library's models.

`Electra(generator, discriminator, mask_token_id=..., ...)` pre-trains `discriminator` to
tell, for every token, whether a small masked-LM `generator` replaced it. Its options and
result fields carry the names of electra-pytorch's `Electra` (the wrapper people use):
forward(input) returns Results(loss, mlm_loss, disc_loss, gen_acc, disc_acc, disc_labels,
disc_predictions). `MaskedLM(model, mask_token_id=..., ...)` is BERT's masked LM with the
same masking, for comparing objectives on equal terms.

The models: any nn.Module mapping `input` to hidden states (B, T, width), where `input` is
(B, T) token ids, or (B, T, 2) (token id, position id) pairs as TransformerModel takes them;
only the token ids are masked and replaced. The library's TransformerModel (built with
causal=False) is the default use: the generator's masked-LM head is then its embedding
matrix's token rows (tied, as LMHead), and the discriminator's head a DiscHead. Other
models pass `gen_head` ((N, width) -> (N, num_tokens) logits) and `disc_head`
((B, T, width) -> (B, T) logits), and `tie_embeddings=False`.

Differences from electra-pytorch, on purpose:
- the generator's vocabulary projection is computed only at the masked positions (the
  wrapper projects every position: most of the generator's cost with a 40k vocabulary);
  the loss is the same mean over the masked positions;
- `random_token_prob` is BERT's split of the masked positions: replace_prob of them get
  the mask token, random_token_prob a random token, the rest stay (the wrapper also puts
  random tokens at positions it does not mask);
- padding (`pad_token_id`, None: no padding) is never masked nor scored, and disc_acc's
  unmasked half leaves padding out (the wrapper counts it);
- `mask_token_id` has no default (the wrapper's 2 is an ordinary token here).

`ElectraConfig` holds pretrain.py's objective (lm, mlm or electra) and its settings, named as
their flags; `build_objective_model` builds the MaskedLM or Electra a run trains.
"""
import copy
import dataclasses
import math
import numbers
import warnings
from collections import namedtuple
from dataclasses import dataclass, field

import torch
import torch.distributed as tdist
import torch.nn as nn
import torch.nn.functional as F

from checkpoint import save_params
from errors import ConfigError, InputError
from flags import Config, check_number
from run_frame import eval_mode
from hf_interop import export_hf
from model_pytorch import Conv1D, TransformerModel

Results = namedtuple('Results', ['loss', 'mlm_loss', 'disc_loss', 'gen_acc', 'disc_acc', 'disc_labels',
                                 'disc_predictions'])
MLMResults = namedtuple('MLMResults', ['loss', 'mlm_loss', 'mlm_acc'])

OBJECTIVES = ('lm', 'mlm', 'electra')
MASK_TOKEN = '_mask_'  # its id is the vocabulary's size: after every token, before the position rows


# ------------------------------------------------------------------ heads and shared embeddings

class DiscHead(Conv1D):
    """The discriminator's per-token score: h (..., n_embd) -> logits (...,) = h @ w + b,
    w (n_embd, 1) initialised N(0, 0.02) as every weight of the model."""

    def __init__(self, n_embd):
        super().__init__(n_embd, 1)

    def forward(self, h):
        return super().forward(h).squeeze(-1)


class EmbedProj(nn.Module):
    """A narrower generator's view of the discriminator's embedding matrix (token and
    position rows shared, the paper's setting): rows (...) -> shared(rows) @ w, (..., n_embd).
    w (n_shared, n_embd) starts N(0, 1/n_shared), which keeps the rows' scale."""

    def __init__(self, shared, n_embd):
        super().__init__()
        self.shared = shared
        self.w = nn.Parameter(torch.empty(shared.weight.size(1), n_embd).normal_(std=shared.weight.size(1) ** -0.5))

    def forward(self, rows):
        return self.shared(rows) @ self.w


def share_embeddings(generator, discriminator):
    """Make the generator (a TransformerModel) read the discriminator's embedding matrix:
    the same nn.Embedding when both are as wide, else through an EmbedProj. Returns the generator."""
    for name, m in (('generator', generator), ('discriminator', discriminator)):
        if not isinstance(m, TransformerModel):
            raise InputError(f"tie_embeddings=True shares TransformerModel embeddings but the {name} is a "
                             f"{type(m).__name__}: expected tie_embeddings=False for other models")
    if (generator.vocab, generator.n_ctx) != (discriminator.vocab, discriminator.n_ctx):
        raise InputError(f"tie_embeddings=True: the generator's embedding has {generator.vocab} rows "
                         f"(n_ctx {generator.n_ctx}), the discriminator's {discriminator.vocab} (n_ctx "
                         f"{discriminator.n_ctx}): expected the same vocabulary and positions")
    if generator.n_embd == discriminator.n_embd:
        generator.embed = discriminator.embed
    else:
        generator.embed = EmbedProj(discriminator.embed, generator.n_embd)
    return generator


def tied_logits(model, h, num_tokens):
    """A TransformerModel's masked-LM logits: h (N, n_embd) -> (N, num_tokens) over the first
    num_tokens rows of its (tied) embedding matrix, through EmbedProj's w when it has one."""
    embed = model.embed
    if isinstance(embed, EmbedProj):
        h, embed = h @ embed.w.t(), embed.shared
    return F.linear(h, embed.weight[:num_tokens])


# ------------------------------------------------------------------ masking and sampling

def tokens_of(input):
    """input (B, T) ids or (B, T, 2) (token, position) pairs -> token ids (B, T)."""
    return input[..., 0] if input.dim() == 3 else input


def with_tokens(input, tokens):
    """`input` with its token ids replaced by tokens (B, T), in input's layout."""
    if input.dim() == 3:
        return torch.stack((tokens, input[..., 1]), dim=-1)
    return tokens


def choose_mask(maskable, mask_prob):
    """maskable (B, T) bool -> mask (B, T) bool: in each row, ceil(mask_prob * n) of its n
    maskable positions, drawn uniformly without replacement (as electra-pytorch counts)."""
    n = maskable.sum(dim=1, keepdim=True)
    k = torch.ceil(n.double() * mask_prob - 1e-9).long()  # 1e-9: 20 * 0.15 is 3, not 3.0000000000000004
    scores = torch.rand(maskable.shape, device=maskable.device).masked_fill(~maskable, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)  # the unmaskable (score 2) rank after every maskable one
    return rank < k


def uniform(shape, device):
    """U(0, 1) draws deciding each masked position's fate (a function, for tests to fix)."""
    return torch.rand(shape, device=device)


def corrupt(tokens, mask, replace_prob, random_token_prob, mask_token_id, random_pool):
    """The generator's input tokens (B, T): at each masked position the mask token with
    probability replace_prob, with probability random_token_prob a token drawn uniformly
    from random_pool (1-D ids), else the token itself; elsewhere the tokens unchanged."""
    u = uniform(tokens.shape, tokens.device)
    out = tokens.masked_fill(mask & (u < replace_prob), mask_token_id)
    if random_token_prob > 0:
        pick = mask & (u >= replace_prob) & (u < replace_prob + random_token_prob)
        drawn = random_pool[torch.randint(len(random_pool), tokens.shape, device=tokens.device)]
        out = torch.where(pick, drawn, out)
    return out


def gumbel_sample(logits, temperature=1.0):
    """logits (N, V) -> (N,) ids drawn from softmax(logits / temperature): the Gumbel-max
    trick, argmax(logits / t + g) with g = -log(E), E ~ Exp(1). No gradient."""
    logits = logits.detach().float() / temperature
    e = torch.empty_like(logits).exponential_().clamp_min_(torch.finfo(logits.dtype).tiny)  # log(0) would win
    return (logits - e.log()).argmax(dim=-1)


def _check_fraction(name, value, low_open=False, high_open=False):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
        and (0 < value if low_open else 0 <= value) and (value < 1 if high_open else value <= 1)
    if not ok:
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise InputError(f"{name}={value!r}: expected a probability in {interval}")


class _Masking(nn.Module):
    """What MaskedLM and Electra share: the masking settings, the generator and its head."""

    def _setup(self, generator, gen_head, num_tokens, mask_token_id, pad_token_id, mask_ignore_token_ids,
               mask_prob, replace_prob, random_token_prob):
        _check_fraction('mask_prob', mask_prob, low_open=True, high_open=True)
        _check_fraction('replace_prob', replace_prob)
        _check_fraction('random_token_prob', random_token_prob)
        if replace_prob + random_token_prob > 1:
            raise InputError(f"replace_prob={replace_prob} + random_token_prob={random_token_prob}: expected at "
                             f"most 1 (they split the masked positions)")
        if num_tokens is None:
            if not isinstance(generator, TransformerModel):
                raise InputError(f"num_tokens=None: the generator is a {type(generator).__name__}, not a "
                                 f"TransformerModel: expected the number of token ids its head scores")
            num_tokens = generator.vocab - generator.n_ctx  # the token rows (position rows excluded)
        if gen_head is None and not isinstance(generator, TransformerModel):
            raise InputError(f"gen_head=None: the generator is a {type(generator).__name__}; expected a head "
                             f"mapping its hidden states (N, width) to (N, {num_tokens}) logits")
        if not isinstance(mask_token_id, numbers.Integral) or not 0 <= mask_token_id < num_tokens:
            raise InputError(f"mask_token_id={mask_token_id!r}: expected the id of a mask token in the model's "
                             f"vocabulary, 0..{num_tokens - 1} (a vocabulary with a mask token, such as "
                             f"{MASK_TOKEN} after the BPE vocabulary)")
        self.generator, self.gen_head = generator, gen_head
        self.num_tokens, self.mask_token_id, self.pad_token_id = num_tokens, int(mask_token_id), pad_token_id
        # never masked, nor drawn as random tokens
        self.mask_ignore_token_ids = sorted(set(mask_ignore_token_ids) | {mask_token_id} | (
            set() if pad_token_id is None else {pad_token_id}))
        self.mask_prob, self.replace_prob, self.random_token_prob = mask_prob, replace_prob, random_token_prob

    def not_pad(self, tokens):
        """tokens (B, T) -> (B, T) bool, False at padding."""
        if self.pad_token_id is None:
            return torch.ones_like(tokens, dtype=torch.bool)
        return tokens != self.pad_token_id

    def mask_input(self, input):
        """input (B, T) or (B, T, 2) -> (tokens (B, T), not_pad (B, T), mask (B, T) bool, the
        generator's input in input's layout)."""
        tokens = tokens_of(input)
        not_pad = self.not_pad(tokens)
        ignored = torch.tensor(self.mask_ignore_token_ids, device=tokens.device)
        mask = choose_mask(not_pad & ~torch.isin(tokens, ignored), self.mask_prob)
        pool = None
        if self.random_token_prob > 0:
            ids = torch.arange(self.num_tokens, device=tokens.device)
            pool = ids[~torch.isin(ids, ignored)]
        masked = corrupt(tokens, mask, self.replace_prob, self.random_token_prob, self.mask_token_id, pool)
        return tokens, not_pad, mask, with_tokens(input, masked)

    def gen_logits(self, h):
        """The generator's hidden states at the masked positions (N, width) -> logits (N, num_tokens)."""
        return self.gen_head(h) if self.gen_head is not None else tied_logits(self.generator, h, self.num_tokens)

    def masked_lm(self, input, **kwargs):
        """-> (tokens, not_pad, mask, logits (N, num_tokens) at the mask's positions in
        row-major order, mlm_loss, mlm accuracy)."""
        tokens, not_pad, mask, gen_input = self.mask_input(input)
        h = self.generator(gen_input, **kwargs)
        logits = self.gen_logits(h[mask])
        targets = tokens[mask]
        mlm_loss = F.cross_entropy(logits.float(), targets)
        with torch.no_grad():
            acc = (logits.argmax(dim=-1) == targets).float().mean()
        return tokens, not_pad, mask, logits, mlm_loss, acc


class MaskedLM(_Masking):
    """BERT's masked LM: forward(input) -> MLMResults(loss, mlm_loss, mlm_acc), loss =
    mlm_loss, the mean cross entropy at the masked positions. Arguments as Electra's."""

    def __init__(self, model, *, mask_token_id, num_tokens=None, mask_prob=0.15, replace_prob=0.85,
                 random_token_prob=0.0, pad_token_id=None, mask_ignore_token_ids=(), head=None):
        super().__init__()
        self._setup(model, head, num_tokens, mask_token_id, pad_token_id, mask_ignore_token_ids, mask_prob,
                    replace_prob, random_token_prob)

    @property
    def encoder(self):
        return self.generator

    def forward(self, input, **kwargs):
        _, _, _, _, mlm_loss, acc = self.masked_lm(input, **kwargs)
        return MLMResults(mlm_loss, mlm_loss, acc)


class Electra(_Masking):
    """ELECTRA's replaced-token detection around a generator and a discriminator.

    generator, discriminator: models mapping input (B, T) or (B, T, 2) to hidden states
    (B, T, width) (see the module's docstring). num_tokens: the token ids the generator
    scores and random tokens come from (None: a TransformerModel's token rows). mask_prob:
    share of each sequence's maskable tokens masked (ceil of it); replace_prob,
    random_token_prob: BERT's split of those (mask token, random token, unchanged).
    mask_token_id: required; pad_token_id: the padding id, never masked nor scored (None:
    no padding); mask_ignore_token_ids: ids never masked. disc_weight, gen_weight: loss =
    gen_weight * mlm_loss + disc_weight * disc_loss (the paper's 1 and 50). temperature:
    of the sampling of replacements. gen_head, disc_head: see the module docstring (None:
    the tied embedding and a new DiscHead). tie_embeddings: share token and position
    embeddings (the paper's setting; TransformerModels only).

    forward(input, **kwargs) (kwargs go to both models, e.g. key_mask) -> Results: loss,
    mlm_loss (mean cross entropy at the masked positions), disc_loss (mean binary cross
    entropy over every non-pad token), gen_acc (the generator's argmax accuracy at the
    masked positions), disc_acc (mean of the accuracies at masked and at other non-pad
    positions), disc_labels (B, T) float (1: replaced; a sampled token equal to the original
    counts as original), disc_predictions (B, T) float (1 where the logit is positive).
    """

    def __init__(self, generator, discriminator, *, mask_token_id, num_tokens=None, mask_prob=0.15,
                 replace_prob=0.85, random_token_prob=0.0, pad_token_id=None, mask_ignore_token_ids=(),
                 disc_weight=50.0, gen_weight=1.0, temperature=1.0, gen_head=None, disc_head=None,
                 tie_embeddings=True):
        super().__init__()
        if tie_embeddings:
            share_embeddings(generator, discriminator)
        self._setup(generator, gen_head, num_tokens, mask_token_id, pad_token_id, mask_ignore_token_ids, mask_prob,
                    replace_prob, random_token_prob)
        for name, value in (('disc_weight', disc_weight), ('gen_weight', gen_weight)):
            if not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise InputError(f"{name}={value!r}: expected a finite weight >= 0")
        if not isinstance(temperature, numbers.Real) or not math.isfinite(temperature) or temperature <= 0:
            raise InputError(f"temperature={temperature!r}: expected a positive number")
        if disc_head is None:
            if not isinstance(discriminator, TransformerModel):
                raise InputError(f"disc_head=None: the discriminator is a {type(discriminator).__name__}; expected "
                                 f"a head mapping its hidden states (B, T, width) to (B, T) logits")
            disc_head = DiscHead(discriminator.n_embd)
        widths = getattr(generator, 'n_embd', None), getattr(discriminator, 'n_embd', None)
        if None not in widths and widths[0] > widths[1]:
            warnings.warn(wider_generator_warning(*widths), stacklevel=2)
        self.discriminator, self.disc_head = discriminator, disc_head
        self.disc_weight, self.gen_weight, self.temperature = disc_weight, gen_weight, temperature

    @property
    def encoder(self):
        return self.discriminator

    def forward(self, input, **kwargs):
        tokens, not_pad, mask, logits, mlm_loss, gen_acc = self.masked_lm(input, **kwargs)
        sampled = gumbel_sample(logits, self.temperature)
        disc_tokens = tokens.masked_scatter(mask, sampled)  # row-major, as logits' rows
        disc_labels = (disc_tokens != tokens).float()
        disc_logits = self.disc_head(self.discriminator(with_tokens(input, disc_tokens), **kwargs))
        disc_loss = F.binary_cross_entropy_with_logits(disc_logits[not_pad].float(), disc_labels[not_pad])
        with torch.no_grad():
            disc_predictions = (disc_logits > 0).float()
            right = (disc_predictions == disc_labels).float()
            disc_acc = 0.5 * right[mask].mean() + 0.5 * right[~mask & not_pad].mean()
        loss = self.gen_weight * mlm_loss + self.disc_weight * disc_loss
        return Results(loss, mlm_loss, disc_loss, gen_acc, disc_acc, disc_labels, disc_predictions)


class WrapperView(nn.Module):
    """One half of an Electra as electra-pytorch's Electra calls its models, for comparing
    the two on the same models: ids (B, T) -> the generator's logits at every position
    (B, T, num_tokens) (part 'generator'), or the discriminator's (B, T) ('discriminator').
    n_rows: the embedding rows before the position rows."""

    def __init__(self, electra, part, n_rows):
        super().__init__()
        self.electra, self.part, self.n_rows = electra, part, n_rows

    def forward(self, ids):
        x = torch.stack((ids, self.n_rows + torch.arange(ids.size(1), device=ids.device).expand_as(ids)), dim=-1)
        if self.part == 'generator':
            return tied_logits(self.electra.generator, self.electra.generator(x), self.electra.num_tokens)
        return self.electra.disc_head(self.electra.discriminator(x))


def wider_generator_warning(gen_width, disc_width):
    return (f"the generator ({gen_width} wide) is wider than the discriminator ({disc_width}): the paper saw "
            f"training collapse there (generators of 1/4 to 1/2 the width work best)")


# ------------------------------------------------------------------ pretrain.py's objectives mlm and electra
#
# The vocabulary of these runs: the tokenizer's n_vocab ids, then MASK_TOKEN (id n_vocab, one new
# row), then the n_ctx position rows. The ids of the tokens do not move; the output folder
# leaves the mask row out, so that train.py appends its special tokens after the
# vocabulary as it does for the LM objective's folder and OpenAI's checkpoint.

MASK_ROWS = 1


@dataclass
class ElectraConfig(Config):
    """pretrain.py's objective and its settings, named as their flags."""

    objective: str = field(default='lm', metadata={
        'choices': OBJECTIVES,
        'help': "lm: next-token LM (GPT-1's); mlm: BERT's masked LM, electra: ELECTRA's replaced-token detection, "
                "both on bidirectional models (electra.py), with a mask token after the vocabulary"})
    mask_prob: float = field(default=0.15, metadata={'help': "mlm and electra: share of each window's tokens masked"})
    gen_size: float = field(default=0.25, metadata={
        'help': "electra: the generator's width (and heads) as a fraction of the discriminator's"})
    disc_weight: float = field(default=50.0, metadata={
        'help': "electra: loss = mlm loss + disc_weight * the discriminator's loss"})

    def check(self):
        if self.objective not in OBJECTIVES:
            raise ConfigError('objective', self.objective, f"one of {', '.join(OBJECTIVES)}")
        check_number('mask_prob', self.mask_prob, lambda v: 0 < v < 1, "a fraction in (0, 1) of each window's tokens")
        check_number('gen_size', self.gen_size, lambda v: 0 < v < math.inf,
                     "a positive fraction of the discriminator's width")
        check_number('disc_weight', self.disc_weight, lambda v: 0 <= v < math.inf, "a finite weight >= 0")

    def generator_size(self, n_embd, n_head):
        """(n_embd, n_head) of the generator of a discriminator n_embd wide with n_head heads:
        gen_size of both (at least one head), as the paper's ELECTRA-Small (256 wide, 4 heads ->
        64, 1). Raises ConfigError naming gen_size when those heads do not divide that width."""
        width, heads = max(1, round(n_embd * self.gen_size)), max(1, round(n_head * self.gen_size))
        if width % heads:
            raise ConfigError('gen_size', self.gen_size, f"a fraction giving a generator width its heads divide "
                                                         f"(the generator would be {width} wide with {heads} heads)")
        return width, heads


OBJECTIVE_DEFAULTS = ElectraConfig().to_dict()  # what the runs from before these flags computed with


def special_rows(objective):
    """Rows between the tokens and the positions: the mask token's for mlm and electra."""
    return 0 if objective == 'lm' else MASK_ROWS


def objective_warnings(objective, n_embd, n_head):
    """The run's warnings about its objective (an ElectraConfig) for a discriminator n_embd wide
    with n_head heads: a generator wider than the discriminator."""
    width = objective.generator_size(n_embd, n_head)[0]
    if objective.objective == 'electra' and width > n_embd:
        return [f"--gen_size {objective.gen_size}: {wider_generator_warning(width, n_embd)}"]
    return []


def build_objective_model(objective, model_cfg, n_vocab, n_ctx):
    """The MaskedLM (objective 'mlm') or Electra ('electra') of the ElectraConfig `objective`:
    bidirectional TransformerModels of the ModelConfig `model_cfg` with n_vocab token rows, the
    mask row and n_ctx position rows; the discriminator (mlm: the model) of model_cfg's size,
    the generator gen_size of it, both n_layer deep. Pretrained weights go into its `encoder`."""
    cfg = dataclasses.replace(model_cfg, causal=False)
    vocab = n_vocab + MASK_ROWS + n_ctx
    model = TransformerModel(cfg, vocab=vocab, n_ctx=n_ctx).set_attention(cfg.attn_impl)
    settings = dict(mask_token_id=n_vocab, mask_prob=objective.mask_prob)
    if objective.objective == 'mlm':
        return MaskedLM(model, **settings)
    n_embd, n_head = objective.generator_size(cfg.n_embd, cfg.n_head)
    gen_cfg = dataclasses.replace(cfg, n_embd=n_embd, n_head=n_head)
    generator = TransformerModel(gen_cfg, vocab=vocab, n_ctx=n_ctx).set_attention(cfg.attn_impl)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # a wider generator: pretrain.py logs objective_warnings instead
        return Electra(generator, model, disc_weight=objective.disc_weight, **settings)


def stat_names(model):
    """The loss and statistics a MaskedLM or Electra reports, sorted: mlm's loss, mlm_acc,
    mlm_loss; electra's disc_acc, disc_loss, gen_acc, loss, mlm_loss."""
    fields = Results._fields if isinstance(model, Electra) else MLMResults._fields
    return sorted(f for f in fields if f not in ('disc_labels', 'disc_predictions'))


def objective_loss(model, x):
    """model: a MaskedLM or Electra (or DDP around one); x (B, T, 2) ->
    (loss, {statistic: float}): mlm_loss and mlm_acc, or mlm_loss, disc_loss, gen_acc, disc_acc."""
    out = model(x)
    names = [k for k in out._fields if k not in ('loss', 'disc_labels', 'disc_predictions')]
    values = torch.stack([getattr(out, k).detach().float() for k in names]).tolist()  # one device sync
    return out.loss, dict(zip(names, values))


def evaluate_objective(model, batches, amp_context, device='cpu', dist=None, seed=0):
    """The mean loss and statistics of objective_loss over `batches` (an iterable of (B, T, 2)
    inputs on `device`), each batch weighted by its size, with the masks and samples drawn
    from torch's generators seeded by `seed` (their states restored after), so that every
    evaluation of a run masks alike. amp_context(): the autocast context of the forward.
    Under torchrun (`dist`) a collective call: the sums are all-reduced, every rank gets the
    same result. Returns {'loss': ..., statistic: ...}."""
    keys = stat_names(model)
    sums, n = dict.fromkeys(keys, 0.0), 0
    cuda = [torch.device(device)] if torch.device(device).type == 'cuda' else []
    with eval_mode(model), torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        for x in batches:
            with amp_context():
                loss, stats = objective_loss(model, x)
            for k, v in dict(stats, loss=float(loss)).items():
                sums[k] += v * x.size(0)
            n += x.size(0)
    totals = torch.tensor([sums[k] for k in keys] + [n], dtype=torch.float64)
    if dist is not None and dist.sharded:
        reduced = totals.to(dist.device)
        tdist.all_reduce(reduced)
        totals = reduced.cpu()
    return {k: float(totals[i] / totals[-1]) for i, k in enumerate(keys)}


def export_encoder(model, folder, n_vocab, extra_files=None):
    """Write the encoder of a MaskedLM or Electra (the discriminator) as a Hugging Face
    folder (hf_interop.export_hf, config.json's causal false) with its n_vocab token rows
    and its position rows: the mask row is left out. Returns the folder."""
    encoder = model.encoder
    out = copy.deepcopy(encoder)
    with torch.no_grad():
        rows = torch.cat((encoder.embed.weight[:n_vocab], encoder.embed.weight[n_vocab + MASK_ROWS:]))
    out.embed = nn.Embedding.from_pretrained(rows.clone(), freeze=False)
    out.vocab = rows.size(0)
    return export_hf(out, folder, n_vocab=n_vocab, n_special=0, extra_files=extra_files)


def save_generator(model, path):
    """Electra's generator (its blocks and its view of the shared embeddings) as safetensors
    at `path`, written atomically; nothing for a MaskedLM. Returns whether it wrote."""
    if not isinstance(model, Electra):
        return False
    save_params(model.generator, path)
    return True
