"""`tradebus produce hti|anthid`."""

from __future__ import annotations

from tradebus.cli import register_group

GROUP = {
    "hti": ("producers.hti.cli", "HTI trade ideas (REST + SSE) -> hti.ideas.v1"),
    "anthid": ("producers.anthid.cli", "Anthid gRPC events -> anthid.* topics"),
}


def register(parser) -> None:
    register_group(parser, GROUP, dest="producer", metavar="SOURCE")
