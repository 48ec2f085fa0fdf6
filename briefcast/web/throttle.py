"""At most one confirmation mail per address per interval, so the public form can't be
used to flood someone's inbox. In memory: per process, forgotten on restart."""

from __future__ import annotations

import threading
import time


class ResendGuard:
    def __init__(self, interval_seconds: float = 300.0, clock=time.monotonic) -> None:
        self.interval = interval_seconds
        self.clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, address: str) -> bool:
        """True, and remember it, when ``address`` may get a mail now."""
        key = address.lower()
        now = self.clock()
        with self._lock:
            if len(self._last) > 10_000:  # drop expired entries now and then
                self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                return False
            self._last[key] = now
            return True
