"""bench/bench_electra.py --quick runs both Electras on the same models and reports their ratio."""
import json

import pytest

import bench

pytest.importorskip('electra_pytorch')
from bench import bench_electra  # noqa: E402


def test_quick_run_reports_both_paths_and_the_other_objectives(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, 'OUT_DIR', str(tmp_path))  # never overwrite real results
    bench_electra.main(['--quick', '--device', 'cpu'])
    out = capsys.readouterr().out
    assert 'tiny repeat 1: ours ' in out and 'speed-up median' in out
    settings, results = [json.loads(line) for line in (tmp_path / 'bench_electra_quick.jsonl').read_text()
                         .splitlines()]
    assert settings['quick'] is True and settings['device'] == 'cpu'
    tiny = results['tiny']
    assert len(tiny['ratio']) == 1 and tiny['ratio'][0] == pytest.approx(
        tiny['ours_tokens_s'][0] / tiny['wrapper_tokens_s'][0])
    assert min(tiny['lm_tokens_s'], tiny['mlm_tokens_s'], tiny['ours_tokens_s'][0]) > 0
