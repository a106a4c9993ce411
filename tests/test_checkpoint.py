"""checkpoint.py: atomic files, parameters, the one-file resumable checkpoint, the run's lock,
and what train.py does with them when a run is interrupted, repeated or run twice at once."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

import checkpoint
import finetune
import task_data
import train
from errors import CheckpointError, InputError, NonFiniteLossError
from helpers import rocstories_encoded_once, run_main
from test_train import ROOT, _model, synthetic_data, tiny_args, tiny_shards  # noqa: F401 (a fixture)
from tests.conftest import ONE_THREAD_ENV


# ------------------------------------------------------------------ files

def test_params_roundtrip_and_atomic_write(tmp_path):
    data = synthetic_data()
    args = tiny_args()
    model = _model(args, data, seed=1)
    path = tmp_path / 'best_params.safetensors'
    checkpoint.save_params(model, str(path), {'va_acc': 55.5})
    other = _model(args, data, seed=2)
    meta = checkpoint.load_params(other, str(path))
    assert meta['va_acc'] == '55.5'
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), k
    assert other.lm_head.decoder.weight is other.transformer.embed.weight  # still tied
    before = path.read_bytes()

    def crash(tmp):
        with open(tmp, 'wb') as f:
            f.write(b'partial')
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        checkpoint.atomic_write(str(path), crash)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ['best_params.safetensors']  # no temp file left


def test_params_of_another_model_are_refused_in_one_line(tmp_path):
    data = synthetic_data()
    path = tmp_path / 'p.safetensors'
    checkpoint.save_params(_model(tiny_args(), data), str(path))
    with pytest.raises(CheckpointError, match=r'p\.safetensors does not fit the model \(shape: .*same flags$'):
        checkpoint.load_params(_model(tiny_args('--n_embd', '8'), data), str(path))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r'could not be read as safetensors'):
        checkpoint.load_params(_model(tiny_args(), data), str(path))


def test_stale_temp_files_are_removed(tmp_path):
    target = tmp_path / 'last_checkpoint.pt'
    stale = tmp_path / '.last_checkpoint.pt.abc123.tmp'
    other = tmp_path / '.other.pt.abc123.tmp'
    stale.write_bytes(b'half')
    other.write_bytes(b'not ours')
    assert checkpoint.remove_stale_tmp([str(target)]) == [str(stale)]
    assert not stale.exists() and other.exists()


def poison(path, name=None):
    """Write NaN into one tensor (`name`, else the last in the file's order) of a safetensors file; returns its name."""
    from safetensors.torch import load_file, save_file
    tensors = load_file(str(path))
    name = name or list(tensors)[-1]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[1] = float('nan')
    save_file(tensors, str(path))
    return name


def test_parameters_holding_nan_are_refused_naming_the_file_and_tensor(tmp_path):
    data = synthetic_data()
    path = tmp_path / 'best_params.safetensors'
    checkpoint.save_params(_model(tiny_args(), data), str(path))
    name = poison(path, 'transformer.h.1.mlp.c_fc.w')
    model = _model(tiny_args(), data, seed=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=rf"^{path}: {name} holds 1 non-finite value \(NaN or inf\): expected "
                                              r"finite parameters"):
        checkpoint.load_params(model, str(path))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the model is left as it was


# ------------------------------------------------------------------ the resumable checkpoint

def _trained(args, data):
    model = _model(args, data)
    opt = finetune.make_optimizer(args, model, 10)
    finetune.train_epoch(finetune.RunContext(args, model, data, verbose=False), model,
                         finetune.make_loss_compute(args, opt), train.TrainState())
    return model, opt


def test_checkpoint_is_one_file_that_loads_with_weights_only(tmp_path):
    data = synthetic_data()
    args = tiny_args('--n_batch', '8')
    model, opt = _trained(args, data)
    flags = checkpoint.run_flags(args)
    checkpoint.save_checkpoint(str(tmp_path), model, opt, train.TrainState(4, 1, 50.0), flags=flags)
    assert sorted(os.listdir(tmp_path)) == ['last_checkpoint.pt']
    blob = torch.load(tmp_path / 'last_checkpoint.pt', weights_only=True)
    assert blob['n_updates'] == 4 and blob['n_epochs'] == 1 and blob['flags'] == flags
    model2 = _model(args, data, seed=5)
    opt2 = finetune.make_optimizer(args, model2, 10)
    state = checkpoint.load_checkpoint(str(tmp_path), model2, opt2, flags=flags)
    assert state == train.TrainState(4, 1, 50.0)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict()['state'], opt2.state_dict()['state']
    assert all(torch.equal(s1[k]['exp_avg'], s2[k]['exp_avg']) for k in s1)


@pytest.mark.parametrize('flag,value', [('lr', 1e-3), ('lr_schedule', 'warmup_cosine'), ('l2', 0.0),
                                        ('n_iter', 5), ('n_embd', 32)])
def test_resume_with_a_changed_flag_is_refused_naming_it(tmp_path, flag, value):
    data = synthetic_data()
    args = tiny_args('--n_batch', '8')
    model, opt = _trained(args, data)
    checkpoint.save_checkpoint(str(tmp_path), model, opt, train.TrainState(4, 1, 50.0),
                               flags=checkpoint.run_flags(args))
    changed = dict(checkpoint.run_flags(args), **{flag: value})
    with pytest.raises(InputError, match=rf"^--resume: --{flag} is {value!r} but the checkpoint .*last_checkpoint\.pt "
                                         rf"was written with .*expected the same value"):
        checkpoint.load_checkpoint(str(tmp_path), _model(args, data), finetune.make_optimizer(args, model, 10),
                                   flags=changed)


def test_a_flag_added_since_the_checkpoint_passes_only_at_its_default(tmp_path):
    """A checkpoint written before a flag existed resumes when the flag has its default (what
    the older run computed with), and is refused naming the flag otherwise."""
    saved = {'lr': 1e-3, 'n_iter': 3}
    defaults = {'lr': 6.25e-5, 'n_iter': 3, 'no_truncate': False}
    checkpoint.check_resume_flags(saved, dict(saved, no_truncate=False), 'ckpt', defaults)
    with pytest.raises(InputError, match=r"^--resume: --no_truncate is True but the checkpoint ckpt was written "
                                         r"with '\(not set\)'"):
        checkpoint.check_resume_flags(saved, dict(saved, no_truncate=True), 'ckpt', defaults)
    with pytest.raises(InputError, match=r"^--resume: --no_truncate is False .*'\(not set\)'"):
        checkpoint.check_resume_flags(saved, dict(saved, no_truncate=False), 'ckpt')  # no defaults: as before


def test_truncated_checkpoint_is_a_one_line_error(tmp_path):
    data = synthetic_data()
    args = tiny_args('--n_batch', '8')
    model, opt = _trained(args, data)
    checkpoint.save_checkpoint(str(tmp_path), model, opt, train.TrainState(4, 1, 50.0))
    path = tmp_path / 'last_checkpoint.pt'
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r'^--resume: .*last_checkpoint\.pt could not be read .*truncated') as err:
        checkpoint.load_checkpoint(str(tmp_path), model, opt)
    assert '\n' not in str(err.value)


# ------------------------------------------------------------------ the lock

def _dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_lock_refuses_a_live_owner_and_takes_over_a_stale_one(tmp_path):
    with checkpoint.RunLock(str(tmp_path)):
        assert (tmp_path / '.lock').read_text().split()[0] == str(os.getpid())
        with pytest.raises(InputError, match=rf"is in use by process {os.getpid()} .*lock file .*\.lock"):
            checkpoint.RunLock(str(tmp_path)).acquire()
    assert not (tmp_path / '.lock').exists()
    (tmp_path / '.lock').write_text(f"{_dead_pid()} {os.uname().nodename}\n")  # left by a killed run
    with checkpoint.RunLock(str(tmp_path)):
        assert (tmp_path / '.lock').read_text().split()[0] == str(os.getpid())


def test_a_lock_path_that_is_a_folder_is_one_line(tmp_path):
    (tmp_path / '.lock' / 'inside').mkdir(parents=True)
    with pytest.raises(InputError, match=r"^\S*\.lock is not a file: expected the run's lock file there \(or "
                                         r"nothing\); move that folder away"):
        checkpoint.RunLock(str(tmp_path)).acquire()
    assert (tmp_path / '.lock' / 'inside').is_dir()


def test_a_lock_file_that_is_not_text_is_taken_over_as_stale(tmp_path):
    (tmp_path / '.lock').write_bytes(b'\xff\xfe garbage')
    with checkpoint.RunLock(str(tmp_path)):
        assert (tmp_path / '.lock').read_text().split()[0] == str(os.getpid())


# ------------------------------------------------------------------ runs (train.run on a tiny config)

@pytest.fixture
def tiny_run(tmp_path, monkeypatch, real_encoded_small):
    """argv of a tiny train.run on 64 real stories (8 updates an epoch), check_inputs off."""
    text_encoder, small = real_encoded_small
    monkeypatch.setattr(task_data, 'encode_rocstories', lambda args, verbose=True: (text_encoder, small))
    monkeypatch.setattr(train, 'check_inputs', lambda args, writes=True: None)

    def argv(name, *extra):
        return ['--init', 'random', '--n_embd', '16', '--n_layer', '1', '--n_head', '2', '--lm_coef', '0',
                '--n_iter', '2', '--submit', '--data_dir', str(tmp_path), '--encoder_path', __file__,
                '--bpe_path', __file__, '--log_dir', str(tmp_path / name / 'log'),
                '--save_dir', str(tmp_path / name / 'save'), '--submission_dir', str(tmp_path / name / 'sub'), *extra]
    return argv


@pytest.fixture(scope='module')
def real_encoded_small(rocstories_dir, encoder_path, bpe_path):
    args = train.parse_args(['--data_dir', str(rocstories_dir), '--encoder_path', str(encoder_path),
                             '--bpe_path', str(bpe_path)])
    text_encoder, (tr, va, te) = task_data.encode_rocstories(args, verbose=False)
    return text_encoder, ([f[:64] for f in tr[:3]] + [tr[3][:64]], va, te)


def test_a_rerun_never_replaces_the_previous_best(tmp_path, tiny_run):
    train.run(train.parse_args(tiny_run('a')), verbose=False)
    run_dir = tmp_path / 'a' / 'save' / 'rocstories'
    best, log = ((run_dir / 'best_params.safetensors').read_bytes(),
                 (tmp_path / 'a' / 'log' / 'rocstories.jsonl').read_bytes())
    with pytest.raises(InputError, match=r"^--desc rocstories: an earlier run of that name left .*rocstories\.jsonl.*"
                                         r"--resume to continue that run, or --overwrite"):
        train.run(train.parse_args(tiny_run('a')), verbose=False)
    assert (run_dir / 'best_params.safetensors').read_bytes() == best
    assert (tmp_path / 'a' / 'log' / 'rocstories.jsonl').read_bytes() == log
    again = train.run(train.parse_args(tiny_run('a', '--overwrite', '--seed', '3')), verbose=False)
    assert again['n_updates'] == 16 and (run_dir / 'best_params.safetensors').read_bytes() != best
    settings = json.loads((tmp_path / 'a' / 'log' / 'rocstories.jsonl').read_text().splitlines()[0])
    assert settings['seed'] == 3 and settings['overwrite'] is True
    assert not (run_dir / '.lock').exists()


def test_resume_with_a_new_lr_is_refused(tiny_run):
    train.run(train.parse_args(tiny_run('a', '--n_iter', '1')), verbose=False)
    with pytest.raises(InputError, match=r"^--resume: --lr is 0\.001 but the checkpoint .* was written with 6\.25e-05"):
        train.run(train.parse_args(tiny_run('a', '--n_iter', '1', '--resume', '--lr', '1e-3')), verbose=False)


def test_a_second_run_of_the_same_desc_is_refused_while_the_first_runs(tmp_path, tiny_run):
    run_dir = tmp_path / 'a' / 'save' / 'rocstories'
    with checkpoint.RunLock(str(run_dir)):  # the first run, still going
        with pytest.raises(InputError, match=rf"is in use by process {os.getpid()}"):
            train.run(train.parse_args(tiny_run('a')), verbose=False)
    assert sorted(os.listdir(run_dir)) == []


def test_the_effective_n_ctx_is_logged_and_saved(tmp_path, tiny_run):
    result = train.run(train.parse_args(tiny_run('a')), verbose=False)
    settings = json.loads((tmp_path / 'a' / 'log' / 'rocstories.jsonl').read_text().splitlines()[0])
    found = json.loads((tmp_path / 'a' / 'save' / 'rocstories' / 'config.json').read_text())['found']
    for s in (settings, found):
        assert s['n_ctx'] == result['n_ctx'] < 512 and s['n_ctx_requested'] == 512 and s['n_transfer'] == 1
        assert s['n_vocab'] == 40478 and s['clf_token'] == 40480 and s['vocab'] == 40478 + 3 + s['n_ctx']


def test_a_non_finite_objective_stops_before_the_update(tiny_run):
    data = synthetic_data()
    args = tiny_args('--n_batch', '8')
    model = _model(args, data)
    with torch.no_grad():
        model.transformer.h[0].ln_1.g[3] = float('nan')  # as a NaN checkpoint would
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = finetune.make_optimizer(args, model, 10)
    with pytest.raises(NonFiniteLossError, match=r"^update 1 \(epoch 0\): the objective is nan"):
        finetune.train_epoch(finetune.RunContext(args, model, data, verbose=False), model,
                             finetune.make_loss_compute(args, opt), train.TrainState())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k], ) or k.endswith('ln_1.g') for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_resume_refuses_nan_in_the_best_parameters_or_the_checkpoint(tmp_path, tiny_run):
    """A finished run resumed rewrites its submission from the best parameters: NaN there
    (or in the checkpoint's parameters) is one CheckpointError, and the submission stays."""
    train.run(train.parse_args(tiny_run('a', '--n_iter', '1')), verbose=False)
    run_dir, submission = tmp_path / 'a' / 'save' / 'rocstories', tmp_path / 'a' / 'sub' / 'ROCStories.tsv'
    kept = submission.read_bytes()
    name = poison(run_dir / train.BEST_PARAMS)
    with pytest.raises(CheckpointError, match=rf"best_params\.safetensors: {name} holds 1 non-finite value"):
        train.run(train.parse_args(tiny_run('a', '--n_iter', '1', '--resume')), verbose=False)
    assert submission.read_bytes() == kept
    blob = torch.load(run_dir / train.LAST_CHECKPOINT, weights_only=True)
    blob['model']['transformer.embed.weight'][0, 0] = float('inf')
    torch.save(blob, run_dir / train.LAST_CHECKPOINT)
    with pytest.raises(CheckpointError, match=r"last_checkpoint\.pt: transformer\.embed\.weight holds 1 non-finite"):
        checkpoint.load_checkpoint(str(run_dir), _model(tiny_args(), synthetic_data()), None)


# ------------------------------------------------------------------ killed runs (subprocesses)

KILLER = textwrap.dedent('''
    """Run train.main and SIGKILL this process at a chosen point of the second epoch's checkpoint."""
    import os, signal, sys
    import torch
    import finetune
    import train
    mode, argv = sys.argv[1], sys.argv[2:]
    epoch = [0]
    real_replace, real_save, real_log_epoch = os.replace, torch.save, finetune.log_epoch

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def log_epoch(ctx, state, *a, **k):
        epoch[0] = state.n_epochs
        return real_log_epoch(ctx, state, *a, **k)

    def replace(src, dst):
        real_replace(src, dst)
        if mode == 'after_first_rename' and epoch[0] == 2 and os.path.basename(dst).startswith('last'):
            die()  # the first file of the second epoch's checkpoint has landed

    def save(obj, f, *a, **k):
        if mode == 'inside_write' and epoch[0] == 2 and isinstance(obj, dict) and 'n_epochs' in obj:
            with open(f, 'wb') as out:
                out.write(b'half a checkpoint')
            die()
        return real_save(obj, f, *a, **k)
    os.replace, torch.save, finetune.log_epoch = replace, save, log_epoch
    train.main(argv)
''')


WRITER = textwrap.dedent('''
    """Write best_params.safetensors of a 64 MB model again and again until killed."""
    import sys
    import torch
    import checkpoint
    model = torch.nn.Linear(4000, 4000)
    while True:
        checkpoint.save_params(model, sys.argv[1])
''')


def test_a_kill_inside_the_write_of_the_best_parameters_leaves_nothing_after_the_next_start(tmp_path):
    """SIGKILL while the bytes of best_params.safetensors are being written: whatever
    temporary file holds them is removed when the run starts again, and the file is whole."""
    run_dir = tmp_path / 'save' / 'rocstories'
    run_dir.mkdir(parents=True)
    best = run_dir / train.BEST_PARAMS
    script = tmp_path / 'writer.py'
    script.write_text(WRITER)
    child = subprocess.Popen([sys.executable, str(script), str(best)], env={**os.environ, 'PYTHONPATH': str(ROOT)})
    try:
        while not _a_temporary_file_with_bytes(run_dir):
            assert child.poll() is None
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert _a_temporary_file_with_bytes(run_dir)
    before = {f: sha256(run_dir / f) for f in os.listdir(run_dir) if f == train.BEST_PARAMS}
    train.prepare_run_files(train.parse_args(['--save_dir', str(tmp_path / 'save'), '--log_dir', str(tmp_path),
                                              '--resume']))
    assert sorted(os.listdir(run_dir)) == sorted(before)
    assert {f: sha256(run_dir / f) for f in before} == before


def sha256(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def _a_temporary_file_with_bytes(folder):
    for entry in os.scandir(folder):
        try:
            if entry.name != train.BEST_PARAMS and entry.stat().st_size > 0:
                return True
        except FileNotFoundError:  # renamed meanwhile
            continue
    return False


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['inside_write', 'after_first_rename'])
def test_a_run_killed_while_saving_resumes(tmp_path, capsys, mode, rocstories_dir, encoder_path, bpe_path,
                                           tiny_shards):
    """SIGKILL inside the second epoch's checkpoint write, or just after its first file lands:
    a --resume run continues from a whole checkpoint, removes the temporary file and the stale
    lock, and ends where an uninterrupted run ends."""
    argv = ['--data_dir', str(rocstories_dir), '--model_dir', str(tiny_shards), '--encoder_path', str(encoder_path),
            '--bpe_path', str(bpe_path), '--n_embd', '16', '--n_layer', '1', '--n_head', '2', '--lm_coef', '0',
            '--n_valid', '1835', '--n_iter', '3', '--submit']
    script = tmp_path / 'killer.py'
    script.write_text(KILLER)
    env = {**os.environ, **ONE_THREAD_ENV, 'PYTHONPATH': str(ROOT)}
    proc = subprocess.run([sys.executable, str(script), mode, *argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run_dir = tmp_path / 'save' / 'rocstories'
    assert (run_dir / '.lock').exists()
    capsys.readouterr()
    with rocstories_encoded_once():
        status = run_main(train.main, tmp_path, [*argv, '--resume'])
    err = capsys.readouterr().err
    assert status == 0, err[-2000:]
    assert not [f for f in os.listdir(run_dir) if f.endswith('.tmp') or f == '.lock']
    log = [json.loads(line) for line in (tmp_path / 'log' / 'rocstories.jsonl').read_text().splitlines()[1:]]
    assert [e['n_updates'] for e in log if 'va_acc' in e] == [4, 8, 12]  # 36 stories // 8 a epoch, 3 epochs
    assert 'resuming after epoch' in err
