"""The ECS file sink: the lines equal ``derisk alerts --ecs`` on a workspace built by ``derisk analyze``;
rotation by size and count; a folder that disappears; a disk that fills (RLIMIT_FSIZE in a child
process) leaves only whole lines and dead-letters the rest; deduplication across restarts; option
checks that report every problem at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from derisk.cli import main
from derisk.deliver import Deliverer, DeliveryConfig, EcsFileTarget, from_options
from derisk.deliver.ecsfile import ecs_line
from derisk.errors import UsageError
from derisk.store.alert_flows import alert_flows
from derisk.store.alerts import load_alerts
from derisk.store.workspace import Workspace
from schema_check import assert_valid
from test_deliver_support import FAST, HOSTILE, alert, certificate, dead_letters, settled, wait_for
from web_helpers import build_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> Path:
    return build_workspace(tmp_path_factory.mktemp("deliver-ecs"), ipdata_dir)


def ecs_config(tmp_path: Path, path: Path, **extra: Any) -> DeliveryConfig:
    return DeliveryConfig(ecs_file=EcsFileTarget(path, **extra), dead_letter=tmp_path / "dead", retry=FAST)


def test_lines_equal_what_derisk_alerts_ecs_writes(ws: Path, tmp_path: Path) -> None:
    expected = tmp_path / "cli.ndjson"
    assert main(["alerts", "-w", str(ws), "--ecs", str(expected)]) == 0
    with Workspace.open(ws, create=False, read_only=True) as w:
        found = load_alerts(w)
        behind = alert_flows(w, found)
    assert len(found) >= 3
    out = tmp_path / "alerts.ndjson"
    d = Deliverer(ecs_config(tmp_path, out), tmp_path / "state")
    d.submit(found, behind)
    d.close(10)
    assert d.status()["ecs-file"]["delivered"] == len(found), d.status()
    ours, theirs = out.read_bytes().splitlines(), expected.read_bytes().splitlines()
    assert len(ours) == len(theirs)
    for mine, cli in zip(ours, theirs, strict=True):
        a, b = json.loads(mine), json.loads(cli)
        assert a == b, {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
    assert out.read_bytes() == expected.read_bytes()


def test_rotation_keeps_whole_lines_in_order_within_size_and_count(tmp_path: Path) -> None:
    out = tmp_path / "alerts.ndjson"
    alerts = [alert(n) for n in range(40)]
    size = max(len(ecs_line(_item(a))) for a in alerts)
    limit = 4 * size + 10  # four lines per file, never five
    open_before = len(os.listdir("/proc/self/fd"))
    d = Deliverer(ecs_config(tmp_path, out, max_bytes=limit, keep=3), tmp_path / "state")
    d.submit(alerts)
    d.close(10)
    assert len(os.listdir("/proc/self/fd")) == open_before  # rotated-away files closed once synced
    files = [out.with_name(f"alerts.ndjson.{n}") for n in (3, 2, 1)] + [out]
    assert all(f.exists() for f in files) and not out.with_name("alerts.ndjson.4").exists()
    lines: list[dict[str, Any]] = []
    for f in files:
        data = f.read_bytes()
        assert len(data) <= limit and data.endswith(b"\n")
        lines += [json.loads(x) for x in data.splitlines()]
    # Oldest files dropped, the rest in the order the alerts came: the newest alerts, none twice.
    ids = [x["derisk"]["alert_id"] for x in lines]
    assert ids == [a.alert_id for a in alerts[-len(ids) :]] and len(ids) == 16


def _item(a: Any) -> Any:
    from derisk.deliver.base import Item, content_digest

    return Item(alert=a, flows=None, digest=content_digest(a))


def test_a_folder_that_disappears_is_retried_then_dead_lettered_and_writing_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "siem"
    folder.mkdir()
    out = folder / "alerts.ndjson"
    d = Deliverer(ecs_config(tmp_path, out), tmp_path / "state")
    d.submit([alert(1)])
    wait_for(settled(d, "ecs-file", 1))
    out.unlink()
    folder.rmdir()  # the shipper's folder is removed while derisk writes
    d.submit([alert(2, destination=HOSTILE[0])])
    wait_for(settled(d, "ecs-file", 2))
    folder.mkdir()
    d.submit([alert(3)])
    wait_for(settled(d, "ecs-file", 3))
    d.close(5)
    status = d.status()["ecs-file"]
    assert (status["delivered"], status["dead_lettered"]) == (2, 1)
    assert "ENOENT" in status["last_error"]
    (letter,) = dead_letters(tmp_path / "dead", "ecs-file")
    assert_valid(letter)
    assert letter["alert"]["destination"] == HOSTILE[0]  # JSON keeps the name whole and inert
    assert letter["payload"]["ecs"]["derisk"]["alert_id"] == alert(2).alert_id
    assert [json.loads(x)["derisk"]["alert_id"] for x in out.read_text(encoding="utf-8").splitlines()] == [
        alert(3).alert_id
    ]


FULL_DISK = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from derisk.deliver import Deliverer, DeliveryConfig, EcsFileTarget
    from test_deliver_support import FAST, alert
    root = Path(sys.argv[1])
    limit = int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # no file may grow past limit bytes
    d = Deliverer(DeliveryConfig(ecs_file=EcsFileTarget(root / "alerts.ndjson"), dead_letter=root / "dead",
                                 retry=FAST), root / "state")
    d.submit([alert(n) for n in range(6)])
    while d.status()["ecs-file"]["queued"]:  # every alert through its retries before closing
        time.sleep(0.01)
    d.close(10)
    print(json.dumps(d.status()))
    """
)


def test_a_disk_that_fills_leaves_whole_lines_and_dead_letters_the_rest(tmp_path: Path) -> None:
    size = len(ecs_line(_item(alert(0))))
    limit = int(2.5 * size)  # two lines fit, the third is cut short by the file size limit
    tests = Path(__file__).parent
    run = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path), str(tests), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    status = json.loads(run.stdout)["ecs-file"]
    data = (tmp_path / "alerts.ndjson").read_bytes()
    assert data.endswith(b"\n") and len(data) <= limit
    lines = [json.loads(x) for x in data.splitlines()]
    assert [x["derisk"]["alert_id"] for x in lines] == [alert(0).alert_id, alert(1).alert_id]
    assert status["delivered"] == 2 and status["queued"] == 0
    assert status["dead_lettered"] + status["lost"] == 4  # each accounted for, none silently dropped
    assert status["failed"] == 4 * FAST.max_attempts
    letters = tmp_path / "dead" / "ecs-file.ndjson"
    if letters.exists():  # the dead-letter file is under the same limit: only whole records in it
        body = letters.read_bytes()
        assert body == b"" or body.endswith(b"\n")
        for line in body.splitlines():
            assert_valid(json.loads(line))


def test_an_alert_is_written_once_per_content_also_across_restarts(tmp_path: Path) -> None:
    out = tmp_path / "alerts.ndjson"
    for _ in range(2):
        d = Deliverer(ecs_config(tmp_path, out), tmp_path / "state")
        d.submit([alert(1), alert(2)])
        d.submit([alert(1)])
        d.close(5)
    d = Deliverer(ecs_config(tmp_path, out), tmp_path / "state")
    d.submit([alert(1, score=0.99)])  # new content under the same id
    d.close(5)
    ids = [json.loads(x)["derisk"]["alert_id"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert ids == [alert(1).alert_id, alert(2).alert_id, alert(1).alert_id]


def test_a_cut_delivered_log_only_makes_an_alert_go_out_again(tmp_path: Path) -> None:
    out = tmp_path / "alerts.ndjson"
    d = Deliverer(ecs_config(tmp_path, out), tmp_path / "state")
    d.submit([alert(1), alert(2)])
    d.close(5)
    log = tmp_path / "state" / "delivered-ecs-file.ndjson"
    log.write_bytes(log.read_bytes()[:-20])  # a crash in the middle of the second record
    d = Deliverer(ecs_config(tmp_path, out), tmp_path / "state")
    d.submit([alert(1), alert(2)])
    d.close(5)
    ids = [json.loads(x)["derisk"]["alert_id"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert ids == [alert(1).alert_id, alert(2).alert_id, alert(2).alert_id]  # at least once, never lost


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"ecs_file": "/nonexistent-d3/alerts.ndjson"},
            "--ecs-file: folder '/nonexistent-d3' does not exist",
        ),
        ({"ecs_file": "-"}, "--ecs-file: '-': expected a file path"),
        ({"syslog": "http://siem:514"}, "expected udp://, tcp:// or tls://HOST:PORT"),
        ({"syslog": "tcp://siem:99999"}, "is not a URL"),
        ({"syslog": "udp://siem?ca=/etc/ssl/x.pem"}, "ca= applies to tls:// only"),
        ({"syslog": "tls://siem?ca=/nonexistent-d3.pem"}, "CA file '/nonexistent-d3.pem' does not exist"),
        ({"syslog": "tcp://siem?facility=kern"}, "facility 'kern' unknown"),
        ({"syslog": 'tcp://siem?sd-id=a"b'}, "is not NAME@ENTERPRISE-NUMBER"),
        ({"syslog": "tcp://siem?retry=3"}, "unknown option 'retry'"),
        ({"syslog": "tcp://siem?bom=maybe"}, "bom must be on or off, not 'maybe'"),
        ({"webhook": "ftp://soc/hook", "webhook_secret_env": "X"}, "expected http:// or https://HOST/PATH"),
        ({"webhook": "https://soc/hook"}, "--webhook-secret-env: required with --webhook"),
        (
            {"webhook": "https://soc/hook", "webhook_secret_env": "BAD NAME"},
            "is not an environment variable name",
        ),
        ({"webhook": "https://u:p@soc/hook", "webhook_secret_env": "HOME"}, "credentials in the URL"),
        ({"webhook_secret_env": "HOME"}, "given without --webhook"),
    ],
)
def test_bad_options_are_one_line_naming_the_option(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(UsageError) as err:
        from_options(**options)
    text = str(err.value)
    assert expected in text and "\n" not in text and text.startswith("alert delivery: invalid options")


def test_every_problem_is_reported_at_once_and_good_options_parse(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        from_options(ecs_file="/nonexistent-d3/a", syslog="smtp://x", webhook="https://x/h")
    assert "(3 problems)" in str(err.value)
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(UsageError) as err:
        from_options(syslog=f"tls://siem.example?ca={bogus}")
    assert "holds no usable PEM certificate" in str(err.value) and "\n" not in str(err.value)
    ca, _ = certificate(tmp_path)
    cfg = from_options(
        ecs_file=tmp_path / "a.ndjson",
        syslog=f"tls://siem.example:6514?ca={ca}&facility=security&sd-id=derisk@99999",
        dead_letter=tmp_path / "dead",
    )
    assert cfg.sinks == ("ecs-file", "syslog")
    assert cfg.syslog is not None and (cfg.syslog.port, cfg.syslog.facility, cfg.syslog.ca_file) == (
        6514,
        13,
        ca,
    )
    assert cfg.syslog.sd_id == "derisk@99999" and cfg.syslog.max_bytes == 8192
    udp = from_options(syslog="udp://[2001:db8::1]?bom=off")
    assert (
        udp.syslog is not None
        and not udp.syslog.bom
        and (udp.syslog.host, udp.syslog.port, udp.syslog.max_bytes)
        == (
            "2001:db8::1",
            514,
            2048,
        )
    )


def test_close_right_after_submit_delivers_everything_queued(ws: Path, tmp_path: Path) -> None:
    """The worker may be syncing a first alert (the queue looked empty for a moment while submit()
    was still digesting the next) when close() is called: it must still deliver the rest, not end
    with them queued (it did, in about one round in four, before the fix)."""
    with Workspace.open(ws, create=False, read_only=True) as w:
        found = load_alerts(w)
        behind = alert_flows(w, found)
    for round_ in range(30):
        out = tmp_path / f"r{round_}.ndjson"
        d = Deliverer(ecs_config(tmp_path, out), tmp_path / f"state{round_}")
        d.submit(found, behind)
        d.close(10)
        status = d.status()["ecs-file"]
        assert (status["delivered"], status["queued"]) == (len(found), 0), (round_, status)
        assert len(out.read_bytes().splitlines()) == len(found)
