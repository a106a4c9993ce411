"""train.py under torchrun: DistributedDataParallel on the CPU with gloo, 2 processes.

The runs are subprocesses of `torchrun --standalone --nproc_per_node 2 train.py` on the
real ROCStories files and BPE vocabulary with a tiny model (16 wide, 1 layer) and
--n_valid 1835, which leaves 36 training stories: a few updates an epoch. Every process
gets OMP_NUM_THREADS=1 (2 cores for 2 processes).
"""
import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as tdist
from safetensors.torch import load_file

import checkpoint
import distributed
import finetune
import train
from checkpoint import read_checkpoint
from helpers import rocstories_encoded_once, tf_shapes, write_tf_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2']
TINY = ['--n_embd', '16', '--n_layer', '1', '--n_head', '2']
NO_DROPOUT = ['--embd_pdrop', '0', '--attn_pdrop', '0', '--resid_pdrop', '0', '--clf_pdrop', '0']
ENV = {'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}


def _env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in distributed.TORCHRUN_VARS and k != distributed.DEBUG_FAIL_VAR}
    return {**env, **ENV, **(extra or {})}


def _data_argv(rocstories_dir, encoder_path, bpe_path):
    return ['--data_dir', str(rocstories_dir), '--encoder_path', str(encoder_path), '--bpe_path', str(bpe_path),
            *TINY, '--n_valid', '1835']


def _torchrun(cwd, argv, env=None, timeout=120, check=True):
    cwd.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    proc = subprocess.run([*TORCHRUN, str(ROOT / 'train.py'), *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=_env(env))
    proc.elapsed = time.monotonic() - start
    if check:
        assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _lines(text):
    """Output lines, with tqdm's carriage-return redraws split off."""
    return [part for line in text.splitlines() for part in line.split('\r')]


# ------------------------------------------------------------------ set-up (no subprocess)

def test_torchrun_env_detection(monkeypatch):
    assert distributed.torchrun_env({}) is None
    assert distributed.torchrun_env({'WORLD_SIZE': '4', 'RANK': '3', 'LOCAL_RANK': '1'}) == (3, 1, 4)
    with pytest.raises(train.InputError, match='WORLD_SIZE set but RANK, LOCAL_RANK not'):
        distributed.torchrun_env({'WORLD_SIZE': '2'})
    with pytest.raises(train.InputError, match='expected 0 <= RANK < WORLD_SIZE'):
        distributed.torchrun_env({'WORLD_SIZE': '2', 'RANK': '2', 'LOCAL_RANK': '0'})
    # a plain `python train.py`: no process group at all
    for name in distributed.TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    dist, device = distributed.setup_distributed(train.parse_args(['--device', 'cpu']).run)
    assert dist == distributed.DistInfo() and not dist.enabled and dist.world_size == 1
    assert device == torch.device('cpu')
    assert not tdist.is_initialized()
    model = torch.nn.Linear(2, 2)
    assert train.wrap_model(model, dist) is model and distributed.unwrap_model(model) is model


def test_global_batch_check_and_t_total():
    args = train.parse_args(['--n_batch', '8', '--n_acc', '2'])
    finetune.check_global_batch(32, args, 2)  # 8 x 2 x 2 = 32 fits
    assert finetune.n_updates_total(100, args, 2) == 3 * 3  # global updates: 100 // 32 per epoch, 3 epochs
    with pytest.raises(train.InputError, match=r'^--n_batch 8 x 2 processes x --n_acc 2 = 32 examples per update is '
                                               r'more than the 31 training examples: expected at most 31 \(e\.g\. '
                                               r'--n_batch 7 or less with 2 processes and --n_acc 2\)$'):
        finetune.check_global_batch(31, args, 2)
    with pytest.raises(train.InputError, match=r'--n_acc 1 and --n_batch 1 or less with 2 processes'):
        finetune.check_global_batch(3, args, 2)
    with pytest.raises(train.InputError, match=r'at most 1 processes'):
        finetune.check_global_batch(1, args, 2)
    with pytest.raises(train.InputError, match=r'^--n_batch 8 x --n_acc 2 = 16 examples per update'):
        finetune.check_global_batch(15, args, 1)


def test_help_documents_the_new_flags(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(['--help'])
    out = capsys.readouterr().out
    assert '--max_updates' in out and '--dist_timeout' in out
    for argv, flag in ((['--max_updates', '-1'], '--max_updates -1'), (['--dist_timeout', '0'], '--dist_timeout 0.0')):
        with pytest.raises(SystemExit):
            train.parse_args(argv)
        assert f'error: {flag}' in capsys.readouterr().err


# ------------------------------------------------------------------ the same update as one process

@pytest.mark.slow
@pytest.mark.parametrize('ddp_extra', [[], ['--share_prefix']])
def test_two_processes_make_the_update_of_one_process_with_the_same_global_batch(
        tmp_path, monkeypatch, rocstories_dir, encoder_path, bpe_path, ddp_extra):
    """2 processes x n_batch 2 x n_acc 2 (no_sync on the first micro-batch, DDP's average on the
    second) against 1 process x n_batch 8: the same 8 examples, the same parameters after the
    update (schedule 'none', so the first update moves them), with the LM loss on (tied head).
    With --share_prefix on the 2 processes (DDP around the SharedPrefixModel) against the
    default path on the one: the same update too."""
    common = _data_argv(rocstories_dir, encoder_path, bpe_path) + NO_DROPOUT + [
        '--init', 'random', '--lr_schedule', 'none', '--lr', '1e-3', '--n_iter', '1', '--max_updates', '1']
    ddp_dir = tmp_path / 'ddp'
    ddp_dir.mkdir()
    background = subprocess.Popen([*TORCHRUN, str(ROOT / 'train.py'), *common, '--n_batch', '2', '--n_acc', '2',
                                   *ddp_extra],
                                  cwd=ddp_dir, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # meanwhile, the single process here (no torchrun variables: no process group)
        for name in distributed.TORCHRUN_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.chdir(tmp_path)
        loaded = {}
        real_load = train.load_data

        def keep(args, verbose=True):
            loaded['data'] = real_load(args, verbose)
            return loaded['data']
        monkeypatch.setattr(train, 'load_data', keep)
        n_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            args = train.parse_args(common + ['--n_batch', '8', '--n_acc', '1', '--save_dir', 'single'])
            with rocstories_encoded_once():
                single = train.run(args, verbose=False)
        finally:
            torch.set_num_threads(n_threads)
        assert single['n_updates'] == 1 and single['world_size'] == 1
        out, err = background.communicate(timeout=120)
    finally:
        if background.poll() is None:
            background.kill()
    assert background.returncode == 0, err[-4000:]

    ddp = read_checkpoint(ddp_dir / 'save' / 'rocstories')['model']
    one = read_checkpoint(tmp_path / 'single' / 'rocstories')['model']
    assert set(ddp) == set(one) and not any(k.startswith('module.') for k in ddp)  # the plain model's names
    finetune.set_seed(42)
    initial = checkpoint.model_tensors(finetune.build_model(args, loaded['data']))
    moved = [k for k in one if not torch.equal(one[k], initial[k])]
    assert 'transformer.embed.weight' in moved and 'task_head.clf.w' in moved
    for k in one:
        if k == 'task_head.clf.b':
            # a bias shared by the choices of a softmax: its gradient is exactly zero but for float
            # noise (~1e-9), which Adam divides by its own size; it moves by up to lr either way.
            assert (ddp[k] - initial[k]).abs().max() <= 1e-3 * 1.01
            continue
        torch.testing.assert_close(ddp[k], one[k], rtol=0, atol=1e-6, msg=k)

    # the gathered evaluation agrees with the single process's
    entry = [json.loads(line) for line in (ddp_dir / 'log' / 'rocstories.jsonl').read_text().splitlines()][1]
    ref = [json.loads(line) for line in (tmp_path / 'log' / 'rocstories.jsonl').read_text().splitlines()][1]
    assert entry['n_updates'] == ref['n_updates'] == 1
    for key in ('tr_cost', 'va_cost'):
        assert entry[key] == pytest.approx(ref[key], rel=1e-5)
    for key in ('tr_acc', 'va_acc'):
        assert abs(entry[key] - ref[key]) <= 0.2


# ------------------------------------------------------------------ end to end

@pytest.mark.slow
def test_end_to_end_two_processes_write_one_set_of_files(tmp_path, rocstories_dir, encoder_path, bpe_path):
    """Pretrained tiny shards (real vocabulary rows), dropout on, --lm_coef 0 (the LM head then
    feeds no loss: DDP still gets a gradient for every parameter, without
    find_unused_parameters), --submit --analysis: one log, one checkpoint folder, one
    submission, all from rank 0, and what rank 0 prints is what they hold."""
    shards = tmp_path / 'model'
    write_tf_checkpoint(shards, tf_shapes(1, 16, 40478))
    argv = _data_argv(rocstories_dir, encoder_path, bpe_path) + [
        '--model_dir', str(shards), '--n_transfer', '1', '--n_batch', '4', '--n_iter', '2', '--desc', 'tiny_ddp',
        '--lm_coef', '0', '--submit', '--analysis']
    work = tmp_path / 'run'
    proc = _torchrun(work, argv)

    files = sorted(str(p.relative_to(work)) for p in work.rglob('*') if p.is_file())
    assert files == ['log/tiny_ddp.jsonl', 'log/tiny_ddp.png', 'save/tiny_ddp/best_params.safetensors',
                     'save/tiny_ddp/config.json', 'save/tiny_ddp/last_checkpoint.pt', 'submission/ROCStories.tsv']
    log = [json.loads(line) for line in (work / 'log' / 'tiny_ddp.jsonl').read_text().splitlines()]
    assert log[0]['desc'] == 'tiny_ddp' and log[0]['n_batch'] == 4
    assert [e['n_updates'] for e in log[1:]] == [4, 8]  # 36 stories // (4 x 2 processes) a global update

    # rank 0 alone prints, once per epoch, exactly what the log holds
    printed = [line.split(' (best')[0] for line in _lines(proc.stdout) if line.startswith('epoch ')]
    n_tr = re.search(r'\| train\[:(\d+)\] cost', printed[0]).group(1)  # the first len(valid) training examples
    assert printed == [f"epoch {e['n_epochs']} | updates {e['n_updates']} | train[:{n_tr}] cost {e['tr_cost']:.3f} acc "
                       f"{e['tr_acc']:.2f} | valid cost {e['va_cost']:.3f} acc {e['va_acc']:.2f}" for e in log[1:]]
    best_va = max(e['va_acc'] for e in log[1:])
    assert proc.stdout.count('ROCStories Valid Accuracy') == 1
    assert f'ROCStories Valid Accuracy: {best_va:.2f}' in proc.stdout
    err = _lines(proc.stderr)
    assert sum(line.startswith('device cpu (2 processes, gloo)') for line in err) == 1
    assert sum(line.startswith('settings (every value') for line in err) == 1

    # the submission is the best parameters' predictions, the test accuracy printed is its accuracy
    lines = (work / 'submission' / 'ROCStories.tsv').read_text().splitlines()
    assert lines[0] == 'index\tprediction' and len(lines) == 1 + 1871
    with open(Path(rocstories_dir) / train.ROC_FILES[1], encoding='utf-8') as f:
        labels = np.array([int(row[-1]) - 1 for row in list(csv.reader(f))[1:]])
    preds = np.array([int(line.split('\t')[1]) for line in lines[1:]])
    assert f'ROCStories Test Accuracy:  {np.mean(preds == labels) * 100:.2f}' in proc.stdout

    # the checkpoint holds the plain model's parameters: a fresh process loads it as usual
    best = load_file(work / 'save' / 'tiny_ddp' / train.BEST_PARAMS)
    assert not any(k.startswith('module.') for k in best)
    assert best['transformer.embed.weight'].shape == (40478 + 3 + 77, 16)  # n_ctx cut to 77, as the original
    blob = read_checkpoint(work / 'save' / 'tiny_ddp')
    assert blob['n_updates'] == 8 and blob['n_epochs'] == 2


# ------------------------------------------------------------------ bad input

@pytest.mark.slow
def test_global_batch_larger_than_the_training_set_is_refused(tmp_path, rocstories_dir, encoder_path, bpe_path):
    argv = _data_argv(rocstories_dir, encoder_path, bpe_path)[:-2] + [
        '--init', 'random', '--n_valid', '1866', '--n_batch', '3']  # 5 training stories, 3 x 2 per update
    proc = _torchrun(tmp_path, argv, check=False)
    assert proc.returncode != 0
    errors = [line for line in _lines(proc.stderr) if 'train.py: error:' in line]
    assert errors and all(line.endswith(
        '--n_batch 3 x 2 processes x --n_acc 1 = 6 examples per update is more than the 5 training examples: '
        'expected at most 5 (e.g. --n_batch 2 or less with 2 processes and --n_acc 1)') for line in errors)
    assert 'Traceback (most recent call last):\n  File "' + str(ROOT / 'train.py') not in proc.stderr
    assert not (tmp_path / 'log').exists() or not any((tmp_path / 'log').iterdir())


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['hang', 'exit'])
def test_a_failed_rank_stops_the_others_within_the_timeout(tmp_path, rocstories_dir, encoder_path, bpe_path, mode):
    """Rank 1 stops just before training: it hangs (rank 0's all-reduce times out after
    --dist_timeout) or leaves with status 0 (the connection closes). Rank 0 stops with a
    one-line error and a non-zero status instead of waiting for ever."""
    argv = _data_argv(rocstories_dir, encoder_path, bpe_path) + ['--init', 'random', '--dist_timeout', '5']
    proc = _torchrun(tmp_path, argv, env={distributed.DEBUG_FAIL_VAR: f'1:{mode}'}, timeout=90, check=False)
    assert proc.returncode != 0
    assert proc.elapsed < 60
    errors = [line for line in _lines(proc.stderr) if 'train.py: error:' in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert errors[0].startswith('train.py: error: rank 0 stopped: a collective operation with the other processes '
                                'failed or timed out (--dist_timeout 5 s)')
    assert ('Timed out' if mode == 'hang' else 'Connection closed by peer') in errors[0]
    assert not (tmp_path / 'save' / 'rocstories' / train.LAST_CHECKPOINT).exists()


# ------------------------------------------------------------------ resume

@pytest.mark.slow
def test_resume_under_torchrun_continues_the_same_run(tmp_path, rocstories_dir, encoder_path, bpe_path):
    """Dropout and the LM loss on: 2 epochs straight, or 1 epoch (--max_updates 4), then
    --resume. Rank 0 reads the checkpoint; rank 1 gets the optimizer state by broadcast and
    the parameters from DDP, and reseeds its dropout per epoch: the same parameters and log."""
    argv = _data_argv(rocstories_dir, encoder_path, bpe_path) + ['--init', 'random', '--n_batch', '4', '--n_iter', '2',
                                                                 '--lr', '1e-3', '--seed', '7']
    _torchrun(tmp_path / 'straight', argv)
    _torchrun(tmp_path / 'resumed', argv + ['--max_updates', '4'])
    first = (tmp_path / 'resumed' / 'log' / 'rocstories.jsonl').read_text().splitlines()
    assert [json.loads(line)['n_updates'] for line in first[1:]] == [4]
    proc = _torchrun(tmp_path / 'resumed', argv + ['--resume'])
    assert sum('resuming after epoch 1, update 4' in line for line in _lines(proc.stderr)) == 1

    def entries(name):
        lines = (tmp_path / name / 'log' / 'rocstories.jsonl').read_text().splitlines()[1:]
        return [{k: v for k, v in json.loads(line).items() if k != 'time'} for line in lines]
    assert entries('straight') == entries('resumed') and len(entries('straight')) == 2
    a = read_checkpoint(tmp_path / 'straight' / 'save' / 'rocstories')['model']
    b = read_checkpoint(tmp_path / 'resumed' / 'save' / 'rocstories')['model']
    for k in a:
        assert torch.equal(a[k], b[k]), k
