"""The comparison's progress lines and bars (:class:`_Log`), quiet when asked and silent once
its reader has gone (:func:`silence_stream`)."""

from __future__ import annotations

import os
import sys
from typing import Any

#: Writes of progress lines that failed for another reason than a closed pipe (a full disk),
#: in this process: the CLI says so in one line at the end (the results are complete).
OUTPUT_FAILURES: list[BaseException] = []


def print_line(msg: str, stream: Any) -> bool:
    """Print ``msg`` to ``stream`` and flush; ``False`` if the stream failed, which is then
    silenced (:func:`silence_stream`): a closed pipe (``| head -1``) quietly, a full disk
    noted in :data:`OUTPUT_FAILURES`. Either way the caller's work goes on."""
    try:
        print(msg, file=stream, flush=True)
        return True
    except BrokenPipeError:
        pass
    except (OSError, ValueError) as e:
        OUTPUT_FAILURES.append(e)
    silence_stream(stream)
    return False


class _Log:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()

    def line(self, msg: str) -> None:
        if self.quiet:
            return
        if not print_line(msg, sys.stderr if self.tty else sys.stdout):
            self.quiet = True  # keep training

    def bar(self, total: int, desc: str) -> Any:
        if self.quiet or not self.tty:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover
            return None
        return tqdm(total=total, desc=desc, leave=False, unit="step")


def silence_stream(stream: Any) -> None:
    """Point ``stream``'s file descriptor at ``/dev/null``, so that writes (and the flush at
    exit) after its reader went away neither fail nor print "Exception ignored"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - not a real file
        pass
