"""The :class:`Deliverer`: hands each alert to every configured sink's worker, without waiting."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from derisk.deliver.base import Item, content_digest
from derisk.deliver.config import DeliveryConfig, read_secret
from derisk.deliver.ecsfile import EcsFileSink
from derisk.deliver.state import DeadLetters, DeliveredLog
from derisk.deliver.syslog import SyslogSink
from derisk.deliver.webhook import WebhookSink
from derisk.deliver.worker import SinkWorker
from derisk.detect.alert import Alert
from derisk.errors import StoreError
from derisk.store.alert_flows import AlertFlows


class Deliverer:
    """Deliver alerts to the sinks of ``config``; ``state_dir`` keeps what was delivered across restarts.

    :meth:`submit` returns at once; each sink works in its own thread. Call :meth:`close` at the end
    (it is bounded by its timeout). Raises :class:`~derisk.errors.UsageError` when the webhook secret
    is missing from the environment and :class:`~derisk.errors.StoreError` when ``state_dir`` cannot
    be created.
    """

    def __init__(self, config: DeliveryConfig, state_dir: Path) -> None:
        self.config = config
        self.state_dir = state_dir
        secret = read_secret(config.webhook.secret_env) if config.webhook is not None else b""
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the delivery state folder ({exc.strerror})", source=str(state_dir)
            ) from None
        dead = DeadLetters(config.dead_letter or state_dir / "dead-letter", config.dead_letter_max_bytes)
        self._workers: list[SinkWorker] = []
        sinks: list[Any] = []
        if config.ecs_file is not None:
            sinks.append(EcsFileSink(config.ecs_file))
        if config.syslog is not None:
            sinks.append(SyslogSink(config.syslog, timeout=config.timeout))
        if config.webhook is not None:
            sinks.append(WebhookSink(config.webhook, secret, timeout=config.timeout))
        for sink in sinks:
            self._workers.append(
                SinkWorker(
                    sink,
                    config.retry,
                    DeliveredLog(state_dir / f"delivered-{sink.name}.ndjson"),
                    dead,
                    config.queue_size,
                    payload_of=getattr(sink, "dead_letter_payload", None),
                )
            )
        self._closed = False

    def submit(self, alerts: Sequence[Alert], flows: Mapping[str, AlertFlows] | None = None) -> None:
        """Queue ``alerts`` for every sink; an alert a sink already settled or holds with the same
        content is skipped. ``flows`` (alert id -> :func:`derisk.store.alert_flows.alert_flows`) makes
        the ECS documents those of ``derisk alerts --ecs``; without it they carry only the alert."""
        for alert in alerts:
            summary = None
            if flows is not None:
                summary = flows.get(alert.alert_id) or AlertFlows()
            item = Item(alert=alert, flows=summary, digest=content_digest(alert))
            for worker in self._workers:
                worker.offer(item)

    def close(self, timeout: float) -> None:
        """Flush what can be delivered within ``timeout`` seconds (shared by all sinks, which close in
        parallel); dead-letter the rest. Returns within about ``timeout`` plus a few milliseconds."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + max(0.0, timeout)
        for worker in self._workers:
            worker.begin_close()  # every sink starts its last round at once
        for worker in self._workers:
            worker.stop(deadline)

    def status(self) -> dict[str, Any]:
        """Per sink: ``queued``, ``delivered``, ``retried``, ``failed`` (failed attempts),
        ``dead_lettered``, ``lost`` (could not even be dead-lettered), ``duplicates`` (skipped) and
        ``last_error``."""
        return {worker.name: worker.status() for worker in self._workers}

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(5.0)
