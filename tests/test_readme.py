"""The README's Python API examples run as written."""
import json
import re
import subprocess
import sys

from tests.conftest import BPE_PATH, ENCODER_PATH, PARAMS_SHAPES_PATH, ROOT
from tests.helpers import write_tf_checkpoint


def readme_blocks(section):
    text = (ROOT / 'README.md').read_text()
    body = text.split(f'## {section}\n', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'```python\n(.*?)```', body, flags=re.S)


def test_python_api_examples_run_as_written(tmp_path):
    shapes = [tuple(s) for s in json.loads(PARAMS_SHAPES_PATH.read_text())]
    write_tf_checkpoint(tmp_path / 'model', shapes)
    for f in (ENCODER_PATH, BPE_PATH):  # where a user keeps them, beside the shards
        (tmp_path / 'model' / f.name).symlink_to(f)
    blocks = readme_blocks('Python API')
    assert blocks, 'the README has no python example under "Python API"'
    stdout = ''
    for code in blocks:
        out = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True,
                             env={'PYTHONPATH': str(ROOT), 'PATH': '/usr/bin:/bin'})
        assert out.returncode == 0, f'README block failed:\n{code}\n{out.stderr}'
        stdout += out.stdout
    assert 'torch.Size([152, 40558]) torch.Size([1, 2])' in stdout
    assert 'karen was assigned a roommate her first year of college .' in stdout
