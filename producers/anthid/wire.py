"""Slicing the bytes of one field out of a serialized message, so a record
keeps the member message (e.g. trading.BrokerOrder) exactly as it came over
the wire instead of a re-serialization that may order or drop bytes
differently."""

from __future__ import annotations

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def field_bytes(data: bytes, number: int) -> bytes | None:
    """The payload of field ``number`` when it occurs exactly once; None when
    it is absent or repeated (repeated message fields merge on parse, so no
    single slice is "the" member then: the caller re-serializes)."""
    pos, found, count = 0, None, 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        field, wire_type = tag >> 3, tag & 7
        if wire_type == _LEN:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            if field == number:
                found, count = data[pos:pos + length], count + 1
            pos += length
        elif wire_type == _VARINT:
            _, pos = _varint(data, pos)
        elif wire_type == _I64:
            pos += 8
        elif wire_type == _I32:
            pos += 4
        else:  # groups are not used by proto3
            raise ValueError(f"unsupported wire type {wire_type}")
    return found if count == 1 else None
