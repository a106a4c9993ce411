"""zeroshot.py, the script: it prints the task's metric, writes a record per example and its log,
and refuses bad input in one line with nothing written."""
import json

import zeroshot
from tests.helpers import DPRD_TEXT, run_main


def test_the_script_prints_the_metric_and_writes_records_and_log(gpt1_folder, tmp_path, capsys):
    (tmp_path / 'test.c.txt').write_text(DPRD_TEXT)
    argv = ['--task', 'dprd', '--model_dir', str(gpt1_folder[0]), '--data_dir', str(tmp_path), '--out', 'r.jsonl']
    assert run_main(zeroshot.main, tmp_path / 'work', argv) == 0
    assert 'DPRD test zero-shot accuracy:' in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / 'work' / 'r.jsonl').read_text().splitlines()]
    assert len(records) == 3 and records[0]['id'] == 'test.c.txt:1' and len(records[0]['scores']) == 2
    log = [json.loads(line) for line in (tmp_path / 'work' / 'log' / 'zeroshot_dprd.jsonl').read_text().splitlines()]
    assert log[0]['task'] == 'dprd' and log[0]['checkpoint_format'] == 'hf' and 'accuracy' in log[-1]


def test_the_script_refuses_bad_input_in_one_line(gpt1_folder, tmp_path, capsys):
    (tmp_path / 'test.c.txt').write_text('Only one line.\n')
    argv = ['--task', 'dprd', '--model_dir', str(gpt1_folder[0]), '--data_dir', str(tmp_path), '--out', 'r.jsonl']
    assert run_main(zeroshot.main, tmp_path / 'work', argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('zeroshot.py: error: DPRD file') and 'line 1' in err[0]
    assert not (tmp_path / 'work' / 'r.jsonl').exists()
    assert run_main(zeroshot.main, tmp_path / 'work', argv[:-4] + ['--data_dir', str(tmp_path), '--stride', '-1']) == 2
    assert capsys.readouterr().err.strip() == 'zeroshot.py: error: --stride -1: expected an integer >= 0'
