"""Captures in other tools' file formats, read through Wireshark's wiretap library.

Sites keep captures written by other probes and analysers: Endace ERF from DAG cards, Microsoft
Network Monitor, Solaris ``snoop``, HP-UX ``nettl``, AIX ``iptrace``, Sniffer, NetScaler traces,
Omnipeek. Wireshark's wiretap reads all of them; its command-line tools are the adapter here
(Debian package ``wireshark-common``, installed with ``tshark`` by ``scripts/system-deps``):

* ``captype FILE`` names a file's format from its first records (magic numbers or wiretap's
  heuristics), without reading the whole file;
* ``editcap -F pcapng FILE -`` rewrites it as pcapng on its standard output, record by record, so
  the capture is converted as it is read (:class:`derisk.ingest.decompress.ToolReader`), never
  copied whole to disk or memory. The feed then reads the pcapng stream as it reads a compressed
  one, and link types such as ERF's own are converted by :mod:`derisk.ingest.linktypes`.

Only the formats in :data:`FORMATS` are taken: captype also names media and log formats (MP4,
JSON, Android logcat) by heuristics loose enough to take a few bytes of text for one, and those
are not packet captures.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Final

from derisk.errors import InputError

#: wiretap's names (what ``captype`` prints) of the packet-capture formats derisk reads through
#: ``editcap``, with what wrote them. The names are wiretap's file-type names as Wireshark 4.0 prints
#: them; formats of serial lines, ISDN, USB, Bluetooth, CAN and phone logs are left out.
FORMATS: Final[dict[str, str]] = {
    "erf": "Endace ERF (DAG capture cards)",
    "snoop": "Sun snoop (Solaris), Shomiti/Finisar Surveyor",
    "shomiti": "Shomiti/Finisar Surveyor",
    "netmon1": "Microsoft Network Monitor 1.x",
    "netmon2": "Microsoft Network Monitor 2.x and 3.x",
    "nettl": "HP-UX nettl trace",
    "iptrace_1": "AIX iptrace 1.0",
    "iptrace_2": "AIX iptrace 2.0",
    "ngsniffer": "Sniffer (DOS)",
    "ngsniffer_comp": "Sniffer (DOS), compressed",
    "netxray1": "Cinco NetXray",
    "netxray2": "NetXray 1.0",
    "ngwsniffer_1_1": "Sniffer (Windows) 1.1",
    "ngwsniffer_2_0": "Sniffer (Windows) 2.00x",
    "observer": "Viavi (Network Instruments) Observer",
    "niobserver": "Network Instruments Observer",
    "5views": "InfoVista 5View",
    "lanalyzer": "Novell LANalyzer",
    "visual": "Visual Networks traffic capture",
    "commview-ncf": "TamoSoft CommView NCF",
    "commview-ncfx": "TamoSoft CommView NCFX",
    "nstrace10": "Citrix NetScaler trace 1.0",
    "nstrace20": "Citrix NetScaler trace 2.0",
    "nstrace30": "Citrix NetScaler trace 3.0",
    "nstrace35": "Citrix NetScaler trace 3.5",
    "peekclassic56": "Savvius (WildPackets) classic 5/6",
    "peekclassic7": "Savvius (WildPackets) classic 7",
    "peektagged": "Savvius (Omnipeek) tagged",
    "capsa": "Colasoft Capsa",
    "colasoft-pb": "Colasoft Packet Builder",
    "rf5": "Tektronix K12xx 32-bit .rf5",
    "radcom": "RADCOM WAN/LAN analyzer",
    "vwreth": "Ixia IxVeriWave Ethernet",
    "etherwatch": "DBS Etherwatch (VMS)",
    "tcpiptrace": "TCPIPtrace (VMS)",
}

#: Formats whose records carry an encapsulation pcapng cannot store (HP-UX nettl's headers,
#: CommView's per-packet medium) but hold Ethernet frames when captured on Ethernet: when editcap
#: refuses the plain conversion, they are converted again with ``-T ether`` (:data:`AS_ETHERNET`
#: appended to the format's name says so).
RETYPED: Final = frozenset({"nettl", "commview-ncf", "commview-ncfx"})
AS_ETHERNET: Final = "+ether"
#: What editcap says when the plain conversion is refused.
UNWRITABLE: Final = "can't be written as a"

#: What captype says of a file in a format it knows that it cannot read (cut before its first
#: records, or a NetMon file cut before the frame table at its end).
_DAMAGED: Final = ("cut short", "damaged or corrupt")

#: The longest a look at a file's first records may take (captype reads a few records; a format
#: that hangs wiretap's heuristics must not hang derisk).
_IDENTIFY_SECONDS: Final = 30.0


def _tool(name: str) -> str | None:
    return shutil.which(name)


def available() -> bool:
    """Whether both of wiretap's tools are installed."""
    return _tool("captype") is not None and _tool("editcap") is not None


def identify(path: Path, head: bytes | None = None) -> str | None:
    """wiretap's name of ``path``'s format when it is one of :data:`FORMATS`, else None.

    None also when Wireshark's tools are not installed, the file is a pcap or pcapng (derisk reads
    those itself), or captype cannot name it; ``captype`` reads gzip-compressed files as well.
    Raises :class:`InputError` with captype's words when it knows the format but cannot read the
    file (cut before its first records, damaged). ``head``: the first bytes of the file once
    decompressed (a zstd, xz, bzip2 or lz4 file wiretap does not decompress), given to captype on
    its standard input instead of the file.
    """
    program = _tool("captype")
    if program is None or _tool("editcap") is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path.absolute()), stat.st_size, stat.st_mtime_ns, head)
    if key not in _IDENTIFIED:  # sniffing the input and probing the capture both ask: captype runs once
        _IDENTIFIED.clear()
        _IDENTIFIED[key] = _captype(program, path, head)
    return _IDENTIFIED[key]


#: The last file :func:`identify` named (a child process per question is slow to start).
_IDENTIFIED: dict[tuple[str, int, int, bytes | None], str | None] = {}


def _captype(program: str, path: Path, head: bytes | None) -> str | None:
    name = str(path.absolute()) if head is None else "-"  # never taken for an option
    try:
        done = subprocess.run(
            [program, name],
            input=b"" if head is None else head,
            capture_output=True,
            timeout=_IDENTIFY_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    said = done.stdout.decode("utf-8", "replace").strip()
    prefix = f"{name}: "
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").replace(f'"{name}" ', "").replace(f'"{name}"', "")
        complaint = " ".join(said.split()).removeprefix("captype: ")
        if any(sign in complaint for sign in _DAMAGED):  # a capture wiretap knows, but cannot read
            raise InputError(f"Wireshark's captype says: {complaint[:200]}", source=str(path))
        return None
    if not said.startswith(prefix):
        return None
    kind = said[len(prefix) :].strip()
    return kind if kind in FORMATS else None


#: Between a format's name and the compression around it, in a probe's outer stream ("erf@xz").
WRAPPED: Final = "@"


def parts(kind: str) -> tuple[str, bool, str | None]:
    """A probe's outer stream of a converted format: wiretap's name, whether editcap converts it
    ``-T ether`` (:data:`AS_ETHERNET`), and the compression around the file (None: plain or gzip,
    which wiretap reads itself)."""
    name, _, wrapped = kind.partition(WRAPPED)
    return name.removesuffix(AS_ETHERNET), name.endswith(AS_ETHERNET), wrapped or None


def base(kind: str) -> str:
    """The format's name without :data:`AS_ETHERNET` or the compression around it."""
    return parts(kind)[0]


def converts(kind: str | None) -> bool:
    """Whether ``kind`` (a probe's outer stream) is a format read through editcap."""
    return kind is not None and base(kind) in FORMATS


def command(kind: str) -> list[str]:
    """``editcap`` converting ``kind`` to pcapng on its standard output; the capture's path goes
    between these arguments and the final ``-`` (see :func:`derisk.ingest.decompress.open_capture`)."""
    program = _tool("editcap")
    if program is None:
        raise FileNotFoundError("editcap (Debian package wireshark-common) is not installed")
    retype = ["-T", "ether"] if parts(kind)[1] else []
    return [program, "-F", "pcapng", *retype]


def describe(kind: str) -> str:
    """A format's description for messages and notes."""
    return FORMATS.get(base(kind), kind)
