"""Command-line flags derived from the library's @dataclass configs, and configs built back from them.

A config is the schema; its flags are not declared a second time. The convention:

- a field `n_head: int = 12` is the flag `--n_head` (type int, default 12, `dest` the field's name);
- `Optional[T]` (or `T | None`) is a flag of type T whose default may be None; `list[T]` takes one or
  more values (`nargs='+'`); a field without a default is a required flag;
- a `bool` field defaulting to False is a switch (`action='store_true'`); one defaulting to True is a
  switch that turns it off and must name that flag (`metadata={'flag': '--no_x'}`);
- `field(metadata={...})` adds to the flag: 'help' (plain text: '%' needs no escaping), 'choices'
  (a tuple of the allowed values), 'metavar', and 'flag' (the flag's name, where it is not '--' + field).

A script adds a config's flags with `add_flags(parser, Config, defaults={...}, skip=(...))` (its own
defaults where they differ from the config's), builds the config from the parsed flags with
`config_from_args(Config, args)`, and reports a ConfigError as its flag with
`err.as_flag(flag_of(Config, err.field))`. `DefaultsHelpFormatter` shows each flag's default in --help.

`Config` is the base of those dataclasses: `check()` (called by `__post_init__`) validates the fields,
raising errors.ConfigError(field, value, expected); `to_dict()` and `from_dict(d)` are the JSON round
trip; `from_args` and `from_any` convert at the boundary (a dict, an argparse.Namespace, the config).
"""
import argparse
import copy
import dataclasses
import numbers
import types
import typing
from collections.abc import Mapping

from errors import ConfigError

__all__ = ['Config', 'DefaultsHelpFormatter', 'add_flags', 'config_from_args', 'config_from_dict', 'flag_of',
           'check_number']

_FLAG_TYPES = (int, float, str)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """--help shows every flag's default, except where its help already says what the default is."""

    def _format_action(self, action):
        if not action.help and action.option_strings and action.default is not argparse.SUPPRESS:
            action = copy.copy(action)  # argparse prints no help line for a flag without help text
            action.help = '(default: %(default)s)'
        return super()._format_action(action)

    def _get_help_string(self, action):
        text = action.help
        if not action.option_strings or action.default is argparse.SUPPRESS or action.required or 'default' in text:
            return text
        return f"{text} (default: %(default)s)"


# ------------------------------------------------------------------ flags of a config

def _fields(cls):
    """The fields of the dataclass `cls` that its constructor takes, by name."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r}: expected a @dataclass config class")
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def _check_names(cls, names, what):
    unknown = sorted(set(names) - set(_fields(cls)))
    if unknown:
        raise TypeError(f"{what} {', '.join(unknown)}: not fields of {cls.__name__} "
                        f"(expected some of {', '.join(_fields(cls))})")


def flag_of(cls, name):
    """The command-line flag of the field `name` of the config class `cls`: its metadata's 'flag',
    else '--' + name."""
    _check_names(cls, [name], 'field')
    return _fields(cls)[name].metadata.get('flag', '--' + name)


def _default(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _base_type(annotation):
    """(T, many) for an annotation T, Optional[T], T | None, list[T] or tuple[T, ...]."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else (annotation, False)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return (args[0] if len(set(args)) == 1 else annotation), True
    return annotation, False


def _flag_kwargs(cls, f, annotation, default):
    """add_argument's keyword arguments for the field `f` (its annotation resolved) with `default`."""
    tp, many = _base_type(annotation)
    meta = f.metadata
    kwargs = dict(dest=f.name)
    if 'help' in meta:
        kwargs['help'] = meta['help'].replace('%', '%%')  # argparse formats help text with %
    if default is dataclasses.MISSING:
        kwargs['required'] = True
    else:
        kwargs['default'] = default
    if tp is bool and not many:
        if default is False:
            return dict(kwargs, action='store_true')
        if default is True and 'flag' in meta:
            return dict(kwargs, action='store_false')
        raise TypeError(f"{cls.__name__}.{f.name}: a bool flag defaults to False (a switch that turns it on), "
                        f"or to True with metadata 'flag' naming the switch that turns it off")
    if tp not in _FLAG_TYPES:
        raise TypeError(f"{cls.__name__}.{f.name}: {annotation!r} has no flag; expected int, float, str, bool, "
                        f"Optional or a list of one of them")
    kwargs['type'] = tp
    if many:
        kwargs['nargs'] = '+'
    for key in ('choices', 'metavar'):
        if key in meta:
            kwargs[key] = meta[key]
    return kwargs


def add_flags(parser, cls, defaults=None, skip=()):
    """Add a flag for each field of the config class `cls` to `parser` (an ArgumentParser or an
    argument group), in the fields' order; `defaults` ({field: value}) replaces the config's
    default of a field, `skip` leaves fields out. Returns `parser`."""
    defaults = dict(defaults or {})
    _check_names(cls, defaults, 'defaults for')
    _check_names(cls, skip, 'skip of')
    hints = typing.get_type_hints(cls)
    for name, f in _fields(cls).items():
        if name in skip:
            continue
        default = defaults[name] if name in defaults else _default(f)
        parser.add_argument(flag_of(cls, name), **_flag_kwargs(cls, f, hints[name], default))
    return parser


def config_from_args(cls, args):
    """The config `cls` of the parsed flags `args` (an argparse.Namespace or a mapping): each field
    from the attribute of its name, a field with no such attribute (a skipped flag) at its default;
    other attributes are ignored. Raises ConfigError for a value the config refuses."""
    values = args if isinstance(args, Mapping) else vars(args)
    return cls(**{name: values[name] for name in _fields(cls) if name in values})


def config_from_dict(cls, d):
    """The config `cls` of the dict `d` ({field: value}; a field missing from it takes its
    default). Raises ConfigError for a key that is not a field, or a value the config refuses."""
    if not isinstance(d, Mapping):
        raise TypeError(f"{cls.__name__}.from_dict: expected a dict of fields, got {type(d).__name__}")
    fields = _fields(cls)
    for key, value in d.items():
        if key not in fields:
            raise ConfigError(key, value, f"a field of {cls.__name__} ({', '.join(fields)})")
    return cls(**d)


# ------------------------------------------------------------------ configs

def check_number(field, value, ok, expected):
    """Raise ConfigError(field, value, expected) unless `value` is a real number (not a bool) for
    which ok(value) holds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
        raise ConfigError(field, value, expected)


class Config:
    """Base of the library's @dataclass configs: the subclass's `check()` validates its fields
    (raising ConfigError) whenever one is built; dict and flag conversions are shared."""

    def __post_init__(self):
        self.check()

    def check(self):
        """Raise errors.ConfigError(field, value, expected) for the first field that cannot work."""

    def to_dict(self):
        """{field: value}, ready for JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """The config of a dict such as to_dict() writes; missing fields take their defaults,
        unknown keys raise ConfigError."""
        return config_from_dict(cls, d)

    @classmethod
    def from_args(cls, args):
        """The config of parsed flags (see flags.config_from_args)."""
        return config_from_args(cls, args)

    @classmethod
    def from_any(cls, value):
        """`value` as this config: the config itself, one of a dict (from_dict), one of an
        argparse.Namespace (from_args)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        if isinstance(value, argparse.Namespace):
            return cls.from_args(value)
        raise TypeError(f"{cls.__name__}.from_any: expected a {cls.__name__}, a dict or an argparse.Namespace, "
                        f"got {type(value).__name__}")
