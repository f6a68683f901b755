"""The Anthid producer as a ProducerSource: one Connection (thread) per
group of account scopes, at most TRADEBUS_ANTHID_MAX_CONNECTIONS of them;
the main thread keeps the health beat, serves Kafka delivery reports and
watches for a fatal upstream error."""

from __future__ import annotations

import threading
import time
from typing import Callable

from producers.anthid.channel import open_channel
from producers.anthid.connection import Connection
from producers.anthid.convert import KIND_BY_EVENT_TYPE
from producers.anthid.handler import AckObserver, EventHandler
from producers.anthid.settings import AnthidProducerSettings
from producers.common.runner import run_producer
from tradebus.config import CommonSettings
from tradebus.publishing import Publisher

MAIN_LOOP_TICK_S = 0.1


class AnthidProducer:
    name = "anthid"

    def __init__(self, settings: AnthidProducerSettings, *, channel_factory=open_channel,
                 ack_observer: AckObserver | None = None):
        self.settings = settings
        self.data_topics = [KIND_BY_EVENT_TYPE[f"EVENT_TYPE_{k}"].topic for k in settings.event_kinds]
        self.connections: list[Connection] = []
        self._channel_factory = channel_factory
        self._ack_observer = ack_observer
        self._stop: threading.Event | None = None
        self._publisher: Publisher | None = None

    def readiness_checks(self) -> dict[str, Callable[[], bool]]:
        return {"anthid_stream": lambda: bool(self.connections) and all(c.attached for c in self.connections)}

    def connect(self, publisher: Publisher, stop: threading.Event) -> None:
        self._publisher, self._stop = publisher, stop
        for index, accounts in enumerate(self.settings.account_groups()):
            handler = EventHandler(publisher, heartbeat_status_s=self.settings.heartbeat_status_s,
                                   details={"connection": str(index)}, ack_observer=self._ack_observer)
            self.connections.append(Connection(index, self.settings, accounts, handler, stop,
                                               channel_factory=self._channel_factory))
        for connection in self.connections:
            connection.thread.start()

    def run(self, beat: Callable[[], None]) -> None:
        assert self._stop is not None and self._publisher is not None, "connect() first"
        while not self._stop.is_set():
            beat()
            # Serve delivery reports as they come (waits up to the tick, wakes
            # at once on a report): acks, metrics and emit-to-ack timing stay
            # prompt even when the stream is quiet between events.
            self._publisher.producer.poll(MAIN_LOOP_TICK_S)
        for connection in self.connections:
            if connection.fatal is not None:
                raise connection.fatal

    def stop(self) -> None:
        for connection in self.connections:
            connection.stop()

    def cleanup(self, timeout: float = 5.0) -> None:
        # A connection blocked on a full Kafka queue cannot finish its event;
        # it is a daemon thread, and the flush that follows reports the loss.
        deadline = time.monotonic() + timeout
        for connection in self.connections:
            if connection.thread.is_alive():
                connection.thread.join(max(0.0, deadline - time.monotonic()))


def run(settings: AnthidProducerSettings, common: CommonSettings, *, stop: threading.Event | None = None,
        publisher: Publisher | None = None, **producer_options) -> int:
    producer = AnthidProducer(settings, **producer_options)
    details = {"target": settings.target, "connections": str(settings.connection_count),
               "scope": ",".join(settings.accounts) or "org-wide", "event_kinds": ",".join(settings.event_kinds),
               "order_delivery": settings.order_delivery}
    return run_producer(common, producer, stop=stop, publisher=publisher, details=details)
