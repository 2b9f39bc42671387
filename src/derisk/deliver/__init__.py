"""Alerts delivered as they happen: an ECS NDJSON file, syslog (RFC 5424) and a signed webhook.

``derisk watch`` builds a :class:`DeliveryConfig` with :func:`from_options` from these options:

``--ecs-file PATH``
    Append each alert's ECS document (the line ``derisk alerts --ecs`` writes) to ``PATH``, rotated by
    size (``PATH.1`` … ``PATH.5``), for Filebeat or Elastic Agent.
``--syslog URL``
    ``udp://HOST[:514]``, ``tcp://HOST[:514]`` (octet-counted, RFC 6587) or ``tls://HOST[:6514]``
    (RFC 5425); query options ``ca=FILE`` (tls only: the CA bundle the server's certificate must
    chain to), ``facility=local0``, ``sd-id=NAME@PEN`` and ``bom=off`` (no byte-order mark before MSG).
``--webhook URL``
    POST each alert as JSON to an ``http://`` or ``https://`` URL, signed with HMAC-SHA256.
``--webhook-secret-env NAME``
    The environment variable that holds the webhook's HMAC secret (required with ``--webhook``; the
    secret itself never appears on a command line).
``--dead-letter DIR``
    Where alerts that could not be delivered go (``DIR/SINK.ndjson``, each line with its reason);
    by default ``dead-letter/`` in the state folder.

Then ``Deliverer(config, state_dir)``; ``submit(alerts, flows)`` after each batch (non-blocking);
``status()`` for the status line; ``close(timeout)`` at the end. ``docs/delivery.md`` describes
formats, retries, deduplication and what each failure does.
"""

from __future__ import annotations

from derisk.deliver.config import (
    DeliveryConfig,
    EcsFileTarget,
    RetryPolicy,
    SyslogTarget,
    WebhookTarget,
    from_options,
)
from derisk.deliver.deliverer import Deliverer

__all__ = [
    "Deliverer",
    "DeliveryConfig",
    "EcsFileTarget",
    "RetryPolicy",
    "SyslogTarget",
    "WebhookTarget",
    "from_options",
]
