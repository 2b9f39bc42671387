"""The delivery deduplication digest of an alert stays what earlier versions computed, so that an
upgraded ``derisk watch`` does not deliver every settled alert again.

The digests below were computed by commit 7109769, before alerts carried ``explanation`` (the
sentence's translatable templates, which restate the alert's other values)."""

from __future__ import annotations

from derisk.deliver.base import content_digest
from test_deliver_support import alert

BEFORE_EXPLANATIONS = {
    1: "1ef8622d7e6efa3c32a16c69f2e0eb83bc30c6593a6adeee74053d166a728d2e",
    2: "41663b0ed1b71a699498e4184cced8807c5a47932717cb43e54d6217072c70ca",
}


def test_digest_is_unchanged_by_the_explanation_key() -> None:
    for n, digest in BEFORE_EXPLANATIONS.items():
        a = alert(n)
        assert "explanation" in a.to_json()
        assert content_digest(a) == digest


def test_digest_still_tells_changed_content_apart() -> None:
    assert content_digest(alert(1, score=0.9)) != content_digest(alert(1))
    assert content_digest(alert(1, destination="other.example")) != content_digest(alert(1))
