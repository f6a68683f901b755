"""Delivery off the consume loop's critical path.

Each blocking sink (webhook, email) has a small thread pool of its own, so a
slow or dead email server never delays webhooks and neither delays
consumption; the log sink runs inline (it is a write to stdout). When every
sink of an alert has reported (delivered, or failed after its bounded
retries), the alert is handed back to the consume loop, which writes it to
tradebus.alerts.v1 with the delivery statuses and only then lets its source
offset be committed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from consumers.alerts.sinks import Delivery, Sink


@dataclass
class Job:
    record: dict  # the Alert record, deliveries filled in when done
    sinks: tuple[str, ...]
    origin: tuple[str, int, int] | None  # (topic, partition, offset) of the record that fired it; None: the timer
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    remaining: int = 0
    submitted: float = field(default_factory=time.monotonic)

    def finished_record(self) -> dict:
        return {**self.record, "deliveries": [self.deliveries[name].as_record() for name in self.sinks]}


class Dispatcher:
    def __init__(self, sinks: dict[str, Sink]):
        self.sinks = sinks
        self._pools = {
            name: ThreadPoolExecutor(max_workers=sink.threads, thread_name_prefix=f"alerts-sink-{name}")
            for name, sink in sinks.items() if sink.blocking
        }
        self._cond = threading.Condition()
        self._done: deque[Job] = deque()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Jobs submitted and not yet taken back by completed()."""
        with self._cond:
            return self._in_flight

    def submit(self, job: Job) -> None:
        job.remaining = len(job.sinks)
        with self._cond:
            self._in_flight += 1
        for name in job.sinks:
            sink = self.sinks[name]
            if sink.blocking:
                self._pools[name].submit(self._deliver, job, name)
            else:
                self._deliver(job, name)

    def _deliver(self, job: Job, name: str) -> None:
        delivery = self.sinks[name].deliver(job.record)  # never raises
        with self._cond:
            job.deliveries[name] = delivery
            job.remaining -= 1
            if job.remaining == 0:
                self._done.append(job)
                self._cond.notify_all()

    def completed(self) -> list[Job]:
        with self._cond:
            jobs = list(self._done)
            self._done.clear()
            self._in_flight -= len(jobs)
            return jobs

    def wait(self, timeout: float) -> bool:
        """Until a job completes or timeout; True when one is waiting."""
        with self._cond:
            if not self._done:
                self._cond.wait(timeout)
            return bool(self._done)

    def close(self, wait: bool = True) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=wait, cancel_futures=not wait)
        for sink in self.sinks.values():
            sink.close()
