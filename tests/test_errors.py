import pytest

from errors import ConfigError, GPT1Error, InputError, exit_with_error


def test_config_error_names_the_field_and_a_script_names_the_flag(capsys):
    err = ConfigError('n_head', 5, 'a divisor of n_embd 768')
    assert isinstance(err, InputError) and isinstance(err, GPT1Error)
    assert str(err) == "n_head=5: expected a divisor of n_embd 768"
    assert err.as_flag() == "--n_head 5: expected a divisor of n_embd 768"
    assert err.as_flag('--lr_schedule') == "--lr_schedule 5: expected a divisor of n_embd 768"
    with pytest.raises(SystemExit) as stop:
        exit_with_error('train.py', err)
    assert stop.value.code == 2
    assert capsys.readouterr().err == "train.py: error: --n_head 5: expected a divisor of n_embd 768\n"


def test_exit_with_error_folds_a_message_onto_one_line(capsys):
    with pytest.raises(SystemExit):
        exit_with_error('score.py', InputError("first\nsecond"))
    assert capsys.readouterr().err == "score.py: error: first; second\n"
