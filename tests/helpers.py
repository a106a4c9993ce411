"""Test utilities: write checkpoints in the exact format of OpenAI's TF release."""
import json
import os

import numpy as np

LAYER_SHAPES = lambda n_embd: [  # noqa: E731  (order of params_shapes.json within a layer)
    (1, n_embd, 3 * n_embd), (3 * n_embd,), (1, n_embd, n_embd), (n_embd,), (n_embd,), (n_embd,),
    (1, n_embd, 4 * n_embd), (4 * n_embd,), (1, 4 * n_embd, n_embd), (n_embd,), (n_embd,), (n_embd,)]


def tf_shapes(n_layer, n_embd, n_vocab, n_pos=512):
    """params_shapes.json's list for a model of this size."""
    return [(n_pos, n_embd), (n_vocab, n_embd)] + LAYER_SHAPES(n_embd) * n_layer


def write_tf_checkpoint(path, shapes, seed=0, n_shards=10, std=0.02):
    """Write params_shapes.json and params_0..9.npy to `path`, as the TF release laid them out:
    every array flattened, concatenated, cut into n_shards pieces. Returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s, dtype=np.float32) * np.float32(std) for s in shapes]
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, 'params_shapes.json'), 'w') as f:
        json.dump([list(s) for s in shapes], f)
    flat = np.concatenate([a.ravel() for a in arrays])
    for i, shard in enumerate(np.array_split(flat, n_shards)):
        np.save(os.path.join(path, f'params_{i}.npy'), shard)
    return arrays
