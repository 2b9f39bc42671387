"""Text from logs of network traffic: bounded, and host names in one form.

Every such value is attacker-controlled; it is kept as text and bounded with
:func:`derisk.safetext.bound`, and escaped by each output.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from derisk.safetext import MAX_FIELD_CHARS, bound


def bound_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Bound every value's length (the long ones go through :func:`bound`); empty strings -> null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = values.cast(pa.string())
    lengths = pc.utf8_length(values)
    extent = pc.min_max(lengths).as_py()
    if extent["min"] is None:  # all null
        return values
    if extent["min"] == 0:
        values = pc.if_else(pc.equal(lengths, 0), pa.scalar(None, pa.string()), values)
    if extent["max"] <= MAX_FIELD_CHARS:
        return values
    out = values.to_pylist()
    for i in pc.indices_nonzero(pc.fill_null(pc.greater(lengths, MAX_FIELD_CHARS), False)).to_pylist():
        out[i] = bound(out[i])
    return pa.array(out, type=pa.string())


def normalise_name(values: pa.Array) -> pa.Array:
    """Host names compare without case and without a trailing dot."""
    lowered = pc.utf8_lower(values)
    if pc.any(pc.ends_with(lowered, ".")).as_py():
        lowered = pc.utf8_rtrim(lowered, characters=".")
    return lowered
