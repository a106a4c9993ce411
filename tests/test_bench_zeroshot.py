"""bench/bench_zeroshot.py times both sides in turn, reports each ratio, and fails only when its scores
differ from transformers'."""
import json

import pytest

import bench
from bench import bench_zeroshot

ARGV = ['--n_stories', '3', '--text_bytes', '1500', '--chunks', '2', '--threads', '1']


@pytest.fixture
def out_dir(tmp_path, monkeypatch):
    """bench_log's folder, moved to a temporary one so that tests never overwrite real results."""
    monkeypatch.setattr(bench, 'OUT_DIR', str(tmp_path))
    return tmp_path


@pytest.mark.slow
def test_reports_each_ratio_with_scores_that_agree(out_dir, capsys):
    bench_zeroshot.main(ARGV)
    out = capsys.readouterr().out
    assert 'Story Cloze, 3 stories' in out and out.count('perplexity, 1500 bytes') == 2
    settings, results = [json.loads(line) for line in (out_dir / 'bench_zeroshot.jsonl').read_text().splitlines()]
    assert settings['chunks'] == 2 and results['stories'] == 3 and results['stories_max_diff'] < 1e-5
    for key in ('stories_ratio', 'text_stride256_ratio', 'text_stride512_ratio'):
        assert results[key] > 0


@pytest.mark.slow
def test_differing_scores_fail(out_dir, monkeypatch):
    original = bench_zeroshot.hf_scores
    monkeypatch.setattr(bench_zeroshot, 'hf_scores', lambda hf, examples, budget:
                        [[lp + 1e-3 for lp in ex] for ex in original(hf, examples, budget)])
    with pytest.raises(SystemExit, match=r"FAIL: Story Cloze scores differ from transformers' by 1\.0e-03"):
        bench_zeroshot.main(ARGV)
