"""The one base class of user errors: bad input a person can fix (a file, an option, a value).

The command line prints a `UserError` as one line, `rlpfn: error: ...`, and exits with status 2; any other
exception is a bug and keeps its traceback. Each kind of input has its own subclass (MDPError,
AgentError, CheckpointError, ConfigError, PriorSpecError, OutputError, ResourceError, CLIError), raised where
that input enters.
"""


class UserError(ValueError):
    """Bad input; the message names the file, key or option and the offending value."""


class DataFileError(RuntimeError):
    """A file rlpfn ships (a prior spec, a config, the checkpoint, tuned.json) is missing: a broken install."""
