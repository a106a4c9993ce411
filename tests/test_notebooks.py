"""The notebooks of notebooks/ run top to bottom under their small settings (the first code
cell reads GPT1_NOTEBOOK_SMALL), each in a copy of the project laid out as the README says,
with nbclient (jupyter_client starts the 'python3' kernel with the test's own Python); the
files in the repository keep no outputs. Executed copies go to the test's temporary folder,
never back into notebooks/."""
import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ONE_THREAD_ENV, OPENAI_DIR, ROCSTORIES_DIR, ROOT

NOTEBOOKS = ('finetune_rocstories.ipynb', 'your_own_data.ipynb', 'play_char.ipynb', 'play_math.ipynb')
SMALL_SWITCH = "SMALL = os.environ.get('GPT1_NOTEBOOK_SMALL') == '1'"


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == 'code']


def test_the_notebooks_are_there_with_no_outputs():
    assert sorted(p.name for p in (ROOT / 'notebooks').glob('*.ipynb')) == sorted(NOTEBOOKS)
    for name in NOTEBOOKS:
        nb = nbformat.read(ROOT / 'notebooks' / name, as_version=4)
        nbformat.validate(nb)
        cells = code_cells(nb)
        assert SMALL_SWITCH in cells[0].source, f'{name}: the first code cell must read the small-settings switch'
        assert 'assert ' in cells[-1].source, f'{name}: the last code cell must check the result'
        for cell in cells:
            assert cell.outputs == [] and cell.execution_count is None, f'{name}: outputs are not stripped'


def project_copy(work, name):
    """`work` laid out as the project: its modules (linked) and notebooks/{name} (copied)."""
    (work / 'notebooks').mkdir(parents=True)
    for source in ROOT.glob('*.py'):
        (work / source.name).symlink_to(source)
    (work / 'notebooks' / name).write_bytes((ROOT / 'notebooks' / name).read_bytes())
    return work / 'notebooks' / name


@pytest.mark.slow
@pytest.mark.parametrize('name', NOTEBOOKS)
def test_notebook_runs_top_to_bottom_in_small_mode(name, tmp_path, request):
    path = project_copy(tmp_path / 'project', name)
    nb = nbformat.read(path, as_version=4)
    # the Shakespeare corpus, downloaded once and kept between test runs (pytest's cache folder; a
    # fresh download without it, as under -p no:cacheprovider)
    cache = request.config.cache.mkdir('notebooks') if hasattr(request.config, 'cache') else tmp_path
    env = dict(os.environ, GPT1_NOTEBOOK_SMALL='1', GPT1_DATA_DIR=str(ROCSTORIES_DIR), GPT1_MODEL_DIR=str(OPENAI_DIR),
               GPT1_SHAKESPEARE_DIR=str(cache / 'shakespeare'), **ONE_THREAD_ENV)
    client = NotebookClient(nb, timeout=300, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}})
    try:
        client.execute(env=env)
    finally:
        nbformat.write(nb, tmp_path / name)  # the executed copy, to read when it fails
    assert all(cell.execution_count for cell in code_cells(nb))
    assert not any(out.get('output_type') == 'error' for cell in code_cells(nb) for out in cell.outputs)
