"""bench/bench_gpt2_tokenizer.py reports the three engines' throughput and ratios, and fails only on differing ids."""
import json

import pytest

import bench
from bench import bench_gpt2_tokenizer


@pytest.fixture
def out_dir(tmp_path, monkeypatch):
    """bench_log's folder, moved to a temporary one so that tests never overwrite real results."""
    monkeypatch.setattr(bench, 'OUT_DIR', str(tmp_path))
    return tmp_path


def test_reports_throughput_and_ratios(out_dir, capsys):
    bench_gpt2_tokenizer.main(['--n_texts', '20', '--repeat', '1'])
    out = capsys.readouterr().out
    assert 'texts: 20 ROCStories fields' in out and 'identical ids: True' in out
    for line in ('short texts   GPT2TokenizerFast', 'short texts   plain release algorithm',
                 'one document  GPT2TokenizerFast'):
        assert line in out and 'GPT2Encoder is' in out.split(line)[1].split('\n')[0]
    settings, results = [json.loads(line) for line in (out_dir / 'bench_gpt2_tokenizer.jsonl').read_text().splitlines()]
    assert settings['n_texts'] == 20 and results['identical']
    assert set(results['results']['short texts']) == {'GPT2Encoder', 'GPT2TokenizerFast', 'plain release algorithm'}


def test_differing_ids_fail(out_dir, monkeypatch):
    original = bench_gpt2_tokenizer.GPT2Encoder.encode
    monkeypatch.setattr(bench_gpt2_tokenizer.GPT2Encoder, 'encode', lambda self, texts, verbose=True:
                        [ids + [0] for ids in original(self, texts)])
    with pytest.raises(SystemExit, match='FAIL: GPT2Encoder.encode differs'):
        bench_gpt2_tokenizer.main(['--n_texts', '3', '--repeat', '1'])
