"""A producer under test on a thread of the test process, and the body of the
``start_producer`` fixture both producers' integration tests use."""

from __future__ import annotations

import threading
from typing import Callable, Iterator


class ProducerThread:
    """Subclass and implement ``run()``; ``stop()`` returns what it returned
    or the exception it raised."""

    stop_timeout_s = 30.0

    def __init__(self, name: str):
        self.stop_event = threading.Event()
        self.outcome: object = None
        self.thread = threading.Thread(target=self._guarded, name=name, daemon=True)

    def run(self) -> object:
        raise NotImplementedError

    def _guarded(self) -> None:
        try:
            self.outcome = self.run()
        except BaseException as exc:  # reported by stop()
            self.outcome = exc

    def stop(self, timeout: float | None = None) -> object:
        self.stop_event.set()
        self.thread.join(self.stop_timeout_s if timeout is None else timeout)
        assert not self.thread.is_alive(), "producer did not stop"
        return self.outcome


def producer_starter(make: Callable[..., ProducerThread]) -> Iterator[Callable[..., ProducerThread]]:
    """``yield from`` this in a fixture: start(settings, common) builds a
    producer with ``make`` and starts it; leftovers are stopped at teardown."""
    running: list[ProducerThread] = []

    def start(settings, common) -> ProducerThread:
        producer = make(settings, common)
        producer.thread.start()
        running.append(producer)
        return producer

    yield start
    for producer in running:
        if producer.thread.is_alive():
            producer.stop()
