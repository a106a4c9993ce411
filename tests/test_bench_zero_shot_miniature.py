"""bench/zero_shot_miniature.py --quick: pre-trains each seed with the Story Cloze heuristic logged at
every validation and writes one JSONL file whose summary is the entries' mean and spread."""
import json

import numpy as np
import pytest

from bench import zero_shot_miniature
from tests.test_bench_miniature import write_tiny_corpus


@pytest.mark.slow
def test_quick_run_logs_every_validation_of_every_seed_and_a_consistent_summary(tmp_path):
    corpus = write_tiny_corpus(tmp_path / 'corpus')
    out = tmp_path / 'out'
    summary = zero_shot_miniature.main(['--quick', '--corpus_dir', str(corpus), '--out', str(out), '--quiet'])

    settings, *entries, last = [json.loads(line) for line in (out / 'zero_shot_miniature.jsonl').read_text()
                                .splitlines()]
    assert settings['quick'] and settings['seeds'] == [0, 1] and settings['n_examples'] == 40
    assert sorted((e['seed'], e['n_updates']) for e in entries) == [(0, 3), (0, 6), (1, 3), (1, 6)]
    assert all(e['phase'] == 'validation' and 0 <= e['zs_rocstories'] <= 100 for e in entries)
    assert last['phase'] == 'summary' and last['chance'] == 50.0 and last['per_validation'] == summary
    for s in summary:
        acc = [e['zs_rocstories'] for e in entries if e['n_updates'] == s['n_updates']]
        assert s['acc_mean'] == np.mean(acc) and np.isclose(s['acc_std'], np.std(acc, ddof=1))
    for seed in (0, 1):  # each seed's own log, as pretrain.py wrote it, holds the same values
        log = [json.loads(line) for line in (out / 'log' / f'zero_shot_{seed}.jsonl').read_text().splitlines()]
        assert [e['zs_rocstories'] for e in log[1:] if 'zs_rocstories' in e] == \
            [e['zs_rocstories'] for e in entries if e['seed'] == seed]
