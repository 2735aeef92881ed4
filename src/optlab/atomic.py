"""Atomic file writes: a reader (or an interrupted run) never sees half a file."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


class NotARegularFileError(OSError):
    """The path of an atomic write exists and is not a regular file."""


def ordinary_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: ``0o666`` less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then
    ``os.replace`` it into place; on any failure the temporary file is removed and ``path`` is
    left as it was. The file gets the mode of an ordinary new file (umask respected).

    A symbolic link is written through (its target is replaced, the link stays); a path that
    exists and is not a regular file (a device such as ``/dev/full``, a FIFO, a directory) is
    refused with :class:`NotARegularFileError`, since replacing it would destroy it."""
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        raise NotARegularFileError(errno.EINVAL, "not a regular file (a device, a FIFO or a "
                                   "directory), which an atomic write would replace",
                                   str(path))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, ordinary_file_mode())  # mkstemp makes 0600; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """:func:`write_bytes_atomically` of ``text`` in UTF-8."""
    write_bytes_atomically(path, text.encode("utf-8"))
