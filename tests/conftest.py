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
GPT2_DIR = SHARED / "data" / "gpt2"
GPT2_TINY_DIR = SHARED / "data" / "gpt2-tiny-tf"  # OpenAI's GPT-2 release layout: 2 layers, 64 wide, 128 positions


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


@pytest.fixture(scope="session")
def gpt2_tiny_dir():
    """The tiny GPT-2 checkpoint in the release's folder layout, with GPT-2's encoder.json and vocab.bpe."""
    return _require(GPT2_TINY_DIR)


@pytest.fixture(scope="session")
def gpt2_hf_dir(gpt2_tiny_dir, tmp_path_factory):
    """The tiny release as a Hugging Face gpt2 folder (hf_interop.export_hf, with its vocab.json and
    merges.txt): config.json, model.safetensors, the tokenizer's files."""
    from hf_interop import export_hf
    from model_pytorch import LMModel, ModelConfig
    from weights import checkpoint_sizes, load_pretrained
    sizes = checkpoint_sizes(gpt2_tiny_dir)
    cfg = ModelConfig(n_embd=sizes['n_embd'], n_head=sizes['n_head'], n_layer=sizes['n_layer'], arch='gpt2')
    model = LMModel(cfg, vocab=50257 + sizes['n_ctx'], n_ctx=sizes['n_ctx'])
    load_pretrained(model, gpt2_tiny_dir)
    folder = tmp_path_factory.mktemp('gpt2_hf') / 'tiny'
    return Path(export_hf(model, folder, bpe_files=(gpt2_tiny_dir / 'encoder.json', gpt2_tiny_dir / 'vocab.bpe')))


@pytest.fixture(scope="session")
def gpt1_folder(tmp_path_factory, encoder_path, bpe_path):
    """A random 2-layer GPT-1-shaped model with GPT-1's BPE and 64 positions, exported as a Hugging
    Face folder, and the same weights in transformers' OpenAIGPTLMHeadModel: (folder, hf model)."""
    transformers = pytest.importorskip('transformers')
    from hf_interop import export_hf
    from model_pytorch import LMModel, ModelConfig
    from tests.helpers import LM_N_CTX, LM_N_VOCAB
    torch.manual_seed(0)
    model = LMModel(ModelConfig(n_embd=32, n_head=4, n_layer=2), vocab=LM_N_VOCAB + LM_N_CTX, n_ctx=LM_N_CTX)
    folder = tmp_path_factory.mktemp('gpt1') / 'model'
    export_hf(model, folder, n_vocab=LM_N_VOCAB, n_special=0, bpe_files=(str(encoder_path), str(bpe_path)))
    return folder, transformers.OpenAIGPTLMHeadModel.from_pretrained(folder).eval()


@pytest.fixture(scope="session")
def lm(gpt1_folder):
    """gpt1_folder's model as lm_scores.load_language_model reads it."""
    import lm_scores
    return lm_scores.load_language_model(str(gpt1_folder[0]))


# For the processes a test starts where the thread count does not matter to what it checks
# (test_train's pinned run checks the machine's default threads, so it is no global setting).
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="session", autouse=True)
def one_thread_per_process():
    """One intra-op thread in the tests' own process: the suite's models are tiny and the machine
    has 2 shared cores, where a second thread only adds contention (a tiny training update takes
    several times longer with two)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def one_thread():
    """Bitwise-reproducible CPU training: one intra-op thread while the test runs."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(items):
    """The slow tests first, each set in its own order: pytest-xdist hands tests out in this
    order, so the long runs start while both workers have work, and the last tests handed
    out are short ones that keep both cores busy to the end."""
    items.sort(key=lambda item: item.get_closest_marker('slow') is None)


# Tests that share what one process computes once: test_readme's pages go on from another page's
# AFTER_STEPS and write the full-size weights once; test_score's tests share one finished run (a
# module fixture), as do test_train_gpt2's. The start of their node ids -> their group.
XDIST_GROUPS = {'tests/test_readme.py::test_page_blocks_run_as_written': 'pages', 'tests/test_score.py::': 'score',
                'tests/test_train_gpt2.py::': 'train_gpt2'}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's default distribution (-n N), but each of XDIST_GROUPS runs in one worker
    (xdist's own --dist loadgroup cannot mark a test's node id under pytest 9); the groups go
    out first, then every other test alone, in the order of collection."""
    if config.getvalue('dist') != 'load':
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return next((group for start, group in XDIST_GROUPS.items() if nodeid.startswith(start)), nodeid)
    return GroupScheduling(config, log)
