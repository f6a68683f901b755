"""One published data event, shared by every stream it is fanned out to."""

from __future__ import annotations

from dataclasses import dataclass, field

BROKER_CLOCK_SKEW_NS = 3_000_000  # broker_sent_at = received_at - 3 ms: the broker's clock is "earlier"


@dataclass(eq=False)
class Emission:
    org_id: str
    event: object  # pb.TradingEvent; never mutated after publishing (streams read it concurrently)
    fault: str | None = None
    recorded: bool = False  # set by the ledger on the first write to any stream
    _payload: bytes | None = field(default=None, repr=False)

    @property
    def payload(self) -> bytes:
        if self._payload is None:
            self._payload = self.event.SerializeToString()
        return self._payload

    @property
    def received_at_ns(self) -> int:
        member = getattr(self.event, self.event.WhichOneof("event"))
        return member.received_at.ToNanoseconds()


def stamp(event, now_ns: int) -> None:
    """Set the emit-time clocks. `received_at` is the sim's emit time, which is
    what benchmarks subtract from their ack time to get emit-to-ack latency."""
    member_name = event.WhichOneof("event")
    member = getattr(event, member_name)
    member.received_at.FromNanoseconds(now_ns)
    if member_name == "intent_action":
        member.created_at.FromNanoseconds(now_ns)
    else:
        member.broker_sent_at.FromNanoseconds(now_ns - BROKER_CLOCK_SKEW_NS)
