"""The Hugging Face code lives in hf_interop; its names still import from model_pytorch."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT

MOVED = ['HF_CONFIG', 'HF_WEIGHTS', 'HF_SAFETENSORS_INDEX', 'HF_PREFIX', 'HF_MODEL_TYPE', 'HF_HINT', 'HF_AFNS',
         '_HF_LAYER_MAP', 'hf_tensor_names', 'resolve_hf_folder', 'read_hf_config', 'load_hf_pretrained_model',
         'hf_config', 'export_hf']
KEPT = ['load_pretrained', 'find_checkpoint_format', 'CHECKPOINT_FORMATS', 'CheckpointError',
        'load_openai_pretrained_model', 'TransformerModel']

CHECK = f'''
import sys
first = sys.argv[1]
if first == 'hf_interop':
    import hf_interop
    import model_pytorch
elif first == 'model_pytorch':
    import model_pytorch
    assert 'hf_interop' not in sys.modules, 'model_pytorch must not import hf_interop at import time'
    assert 'safetensors' not in sys.modules, 'model_pytorch must not import safetensors at import time'
    import hf_interop
else:  # the from-import that train.py and the tests use, in a fresh interpreter
    from model_pytorch import export_hf, load_hf_pretrained_model, load_pretrained, find_checkpoint_format
    from model_pytorch import CHECKPOINT_FORMATS, CheckpointError
    import hf_interop
    import model_pytorch
for name in {MOVED!r}:
    a = getattr(model_pytorch, name)
    exec(f"from model_pytorch import {{name}} as b")
    assert a is getattr(hf_interop, name) and b is a, name
    assert name in dir(model_pytorch), name
    assert name in vars(hf_interop) and name not in vars(model_pytorch), name
for name in {KEPT!r}:
    assert name in vars(model_pytorch), name
try:
    model_pytorch.no_such_name
except AttributeError as err:
    assert 'no_such_name' in str(err)
else:
    raise AssertionError('unknown names must still raise AttributeError')
print('ok')
'''


@pytest.mark.parametrize('first', ['hf_interop', 'model_pytorch', 'from_import'])
def test_moved_names_are_the_same_objects_in_any_import_order(first):
    out = subprocess.run([sys.executable, '-c', CHECK, first], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'ok'
