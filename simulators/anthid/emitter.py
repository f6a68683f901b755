"""Paces one organization's generator at `rate` events per second."""

from __future__ import annotations

import threading
import time

MAX_BURST = 1000  # after a long hiccup, do not try to catch up more than this


class Emitter(threading.Thread):
    def __init__(self, channel, generator, rate: float, faults, stop: threading.Event,
                 generate_when_idle: bool = False):
        super().__init__(name=f"anthid-sim-emitter-{channel.org.name}", daemon=True)
        self.channel = channel
        self.generator = generator
        self.rate = rate
        self.faults = faults
        self.stop_event = stop
        self.generate_when_idle = generate_when_idle

    def _paused(self) -> bool:
        # Stalled: nothing is sent, so nothing is generated either (no silent loss).
        # Idle (default): no stream listens, so events would only be lost.
        if self.faults.stalled():
            return True
        return not self.generate_when_idle and not self.channel.has_listeners()

    def run(self) -> None:
        if self.rate <= 0:
            return
        base, emitted = time.monotonic(), 0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if self._paused():
                base, emitted = now, 0
                self.stop_event.wait(0.02)
                continue
            due = int((now - base) * self.rate) - emitted
            if due <= 0:
                wait = (emitted + 1) / self.rate - (now - base)
                self.stop_event.wait(min(max(wait, 0.0005), 0.05))
                continue
            for _ in range(min(due, MAX_BURST)):
                self.channel.publish(self.generator.next_event())
            emitted += min(due, MAX_BURST)
            if due > MAX_BURST:
                base, emitted = time.monotonic(), 0
