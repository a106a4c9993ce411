"""bench/bench_encode.py reports its speed-ups (median, min, max over --repeats) and fails only on differing ids."""
import json

import pytest

import bench
from bench import bench_encode


@pytest.fixture
def out_dir(tmp_path, monkeypatch):
    """bench_log's folder, moved to a temporary one so that tests never overwrite real results."""
    monkeypatch.setattr(bench, 'OUT_DIR', str(tmp_path))
    return tmp_path


def test_reports_median_min_max_and_exits_normally(out_dir, capsys):
    # 12 short texts: far under any speed-up a threshold would ask for, which must not matter.
    bench_encode.main(['--n_texts', '12', '--repeat', '1', '--repeats', '3'])
    out = capsys.readouterr().out
    assert out.count('run ') == 3 and 'identical ids            : True' in out
    settings, results = [json.loads(line) for line in (out_dir / 'bench_encode.jsonl').read_text().splitlines()]
    assert settings['repeats'] == 3 and results['n_texts'] == 12 and len(results['runs']) == 3
    ratios = sorted(run['speedup_first'] for run in results['runs'])
    assert (results['speedup_first_min'], results['speedup_first_median'], results['speedup_first_max']) == \
        tuple(ratios)
    assert f"median {ratios[1]:.1f}x (min {ratios[0]:.1f}x, max {ratios[2]:.1f}x)" in out


def test_differing_ids_fail(out_dir, monkeypatch):
    original = bench_encode.TextEncoder.encode
    monkeypatch.setattr(bench_encode.TextEncoder, 'encode', lambda self, texts, verbose=True:
                        [ids + [0] for ids in original(self, texts, verbose)])
    with pytest.raises(SystemExit, match='FAIL: TextEncoder.encode differs from the plain original algorithm'):
        bench_encode.main(['--n_texts', '3', '--repeat', '1'])
