"""run_frame: what the training scripts share; the library's imports of scripts; --help without heavy imports."""
import argparse
import ast
import json
import os
import subprocess
import sys

import pytest
import torch

import run_frame
from errors import ConfigError, InputError, NonFiniteLossError
from tests.conftest import ROOT
from tests.helpers import CountingOpt

SCRIPTS = ('train', 'pretrain', 'generate', 'score', 'zeroshot')
HEAVY = ('sklearn', 'spacy', 'pandas', 'ftfy')


def _imported_modules(path):
    """Top-level names of every module `path` imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read(), filename=path)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split('.')[0])
    return names


def _library_modules():
    return sorted(name[:-3] for name in os.listdir(ROOT) if name.endswith('.py') and name[:-3] not in SCRIPTS)


def test_no_library_module_imports_a_script():
    offenders = {name: sorted(_imported_modules(os.path.join(ROOT, f'{name}.py')) & set(SCRIPTS))
                 for name in _library_modules()}
    assert {name: scripts for name, scripts in offenders.items() if scripts} == {}


def test_imported_modules_sees_imports_inside_functions(tmp_path):
    path = tmp_path / 'm.py'
    path.write_text("import os\n\ndef f():\n    from train import run\n    import generate.x\n")
    assert _imported_modules(str(path)) == {'os', 'train', 'generate'}


@pytest.mark.parametrize('script', ['train.py', 'pretrain.py'])
def test_help_imports_no_heavy_library(script):
    code = (f"import sys, runpy\nsys.argv = [{script!r}, '--help']\ntry:\n    runpy.run_path({script!r}, "
            f"run_name='__main__')\nexcept SystemExit:\n    pass\nprint('HEAVY', sorted(m for m in {HEAVY!r} "
            f"if m in sys.modules))")
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'usage:' in proc.stdout and proc.stdout.strip().endswith('HEAVY []'), proc.stdout[-300:]


def test_accumulator_steps_every_n_acc_and_averages():
    w = torch.zeros(1, requires_grad=True)
    opt = CountingOpt()
    acc = run_frame.GradientAccumulator(opt, n_acc=2)
    acc.backward((w * 2).sum())
    assert opt.steps == 0 and acc.n_pending == 1 and w.grad.item() == 1.0  # 2 / n_acc
    acc.backward((w * 4).sum())
    assert opt.steps == 1 and opt.zeros == 1 and acc.n_pending == 0 and w.grad.item() == 3.0
    assert not acc.step()
    with pytest.raises(ValueError, match='n_acc=0'):
        run_frame.GradientAccumulator(opt, n_acc=0)


def test_eval_mode_restores_the_mode():
    model = torch.nn.Dropout(0.5)
    with run_frame.eval_mode(model):
        assert not model.training and torch.is_inference_mode_enabled()
    assert model.training
    model.eval()
    with pytest.raises(RuntimeError), run_frame.eval_mode(model):
        raise RuntimeError
    assert not model.training


def test_eval_mode_puts_back_each_modules_own_mode():
    model = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Sequential(torch.nn.Dropout(0.5)))
    model[1].eval()  # a frozen part stays frozen after evaluating the model
    with run_frame.eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, False, False]


def test_nonfinite_stop_says_where():
    with pytest.raises(NonFiniteLossError, match=r'^update 3: the loss is nan; the last checkpoint is left as it was$'):
        with run_frame.nonfinite_stop('update 3'):
            raise NonFiniteLossError('the loss is nan')


@pytest.mark.parametrize('n, every, last, due', [(10, 5, None, True), (11, 5, None, False), (7, 0, 7, True),
                                                 (6, 0, 7, False), (7, 5, 7, True)])
def test_is_due(n, every, last, due):
    assert run_frame.is_due(n, every, last) is due


def test_interrupted_names_the_checkpoint_or_overwrite():
    early = run_frame.interrupted('in epoch 1', 'save/x/last_checkpoint.pt')
    assert 'before the first checkpoint' in str(early) and early.flag == '--overwrite'
    late = run_frame.interrupted('in epoch 2', 'save/x/last_checkpoint.pt', 'epoch 1, update 9')
    assert 'save/x/last_checkpoint.pt holds epoch 1, update 9' in str(late) and late.flag == '--resume'


def test_closing_summary_lists_every_file():
    text = run_frame.closing_summary('3 updates', [('log', 'log/x.jsonl'), ('checkpoint', 'save/x/c.pt')], 75.0)
    assert text.splitlines()[0] == 'done: 3 updates in 1 min 15 s; wrote'
    assert text.splitlines()[1].split() == ['log', 'log/x.jsonl'] and len(text.splitlines()) == 3


def _run_args(**kw):
    base = dict(desc='x', seed=1, n_batch=1, n_iter=1, n_acc=1, max_updates=0, dist_timeout=1.0, resume=False,
                overwrite=False)
    return argparse.Namespace(**dict(base, **kw))


@pytest.mark.parametrize('change, match', [(dict(desc='a/b'), "^desc='a/b': expected a plain run name"),
                                           (dict(n_acc=0), '^n_acc=0: expected a positive integer$'),
                                           (dict(seed=2 ** 32), '^seed=4294967296: expected an integer from 0'),
                                           (dict(max_updates=-1), r'^max_updates=-1: expected 0 \(none\)'),
                                           (dict(dist_timeout=float('nan')), '^dist_timeout=nan: expected a positive'),
                                           (dict(resume=True, overwrite=True), 'pass one of them')])
def test_run_config_of_flags_names_the_field(change, match):
    assert run_frame.RunConfig.from_any(_run_args()) == run_frame.RunConfig(desc='x', seed=1, n_batch=1, n_iter=1,
                                                                            dist_timeout=1.0)
    with pytest.raises(InputError, match=match):
        run_frame.RunConfig.from_any(_run_args(**change))


def test_run_config_round_trips_and_refuses_unknown_keys():
    config = run_frame.RunConfig(desc='mine', n_batch=4, amp='bf16', eval_every=10)
    assert run_frame.RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert run_frame.RunConfig.from_any(config) is config
    with pytest.raises(ConfigError, match=r"^n_bach=4: expected a field of RunConfig \(desc, log_dir,"):
        run_frame.RunConfig.from_dict({'n_bach': 4})
    with pytest.raises(ConfigError, match=r"^amp='fp8': expected one of none, bf16, fp16$") as err:
        run_frame.RunConfig(amp='fp8')
    assert err.value.as_flag() == '--amp fp8: expected one of none, bf16, fp16'


def test_earlier_run_refused_then_removed_only_on_request(tmp_path):
    paths = {'log': str(tmp_path / 'x.jsonl'), 'dir': str(tmp_path / 'x'), 'best': str(tmp_path / 'x' / 'b')}
    assert run_frame.prepare_run_folder(_run_args(), paths, ('log', 'best')) == []
    open(paths['log'], 'w').close()
    with pytest.raises(InputError, match='an earlier run of that name left'):
        run_frame.prepare_run_folder(_run_args(), paths, ('log', 'best'))
    assert run_frame.prepare_run_folder(_run_args(resume=True), paths, ('log', 'best')) == []
    earlier = run_frame.prepare_run_folder(_run_args(overwrite=True), paths, ('log', 'best'))
    assert earlier == [paths['log']] and os.path.isfile(paths['log'])
    run_frame.remove_files(earlier)
    assert not os.path.exists(paths['log'])
