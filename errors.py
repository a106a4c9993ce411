"""The library's bad-input exceptions, one family, and the way every CLI reports them.

Library functions raise a subclass of `GPT1Error` for an input they detect as
unusable (a flag, a data file, a checkpoint, a vocabulary), with a message that
names the file or flag, the value and what was expected. Notebook users catch
`GPT1Error` (or `ValueError`, its base); each command-line script catches it once
in its `main` and prints it with `exit_with_error`: one line, exit status 2.
"""
import shlex
import sys

EXIT_BAD_INPUT = 2  # argparse's status for a bad flag; every CLI uses it for every detected bad input
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command Ctrl-C stopped


class GPT1Error(ValueError):
    """A bad input the library detected; the message is one line saying what was expected."""


class InputError(GPT1Error):
    """A flag, or a file or folder a flag names, that cannot work."""


class ConfigError(InputError):
    """A config field whose value cannot work. The message names the field (`n_head=5: expected
    ...`); a script reports it as its flag instead (`--n_head 5: expected ...`, `as_flag`)."""

    def __init__(self, field, value, expected):
        self.field, self.value, self.expected = field, value, expected
        super().__init__(f"{field}={value!r}: expected {expected}")

    def as_flag(self, flag=None):
        """The message with the field written as its command-line flag (`flag`, else --{field})."""
        return f"{flag or '--' + self.field} {self.value}: expected {self.expected}"


class DataError(GPT1Error):
    """A data file (a dataset split, a vocabulary, merges) that is missing, malformed or inconsistent."""


class CheckpointError(GPT1Error):
    """A checkpoint (OpenAI's shards, a Hugging Face folder, a run's own files) that cannot be loaded."""


class NonFiniteLossError(GPT1Error):
    """The training objective became NaN or infinite; raised before it reaches the parameters."""


class MissingFileError(GPT1Error, FileNotFoundError):
    """A file or folder that should be there is not (still a FileNotFoundError for older callers)."""


def one_line(err):
    """The message of `err` on one line (newlines folded into '; ')."""
    text = str(err.args[0]) if isinstance(err, OSError) and len(err.args) == 1 else str(err)
    return '; '.join(part.strip() for part in text.splitlines() if part.strip())


def exit_with_error(prog, err, tag=''):
    """Print `prog: error: <message>` as one line on stderr and exit with status 2; a
    ConfigError names its flag rather than its field."""
    message = err.as_flag() if isinstance(err, ConfigError) else one_line(err)
    print(f"{prog}: error: {tag}{message}", file=sys.stderr, flush=True)

    sys.exit(EXIT_BAD_INPUT)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run's training; the message says where and what its last checkpoint holds.
    `flag` is what continues the run: '--resume' (from that checkpoint) or '--overwrite' (none yet)."""

    def __init__(self, message, flag):
        super().__init__(message)
        self.flag = flag


def exit_interrupted(prog, err, argv, tag=''):
    """Print, as one line on stderr, where Ctrl-C stopped the run (`err`, an Interrupted, or a
    plain KeyboardInterrupt outside training) and the command that continues it (`argv`, the
    run's flags, with err.flag); exit with status 130."""
    flag = getattr(err, 'flag', None)
    where = one_line(err) if flag else 'stopped by Ctrl-C before training began'
    command = [a for a in argv if a not in ('--resume', '--overwrite')] + [flag] if flag else list(argv)
    print(f"{prog}: interrupted: {tag}{where}; to continue: python {prog} {shlex.join(command)}", file=sys.stderr,
          flush=True)
    sys.exit(EXIT_INTERRUPTED)


class DataWarning(UserWarning):
    """Data that loads but looks wrong (duplicate ids, repeated rows, empty stories); the message is one
    line with the file and the counts."""
