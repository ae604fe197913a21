"""The error type for bad user input: its message is the one line the user sees."""


class ConfigError(ValueError):
    """A bad user-supplied value; its message is the one line the user sees."""


def one_line(error: Exception) -> ConfigError:
    """The innermost cause's message (Hydra wraps constructor errors), first line only."""
    while error.__cause__ is not None:
        error = error.__cause__
    return ConfigError(str(error).splitlines()[0])
