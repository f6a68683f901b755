"""Fan-out of idea versions to connected streams, and the history store."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import OrderedDict
from queue import SimpleQueue

from simulators.hti.ideas import IdeaVersion
from simulators.hti.profiles import Profile

HISTORY_ORDERS = ("last_update", "creation_time")


class Subscription:
    """The versions one stream still has to send; ``None`` only wakes it."""

    def __init__(self, profile: Profile, subscription_id: int):
        self.profile = profile
        self.id = subscription_id
        self.queue: SimpleQueue[IdeaVersion | None] = SimpleQueue()


class IdeaHub:
    def __init__(self, history_size: int = 500):
        self.history_size = history_size
        self._lock = threading.Lock()
        self._latest: OrderedDict[str, IdeaVersion] = OrderedDict()  # idea_id -> latest version, oldest first
        self._subscriptions: dict[int, Subscription] = {}
        self._ids = itertools.count(1)

    def publish(self, version: IdeaVersion) -> None:
        """Callers serialise publish() so every stream sees versions in generation order."""
        with self._lock:
            self._latest[version.idea_id] = version
            self._latest.move_to_end(version.idea_id)
            while len(self._latest) > self.history_size:
                self._latest.popitem(last=False)
            subscriptions = list(self._subscriptions.values())
        for subscription in subscriptions:
            if subscription.profile.matches(version.idea):
                subscription.queue.put(version)

    def subscribe(self, profile: Profile) -> Subscription:
        subscription = Subscription(profile, next(self._ids))
        with self._lock:
            self._subscriptions[subscription.id] = subscription
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.pop(subscription.id, None)

    def history(self, profile: Profile, limit: int, order: str = "last_update") -> list[dict]:
        """Latest version of the most recent matching ideas, newest first."""
        with self._lock:
            versions = list(self._latest.values())
        if order == "creation_time":
            key = lambda v: (v.creation_epoch, v.version)  # noqa: E731
        else:
            key = lambda v: (v.last_update_epoch, v.version)  # noqa: E731
        matching = (v for v in versions if profile.matches(v.idea))
        return [v.idea for v in heapq.nlargest(limit, matching, key=key)]
