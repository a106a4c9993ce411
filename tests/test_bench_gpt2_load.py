"""bench/bench_gpt2_load.py at tiny shapes: both loads run in child processes, give the same logits,
and the report names time and peak memory against the data file's size."""
import json
import math

import pytest

import bench
from bench import bench_gpt2_load
from tf_checkpoint import gpt2_variable_shapes


@pytest.mark.slow
def test_runs_at_tiny_shapes_and_compares_the_two_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, 'OUT_DIR', str(tmp_path))
    results = bench_gpt2_load.main(['--n_vocab', '300', '--n_ctx', '16', '--n_embd', '8', '--n_head', '2',
                                    '--n_layer', '1', '--repeats', '1', '--workdir', str(tmp_path)])
    out = capsys.readouterr().out
    assert 'checkpoint: 1 x 8, 16 positions, 300 tokens: model.ckpt.data 0.0 MiB' in out
    assert 'same logits (max difference' in out and out.count('run ') == 1
    assert set(results) == {'ours', 'transformers'}
    assert results['ours']['load_s']['median'] > 0 and results['transformers']['added']['median'] >= 0
    logged = [json.loads(line) for line in (tmp_path / 'bench_gpt2_load.jsonl').read_text().splitlines()]
    n_floats = sum(math.prod(s) for s in gpt2_variable_shapes(n_vocab=300, n_ctx=16, n_embd=8, n_layer=1).values())
    assert logged[0]['n_vocab'] == 300 and logged[1]['data_bytes'] == 4 * n_floats
    assert list(tmp_path.iterdir()) == [tmp_path / 'bench_gpt2_load.jsonl']  # the checkpoints are gone


def test_a_difference_in_logits_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, 'OUT_DIR', str(tmp_path))
    monkeypatch.setattr(bench_gpt2_load, 'run_child', lambda how, folder, out, tokens: _fake_child(how, out))
    with pytest.raises(SystemExit, match=r"FAIL: the two loads give logits 1\.00e\+00 apart"):
        bench_gpt2_load.main(['--n_vocab', '300', '--n_ctx', '16', '--n_embd', '8', '--n_head', '2', '--n_layer', '1',
                              '--repeats', '1', '--workdir', str(tmp_path)])


def _fake_child(how, out):
    import torch
    torch.save(torch.zeros(1, 2, 3) + (how == 'ours'), out)
    return dict(seconds=1.0, build_s=0.5, load_s=0.5, ready_s=1.2, added=100, load_added=10)
