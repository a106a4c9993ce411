"""bench/pretrain_miniature.py --quick: pre-trains, finetunes both arms for every seed and
writes one JSONL file whose summary is the entries' mean and spread."""
import json

import numpy as np
import pytest

from bench import pretrain_miniature


def write_tiny_corpus(folder):
    """A folder with one text file of 200 random ten-word sentences; returns it."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    words = 'the cat sat on a mat and then it ran to the house where a dog was sleeping near an old tree'.split()
    (folder / 'text.txt').write_text(''.join(' '.join(rng.choice(words, 10)) + '.\n' for _ in range(200)))
    return folder


@pytest.mark.slow
def test_quick_run_writes_every_finetune_and_a_consistent_summary(tmp_path):
    corpus = write_tiny_corpus(tmp_path / 'corpus')
    out = tmp_path / 'out'
    summary = pretrain_miniature.main(['--quick', '--corpus_dir', str(corpus), '--out', str(out), '--quiet'])

    settings, *entries = [json.loads(line) for line in (out / 'miniature.jsonl').read_text().splitlines()]
    assert settings['quick'] and settings['corpus_dir'] == str(corpus) and settings['seeds'] == [0, 1]
    pre, *finetunes, last = entries
    assert pre['phase'] == 'pretrain' and np.isfinite(pre['va_loss'])
    assert (out / 'save' / 'pretrain' / 'model' / 'config.json').is_file()
    assert sorted((f['init'], f['seed']) for f in finetunes) == [('pretrained', 0), ('pretrained', 1),
                                                                  ('random', 0), ('random', 1)]
    assert all(0 <= f['va_acc'] <= 100 for f in finetunes)
    for init in ('pretrained', 'random'):
        acc = [f['va_acc'] for f in finetunes if f['init'] == init]
        assert last[init]['mean'] == summary[init]['mean'] == np.mean(acc)
        assert np.isclose(last[init]['std'], np.std(acc, ddof=1)) and last[init]['n'] == 2
    assert last['difference'] == last['pretrained']['mean'] - last['random']['mean']
    # the pretrained arm starts from the pre-trained folder; the random arm from none
    logs = {f['init']: json.loads((out / 'log' / f"finetune_{f['init']}_0.jsonl").read_text().splitlines()[0])
            for f in finetunes if f['seed'] == 0}
    assert logs['pretrained']['init'] == 'pretrained' and logs['random']['init'] == 'random'
    assert logs['pretrained']['model_dir'] == str(out / 'save' / 'pretrain' / 'model')
