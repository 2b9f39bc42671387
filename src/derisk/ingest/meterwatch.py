"""A watchdog for NFStream's meter processes: a meter that dies becomes an error, not a hang.

NFStream's streamer waits for its meters on a queue. A meter that crashes (a malformed packet that
takes nDPI down, an out-of-memory kill) never sends its end-of-stream message, and the streamer would
wait for ever. :class:`MeterWatch` looks at the streamer's meter processes every
:data:`POLL_S` seconds while flows are read; when one has ended with a non-zero exit code, it posts
NFStream's own error message on the streamer's queue, so that the streamer stops the other meters
and raises ``ValueError`` with a message that names the signal.

It reaches the meters and the queue through the streamer generator's frame (NFStream 6.6 keeps them
in the locals ``meters`` and ``channel``); if a later NFStream names them otherwise, the watchdog does
nothing and says so in the debug log.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any, Final

log = logging.getLogger(__name__)

#: How often the meters are looked at.
POLL_S: Final = 0.2


def describe(exitcode: int) -> str:
    """An exit code as people read it: the signal's name for a process killed by one."""
    if exitcode < 0:
        try:
            return f"killed by signal {-exitcode} ({signal.Signals(-exitcode).name})"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class MeterWatch:
    """Watches the meters of one NFStream generator (already started) from a daemon thread."""

    def __init__(self, flows: Iterator[Any]) -> None:
        self._flows = flows
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="derisk-meterwatch", daemon=True)

    def __enter__(self) -> MeterWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=2)

    def _locals(self) -> dict[str, Any] | None:
        frame = getattr(self._flows, "gi_frame", None)
        return None if frame is None else dict(frame.f_locals)

    def _watch(self) -> None:
        while not self._done.wait(POLL_S):
            found = self._locals()
            if found is None:
                continue  # not started yet, or finished
            meters, channel = found.get("meters"), found.get("channel")
            if meters is None or channel is None:
                if found.get("n_meters") is not None and "meters" not in found:
                    log.debug("NFStream keeps its meters elsewhere: no meter watchdog")
                    return
                continue
            for meter in list(meters):
                code = meter.exitcode
                if code:  # None while it runs, 0 when it ended as it should
                    self._stop(channel, f"NFStream's meter process crashed ({describe(code)})")
                    return

    @staticmethod
    def _stop(channel: Any, message: str) -> None:
        from nfstream.utils import InternalError, NFEvent

        log.debug("meter watchdog: %s", message)
        channel.put(InternalError(NFEvent.ERROR, message))
