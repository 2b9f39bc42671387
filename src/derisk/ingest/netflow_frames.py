"""The framing of NetFlow v9 and IPFIX datagrams: checks, and the templates they carry.

Exporters are attacker-reachable, so every datagram's framing is checked before anything is read
(lengths of sets and templates, field lengths), and a template is turned into a :class:`Template`
(its field types and lengths) only after that. Decoding the data records is
:mod:`.netflow_decode`'s.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

_V4_FIELDS: Final = frozenset({8, 12, 15, 18, 47, 130})
_V6_FIELDS: Final = frozenset({27, 28, 62, 63, 131})


class Malformed(Exception):
    """A datagram that is not a well-formed NetFlow v5/v9 or IPFIX message."""


@dataclass(frozen=True)
class Template:
    """A template record: ``fields`` are (type, length) in record order.

    ``options`` marks an options template; ``scopes`` is how many of its first fields are scope
    fields (v9 keeps them apart from the option fields, IPFIX does not).
    """

    template_id: int
    fields: tuple[tuple[int, int], ...]
    options: bool = False
    scopes: int = 0

    @property
    def record_length(self) -> int:
        """The length of a record, or of its fixed-length fields when it has variable-length ones."""
        return sum(length for _, length in self.fields if length != VARIABLE)

    @property
    def variable(self) -> bool:
        return any(length == VARIABLE for _, length in self.fields)


def compact(template: Template, data: bytes, start: int, end: int) -> tuple[bytes, int]:
    """The records of a data set whose template has variable-length elements, with those elements
    cut out (each record then has the template's fixed fields only, in order), and their count.

    A variable-length element carries its length in one byte, or in the two bytes after a 255
    (RFC 7011, section 7). Padding at the end of a set (shorter than a record can be) is left.
    """
    out = bytearray()
    count, offset = 0, start
    least = template.record_length + sum(1 for _, length in template.fields if length == VARIABLE)
    while end - offset >= max(least, 1):
        for _, length in template.fields:
            if length == VARIABLE:
                _need_to(end, offset, 1)
                size = data[offset]
                offset += 1
                if size == 255:
                    _need_to(end, offset, 2)
                    size = struct.unpack_from("!H", data, offset)[0]
                    offset += 2
                _need_to(end, offset, size)
                offset += size
            else:
                _need_to(end, offset, length)
                out += data[offset : offset + length]
                offset += length
        count += 1
    return bytes(out), count


def _need_to(end: int, offset: int, n: int) -> None:
    if offset + n > end:
        raise Malformed("variable-length element runs past its set")


def _need(data: bytes, offset: int, n: int) -> None:
    if offset + n > len(data):
        raise Malformed("shorter than its headers say")


#: The length of an IPFIX variable-length element in a template (RFC 7011, section 7).
VARIABLE: Final = 0xFFFF
#: IPFIX's enterprise bit on a field's type: a four-byte enterprise number follows the specifier.
ENTERPRISE_BIT: Final = 0x8000
#: RFC 5103's enterprise number for reverse information elements (a biflow's other direction).
REVERSE_PEN: Final = 29305


def field_key(ftype: int, pen: int) -> int:
    """A field's key in a :class:`Template`: IANA's number, or an enterprise-specific element's
    number above 2**16 with its enterprise number (no IANA number reaches 2**15)."""
    return ftype if not pen else (pen << 16) | (ftype & 0x7FFF)


def _check_fields(data: bytes, offset: int, count: int, ipfix: bool) -> int:
    """Check ``count`` field specifiers from ``offset``; return the offset after them.

    Enterprise-specific IPFIX fields (vendors' own, RFC 5103's reverse counters) are taken: their
    bytes are skipped by length unless derisk reads them (:mod:`.netflow_layout`)."""
    for _ in range(count):
        _need(data, offset, 4)
        ftype, flen = struct.unpack_from("!HH", data, offset)
        offset += 4
        if ipfix and ftype & ENTERPRISE_BIT:
            _need(data, offset, 4)
            offset += 4
        if flen == 0 or (flen == VARIABLE and not ipfix):
            raise Malformed("field of length 0, or of variable length in NetFlow v9")
        if flen == VARIABLE and (ftype in _V4_FIELDS or ftype in _V6_FIELDS):
            raise Malformed(f"address field {ftype} of variable length")
        if (ftype in _V4_FIELDS and flen != 4) or (ftype in _V6_FIELDS and flen != 16):
            raise Malformed(f"address field {ftype} of {flen} bytes")
    return offset


def _fields(
    data: bytes, offset: int, count: int, ipfix: bool = False
) -> tuple[tuple[tuple[int, int], ...], int]:
    """The (key, length) of ``count`` checked field specifiers from ``offset``, and the offset after them."""
    out = []
    for _ in range(count):
        ftype, flen = struct.unpack_from("!HH", data, offset)
        offset += 4
        pen = 0
        if ipfix and ftype & ENTERPRISE_BIT:
            pen = struct.unpack_from("!I", data, offset)[0]
            offset += 4
        out.append((field_key(ftype, pen), flen))
    return tuple(out), offset


def check_v9(data: bytes) -> None:
    _need(data, 0, 20)
    offset = 20
    while offset < len(data):
        _need(data, offset, 4)
        set_id, length = struct.unpack_from("!HH", data, offset)
        if length < 4:
            raise Malformed("flowset shorter than its header")
        _need(data, offset, length)
        end, inner = offset + length, offset + 4
        if set_id == 0:
            while end - inner >= 4:
                template_id, count = struct.unpack_from("!HH", data, inner)
                if template_id < 256 or count == 0:
                    raise Malformed("template with a reserved id or no fields")
                inner = _check_fields(data, inner + 4, count, ipfix=False)
                if inner > end:
                    raise Malformed("template longer than its flowset")
        elif set_id == 1:
            while end - inner >= 6:
                template_id, scope_len, option_len = struct.unpack_from("!HHH", data, inner)
                if template_id < 256 or scope_len % 4 or option_len % 4 or scope_len + option_len == 0:
                    raise Malformed("options template with bad lengths")
                inner = _check_fields(data, inner + 6, (scope_len + option_len) // 4, ipfix=False)
                if inner > end:
                    raise Malformed("options template longer than its flowset")
                break  # one options template per flowset is read
        elif set_id < 256:
            raise Malformed(f"reserved flowset id {set_id}")
        offset = end


def check_ipfix(data: bytes) -> None:
    _need(data, 0, 16)
    if struct.unpack_from("!H", data, 2)[0] != len(data):
        raise Malformed("message length does not match the datagram")
    offset = 16
    while offset < len(data):
        _need(data, offset, 4)
        set_id, length = struct.unpack_from("!HH", data, offset)
        if length < 4:
            raise Malformed("set shorter than its header")
        if set_id in (0, 1) or 4 <= set_id < 256:
            raise Malformed(f"reserved set id {set_id}")
        _need(data, offset, length)
        end, inner = offset + length, offset + 4
        if set_id in (2, 3):
            while end - inner > 4 and any(data[inner:end]):
                head = 6 if set_id == 3 else 4
                _need(data, inner, head)
                template_id, count = struct.unpack_from("!HH", data, inner)
                if template_id < 256:
                    raise Malformed("template with a reserved id")
                if count == 0:
                    inner += head  # a template withdrawal
                    continue
                inner = _check_fields(data, inner + head, count, ipfix=True)
                if inner > end:
                    raise Malformed("template longer than its set")
        offset = end


@dataclass(frozen=True)
class DataSet:
    """A data flowset/set: its template id, and where its records start and end in the datagram."""

    template_id: int
    start: int
    end: int


def v9_sets(data: bytes) -> Iterator[Template | DataSet]:
    """Templates and data flowsets of a v9 datagram already passed by :func:`check_v9`."""
    offset = 20
    while offset < len(data):
        set_id, length = struct.unpack_from("!HH", data, offset)
        end, inner = offset + length, offset + 4
        if set_id == 0:
            while end - inner >= 4:
                template_id, count = struct.unpack_from("!HH", data, inner)
                fields, inner = _fields(data, inner + 4, count)
                yield Template(template_id, fields)
        elif set_id == 1:
            if end - inner >= 6:
                template_id, scope_len, option_len = struct.unpack_from("!HHH", data, inner)
                count = (scope_len + option_len) // 4
                yield Template(template_id, _fields(data, inner + 6, count)[0], True, scope_len // 4)
        else:
            yield DataSet(set_id, inner, end)
        offset = end


def ipfix_sets(data: bytes) -> Iterator[Template | DataSet | int]:
    """Templates, data sets and template withdrawals (their id) of an IPFIX message already checked."""
    offset = 16
    while offset < len(data):
        set_id, length = struct.unpack_from("!HH", data, offset)
        end, inner = offset + length, offset + 4
        if set_id in (2, 3):
            while end - inner > 4 and any(data[inner:end]):
                template_id, count = struct.unpack_from("!HH", data, inner)
                head = 6 if set_id == 3 else 4
                if count == 0:
                    yield template_id
                    inner += head
                else:
                    scopes = struct.unpack_from("!H", data, inner + 4)[0] if set_id == 3 else 0
                    fields, inner = _fields(data, inner + head, count, ipfix=True)
                    yield Template(template_id, fields, set_id == 3, scopes)
        else:
            yield DataSet(set_id, inner, end)
        offset = end
