"""Files written whole or not at all, safely when parallel jobs write the same file at once.

Each writer fills its own temporary file beside the target (named by process and thread), flushes
it to disk, then ``os.replace`` swaps it in: readers see the old file or the new one, never half of
one, whether the write fails (a full disk), the process is killed or the machine loses power; and
two jobs building the same cache both succeed (the last one's identical copy wins). The temporary
file sits in the target's folder because a rename is atomic only within one filesystem: across
two (a system temp folder and a run folder) it is a copy, which a full disk or a kill cuts short.
"""

import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """A temporary path to write in full; it becomes ``target`` when the block ends without error
    and is removed when it raises."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        yield tmp
        _sync(tmp)  # its bytes on disk before the rename: a crash never leaves a renamed, empty file
        os.replace(tmp, target)
        _sync(target.parent)  # and the rename itself
    finally:
        tmp.unlink(missing_ok=True)


def _sync(path: Path) -> None:
    """Flush ``path`` (a file or a folder) to disk; fsync flushes the file, whichever descriptor wrote it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(target: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``target`` atomically; a failed write (a full disk) raises an OSError naming
    ``target``, where the OS names no file (write) or the temporary one (open)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)  # an error here names the folder
    try:
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(target)) from error  # keeps its subclass
    return target


def write_text(target: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    return write_bytes(target, text.encode("utf-8"))


def write_torch(target: str | Path, obj: object) -> Path:
    """``torch.save`` ``obj`` to ``target`` atomically. Serialized in memory first: torch's file
    writer turns a failed write into a RuntimeError ("unexpected pos ..."), hiding the OSError."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes(target, buffer.getbuffer())
