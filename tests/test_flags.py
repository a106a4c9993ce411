import argparse
import json
from dataclasses import dataclass, field
from typing import Optional

import pytest

import flags
from errors import ConfigError
from flags import Config, DefaultsHelpFormatter, add_flags, config_from_args, config_from_dict, flag_of


@dataclass
class Toy(Config):
    n_head: int = field(default=12, metadata={'help': "attention heads"})
    pdrop: float = 0.1
    afn: str = field(default='gelu', metadata={'choices': ('gelu', 'relu')})
    schedule: str = field(default='linear', metadata={'flag': '--lr_schedule'})
    bucket: bool = False
    truncate: bool = field(default=True, metadata={'flag': '--no_truncate', 'help': "keep long examples whole"})
    desc: Optional[str] = field(default=None, metadata={'help': "run name (default: the dataset)"})
    n_transfer: int | None = None
    share: float = field(default=0.5, metadata={'help': "share of 100% of the tokens"})
    data: list[str] = field(default_factory=lambda: ['a.txt'], metadata={'metavar': 'PATH'})

    def check(self):
        flags.check_number('pdrop', self.pdrop, lambda v: 0 <= v < 1, "a probability in [0, 1)")


def toy_parser(**kw):
    return add_flags(argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter), Toy, **kw)


def actions(parser):
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest != 'help'}


def test_each_field_is_one_flag_typed_by_its_annotation():
    a = actions(toy_parser())
    assert list(a) == ['n_head', 'pdrop', 'afn', 'schedule', 'bucket', 'truncate', 'desc', 'n_transfer', 'share',
                       'data']
    assert a['n_head'].option_strings == ['--n_head'] and a['n_head'].type is int and a['n_head'].default == 12
    assert a['pdrop'].type is float and a['pdrop'].help is None
    assert a['afn'].choices == ('gelu', 'relu') and a['afn'].type is str
    assert a['schedule'].option_strings == ['--lr_schedule']
    assert isinstance(a['bucket'], argparse._StoreTrueAction) and a['bucket'].default is False
    assert isinstance(a['truncate'], argparse._StoreFalseAction) and a['truncate'].option_strings == ['--no_truncate']
    assert a['desc'].type is str and a['desc'].default is None
    assert a['n_transfer'].type is int and a['n_transfer'].default is None
    assert a['data'].nargs == '+' and a['data'].type is str and a['data'].metavar == 'PATH'


def test_parsed_flags_build_the_config_back():
    args = toy_parser().parse_args(['--n_head', '4', '--pdrop', '0', '--afn', 'relu', '--lr_schedule', 'cosine',
                                    '--bucket', '--no_truncate', '--desc', 'x', '--n_transfer', '-1', '--data', 'b',
                                    'c'])
    assert config_from_args(Toy, args) == Toy(n_head=4, pdrop=0.0, afn='relu', schedule='cosine', bucket=True,
                                              truncate=False, desc='x', n_transfer=-1, data=['b', 'c'])
    assert config_from_args(Toy, toy_parser().parse_args([])) == Toy()
    with pytest.raises(SystemExit):
        toy_parser().parse_args(['--afn', 'swish'])


def test_defaults_and_skip_are_the_scripts_own():
    parser = toy_parser(defaults={'n_head': 4}, skip=('pdrop', 'data'))
    a = actions(parser)
    assert 'pdrop' not in a and 'data' not in a and a['n_head'].default == 4
    args = parser.parse_args([])
    assert not hasattr(args, 'pdrop')
    assert config_from_args(Toy, args) == Toy(n_head=4)  # a skipped field takes the config's default
    with pytest.raises(TypeError, match="n_heads: not fields of Toy"):
        toy_parser(defaults={'n_heads': 4})
    with pytest.raises(TypeError, match="pdro: not fields of Toy"):
        toy_parser(skip=('pdro',))


def test_a_field_without_default_is_a_required_flag():
    @dataclass
    class Needs(Config):
        data: list[str]
        seed: int = 42

    parser = add_flags(argparse.ArgumentParser(), Needs)
    assert actions(parser)['data'].required
    with pytest.raises(SystemExit):
        parser.parse_args([])
    assert config_from_args(Needs, parser.parse_args(['--data', 'x'])) == Needs(data=['x'])


def test_fields_that_have_no_flag_are_refused():
    @dataclass
    class On(Config):
        causal: bool = True

    @dataclass
    class Nested(Config):
        sizes: dict = field(default_factory=dict)

    with pytest.raises(TypeError, match="On.causal: a bool flag defaults to False"):
        add_flags(argparse.ArgumentParser(), On)
    with pytest.raises(TypeError, match="Nested.sizes: .* has no flag"):
        add_flags(argparse.ArgumentParser(), Nested)
    with pytest.raises(TypeError, match="expected a @dataclass config class"):
        add_flags(argparse.ArgumentParser(), argparse.Namespace)


def test_flag_of_names_the_flag_of_a_field():
    assert flag_of(Toy, 'n_head') == '--n_head'
    assert flag_of(Toy, 'schedule') == '--lr_schedule'
    with pytest.raises(TypeError, match="field nope: not fields of Toy"):
        flag_of(Toy, 'nope')
    err = pytest.raises(ConfigError, Toy, schedule='x', pdrop=1.5).value
    assert err.field == 'pdrop' and err.as_flag(flag_of(Toy, err.field)) == \
        "--pdrop 1.5: expected a probability in [0, 1)"


def test_help_shows_every_default_and_help_text_is_plain():
    parser = toy_parser()
    text = ' '.join(parser.format_help().split())
    assert "--n_head N_HEAD attention heads (default: 12)" in text
    assert "--pdrop PDROP (default: 0.1)" in text
    assert "--bucket (default: False)" in text
    assert "run name (default: the dataset)" in text and "(default: the dataset) (default" not in text
    assert "share of 100% of the tokens (default: 0.5)" in text


def test_config_dict_round_trip_refuses_unknown_keys():
    cfg = Toy(n_head=3, data=['x', 'y'])
    d = json.loads(json.dumps(cfg.to_dict()))
    assert Toy.from_dict(d) == cfg and config_from_dict(Toy, d) == cfg
    assert Toy.from_dict({'n_head': 3}) == Toy(n_head=3)  # a field a file lacks takes its default
    with pytest.raises(ConfigError, match=r"n_heads=3: expected a field of Toy \(n_head, pdrop"):
        Toy.from_dict({'n_heads': 3})
    with pytest.raises(ConfigError, match=r"pdrop=2: expected a probability"):
        Toy.from_dict({'pdrop': 2})
    with pytest.raises(TypeError, match="expected a dict of fields, got list"):
        Toy.from_dict([1])


def test_from_any_converts_at_the_boundary():
    cfg = Toy(n_head=3)
    assert Toy.from_any(cfg) is cfg
    assert Toy.from_any({'n_head': 3}) == cfg
    assert Toy.from_any(argparse.Namespace(n_head=3, other_flag=1)) == cfg
    with pytest.raises(TypeError, match="expected a Toy, a dict or an argparse.Namespace, got int"):
        Toy.from_any(3)


@pytest.mark.parametrize('value', [True, 'x', None, float('nan')])
def test_check_number_refuses_what_is_not_a_number_in_range(value):
    with pytest.raises(ConfigError, match="p="):
        flags.check_number('p', value, lambda v: v == v, "a number")
    flags.check_number('p', 0.5, lambda v: v == v, "a number")


# ------------------------------------------------------------------ the scripts' flags, derived from the configs
#
# The configs' flags must be the flags train.py and pretrain.py declare today, so that the scripts can
# derive theirs from the configs without moving a flag: same names, defaults (value and type), types,
# switches and choices, and the same values parsed from the same command lines.

def flag_spec(action):
    """What a user sees of a flag. A str flag with no type (pretrain.py declares some so) parses as one
    with type str; the choices are compared as a set (their order only lists them in --help)."""
    kind = type(action).__name__
    return dict(flags=action.option_strings, dest=action.dest, kind=kind, default=action.default,
                default_type=type(action.default), type=action.type or (str if kind == '_StoreAction' else None),
                choices=None if action.choices is None else set(action.choices), nargs=action.nargs,
                required=action.required)


def script_flags(parser, names):
    return {name: flag_spec(actions(parser)[name]) for name in names}


def assert_same_flags(derived, script, cls, argvs, script_argv=()):
    """derived (the config's flags) declares flags as the script's parser does and parses each of `argvs`
    as it does (the script's parser given script_argv too: its required flags)."""
    names = [name for name in actions(derived)]
    assert set(names) <= set(actions(script)), "a derived flag the script does not declare"
    assert script_flags(derived, names) == script_flags(script, names)
    for argv in argvs:
        got = derived.parse_args(argv)
        want = script.parse_args(argv + list(script_argv))
        assert {n: getattr(got, n) for n in names} == {n: getattr(want, n) for n in names}, argv
        assert config_from_args(cls, got) == config_from_args(cls, want)


def train_parser():
    import train
    return train.build_parser()


def pretrain_parser():
    import pretrain
    return pretrain.build_parser()


PRETRAIN_ADAM = dict(defaults={'lr': 2.5e-4, 'lr_schedule': 'warmup_cosine'}, skip=('lr_warmup',))
ADAM_ARGVS = [[], ['--lr', '1e-3', '--lr_schedule', 'none', '--b1', '0.8', '--b2', '0.99', '--e', '1e-6',
                   '--l2', '0', '--vector_l2', '--max_grad_norm', '-1']]


def test_adam_flags_are_trains():
    from opt import AdamConfig
    derived = add_flags(argparse.ArgumentParser(), AdamConfig)
    assert list(actions(derived)) == ['lr', 'lr_schedule', 'lr_warmup', 'b1', 'b2', 'e', 'l2', 'vector_l2',
                                      'max_grad_norm']
    assert_same_flags(derived, train_parser(), AdamConfig, ADAM_ARGVS + [['--lr_warmup', '0.1']])


def test_adam_flags_are_pretrains_with_its_defaults():
    from opt import AdamConfig
    derived = add_flags(argparse.ArgumentParser(), AdamConfig, **PRETRAIN_ADAM)
    assert 'lr_warmup' not in actions(derived) and 'lr_warmup' not in actions(pretrain_parser())  # --warmup_updates
    assert_same_flags(derived, pretrain_parser(), AdamConfig, ADAM_ARGVS, script_argv=['--data', 'x'])


def test_electra_flags_are_pretrains():
    from electra import ElectraConfig
    derived = add_flags(argparse.ArgumentParser(), ElectraConfig)
    assert list(actions(derived)) == ['objective', 'mask_prob', 'gen_size', 'disc_weight']
    script = pretrain_parser()
    assert {n: a.help for n, a in actions(derived).items()} == {n: actions(script)[n].help for n in actions(derived)}
    assert_same_flags(derived, script, ElectraConfig,
                      [[], ['--objective', 'electra', '--mask_prob', '0.2', '--gen_size', '0.5', '--disc_weight', '1']],
                      script_argv=['--data', 'x'])


@dataclass
class Other(Config):
    lr: float = 1.0
    hidden: int = 7


@dataclass
class Group(flags.ConfigGroup):
    SKIP = ('hidden',)
    toy: Toy = field(default_factory=Toy)
    other: Other = field(default_factory=Other)

    def check(self):
        if self.toy.n_head > 100 * self.other.lr:
            raise ConfigError('n_head', self.toy.n_head, f"at most {100 * self.other.lr:g} (100 lr)")


def test_a_group_is_its_parts_flags_and_json():
    parser = Group.add_flags(argparse.ArgumentParser(), defaults={'other': {'lr': 0.5}})
    assert 'hidden' not in actions(parser) and actions(parser)['lr'].default == 0.5
    group = Group.from_args(parser.parse_args(['--n_head', '4', '--pdrop', '0.2']))
    assert group == Group(Toy(n_head=4, pdrop=0.2), Other(lr=0.5))
    assert 'hidden' not in group.flat() and group.flat()['n_head'] == 4 and group.flat()['lr'] == 0.5
    assert Group.from_dict(json.loads(json.dumps(group.to_dict()))) == group
    assert Group.from_dict(dict(group.flat(), hidden=7)) == group  # a flat dict of fields by name
    assert Group.from_flat({'n_head': 2, 'found': 1}) == (Group(Toy(n_head=2)), {'found': 1})
    with pytest.raises(ConfigError, match="^colour=1: expected a field of Group's parts"):
        Group.from_dict({'colour': 1})
    assert Group.flag_of('schedule') == '--lr_schedule' and Group.flag_of('lr') == '--lr'


def test_a_group_replaces_fields_by_name_and_checks_across_parts():
    group = Group()
    assert group.replace(n_head=3, lr=0.2) == Group(Toy(n_head=3), Other(lr=0.2))
    with pytest.raises(ConfigError, match=r"^n_head=12: expected at most 5 \(100 lr\)"):
        group.replace(lr=0.05)
    with pytest.raises(ConfigError, match=r"^pdrop=2: expected a probability"):
        group.replace(pdrop=2)
    with pytest.raises(ConfigError, match="^bogus=1: expected a field of Group's parts"):
        group.replace(bogus=1)
    assert Toy.from_any(group) is group.toy  # a part converts at the boundary as itself
