"""The comparison's progress lines and bars (:class:`_Log`), quiet when asked and silent once
its reader has gone (:func:`silence_stream`)."""

from __future__ import annotations

import os
import sys
from typing import Any

#: Writes of progress lines that failed for another reason than a closed pipe (a full disk),
#: in this process: the CLI reports them in one line at the end (status 2).
OUTPUT_FAILURES: list[BaseException] = []


class _Log:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()

    def line(self, msg: str) -> None:
        if self.quiet:
            return
        stream = sys.stderr if self.tty else sys.stdout
        try:
            print(msg, file=stream, flush=True)
        except BrokenPipeError:  # its reader has gone (`| head -1`): keep training, silently
            self.quiet = True
            silence_stream(stream)
        except (OSError, ValueError) as e:  # a full disk: keep training, say so at the end
            self.quiet = True
            OUTPUT_FAILURES.append(e)
            silence_stream(stream)

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
