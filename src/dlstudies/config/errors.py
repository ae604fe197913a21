"""The error type for bad user input: its message is the one line the user sees."""

from rich.console import Console
from rich.markup import escape


class ConfigError(ValueError):
    """A bad user-supplied value; its message is the one line the user sees."""


def one_line(error: Exception) -> ConfigError:
    """The innermost cause's message (Hydra wraps constructor errors), first line only."""
    while error.__cause__ is not None:
        error = error.__cause__
    return ConfigError(str(error).splitlines()[0])


def print_error(message: object, label: str = "error:", style: str = "red") -> None:
    """Print ``<label> <message>`` as one line on stderr. The message is escaped: rich would read a
    ``[...]`` in a path or value (``trainer.devices=[0,1]``) as markup and silently drop it."""
    Console(stderr=True).print(f"[{style}]{label}[/{style}] {escape(str(message))}", highlight=False,
                               soft_wrap=True)
