"""electra.py: parity with electra-pytorch's Electra (randomness fixed), a numpy
re-derivation of both losses, the masking and sampling statistics, and bad inputs."""
import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import electra
from electra import DiscHead, Electra, ElectraConfig, EmbedProj, MaskedLM
from errors import ConfigError, InputError
from model_pytorch import DEFAULT_CONFIG, ModelConfig, TransformerModel, dotdict

ref_module = pytest.importorskip('electra_pytorch.electra_pytorch')

@pytest.fixture(scope='module', autouse=True)
def one_thread_here():
    """One intra-op thread: matrices this small gain nothing from several (and a busy machine slows them)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


N_TOKENS, N_CTX = 30, 12  # token ids 0..29, then 12 position rows
MASK, PAD, CLS = 29, 0, 1


def encoder(n_embd, n_head, seed):
    torch.manual_seed(seed)
    cfg = dotdict(DEFAULT_CONFIG, n_embd=n_embd, n_head=n_head, n_layer=2, embd_pdrop=0.0, attn_pdrop=0.0,
                  resid_pdrop=0.0, causal=False)
    return TransformerModel(cfg, vocab=N_TOKENS + N_CTX, n_ctx=N_CTX)


def pair(**kw):
    """A 16-wide generator and a 32-wide discriminator in an Electra (embeddings shared)."""
    model = Electra(encoder(16, 2, 0), encoder(32, 4, 1), mask_token_id=MASK, pad_token_id=PAD,
                    mask_ignore_token_ids=[CLS], **kw)
    with torch.no_grad():  # a head that is not all zeros, so that every loss term is exercised
        model.disc_head.b.fill_(0.1)
    return model


def with_positions(ids):
    return torch.stack((ids, N_TOKENS + torch.arange(ids.size(1)).expand_as(ids)), dim=-1)


def batch(padded):
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(2, MASK, (3, N_CTX), generator=g)
    ids[:, 0] = CLS
    if padded:
        ids[1, 8:] = PAD
        ids[2, 5:] = PAD
    return ids


def fixed_draws(ids):
    """A mask (3 positions per row, never pad or CLS), the replace decisions, and samples
    of which some equal the original token."""
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for row, cols in enumerate(([1, 4, 7], [2, 3, 6], [1, 2, 4])):
        mask[row, cols] = True
    replace = torch.zeros_like(mask)
    replace[0, [1, 4]] = replace[1, [2, 6]] = replace[2, [1, 2, 4]] = True
    samples = (ids[mask] + torch.tensor([0, 3, 0, 5, 1, 0, 7, 2, 0])) % (MASK - 2) + 2
    samples[[0, 2, 5, 8]] = ids[mask][[0, 2, 5, 8]]  # four samples equal the original: labelled original
    return mask, replace, samples


def patch_draws(monkeypatch, mask, replace, samples):
    def our_mask(maskable, prob):
        assert not (mask & ~maskable).any(), 'the fixed mask must be maskable'
        return mask.clone()
    monkeypatch.setattr(electra, 'choose_mask', our_mask)
    monkeypatch.setattr(electra, 'uniform', lambda shape, device: torch.where(replace, 0.0, 0.999))
    monkeypatch.setattr(electra, 'gumbel_sample', lambda logits, temperature=1.0: samples.clone())
    monkeypatch.setattr(ref_module, 'get_mask_subset_with_prob', lambda m, prob: mask.clone())
    monkeypatch.setattr(ref_module, 'prob_mask_like', lambda t, prob: replace.clone())
    monkeypatch.setattr(ref_module, 'gumbel_sample', lambda t, temperature=1.0: samples.clone())


def reference(ours):
    return ref_module.Electra(electra.WrapperView(ours, 'generator', N_TOKENS),
                              electra.WrapperView(ours, 'discriminator', N_TOKENS),
                              mask_token_id=MASK, pad_token_id=PAD, mask_ignore_token_ids=[CLS], mask_prob=0.15,
                              replace_prob=0.85, disc_weight=50.0, gen_weight=1.0)


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize('padded', [False, True])
def test_matches_electra_pytorch_with_the_randomness_fixed(monkeypatch, padded):
    ours = pair()
    ids = batch(padded)
    mask, replace, samples = fixed_draws(ids)
    patch_draws(monkeypatch, mask, replace, samples)
    got = ours(with_positions(ids))
    got.loss.backward()
    our_grads = grads(ours)
    ours.zero_grad(set_to_none=True)
    ref = reference(ours)(ids)
    ref.loss.backward()
    for field in ('loss', 'mlm_loss', 'disc_loss', 'gen_acc', 'disc_labels', 'disc_predictions'):
        torch.testing.assert_close(getattr(got, field), getattr(ref, field), atol=1e-6, rtol=0, msg=field)
    assert got.disc_labels[mask].sum() == 5 and got.disc_labels[~mask].sum() == 0  # 4 of 9 samples are originals
    right = (got.disc_predictions == got.disc_labels).float()
    real = ids != PAD
    if not padded:  # the wrapper counts padding in disc_acc's unmasked half; we leave it out
        torch.testing.assert_close(got.disc_acc, ref.disc_acc, atol=1e-6, rtol=0)
    expected = 0.5 * right[mask].mean() + 0.5 * right[~mask & real].mean()
    torch.testing.assert_close(got.disc_acc, expected, atol=1e-6, rtol=0)
    # the masked positions' projection gives the wrapper's all-positions gradients too
    ref_grads = grads(ours)
    assert our_grads.keys() == ref_grads.keys()
    for name in our_grads:
        torch.testing.assert_close(our_grads[name], ref_grads[name], atol=1e-6, rtol=1e-5, msg=name)


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_both_losses_rederived_in_numpy(monkeypatch):
    ours = pair(disc_weight=7.0, gen_weight=0.5, replace_prob=1.0)
    ids = batch(padded=True)
    mask, _, samples = fixed_draws(ids)
    patch_draws(monkeypatch, mask, torch.ones_like(mask), samples)
    got = ours(with_positions(ids))

    # the generator sees the mask token at every masked position
    gen_ids = np.where(mask.numpy(), MASK, ids.numpy())
    with torch.no_grad():
        h = ours.generator(with_positions(torch.from_numpy(gen_ids))).double().numpy()
    embed = ours.discriminator.embed.weight.detach().double().numpy()
    w = ours.generator.embed.w.detach().double().numpy()
    logits = h[mask.numpy()] @ w.T @ embed[:N_TOKENS].T  # the shared embedding, through the projection
    targets = ids.numpy()[mask.numpy()]
    mlm = -log_softmax(logits)[np.arange(len(targets)), targets].mean()

    disc_ids = ids.numpy().copy()
    disc_ids[mask.numpy()] = samples.numpy()
    labels = (disc_ids != ids.numpy()).astype(np.float64)
    with torch.no_grad():
        hd = ours.discriminator(with_positions(torch.from_numpy(disc_ids))).double().numpy()
    z = (hd @ ours.disc_head.w.detach().double().numpy() + ours.disc_head.b.detach().double().numpy())[..., 0]
    real = ids.numpy() != PAD
    bce = np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0) - z * labels  # -[y log s(z) + (1-y) log(1-s(z))]
    disc = bce[real].mean()

    np.testing.assert_allclose(got.mlm_loss.item(), mlm, atol=1e-6)
    np.testing.assert_allclose(got.disc_loss.item(), disc, atol=1e-6)
    np.testing.assert_allclose(got.loss.item(), 0.5 * mlm + 7.0 * disc, atol=1e-5)
    np.testing.assert_array_equal(got.disc_labels.numpy(), labels)
    np.testing.assert_array_equal(got.disc_predictions.numpy(), (z > 0).astype(np.float64))
    gen_acc = (logits.argmax(-1) == targets).mean()
    np.testing.assert_allclose(got.gen_acc.item(), gen_acc, atol=1e-6)


def test_masked_lm_loss_is_the_cross_entropy_at_the_masked_positions(monkeypatch):
    model = MaskedLM(encoder(16, 2, 0), mask_token_id=MASK, pad_token_id=PAD, mask_ignore_token_ids=[CLS])
    ids = batch(padded=True)
    mask, replace, samples = fixed_draws(ids)
    patch_draws(monkeypatch, mask, replace, samples)
    got = model(with_positions(ids))
    gen_ids = torch.where(mask & replace, MASK, ids)
    with torch.no_grad():
        h = model.generator(with_positions(gen_ids))
        logits = (h @ model.generator.embed.weight[:N_TOKENS].T).double().numpy()
    targets = ids.numpy()[mask.numpy()]
    expected = -log_softmax(logits[mask.numpy()])[np.arange(len(targets)), targets].mean()
    np.testing.assert_allclose(got.mlm_loss.item(), expected, atol=1e-6)
    assert got.loss is got.mlm_loss
    np.testing.assert_allclose(got.mlm_acc.item(), (logits[mask.numpy()].argmax(-1) == targets).mean())


# ------------------------------------------------------------------ masking and sampling

def test_choose_mask_takes_ceil_of_the_share_of_maskable_tokens_uniformly():
    torch.manual_seed(0)
    maskable = torch.ones(4000, 20, dtype=torch.bool)
    maskable[:, 15:] = False  # 15 maskable: ceil(0.15 * 15) = 3 per row
    maskable[1::2, :] = True  # 20 maskable: ceil(0.15 * 20) = 3 exactly, not 4
    mask = electra.choose_mask(maskable, 0.15)
    assert not (mask & ~maskable).any()
    assert (mask.sum(1) == 3).all()
    freq = mask[0::2, :15].float().mean(0)  # uniform: each of the 15 positions 1/5 of the time
    assert (freq - 0.2).abs().max() < 0.03
    assert (electra.choose_mask(torch.zeros(2, 5, dtype=torch.bool), 0.5) == 0).all()


def test_bert_split_of_the_masked_positions():
    torch.manual_seed(0)
    tokens = torch.full((200, 50), 7)
    mask = torch.rand(tokens.shape) < 0.5
    pool = torch.tensor([3, 4, 5])
    out = electra.corrupt(tokens, mask, 0.8, 0.1, MASK, pool)
    assert torch.equal(out[~mask], tokens[~mask])
    masked = out[mask]
    shares = [(masked == MASK).float().mean(), torch.isin(masked, pool).float().mean(), (masked == 7).float().mean()]
    np.testing.assert_allclose([s.item() for s in shares], [0.8, 0.1, 0.1], atol=0.015)


def test_gumbel_sample_draws_from_the_tempered_softmax():
    torch.manual_seed(0)
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).repeat(40000, 1)
    for t in (1.0, 0.5):
        counts = torch.bincount(electra.gumbel_sample(logits, t), minlength=4).double() / len(logits)
        np.testing.assert_allclose(counts.numpy(), torch.softmax(logits[0].double() / t, 0).numpy(), atol=0.01)


def test_masking_never_touches_padding_ignored_ids_or_the_vocabulary_tail():
    ours = pair(random_token_prob=0.15, replace_prob=0.7)
    ids = batch(padded=True).repeat(30, 1)
    torch.manual_seed(0)
    tokens, not_pad, mask, gen_input = ours.mask_input(with_positions(ids))
    assert not mask[ids == PAD].any() and not mask[ids == CLS].any()
    assert torch.equal(gen_input[..., 1], with_positions(ids)[..., 1])
    changed = gen_input[..., 0] != ids
    assert not (changed & ~mask).any()
    drawn = gen_input[..., 0][changed & (gen_input[..., 0] != MASK)]
    assert len(drawn) and drawn.max() < N_TOKENS and not torch.isin(drawn, torch.tensor([PAD, CLS])).any()


# ------------------------------------------------------------------ shared embeddings and training

def test_embeddings_are_shared_and_both_losses_fall_when_trained():
    ours = pair()
    assert isinstance(ours.generator.embed, EmbedProj) and ours.generator.embed.shared is ours.discriminator.embed
    same = Electra(encoder(32, 4, 0), encoder(32, 4, 1), mask_token_id=MASK)
    assert same.generator.embed is same.discriminator.embed
    apart = Electra(encoder(16, 2, 0), encoder(32, 4, 1), mask_token_id=MASK, tie_embeddings=False)
    assert apart.generator.embed is not apart.discriminator.embed
    assert isinstance(ours.disc_head, DiscHead) and ours.disc_head.w.shape == (32, 1)

    torch.manual_seed(0)
    ids = torch.randint(2, 12, (8, N_CTX))  # a small vocabulary: learnable in a few steps
    ids[:, 0] = CLS
    opt = torch.optim.Adam(ours.parameters(), lr=3e-3)
    first = last = None
    for step in range(25):
        out = ours(with_positions(ids))
        opt.zero_grad()
        out.loss.backward()
        assert ours.discriminator.embed.weight.grad is not None
        opt.step()
        first = first or (out.mlm_loss.item(), out.disc_loss.item())
        last = (out.mlm_loss.item(), out.disc_loss.item())
    assert last[0] < 0.7 * first[0], (first, last)
    assert last[1] < first[1], (first, last)


# ------------------------------------------------------------------ bad inputs

@pytest.mark.parametrize('kw, message', [
    (dict(mask_prob=0.0), r'mask_prob=0.0: expected a probability in \(0, 1\)'),
    (dict(mask_prob=1.0), r'mask_prob=1.0: expected a probability in \(0, 1\)'),
    (dict(mask_prob=float('nan')), r'mask_prob=nan'),
    (dict(replace_prob=0.9, random_token_prob=0.2), r'replace_prob=0.9 \+ random_token_prob=0.2: expected at most 1'),
    (dict(mask_token_id=N_TOKENS), r'mask_token_id=30: expected the id of a mask token .* 0..29'),
    (dict(mask_token_id=None), r'mask_token_id=None'),
    (dict(disc_weight=-1.0), r'disc_weight=-1.0: expected a finite weight >= 0'),
    (dict(temperature=0.0), r'temperature=0.0: expected a positive number'),
])
def test_bad_settings_are_one_line_input_errors(kw, message):
    args = dict(mask_token_id=MASK)
    args.update(kw)
    with pytest.raises(InputError, match=message):
        Electra(encoder(16, 2, 0), encoder(32, 4, 1), **args)


def test_other_models_need_their_heads_and_a_wider_generator_warns():
    class Plain(nn.Module):
        def forward(self, ids):
            return ids.float()[..., None]
    with pytest.raises(InputError, match=r'tie_embeddings=True shares TransformerModel embeddings .* Plain'):
        Electra(Plain(), encoder(32, 4, 1), mask_token_id=MASK)
    with pytest.raises(InputError, match=r'num_tokens=None: the generator is a Plain'):
        Electra(Plain(), encoder(32, 4, 1), mask_token_id=MASK, tie_embeddings=False)
    with pytest.raises(InputError, match=r'gen_head=None: the generator is a Plain'):
        Electra(Plain(), encoder(32, 4, 1), mask_token_id=MASK, tie_embeddings=False, num_tokens=N_TOKENS)
    with pytest.warns(UserWarning, match=r'generator \(32 wide\) is wider than the discriminator \(16\).*collapse'):
        Electra(encoder(32, 4, 0), encoder(16, 2, 1), mask_token_id=MASK)
    assert math.isfinite(Electra(Plain(), Plain(), mask_token_id=MASK, tie_embeddings=False, num_tokens=N_TOKENS,
                                 gen_head=nn.Linear(1, N_TOKENS), disc_head=lambda h: h[..., 0])(
        batch(False)).loss.item())


# ------------------------------------------------------------------ ElectraConfig

def test_config_defaults_are_the_papers_and_round_trip_through_json():
    import json
    assert ElectraConfig().to_dict() == dict(objective='lm', mask_prob=0.15, gen_size=0.25, disc_weight=50.0)
    cfg = ElectraConfig(objective='electra', mask_prob=0.2, gen_size=0.5, disc_weight=10.0)
    assert ElectraConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert ElectraConfig.from_dict({'objective': 'mlm'}) == ElectraConfig(objective='mlm')
    with pytest.raises(ConfigError, match=r"^gen_weight=1: expected a field of ElectraConfig \(objective, mask_prob"):
        ElectraConfig.from_dict({'gen_weight': 1})


@pytest.mark.parametrize('name, value, expected', [
    ('objective', 'clm', "one of lm, mlm, electra"),
    ('mask_prob', 0.0, "a fraction in (0, 1) of each window's tokens"), ('mask_prob', 1.0, "a fraction in (0, 1)"),
    ('mask_prob', 'x', "a fraction in (0, 1)"),
    ('gen_size', 0.0, "a positive fraction of the discriminator's width"), ('gen_size', float('inf'), "positive"),
    ('disc_weight', -1.0, "a finite weight >= 0"), ('disc_weight', float('nan'), "a finite weight >= 0"),
    ('disc_weight', True, "a finite weight >= 0"),
])
def test_a_bad_field_is_a_config_error_naming_it(name, value, expected):
    with pytest.raises(ConfigError) as info:
        ElectraConfig(**{name: value})
    assert info.value.field == name and info.value.value is value and expected in info.value.expected


def test_the_generator_is_gen_size_of_the_discriminator():
    assert ElectraConfig(gen_size=0.25).generator_size(256, 4) == (64, 1)  # ELECTRA-Small's
    assert ElectraConfig(gen_size=0.01).generator_size(32, 4) == (1, 1)  # at least one head
    assert ElectraConfig(gen_size=2.0).generator_size(32, 4) == (64, 8)
    with pytest.raises(ConfigError) as info:
        ElectraConfig(gen_size=0.9).generator_size(32, 2)
    assert info.value.as_flag() == ("--gen_size 0.9: expected a fraction giving a generator width its heads divide "
                                    "(the generator would be 29 wide with 2 heads)")


def test_the_objective_model_follows_the_config():
    model_cfg = ModelConfig(n_embd=32, n_head=4, n_layer=1, attn_impl='explicit')
    objective = ElectraConfig(objective='electra', mask_prob=0.3, gen_size=0.5, disc_weight=7.0)
    model = electra.build_objective_model(objective, model_cfg, n_vocab=20, n_ctx=8)
    assert isinstance(model, Electra) and (model.mask_prob, model.disc_weight, model.mask_token_id) == (0.3, 7.0, 20)
    assert (model.generator.n_embd, model.discriminator.n_embd) == (16, 32)
    assert not model.discriminator.causal and not model.generator.causal
    mlm = dataclasses.replace(objective, objective='mlm')
    assert isinstance(electra.build_objective_model(mlm, model_cfg, n_vocab=20, n_ctx=8), MaskedLM)
    assert electra.objective_warnings(mlm, 32, 4) == []
    wide = dataclasses.replace(objective, gen_size=2.0)
    assert electra.objective_warnings(wide, 32, 4)[0].startswith('--gen_size 2.0: the generator (64 wide) is wider')
