"""The Instrument oneof flattened to tradebus.v1.Instrument:
{kind, symbol, exchange, attributes_json}.

``kind`` is the name of the oneof member that is set; ``attributes_json`` is
that member as protobuf JSON with the proto field names, so decimal strings,
enum names and timestamps survive unchanged. ``exchange`` is the member's
exchange, or for the members that have a venue instead (crypto, perpetual,
prediction) the venue; None when unknown.
"""

from __future__ import annotations

import functools
import json

from google.protobuf import json_format

from producers.anthid.values import ConversionError

_VENUE_FIELDS = ("exchange", "venue")


def convert_instrument(instrument, *, mandatory: bool, owner: str) -> dict | None:
    """None when absent (unknown, spec §4.5: not equity); a ConversionError
    when ``mandatory`` (orders) and absent or empty."""
    kind = instrument.WhichOneof("instrument")
    if kind is None:
        if mandatory:
            raise ConversionError("missing_instrument", f"{owner}.instrument is missing")
        return None
    # Instruments repeat across events: convert each distinct one once.
    return dict(_flatten(kind, getattr(instrument, kind).SerializeToString(deterministic=True), type(getattr(instrument, kind))))


@functools.lru_cache(maxsize=4096)
def _flatten(kind: str, member_bytes: bytes, member_type) -> tuple:
    member = member_type.FromString(member_bytes)
    exchange = None
    for field in _VENUE_FIELDS:
        descriptor = member.DESCRIPTOR.fields_by_name.get(field)
        if descriptor is None:
            continue
        present = member.HasField(field) if descriptor.has_presence else bool(getattr(member, field))
        if present:
            exchange = getattr(member, field)
            break
    attributes = json_format.MessageToDict(member, preserving_proto_field_name=True)
    return (
        ("kind", kind),
        ("symbol", member.symbol),
        ("exchange", exchange),
        ("attributes_json", json.dumps(attributes, separators=(",", ":"), ensure_ascii=False)),
    )
