"""Deterministic Zeek log writer for tests and benchmarks, with its own ledger of what it wrote.

Two levels. :class:`Session` is what a test wants to happen ("this client talks to this server, so
many bytes each way, and learns its name through SNI / an HTTP Host / a DNS lookup");
:func:`build_logs` turns sessions into Zeek log records (:class:`Conn`, :class:`Dns`, :class:`Ssl`,
:class:`Http`) and a :class:`Ledger` of what each uid should come out as, taken from the sessions
alone, never from anything derisk reads back. :func:`write_logs` writes records as Zeek does: TSV
with ``#`` headers and ``\\xHH`` escapes, or JSON lines; plain or gzip.

:func:`derisk.gen.zeek_bench.write_bench_conn_log` writes a conn.log of millions of lines in vectorised chunks for the
benchmark (``scripts/bench_zeek.py``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal, TypedDict

Format = Literal["tsv", "json"]
NameVia = Literal["sni", "http-host", "dns-answer"]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: Zeek's own start-of-log time format in ``#open``/``#close``.
_OPEN_FORMAT = "%Y-%m-%d-%H-%M-%S"


@dataclass(frozen=True)
class Conn:
    """One conn.log record. ``None`` is written as Zeek's unset marker ``-``."""

    uid: str
    ts: float
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    proto: str = "tcp"
    service: str | None = None
    duration: float | None = None
    orig_pkts: int | None = 0
    orig_ip_bytes: int | None = 0
    resp_pkts: int | None = 0
    resp_ip_bytes: int | None = 0
    conn_state: str | None = "SF"
    history: str | None = None
    tunnel_parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dns:
    """One dns.log record."""

    uid: str
    ts: float
    orig_h: str
    orig_p: int
    resp_h: str
    query: str | None
    resp_p: int = 53
    qtype_name: str | None = "A"
    answers: tuple[str, ...] = ()
    ttls: tuple[float, ...] = ()
    rcode_name: str | None = "NOERROR"


@dataclass(frozen=True)
class Ssl:
    """One ssl.log record; ``ja4`` only when the log is written with the JA4 package's column."""

    uid: str
    ts: float
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    server_name: str | None
    ja4: str | None = None
    version: str | None = "TLSv13"
    established: bool | None = True


@dataclass(frozen=True)
class Http:
    """One http.log record."""

    uid: str
    ts: float
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    host: str | None
    user_agent: str | None = None
    method: str | None = "GET"
    uri: str | None = "/"
    status_code: int | None = 200


@dataclass
class ZeekLogs:
    """Records for each log; a log with no records is not written."""

    conn: list[Conn] = field(default_factory=list)
    dns: list[Dns] = field(default_factory=list)
    ssl: list[Ssl] = field(default_factory=list)
    http: list[Http] = field(default_factory=list)


@dataclass(frozen=True)
class Session:
    """A conversation a test wants in the logs, and how its server name is learnt.

    ``name_via="dns-answer"`` writes a DNS lookup by the client at ``resolved_at`` (default: 50 ms
    before ``start``) unless ``lookup`` is False (the client uses an answer cached from an earlier
    session).
    """

    client: str
    server: str
    start: float
    bytes_out: int | None
    bytes_in: int | None
    packets_out: int | None = 10
    packets_in: int | None = 10
    port: int = 443
    proto: str = "tcp"
    duration: float | None = 1.0
    name: str | None = None
    name_via: NameVia | None = None
    user_agent: str | None = None
    ja4: str | None = None
    service: str | None = None
    resolver: str = "10.0.0.53"
    resolved_at: float | None = None
    lookup: bool = True


@dataclass(frozen=True)
class Expected:
    """What one uid should become in the flow table, by construction."""

    uid: str
    src_ip: str
    dst_ip: str
    bytes_out: int | None
    bytes_in: int | None
    packets_out: int | None
    packets_in: int | None
    server_name: str | None = None
    server_name_source: str | None = None
    dns_query: str | None = None
    user_agent: str | None = None
    ja4: str | None = None
    application: str | None = None


@dataclass
class Ledger:
    """The generator's record of every flow it wrote, keyed by uid."""

    flows: dict[str, Expected] = field(default_factory=dict)

    def add(self, expected: Expected) -> None:
        self.flows[expected.uid] = expected

    @property
    def bytes_out(self) -> int:
        return sum(e.bytes_out or 0 for e in self.flows.values())

    @property
    def bytes_in(self) -> int:
        return sum(e.bytes_in or 0 for e in self.flows.values())

    def as_rows(self) -> list[dict[str, object]]:
        return [asdict(e) for e in self.flows.values()]


def make_uid(seed: int, index: int) -> str:
    """A Zeek-looking uid (``C`` and 17 base-62 characters), the same for the same seed and index."""
    number = int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:13], "big")
    chars = []
    for _ in range(17):
        number, rest = divmod(number, 62)
        chars.append(_B62[rest])
    return "C" + "".join(chars)


class _Ends(TypedDict):
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int


# fmt: off
def build_logs(sessions: Sequence[Session], *, seed: int = 0) -> tuple[ZeekLogs, Ledger]:
    """Zeek records and the ledger for ``sessions``; deterministic for the same arguments."""
    logs, ledger = ZeekLogs(), Ledger()
    uids = (make_uid(seed, n) for n in range(1, 2 * len(sessions) + 1))
    for number, s in enumerate(sessions):
        port = 40000 + (number * 7) % 20000
        if s.name_via == "dns-answer" and s.lookup:
            uid, when = next(uids), s.resolved_at if s.resolved_at is not None else s.start - 0.05
            ends = _Ends(orig_h=s.client, orig_p=port + 1, resp_h=s.resolver, resp_p=53)
            logs.conn.append(Conn(uid, when, **ends, proto="udp", service="dns", duration=0.002,
                                  orig_pkts=1, orig_ip_bytes=70, resp_pkts=1, resp_ip_bytes=120))
            qtype = "AAAA" if ":" in s.server else "A"
            logs.dns.append(Dns(uid, when, **ends, query=s.name, qtype_name=qtype, answers=(s.server,),
                                ttls=(300.0,)))
            ledger.add(Expected(uid, s.client, s.resolver, 70, 120, 1, 1, dns_query=s.name, application="dns"))
        uid = next(uids)
        ends = _Ends(orig_h=s.client, orig_p=port, resp_h=s.server, resp_p=s.port)
        service = s.service or {"sni": "ssl", "http-host": "http"}.get(s.name_via or "")
        logs.conn.append(Conn(uid, s.start, **ends, proto=s.proto, service=service, duration=s.duration,
                              orig_pkts=s.packets_out, orig_ip_bytes=s.bytes_out, resp_pkts=s.packets_in,
                              resp_ip_bytes=s.bytes_in))
        if s.name_via == "sni" or s.ja4 is not None:
            sni = s.name if s.name_via == "sni" else None
            logs.ssl.append(Ssl(uid, s.start + 0.01, **ends, server_name=sni, ja4=s.ja4))
        if s.name_via == "http-host" or s.user_agent is not None:
            host = s.name if s.name_via == "http-host" else None
            logs.http.append(Http(uid, s.start + 0.01, **ends, host=host, user_agent=s.user_agent))
        ledger.add(Expected(uid, s.client, s.server, s.bytes_out, s.bytes_in, s.packets_out, s.packets_in,
                            server_name=s.name if s.name_via else None, server_name_source=s.name_via,
                            user_agent=s.user_agent, ja4=s.ja4, application=service))
    return logs, ledger
# fmt: on


# --- writing -------------------------------------------------------------------------------------


def _fields(spec: str) -> tuple[tuple[str, str], ...]:
    """``"ts:time uid:string"`` -> ``(("ts", "time"), ("uid", "string"))``."""
    return tuple((name, kind) for name, _, kind in (item.partition(":") for item in spec.split()))


_ID = "ts:time uid:string id.orig_h:addr id.orig_p:port id.resp_h:addr id.resp_p:port "
CONN_FIELDS = _fields(
    _ID + "proto:enum service:string duration:interval orig_bytes:count resp_bytes:count "
    "conn_state:string local_orig:bool local_resp:bool missed_bytes:count history:string orig_pkts:count "
    "orig_ip_bytes:count resp_pkts:count resp_ip_bytes:count tunnel_parents:set[string]"
)
_DNS_FIELDS = _fields(
    _ID + "proto:enum trans_id:count query:string qtype_name:string rcode_name:string "
    "answers:vector[string] TTLs:vector[interval]"
)
_SSL_FIELDS = _fields(_ID + "version:string server_name:string established:bool")
_HTTP_FIELDS = _fields(
    _ID + "trans_depth:count method:string host:string uri:string user_agent:string status_code:count"
)
#: Columns Zeek fills that no test varies.
_CONSTANTS: dict[str, object] = {
    "local_orig": None,
    "local_resp": None,
    "missed_bytes": 0,
    "trans_id": 4711,
    "trans_depth": 1,
    "TTLs": None,
}


def _values(record: Conn | Dns | Ssl | Http, fields: Sequence[tuple[str, str]]) -> list[object]:
    """A record's values in ``fields`` order (``id.orig_h`` is the attribute ``orig_h``)."""
    out: list[object] = []
    for name, _ in fields:
        attribute = name.removeprefix("id.")
        if name == "TTLs" and isinstance(record, Dns):
            out.append(record.ttls)
        elif name in ("orig_bytes", "resp_bytes") and isinstance(record, Conn):
            side = name.split("_")[0]
            ip_bytes, pkts = getattr(record, f"{side}_ip_bytes"), getattr(record, f"{side}_pkts")
            out.append(None if ip_bytes is None or pkts is None else max(0, ip_bytes - 40 * pkts))
        elif name == "proto" and isinstance(record, Dns):
            out.append("udp")
        elif hasattr(record, attribute):
            out.append(getattr(record, attribute))
        else:
            out.append(_CONSTANTS[name])
    return out


def escape(text: str, separators: str = "\t") -> str:
    """Zeek's TSV escaping: separators, backslashes, non-printable and non-ASCII bytes as ``\\xHH``."""
    out = []
    for char in text:
        if char in separators or char == "\\" or not (" " <= char <= "~"):
            out.append("".join(f"\\x{b:02x}" for b in char.encode("utf-8", "surrogatepass")))
        else:
            out.append(char)
    escaped = "".join(out)
    if escaped in ("-", "(empty)"):
        return "\\x" + f"{ord(escaped[0]):02x}" + escaped[1:]
    return escaped


def _tsv_value(value: object, kind: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        if not value:
            return "(empty)"
        return ",".join(_tsv_value(v, kind.split("[", 1)[1].rstrip("]")) for v in value)
    if isinstance(value, bool):
        return "T" if value else "F"
    if kind in ("time", "interval"):
        return f"{float(value):.6f}"  # type: ignore[arg-type]
    if isinstance(value, str):
        return escape(value, "\t,") if value else "(empty)"
    return str(value)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_value(value: object, kind: str, iso: bool) -> object:
    if isinstance(value, tuple):
        return [_json_value(v, kind.split("[", 1)[1].rstrip("]"), iso) for v in value]
    if kind == "time" and iso and isinstance(value, float):
        return _iso(value)
    return value


def _open_out(path: Path, compress: bool, stack: ExitStack) -> IO[str]:
    if compress:
        raw = stack.enter_context(path.open("wb"))
        gz = stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
        return stack.enter_context(io.TextIOWrapper(gz, encoding="utf-8", newline="\n"))
    return stack.enter_context(path.open("w", encoding="utf-8", newline="\n"))


def tsv_header(path_name: str, fields: Iterable[tuple[str, str]], opened: float = 0.0) -> str:
    """The ``#`` header Zeek writes before the records of a TSV log."""
    fields = list(fields)
    stamp = datetime.fromtimestamp(opened, UTC).strftime(_OPEN_FORMAT)
    return (
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        f"#path\t{path_name}\n#open\t{stamp}\n"
        "#fields\t" + "\t".join(n for n, _ in fields) + "\n"
        "#types\t" + "\t".join(t for _, t in fields) + "\n"
    )


def write_log(
    path: Path,
    path_name: str,
    fields: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[object]],
    *,
    fmt: Format = "tsv",
    compress: bool = False,
    iso_ts: bool = False,
) -> None:
    """Write one log; ``rows`` hold values in ``fields`` order (tuples for sets/vectors)."""
    with ExitStack() as stack:
        out = _open_out(path, compress, stack)
        if fmt == "tsv":
            out.write(tsv_header(path_name, fields))
            for row in rows:
                out.write("\t".join(_tsv_value(v, k) for v, (_, k) in zip(row, fields, strict=True)) + "\n")
            out.write(f"#close\t{datetime.fromtimestamp(0, UTC).strftime(_OPEN_FORMAT)}\n")
        else:
            for row in rows:
                record = {
                    name: _json_value(v, kind, iso_ts)
                    for v, (name, kind) in zip(row, fields, strict=True)
                    if v is not None and v != ()
                }
                out.write(json.dumps({"_path": path_name, **record}) + "\n")


def write_logs(
    directory: Path,
    logs: ZeekLogs,
    *,
    fmt: Format = "tsv",
    compress: bool = False,
    iso_ts: bool = False,
    stamp: str | None = None,
    with_ja4: bool | None = None,
) -> dict[str, Path]:
    """Write every log of ``logs`` that has records into ``directory``; ``stamp`` gives rotated names.

    File names are ``conn.log`` or, with ``stamp="00:00:00-01:00:00"``, Zeek's rotated
    ``conn.00:00:00-01:00:00.log``; ``.gz`` is added when compressing. ssl.log gets a ``ja4``
    column when any record has one (or when ``with_ja4`` says so).
    """
    directory.mkdir(parents=True, exist_ok=True)
    suffix = (f".{stamp}" if stamp else "") + ".log" + (".gz" if compress else "")
    ja4 = with_ja4 if with_ja4 is not None else any(s.ja4 for s in logs.ssl)
    ssl_fields = _SSL_FIELDS + ((("ja4", "string"),) if ja4 else ())
    plan: list[tuple[str, Sequence[tuple[str, str]], list[list[object]]]] = [
        ("conn", CONN_FIELDS, [_values(c, CONN_FIELDS) for c in logs.conn]),
        ("dns", _DNS_FIELDS, [_values(d, _DNS_FIELDS) for d in logs.dns]),
        ("ssl", ssl_fields, [_values(s, ssl_fields) for s in logs.ssl]),
        ("http", _HTTP_FIELDS, [_values(h, _HTTP_FIELDS) for h in logs.http]),
    ]
    written: dict[str, Path] = {}
    for name, fields, rows in plan:
        if not rows:
            continue
        target = directory / f"{name}{suffix}"
        write_log(target, name, fields, rows, fmt=fmt, compress=compress, iso_ts=iso_ts)
        written[name] = target
    return written
