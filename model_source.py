"""What a finetuning run's --model_dir decides before anything is built: the model's block layout
and sizes where the checkpoint records them, the positions a run may ask for, and whether the
BPE files are the checkpoint's vocabulary. train.py's validate_args and check_inputs and the
estimators call it; which tokenizer reads the BPE files (GPT-1's TextEncoder or GPT-2's
GPT2Encoder) is text_utils.load_bpe's choice, made by the files alone.

    cfg = resolve_model(cfg)      # arch, n_embd, n_head, n_layer from the checkpoint; n_ctx checked
    check_vocabulary(cfg.source)  # GPT-1's checkpoint with GPT-2's files, or the reverse: one line
"""
import dataclasses

from bpe_files import load_vocabulary, vocabulary_kind
from errors import ConfigError, InputError
from hf_interop import BPE_VOCAB_SIZES, read_hf_config, resolve_hf_folder
from model_pytorch import ModelConfig
from run_frame import SourceConfig
from tf_checkpoint import GPT2_N_CTX, N_CTX_MAX, read_hparams, tf_checkpoint_vocab
from weights import checkpoint_sizes, find_checkpoint_format

SIZE_FIELDS = ('arch', 'n_embd', 'n_head', 'n_layer')  # what a checkpoint says of the model it fills
_DEFAULT_MODEL = ModelConfig()
_DEFAULT_SOURCE = SourceConfig()
# The positions a randomly initialised model may have: those of the release of its block layout.
RANDOM_N_CTX = {'gpt1': N_CTX_MAX, 'gpt2': GPT2_N_CTX}
VOCABULARIES = {'gpt1': "GPT-1's BPE", 'gpt2': "GPT-2's byte-level BPE"}


def checkpoint_vocab(path):
    """The token rows of the checkpoint in `path`, read without its values: its vocabulary, without
    the special-token rows a finetuned export adds and without the position rows."""
    fmt = find_checkpoint_format(path)
    if fmt == 'tf':
        return tf_checkpoint_vocab(path)
    if fmt == 'gpt2-tf':
        return read_hparams(path)['n_vocab']
    config = read_hf_config(resolve_hf_folder(path))
    return config['vocab_size'] - int(config.get('n_special') or 0)


def _sizes(path):
    """checkpoint_sizes of `path`, None where it cannot be read (check_inputs and build_model then
    say what is wrong with the folder)."""
    try:
        return checkpoint_sizes(path)
    except (OSError, ValueError):
        return None


def resolve_model(cfg):
    """`cfg` (a config group with the parts `source` and `model`) with the model's sizes taken from
    the checkpoint of source.model_dir where it starts from one (init 'pretrained'): each of arch,
    n_embd, n_head and n_layer left at ModelConfig's default (GPT-1's) becomes the checkpoint's; a
    size given otherwise is kept for the loader to check (fewer layers load with n_transfer).
    GPT-1's TF shards, which do not record n_head, leave every size to the flags. An n_ctx left at its default
    (512) is cut to the checkpoint's positions where it has fewer; ConfigError for an n_ctx above
    them (random init, or a folder that cannot be read: above 512 for arch gpt1, 1,024 for gpt2)."""
    source, model = cfg.source, cfg.model
    sizes = _sizes(source.model_dir) if source.init == 'pretrained' else None
    if sizes is not None and sizes['n_head'] is not None:
        taken = {k: sizes[k] for k in SIZE_FIELDS if getattr(model, k) == getattr(_DEFAULT_MODEL, k)}
        model = dataclasses.replace(model, **taken)
    if sizes is not None:
        limit, where = sizes['n_ctx'], f"the checkpoint in {source.model_dir}"
    else:  # random weights, or a folder the loader will name the fault of
        limit, where = RANDOM_N_CTX[model.arch], f"OpenAI's {'GPT-2' if model.arch == 'gpt2' else 'GPT-1'} models"
    if source.n_ctx == _DEFAULT_SOURCE.n_ctx and sizes is not None:  # the default: as many as the checkpoint has
        source = dataclasses.replace(source, n_ctx=min(source.n_ctx, limit))
    if source.n_ctx > limit:
        raise ConfigError('n_ctx', source.n_ctx, f"at most the {limit} positions of {where}")
    return dataclasses.replace(cfg, source=source, model=model)


def check_vocabulary(source):
    """InputError when the checkpoint of source.model_dir (init 'pretrained') has the token rows of
    one of OpenAI's vocabularies (GPT-1's 40,478, GPT-2's 50,257) and the BPE vocabulary file
    source.encoder_path holds another number of tokens: GPT-1's checkpoint given GPT-2's files, or
    the reverse, is one line before any work. A folder or file that cannot be
    read passes: check_inputs and the tokenizer say what is wrong with it."""
    if source.init != 'pretrained':
        return
    try:
        rows = checkpoint_vocab(source.model_dir)
        vocab = load_vocabulary(source.encoder_path, "a BPE vocabulary file")
    except (OSError, ValueError):
        return
    if len(vocab) == rows or rows not in BPE_VOCAB_SIZES.values():  # other sizes: the loader names the rows
        return
    kind = vocabulary_kind(vocab)
    held = f"{len(vocab)} tokens" + (f", {VOCABULARIES[kind]}" if kind else '')
    model = next((f", {VOCABULARIES[k]}" for k, n in BPE_VOCAB_SIZES.items() if n == rows), '')
    raise InputError(f"--encoder_path {source.encoder_path} holds {held}, but the checkpoint in --model_dir "
                     f"{source.model_dir} has {rows} token rows{model}: expected the vocabulary it was trained with "
                     f"(the folder's own BPE files, or --encoder_path and --bpe_path of that model)")
