"""Public corpora fetched on first use and kept under the data folder (``paths.data_dir``)."""

import shutil
import urllib.request
from pathlib import Path

from dlstudies.config.errors import ConfigError
from dlstudies.files import atomic_path

# name -> (public URL, file name under the data folder)
CORPORA = {
    "shakespeare": ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                    "tinyshakespeare/input.txt", "tinyshakespeare.txt"),
}


def fetch(name: str, data_dir: str | Path, url: str | None = None, timeout: float = 30.0) -> Path:
    """The local copy of corpus ``name``, downloaded from ``url`` (default: its public URL) once.

    Offline, or if the download fails, raises a one-line ConfigError that says where to
    put the file or how to point ``data.path`` at a copy.
    """
    if name not in CORPORA:
        raise ConfigError(f"no downloadable corpus named {name!r}; known: {', '.join(CORPORA)}")
    default_url, filename = CORPORA[name]
    url = url or default_url
    target = Path(data_dir).expanduser() / filename
    if target.is_file():
        return target
    try:  # only a complete download ever gets the final name
        with atomic_path(target) as partial, urllib.request.urlopen(url, timeout=timeout) as response, \
                open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:  # URLError, timeouts and refused connections are all OSErrors
        reason = getattr(error, "reason", None) or error
        raise ConfigError(f"{name} is not at {target} and could not be downloaded from {url} "
                                f"({reason}); download it there yourself or give "
                                f"data.path=/path/to/{filename}") from None
    return target
