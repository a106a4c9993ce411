"""Pretrained weights in whichever format a folder holds: GPT-1's TF release's shards
(tf_checkpoint, loaded by model_pytorch.load_openai_pretrained_model), GPT-2's release (hparams.json
and a TF tensor bundle, tf_checkpoint.load_gpt2_checkpoint), or a Hugging Face save (hf_interop),
which is also what pretrain.py and export_hf write. `load_pretrained` finds the
format and loads it; the other functions read a checkpoint's sizes and settings without its
values, so that a model of the right shape can be built first.
"""
import os

from safetensors import SafetensorError, safe_open

import hf_interop
from errors import CheckpointError, MissingFileError
from hf_interop import load_hf_pretrained_model
from model_pytorch import load_openai_pretrained_model, transformer_of
from tf_checkpoint import (GPT2_HPARAMS, GPT2_PREFIX, gpt2_checkpoint_sizes, is_gpt2_release, load_gpt2_checkpoint,
                           tf_checkpoint_sizes)

CHECKPOINT_FORMATS = {'tf': "TF release's checkpoint", 'gpt2-tf': "GPT-2 release's TF checkpoint",
                      'hf': 'Hugging Face weights'}


def find_checkpoint_format(path):
    """'tf' when `path` holds the TF release's shards (params_shapes.json), 'gpt2-tf' when it
    holds GPT-2's release (hparams.json with `checkpoint` or model.ckpt.index), 'hf' when
    it holds a Hugging Face save (config.json + model.safetensors or pytorch_model.bin,
    or the hub cache's models--openai-gpt folder); raises MissingFileError (a
    FileNotFoundError) otherwise."""
    looked_for = ("looked for OpenAI's params_shapes.json with params_0.npy ... params_9.npy (the TF release's "
                  "model/ folder of https://github.com/openai/finetune-transformer-lm), GPT-2's hparams.json with "
                  "model.ckpt.index and model.ckpt.data-00000-of-00001 (openai/gpt-2's download_model.py), or Hugging "
                  "Face's config.json with model.safetensors or pytorch_model.bin "
                  "(e.g. ~/.cache/huggingface/hub/models--openai-gpt/snapshots/<hash>/)")
    if os.path.isfile(os.path.join(path, 'params_shapes.json')):
        return 'tf'
    if not os.path.exists(path):
        raise MissingFileError(f"model folder {path!r} does not exist: {looked_for}")
    if is_gpt2_release(path):
        return 'gpt2-tf'
    folder = hf_interop.resolve_hf_folder(path)
    if folder is not None:
        if not hf_interop.has_hf_weights(folder):
            raise MissingFileError(f"{folder} has config.json but neither model.safetensors nor "
                                   f"pytorch_model.bin: {looked_for}")
        return 'hf'
    if os.path.isfile(os.path.join(path, GPT2_HPARAMS)):
        raise MissingFileError(f"{path} has {GPT2_HPARAMS} but no {GPT2_PREFIX}.index: {looked_for}")
    raise MissingFileError(f"{path} holds no checkpoint: {looked_for}")


def checkpoint_causal(path):
    """Whether the checkpoint in `path` has causal attention: True for OpenAI's releases,
    config.json's `causal` for a Hugging Face folder (False only for a bidirectional
    model this port saved; True when the key is absent)."""
    if find_checkpoint_format(path) in ('tf', 'gpt2-tf'):
        return True
    return hf_interop.read_hf_config(hf_interop.resolve_hf_folder(path))['causal']


def checkpoint_sizes(path):
    """The sizes of the checkpoint in `path`, read without its values: dict(n_ctx (its position
    rows), n_embd, n_layer, n_head (None for the TF release's shards, which do not record it),
    arch, causal). The TF shards' params_shapes.json is checked against the shards' sizes, GPT-2's
    hparams.json against its index, a Hugging Face folder's config.json against its weights'
    shapes (hf_interop.hf_checkpoint_sizes)."""
    fmt = find_checkpoint_format(path)
    if fmt == 'tf':
        return tf_checkpoint_sizes(path)
    if fmt == 'gpt2-tf':
        return gpt2_checkpoint_sizes(path)
    config = hf_interop.hf_checkpoint_sizes(hf_interop.resolve_hf_folder(path))
    return dict(n_ctx=config['n_positions'],
                **{k: config[k] for k in ('n_embd', 'n_layer', 'n_head', 'arch', 'causal')})


def check_params_shapes(params_path, source, vocab, n_embd, n_layer):
    """CheckpointError unless the header of params_path (a model's parameters as safetensors, the
    transformer's under `transformer.`) holds an embedding of (vocab, n_embd) and n_layer blocks, the
    sizes `source` (the file they come from) describes: read without the values, before a model of
    that size is built, so a damaged size cannot ask for gigabytes."""
    try:
        with safe_open(params_path, framework='pt') as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{params_path} could not be read as safetensors ({err}): expected a model's "
                              f"parameters") from None
    embed = shapes.get('transformer.embed.weight')
    if embed != (vocab, n_embd):
        raise CheckpointError(f"{params_path}: transformer.embed.weight has shape {embed}, expected "
                              f"{(vocab, n_embd)} from {source}")
    blocks = len({k.split('.')[2] for k in shapes if k.startswith('transformer.h.')})
    if blocks != n_layer:
        raise CheckpointError(f"{params_path} holds {blocks} blocks but {source} has n_layer {n_layer}")


def load_pretrained(model, path, n_ctx=-1, n_special=-1, n_transfer=None):
    """Load pretrained weights from `path` in whichever format it holds, with the
    arguments of `load_openai_pretrained_model` (n_transfer None: all the model's layers).

    Returns the format found ('tf' for the TF release's shards, 'gpt2-tf' for GPT-2's release (into
    a model of arch 'gpt2', see `tf_checkpoint.load_gpt2_checkpoint`), 'hf' for a Hugging Face save,
    see `hf_interop.load_hf_pretrained_model`), so that callers can say which one they used."""
    fmt = find_checkpoint_format(path)
    if fmt == 'hf':
        load_hf_pretrained_model(model, path, n_ctx=n_ctx, n_special=n_special, n_transfer=n_transfer)
    elif fmt == 'gpt2-tf':
        load_gpt2_checkpoint(transformer_of(model), path, n_ctx=n_ctx, n_special=n_special, n_transfer=n_transfer)
    else:
        load_openai_pretrained_model(model, n_ctx=n_ctx, n_special=n_special, n_transfer=n_transfer, path=path)
    return fmt
