"""The feed's output: named pipes (FIFOs) that the meter and the DNS pass read, written in large pieces.

One feed may write the same classic pcap into two pipes (a *tee*): the meter's and the DNS pass's.
A compressed capture is then decompressed, and a converted link type converted, once for both
readers instead of once each (bzip2, slower to decompress than the meter reads, took twice as long
when each reader had a feed of its own). With two pipes every write is non-blocking and waits with
``poll`` for whichever reader has room, so neither reader waits for the other more than the pipe
buffers allow; a second reader that stops early is :meth:`Outputs.release`\\ d and the meter goes on.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import select
import struct
import termios
import threading
import time
from pathlib import Path
from typing import Final

#: Pipe buffer asked for (Linux allows unprivileged processes up to 1 MiB by default).
PIPE_BYTES: Final = 1 << 20
_F_SETPIPE_SZ: Final = 1031
_F_GETPIPE_SZ: Final = 1032
#: A pipe with this much room is written (see :meth:`Writer._tee`).
_LARGE_PIECE: Final = 1 << 18
_ROOM_WAIT_S: Final = 0.001
_POLL_MS: Final = 50


class Outputs:
    """The write ends of the feed's pipes, opened once their readers have opened theirs."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self.fds: list[int] = []
        #: A read end of each pipe, so that :meth:`drain` can unblock a writer whose reader is gone.
        self.drains: list[int] = []
        self._released: set[int] = set()
        self._lock = threading.Lock()

    def open(self, fifo: Path, index: int) -> bool:
        """Wait for the reader of ``fifo`` and open the write end; False when stopped or released first."""
        while not self._stop.is_set() and not self.released(index):
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: nobody reads yet
                    raise
                time.sleep(0.005)
                continue
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_BYTES)
            with self._lock:
                self.fds.append(fd)
                # Both ends are open: the pipe needs no name any more, and leaves none behind if
                # derisk is killed. A read end of its own lets drain() empty the pipe.
                with contextlib.suppress(OSError):
                    self.drains.append(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            with contextlib.suppress(OSError):
                fifo.unlink()
            return True
        return False

    def release(self, index: int) -> None:
        """Reader ``index`` reads no more (it ended or failed): stop writing to it."""
        with self._lock:
            self._released.add(index)

    def released(self, index: int) -> bool:
        with self._lock:
            return index in self._released

    def stopping(self) -> bool:
        """Whether the feed was told to stop (what is not written yet may be dropped)."""
        return self._stop.is_set()

    def drain(self) -> None:
        """Read what the writer may be blocked writing (the meter stopped reading early)."""
        with self._lock:
            drains = list(self.drains)
        for fd in drains:
            with contextlib.suppress(BlockingIOError, OSError):
                while os.read(fd, 1 << 20):
                    pass

    def close(self) -> None:
        with self._lock:
            fds, self.fds = self.fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close_drains(self) -> None:
        with self._lock:
            drains, self.drains = self.drains, []
        for fd in drains:
            with contextlib.suppress(OSError):
                os.close(fd)


class Writer:
    """Collects output records and writes them to every open pipe in large pieces.

    With two pipes (a tee), the second reader is the DNS pass: :meth:`add` may give it only the
    records its filter can take (``dns``), so it reads a few DNS packets instead of the whole stream.
    """

    SIZE: Final = 1 << 18

    def __init__(self, outputs: Outputs) -> None:
        self.outputs, self.size = outputs, 0
        self.parts: list[bytes | memoryview] = []
        self.dns_parts: list[bytes | memoryview] = []
        #: Whether a second pipe (the DNS pass's) is written.
        self.tee = len(outputs.fds) > 1
        if len(outputs.fds) == 1:  # one reader: blocking writes, as simple as it gets
            fd = outputs.fds[0]
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)

    def header(self, linktype: int) -> None:
        self.add(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))

    def add(self, data: bytes | memoryview, dns: bytes | memoryview | None = None) -> None:
        """Write ``data`` (whole records) to the meter; to the DNS pass too, or ``dns`` in its place."""
        self.parts.append(data)
        if self.tee:
            self.dns_parts.append(data if dns is None else dns)
        self.size += len(data)
        if self.size >= self.SIZE:
            self.flush()

    def flush(self) -> None:
        data = b"".join(self.parts)
        self.parts, self.size = [], 0
        fds = self.outputs.fds
        if len(fds) == 1:
            view = memoryview(data)
            while view:
                view = view[os.write(fds[0], view) :]
            return
        dns = b"".join(self.dns_parts)
        self.dns_parts = []
        self._tee([data, dns])

    def _tee(self, datas: list[bytes]) -> None:
        """Write ``datas[i]`` to pipe ``i`` while its reader has not been released, as each has room.

        A pipe is written only when it has room for a large piece (or for all that is left), and
        then as much as it has room for, in one call that cannot block. ``poll`` reports a pipe
        writable as soon as one page is free: writing then, as the reader frees page after page,
        took one wake-up of this thread (and one turn of the GIL) per 4 KiB, some 35,000 for a
        230 MB capture, and the meter waited on them; this way it is a few per MiB.
        """
        outputs = self.outputs
        left = {
            i: memoryview(datas[i]) for i in range(len(outputs.fds)) if not outputs.released(i) and datas[i]
        }
        poller = select.poll()
        for i in left:
            poller.register(outputs.fds[i], select.POLLOUT)
        while left:
            progressed = False
            for i in list(left):
                fd = outputs.fds[i]
                if i and outputs.released(i):
                    del left[i]
                    poller.unregister(fd)
                    continue
                room, size = _room(fd)
                if room < min(len(left[i]), _LARGE_PIECE, size // 2):
                    continue
                try:
                    written = os.write(fd, left[i][:room])
                except BlockingIOError:
                    continue
                progressed = True
                left[i] = left[i][written:]
                if not left[i]:
                    del left[i]
                    poller.unregister(fd)
            if left and not progressed:
                # wait for a free page, then a little longer for the reader to free a large piece
                events = poller.poll(_POLL_MS)
                for _fd, event in events:
                    if event & (select.POLLERR | select.POLLHUP):  # its reader is gone, as a write would say
                        raise BrokenPipeError(errno.EPIPE, "the reader of the feed's pipe is gone")
                if outputs.stopping():
                    return
                time.sleep(_ROOM_WAIT_S)


def _room(fd: int) -> tuple[int, int]:
    """How many bytes pipe ``fd`` can take now without blocking (its size less what is unread), and its size."""
    try:
        size = fcntl.fcntl(fd, _F_GETPIPE_SZ)
        unread = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, unread, True)
    except OSError:  # not a pipe as Linux has them: a page at a time, as poll() reports room
        return select.PIPE_BUF, select.PIPE_BUF
    return max(size - unread[0], 0), size
