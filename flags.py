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
`ConfigGroup` is a config of configs (a script's whole settings: run, model, optimizer, ...): its
JSON is one object per part, its flags the parts' flags (`add_flags`), `flat()` every field by name.
"""
import argparse
import copy
import dataclasses
import numbers
import types
import typing
from collections.abc import Mapping

from errors import ConfigError

__all__ = ['Config', 'ConfigGroup', 'DefaultsHelpFormatter', 'add_flags', 'config_from_args', 'config_from_dict',
           'flag_of', 'check_number']

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
        """`value` as this config: the config itself, a group's part of this type, one of a dict
        (from_dict), one of an argparse.Namespace (from_args)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, ConfigGroup):
            for name, part in value.parts().items():
                if part is cls:
                    return getattr(value, name)
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        if isinstance(value, argparse.Namespace):
            return cls.from_args(value)
        raise TypeError(f"{cls.__name__}.from_any: expected a {cls.__name__}, a dict or an argparse.Namespace, "
                        f"got {type(value).__name__}")


class ConfigGroup(Config):
    """A @dataclass whose fields are configs (its parts), e.g. a script's run, model and optimizer
    settings. The parts' field names are distinct, so parsed flags build every part at once
    (`from_args`) and `flat()` lists every field by name; `to_dict()` is one object per part and
    `from_dict` reads it back, or reads a flat {field: value} dict (`from_flat`)."""

    SKIP = ()  # fields the group's script leaves at their defaults: no flag, and not in flat()

    @classmethod
    def parts(cls):
        """{part name: its config class}."""
        hints = typing.get_type_hints(cls)
        return {name: hints[name] for name in _fields(cls)}

    @classmethod
    def flag_of(cls, name):
        """The command-line flag of the field `name` of one of the parts (--name for another name)."""
        for part in cls.parts().values():
            if name in _fields(part):
                return flag_of(part, name)
        return '--' + name

    def flat(self):
        """{field: value} of every part, but the SKIP fields."""
        return {k: v for name in self.parts() for k, v in getattr(self, name).to_dict().items() if k not in self.SKIP}

    def replace(self, **changes):
        """A copy with the fields named in `changes` (of any part) set, checked as a new group;
        ConfigError for a name that is no part's field."""
        parts = {name: {} for name in self.parts()}
        for key, value in changes.items():
            name = next((name for name, part in self.parts().items() if key in _fields(part)), None)
            if name is None:
                raise ConfigError(key, value, f"a field of {type(self).__name__}'s parts ({', '.join(parts)})")
            parts[name][key] = value
        return dataclasses.replace(self, **{name: dataclasses.replace(getattr(self, name), **fields)
                                            for name, fields in parts.items() if fields})

    @classmethod
    def add_flags(cls, parser, defaults=None):
        """Add the flags of every part to `parser`, in the parts' order, but the SKIP fields;
        `defaults` ({part: {field: value}}) are the script's where they differ from the parts'."""
        defaults = defaults or {}
        for name, part in cls.parts().items():
            add_flags(parser, part, defaults=defaults.get(name), skip=[k for k in _fields(part) if k in cls.SKIP])
        return parser

    @classmethod
    def from_args(cls, args):
        """Each part from the parsed flags `args` (config_from_args: a flag not given its default)."""
        return cls(**{name: part.from_args(args) for name, part in cls.parts().items()})

    @classmethod
    def from_dict(cls, d):
        """The group of to_dict()'s {part: {field: value}} (a missing part takes its defaults), or
        of a flat {field: value} dict (from_flat; keys of no part are refused)."""
        if not isinstance(d, Mapping):
            raise TypeError(f"{cls.__name__}.from_dict: expected a dict, got {type(d).__name__}")
        parts = cls.parts()
        if not all(key in parts and isinstance(value, Mapping) for key, value in d.items()):
            group, rest = cls.from_flat(d)
            if rest:
                key = next(iter(rest))
                raise ConfigError(key, rest[key], f"a field of {cls.__name__}'s parts ({', '.join(parts)})")
            return group
        return cls(**{name: part.from_dict(d.get(name, {})) for name, part in parts.items()})

    @classmethod
    def from_flat(cls, d):
        """(the group, the other items) of a flat {field: value} dict: each part takes the keys
        that are its fields (the others at their defaults)."""
        parts, taken = {}, set()
        for name, part in cls.parts().items():
            keys = [k for k in _fields(part) if k in d]
            parts[name] = part.from_dict({k: d[k] for k in keys})
            taken.update(keys)
        return cls(**parts), {k: v for k, v in d.items() if k not in taken}
