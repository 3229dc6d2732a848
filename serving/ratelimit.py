"""Per-user sliding-window rate limit, in memory.

With several webhook instances behind a load balancer each instance counts on its own,
so a user may get up to ``limit`` × instances a minute in the worst case; that is fine for
its purpose (keeping one person from starving everyone else of CPU).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._events: dict[Hashable, deque[float]] = {}

    def hit(self, key: Hashable) -> float:
        """Count one event; 0.0 if allowed, else the seconds until one would be.

        Refused events are not counted, so a user who keeps trying is let in as soon
        as the window has room again. A limit of 0 or less disables limiting.
        """
        if self.limit <= 0:
            return 0.0
        now = self._clock()
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self._max_keys:
                self._prune(now)
            events = self._events[key] = deque()
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return max(0.0, events[0] + self.window - now)
        events.append(now)
        return 0.0

    def _prune(self, now: float) -> None:
        stale = [k for k, ev in self._events.items() if not ev or ev[-1] <= now - self.window]
        for key in stale:
            del self._events[key]
