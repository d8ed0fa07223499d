"""How long a ReconnectingClient waits between connection attempts."""
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between connection attempts: ``first`` seconds, times ``factor`` after each
    failure up to ``cap``, each scaled by a random 1 +- ``jitter`` (clients of a restarted
    gateway do not all come back at once). ``attempts``: give up after that many failed
    attempts in a row (None: never); the client then ends its events and raises
    ClientError("closed") for requests."""
    first: float = 0.1
    factor: float = 2.0
    cap: float = 5.0
    jitter: float = 0.2
    attempts: int | None = None

    def delays(self) -> Iterator[float]:
        d = self.first
        while True:
            yield d * random.uniform(1 - self.jitter, 1 + self.jitter)
            d = min(d * self.factor, self.cap)
