"""The size check every model's constructor makes, so a bad size fails in one line before training."""

from dlstudies.config.errors import ConfigError


def check_sizes(minimum: int = 1, **sizes: int) -> None:
    """Each size must be an integer >= ``minimum``; the first that is not fails, named as the
    config names it (``model.net.depth=-1 is not allowed; it must be an integer >= 1``)."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"model.net.{name}={value!r} is not allowed; it must be an integer >= {minimum}")
