"""Test utilities: write checkpoints in the exact format of OpenAI's TF release (the
library's own writer, model_pytorch.write_tf_checkpoint, kept importable from here)."""
from model_pytorch import tf_shapes, write_tf_checkpoint  # noqa: F401
