"""The README and every page under docs/ run as written.

Each page's ```bash and ```python blocks run in page order, in a fresh copy of a user's project
laid out as the README says (sources in the root, the virtual environment active, OpenAI's files
in model/, ROCStories in data/); a page whose first commands are another page's goes on from a copy
of that page's project after them (AFTER_STEPS). Other fences (console, text, csv) are shown, never run. What a page
can say to the tests, and nothing else:

- `<!-- tests: tiny -->` on the line before a block: a full-size run does not fit a test, so each
  script command of the block gets TINY_FLAGS and its Python gets TINY_PY. A page in
  FULL_SIZE_PAGES instead has the release's full shapes in model/ and runs as written.
- a block whose first line is `# not run by the tests: REASON` is not run (rare: MAX_NOT_RUN).
- the README's "Set up and test" block is what .ci/run runs, compared line for line, not run here.
"""
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import BPE_PATH, ENCODER_PATH, ONE_THREAD_ENV, PARAMS_SHAPES_PATH, ROCSTORIES_DIR, ROOT, SHARED
from tests.helpers import tf_shapes, write_tf_checkpoint
from tests.test_readers import GLUE, write_glue

PAGES = ['README.md'] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / 'docs').glob('*.md'))
DOC_PAGES = ('finetuning', 'your-data', 'pretraining', 'generation', 'gpt2', 'python-api', 'faithfulness', 'benchmarks')
FULL_SIZE_PAGES = {'docs/python-api.md', 'docs/generation.md'}
MAX_NOT_RUN = 3
GPT2_TINY_DIR = SHARED / 'data' / 'gpt2-tiny-tf'
NOT_RUN = '# not run by the tests:'
TINY = '<!-- tests: tiny -->'

# A 1-layer, 16-wide model, 36 training stories, one epoch; windows of 80 tokens, so that a
# pre-trained folder holds ROCStories' 77 positions. Only sizes and lengths of training change:
# data, generation lengths and every other flag are the page's own.
TINY_MODEL = ['--n_embd', '16', '--n_layer', '1', '--n_head', '2']
TINY_FLAGS = {'train.py': TINY_MODEL + ['--n_iter', '1', '--n_valid', '1835'],
              'pretrain.py': TINY_MODEL + ['--n_ctx', '80', '--n_batch', '4', '--max_updates', '2',
                                           '--eval_every', '2'],
              'generate.py': TINY_MODEL}
TINY_PY = {'Classifier(': 'Classifier(n_embd=16, n_layer=1, n_head=2, '}

# what each page's blocks print, all together
EXPECTED_STDOUT = {
    'README.md': [r'ROCStories Test Accuracy', r'SST-2 Valid Accuracy'],
    'docs/finetuning.md': [r'ROCStories Test Accuracy', r'SST-2 Valid Accuracy', r'\[0\.\d+ 0\.\d+\]'],
    'docs/your-data.md': [re.escape("['negative' 'positive']")],
    'docs/pretraining.md': [],
    'docs/generation.md': [r"^\['.*', '.*'\]$"],
    'docs/python-api.md': [re.escape('torch.Size([152, 40558]) torch.Size([1, 2])'),
                           re.escape('karen was assigned a roommate her first year of college .'),
                           r'^1497 374 1871$', r'^torch\.Size\(\[4, 64\]\)'],
}
HISTORY = re.compile(r'\bissues? #?\d+|\bbefore the (\w+ )?change|\bas before\b|\bearlier sessions?\b|\bused to\b|'
                     r'\bno longer\b|\bnow\b', re.I)


class Block(NamedTuple):
    lang: str
    code: str
    tiny: bool


def page_text(page):
    return (ROOT / page).read_text()


def blocks(page):
    """The fenced blocks of `page`, in order."""
    pattern = rf'^({re.escape(TINY)}\n)?```(\w*)\n(.*?)^```'
    return [Block(lang, code, bool(tiny)) for tiny, lang, code in re.findall(pattern, page_text(page), re.M | re.S)]


def setup_block():
    section = page_text('README.md').split('## Set up and test\n', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'```bash\n(.*?)```', section, flags=re.S)[0]


def runnable(page):
    """The blocks of `page` the tests run: bash and python, less the set-up block and those marked not run."""
    return [b for b in blocks(page) if b.lang in ('bash', 'python') and not b.code.startswith(NOT_RUN)
            and b.code != setup_block()]


def commands(block):
    return [line for line in block.code.splitlines() if line.strip() and not line.lstrip().startswith('#')]


def tiny_command(command):
    """`command` with TINY_FLAGS for its script appended before any redirection or comment."""
    command = command.split('  #')[0].rstrip()
    head, redirect = (command.split(' < ', 1) + [''])[:2]
    for script, flags in TINY_FLAGS.items():
        if f' {script}' in head:
            head += ' ' + ' '.join(flags)
    return head + (f' < {redirect}' if redirect else '')


def tiny_python(code):
    for old, new in TINY_PY.items():
        code = code.replace(old, new)
    return code


# ---------------------------------------------------------------- quick checks of the pages' form


def test_ci_runs_the_set_up_block_as_written():
    """.ci/run's commands (after its cd to the project root) are the README's set-up block,
    install, lint and test, line for line: CI checks what a user is told to run."""
    ci = (ROOT / '.ci' / 'run').read_text().splitlines()
    ci_commands = [line for line in ci[ci.index('cd "$(dirname "$0")/.."') + 1:] if line.strip()]
    assert ci_commands == setup_block().strip().splitlines()
    assert any('ruff check' in c for c in ci_commands) and ci_commands[-1] == '.venv/bin/python -m pytest -q'


def test_readme_is_a_doorway_to_the_docs():
    readme = page_text('README.md')
    assert len(readme.splitlines()) <= 250
    assert sorted(PAGES[1:]) == sorted(f'docs/{name}.md' for name in DOC_PAGES)
    for name in DOC_PAGES:
        assert f'](docs/{name}.md)' in readme, f'the README does not link docs/{name}.md'
    assert '```bash\npython train.py --dataset rocstories --submit --analysis\n```' in readme
    assert 'python -m pytest -q -m "not slow"' in readme and re.search(r'suite\s+takes\s+about\s+\d+\s+minutes', readme)
    assert re.search(r'subset.*takes\s+about\s+\d+\s+minutes', readme, re.S)


@pytest.mark.parametrize('page', PAGES)
def test_links_resolve(page):
    for target in re.findall(r'\]\(([^)#]+)(?:#[^)]*)?\)', page_text(page)):
        if not re.match(r'[a-z]+:', target):
            assert ((ROOT / page).parent / target).exists(), f'{page} links to {target}, which does not exist'


@pytest.mark.parametrize('page', PAGES)
def test_pages_state_what_is(page):
    """No history in the docs: what the library is, never how it came to be."""
    for n, line in enumerate(page_text(page).splitlines(), 1):
        assert not HISTORY.search(line), f'{page}:{n} tells history: {line}'


@pytest.mark.parametrize('page', PAGES)
def test_blocks_are_well_formed(page):
    """What the tests will run parses, and each marker does something."""
    for block in runnable(page):
        assert not (block.tiny and page in FULL_SIZE_PAGES), f'{page} runs on full-size weights: no tiny blocks'
        if block.lang == 'python':
            compile(block.code, page, 'exec')
            assert not block.tiny or tiny_python(block.code) != block.code, f'{page}: tiny marks nothing:\n{block.code}'
            continue
        for command in commands(block):
            # the environment is active: python and torchrun are the venv's
            assert command.split()[0] in ('python', 'torchrun'), f'{page}: {command}'
        assert not block.tiny or any(tiny_command(c) != c.split('  #')[0].rstrip() for c in commands(block))


def test_few_blocks_are_left_unrun():
    not_run = [b for page in PAGES for b in blocks(page) if b.code.startswith(NOT_RUN)]
    assert len(not_run) <= MAX_NOT_RUN
    assert all(b.lang == 'bash' for b in not_run)


# ---------------------------------------------------------------- the blocks, run


@pytest.fixture(scope='session')
def model_dirs(tmp_path_factory):
    """model_dirs(size): a folder of weights in the release's format with the real BPE files
    beside it, written the first time a page asks for it: 'tiny' a 1-layer 16-wide checkpoint,
    'full' the release's shapes (half a gigabyte)."""
    dirs = {}

    def model_dir(size):
        if size not in dirs:
            shapes = (tf_shapes(1, 16, 40478) if size == 'tiny' else
                      [tuple(s) for s in json.loads(PARAMS_SHAPES_PATH.read_text())])
            folder = tmp_path_factory.mktemp(size) / 'model'
            write_tf_checkpoint(folder, shapes)
            for f in (ENCODER_PATH, BPE_PATH):
                (folder / f.name).symlink_to(f)
            dirs[size] = folder
        return dirs[size]
    return model_dir


def project_copy(work, model_dir):
    """`work` laid out as a user's project after set-up: the sources, .venv, the weights in model/,
    ROCStories in data/, and the files the pages' examples name: a tiny GLUE SST-2 under glue/,
    your-data.md's CSV as my_train.csv and my_valid.csv, some English text as my_text.txt, and
    OpenAI's GPT-2 release folder as models/124M/ (the tiny one in ../shared/data/gpt2-tiny-tf:
    the release's layout and vocabulary, 2 blocks, 128 positions)."""
    work.mkdir()
    for source in ROOT.glob('*.py'):
        (work / source.name).symlink_to(source)
    (work / '.venv').symlink_to(Path(sys.executable).parent.parent)  # the venv running the tests
    (work / 'model').mkdir()
    for f in model_dir.iterdir():
        (work / 'model' / f.name).symlink_to(f)
    (work / 'data').mkdir()
    for f in ROCSTORIES_DIR.glob('cloze_test_*.csv'):
        (work / 'data' / f.name).symlink_to(f)
    write_glue(work / 'glue' / 'SST-2', GLUE['sst2'], {'train.tsv': 12, 'dev.tsv': 6, 'test.tsv': 5},
               random.Random(0))
    (csv,) = [b.code for b in blocks('docs/your-data.md') if b.lang == 'csv']
    for name in ('my_train.csv', 'my_valid.csv'):
        (work / name).write_text(csv)
    (work / 'my_text.txt').write_text(page_text('docs/finetuning.md')[:20000])
    (work / 'models').mkdir()
    (work / 'models' / '124M').symlink_to(GPT2_TINY_DIR)


def check_command(command, out, work):
    """What a command's own output and files must show."""
    if 'train.py' in command and '--analysis' in command:
        assert ('SST-2 Valid Accuracy' if '--dataset sst2' in command else 'ROCStories Test Accuracy') in out.stdout
    if '--dataset custom' in command:
        assert (work / 'submission' / 'custom.tsv').read_text().count('\n') == 1 + 4
    if 'score.py' in command:
        assert sum(line.startswith('*') for line in out.stdout.splitlines()) == 1
    if command.startswith('python train.py --dataset rocstories --submit'):  # the main job, run as `rocstories`
        settings = json.loads((work / 'log' / 'rocstories.jsonl').read_text().splitlines()[0])
        assert settings['n_ctx'] == 77 and settings['n_ctx_requested'] == 512


class Step(NamedTuple):
    lang: str  # 'python' or 'bash'
    code: str  # what runs: the block's Python or one command line, tiny settings substituted where marked
    command: str  # the command as the page writes it ('' for Python)


def steps(page):
    """What the tests run of `page`, in order."""
    out = []
    for block in runnable(page):
        if block.lang == 'python':
            out.append(Step('python', tiny_python(block.code) if block.tiny else block.code, ''))
        else:
            out += [Step('bash', tiny_command(c) if block.tiny else c, c) for c in commands(block)]
    return out


def model_size(page):
    return 'full' if page in FULL_SIZE_PAGES else 'tiny'


def shared_starts(page):
    """{k: the first k steps of `page` are the first k steps of another page on the same weights}."""
    mine, starts = steps(page), set()
    for other in PAGES:
        if other != page and model_size(other) == model_size(page):
            k = 0
            for a, b in zip(mine, steps(other)):
                if a != b:
                    break
                k += 1
            starts |= {k} - {0}
    return starts


# (model size, the steps run) -> (a copy of the project after them, what they printed); a page that
# starts with the same steps as an earlier one (the README and finetuning.md both begin with the
# main job) goes on from that copy instead of running them again. The copy's files may name the
# first project's paths, which stay in place for the whole session.
AFTER_STEPS = {}


def run_step(step, work, env, page):
    """Run `step` in `work`; what it printed on stdout."""
    args = ['python', '-c', step.code] if step.lang == 'python' else ['bash', '-c', step.code]
    out = subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=300, env=env)
    what = f'python block failed:\n{step.code}' if step.lang == 'python' else f'command failed: {step.code}'
    assert out.returncode == 0, f'{page}: {what}\n{out.stderr[-3000:]}'
    if step.lang == 'bash':
        check_command(step.command, out, work)
    return out.stdout


# The pages run in one pytest-xdist worker (conftest.XDIST_GROUPS).
@pytest.mark.slow
@pytest.mark.parametrize('page', [p for p in PAGES if runnable(p)])
def test_page_blocks_run_as_written(page, model_dirs, tmp_path, tmp_path_factory):
    work = tmp_path / 'project'
    todo, size, starts = steps(page), model_size(page), shared_starts(page)
    done = max((k for k in starts if (size, tuple(todo[:k])) in AFTER_STEPS), default=0)
    if done:
        copy, stdout = AFTER_STEPS[size, tuple(todo[:done])]
        shutil.copytree(copy, work, symlinks=True)
    else:
        project_copy(work, model_dirs(size))
        stdout = ''
    venv_bin = work / '.venv' / 'bin'
    env = {'PATH': f'{venv_bin}:/usr/bin:/bin', 'HOME': str(tmp_path), 'VIRTUAL_ENV': str(work / '.venv'),
           **ONE_THREAD_ENV}
    for k in range(done + 1, len(todo) + 1):
        stdout += run_step(todo[k - 1], work, env, page)
        if k in starts and (size, tuple(todo[:k])) not in AFTER_STEPS:
            copy = tmp_path_factory.mktemp('after_steps') / 'project'
            shutil.copytree(work, copy, symlinks=True)
            AFTER_STEPS[size, tuple(todo[:k])] = copy, stdout
    for pattern in EXPECTED_STDOUT.get(page, []):
        assert re.search(pattern, stdout, re.M), f'{page}: no {pattern!r} in what its blocks printed'
    if page == 'docs/your-data.md':
        assert (work / 'sentiment' / 'estimator.json').is_file()
