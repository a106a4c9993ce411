"""The README's examples run as written: its shell blocks from a project folder laid out as
the README says (after the two set-up commands), and its Python API examples."""
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BPE_PATH, ENCODER_PATH, PARAMS_SHAPES_PATH, ROCSTORIES_DIR, ROOT
from tests.helpers import tf_shapes, write_tf_checkpoint
from tests.test_readers import GLUE, write_glue

# A test cannot train the full-size model for 3 epochs: these flags are appended to each
# command (a 1-layer, 16-wide model, 36 training stories, one epoch, two updates). They change
# only sizes and lengths of training: the data splits, generation lengths and every other flag
# are the README's own.
TINY_MODEL = ['--n_embd', '16', '--n_layer', '1', '--n_head', '2']
TINY_FLAGS = {'train.py': TINY_MODEL + ['--n_iter', '1', '--n_valid', '1835'],
              # windows of 80 tokens: a pre-trained folder then holds ROCStories' 77 positions, and
              # generate.py's --gen_len 200 runs past them
              'pretrain.py': TINY_MODEL + ['--n_ctx', '80', '--n_batch', '4', '--max_updates', '2',
                                           '--eval_every', '2'],
              'generate.py': TINY_MODEL}


def readme_blocks(section, lang='python'):
    """The ```lang blocks of README section `section` ('' for the whole README)."""
    text = (ROOT / 'README.md').read_text()
    body = text.split(f'## {section}\n', 1)[1].split('\n## ', 1)[0] if section else text
    return re.findall(rf'```{lang}\n(.*?)```', body, flags=re.S)


def shell_commands():
    """Every command of the README's bash blocks after the set-up block (which CI itself runs)."""
    blocks = readme_blocks('', 'bash')
    assert 'pip install -r requirements-dev.txt' in blocks[0] and 'pytest' in blocks[0]
    return [line for block in blocks[1:] for line in block.splitlines() if line.strip() and
            not line.lstrip().startswith('#')]


def tiny(command):
    """`command` with TINY_FLAGS for its script appended before any redirection or comment."""
    command = command.split('  #')[0].rstrip()
    head, redirect = (command.split(' < ', 1) + [''])[:2]
    for script, flags in TINY_FLAGS.items():
        if f' {script}' in head:
            head += ' ' + ' '.join(flags)
    return head + (f' < {redirect}' if redirect else '')


def project_copy(work):
    """`work` laid out as a user's project after set-up: the sources, .venv, the weights in
    model/ (a tiny checkpoint with the real vocabulary's rows) and ROCStories in data/."""
    work.mkdir()
    for source in ROOT.glob('*.py'):
        (work / source.name).symlink_to(source)
    (work / '.venv').symlink_to(Path(sys.executable).parent.parent)  # the venv running the tests
    write_tf_checkpoint(work / 'model', tf_shapes(1, 16, 40478))
    for f in (ENCODER_PATH, BPE_PATH):
        (work / 'model' / f.name).symlink_to(f)
    (work / 'data').mkdir()
    for f in ROCSTORIES_DIR.glob('cloze_test_*.csv'):
        (work / 'data' / f.name).symlink_to(f)
    # the other tasks' examples: a tiny GLUE SST-2 folder, and the README's own CSV
    write_glue(work / 'glue' / 'SST-2', GLUE['sst2'], {'train.tsv': 12, 'dev.tsv': 6, 'test.tsv': 5},
               random.Random(0))
    (csv,) = readme_blocks("The paper's other tasks and your own data", 'csv')
    for name in ('my_train.csv', 'my_valid.csv'):
        (work / name).write_text(csv)
    (work / 'my_text.txt').write_text((ROOT / 'README.md').read_text()[:20000])  # some English text


@pytest.mark.slow
def test_shell_blocks_run_as_written(tmp_path):
    work = tmp_path / 'project'
    project_copy(work)
    commands = shell_commands()
    assert any(c.startswith('.venv/bin/python train.py') for c in commands)
    assert all(c.startswith('.venv/bin/') for c in commands), 'every command runs from the venv, as set up'
    for command in commands:
        out = subprocess.run(['bash', '-c', tiny(command)], cwd=work, capture_output=True, text=True, timeout=300,
                             env={'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path)})
        assert out.returncode == 0, f'README command failed: {tiny(command)}\n{out.stderr[-3000:]}'
        if 'train.py' in command and '--analysis' in command:
            assert ('SST-2 Valid Accuracy' if '--dataset sst2' in command else 'ROCStories Test Accuracy') in out.stdout
        if '--dataset custom' in command:
            assert (work / 'submission' / 'custom.tsv').read_text().count('\n') == 1 + 4
        if 'score.py' in command:
            assert sum(line.startswith('*') for line in out.stdout.splitlines()) == 1
    log = [json.loads(line) for line in (work / 'log' / 'rocstories.jsonl').read_text().splitlines()]
    assert log[0]['n_ctx'] == 77 and log[0]['n_ctx_requested'] == 512
    # the Python example of a finetuned run, from the same folder
    (code,) = readme_blocks('Finetuning on ROCStories (the main job)')[0:1]
    out = subprocess.run([sys.executable, '-c', code], cwd=work, capture_output=True, text=True, timeout=300,
                         env={'PYTHONPATH': str(ROOT), 'PATH': '/usr/bin:/bin'})
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r'\[0\.\d+ 0\.\d+\]', out.stdout)
    # the estimator example, on the tiny checkpoint (its sizes given, as TINY_FLAGS does for the scripts)
    (code,) = readme_blocks("The paper's other tasks and your own data")
    code = code.replace('Classifier(', "Classifier(n_embd=16, n_layer=1, n_head=2, ")
    out = subprocess.run([sys.executable, '-c', code], cwd=work, capture_output=True, text=True, timeout=300,
                         env={'PYTHONPATH': str(ROOT), 'PATH': '/usr/bin:/bin'})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "['negative' 'positive']" in out.stdout and (work / 'sentiment' / 'estimator.json').is_file()


@pytest.mark.slow
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


def test_ci_runs_the_set_up_block_as_written():
    """.ci/run's commands (after its cd to the project root) are the README's set-up block,
    install, lint and test, line for line: CI checks what a user is told to run."""
    (setup,) = readme_blocks('Set up and test', 'bash')
    ci = (ROOT / '.ci' / 'run').read_text().splitlines()
    commands = [line for line in ci[ci.index('cd "$(dirname "$0")/.."') + 1:] if line.strip()]
    assert commands == setup.strip().splitlines()
    assert any('ruff check' in c for c in commands) and commands[-1] == '.venv/bin/python -m pytest -q'
