"""The caller's side of a qrexec call's stdout: lines reach the caller through a
writer thread, so a caller that stops reading or goes away never holds up the job."""

from __future__ import annotations

import errno
import json
import logging
import queue
import threading
from typing import BinaryIO

log = logging.getLogger(__name__)

MAX_PENDING_BYTES = 1 << 20  # output waiting for a caller that is not reading, before events are dropped


class CallerStream:
    """The caller's stdout, as text, that never holds up the job.

    Lines go through a queue to a writer thread, so a caller that stops reading
    (or a slow qrexec connection) blocks only that thread, never Wyng's output or
    the operation lock. While more than `max_pending` bytes wait, new lines are
    dropped (they are progress and per-qube events; the result repeats what
    matters) and a `dropped` event says how many when the caller catches up.
    After `finish()` nothing is dropped: the result line always gets queued.
    A write that fails with EPIPE means the caller went away: `gone` becomes
    True, everything else is discarded, and the work carries on."""

    def __init__(self, raw: BinaryIO, *, max_pending: int = MAX_PENDING_BYTES) -> None:
        self.raw = raw
        self.max_pending = max_pending
        self.gone = False
        self.dropped = 0
        self._final = False
        self._pending = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_all, name="caller-stream", daemon=True)
        self._writer.start()

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "backslashreplace")
        with self._lock:
            if self.gone:
                return len(text)
            if not self._final and self._pending + len(data) > self.max_pending:
                self.dropped += 1
                return len(text)
            if self.dropped:
                notice = json.dumps({"type": "dropped", "lines": self.dropped,
                                     "why": "the caller was not reading; the result line has the outcome"})
                self._put(notice.encode() + b"\n")
                self.dropped = 0
            self._put(data)
        return len(text)

    def flush(self) -> None:
        return None

    def finish(self) -> None:
        """From now on nothing is dropped (the result line comes next)."""
        with self._lock:
            self._final = True

    def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for everything queued to reach the caller;
        return whether it did (or the caller is gone, so nothing is left to send)."""
        self._queue.put(None)
        self._writer.join(timeout)
        return not self.writing

    @property
    def writing(self) -> bool:
        """Whether output is still on its way (the caller has not read it all)."""
        return self._writer.is_alive()

    def _put(self, data: bytes) -> None:
        self._pending += len(data)
        self._queue.put(data)

    def _write_all(self) -> None:
        while (data := self._queue.get()) is not None:
            if not self.gone:
                self._send(data)
            with self._lock:
                self._pending -= len(data)

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = self.raw.write(view)
                view = view[written if written is not None else len(view):]
            self.raw.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError):
            self._lost()
        except OSError as err:
            if err.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
                log.exception("writing to the caller failed")
            self._lost()

    def _lost(self) -> None:
        if not self.gone:
            log.warning("the caller went away; the job goes on and its outcome is recorded")
        self.gone = True
