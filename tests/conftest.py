import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GPT1_SHARED", ROOT.parent / "shared")).resolve()
OPENAI_DIR = SHARED / "data" / "openai-gpt"
ROCSTORIES_DIR = SHARED / "data" / "rocstories"
ENCODER_PATH = OPENAI_DIR / "encoder_bpe_40000.json"
BPE_PATH = OPENAI_DIR / "vocab_40000.bpe"
PARAMS_SHAPES_PATH = OPENAI_DIR / "params_shapes.json"


def _require(path):
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the tests need ../shared/data beside the project (see README)")
    return path


@pytest.fixture(scope="session")
def openai_dir():
    return _require(OPENAI_DIR)


@pytest.fixture(scope="session")
def rocstories_dir():
    return _require(ROCSTORIES_DIR)


@pytest.fixture(scope="session")
def encoder_path():
    return _require(ENCODER_PATH)


@pytest.fixture(scope="session")
def bpe_path():
    return _require(BPE_PATH)


@pytest.fixture
def one_thread():
    """Bitwise-reproducible CPU training: one intra-op thread while the test runs."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
