"""When to try again: the configured retry schedule, jitter, and the engine's ``Retry-After``.

The schedule is a plain list of delays (Svix-style): the first attempt is immediate, then one
retry after each delay. Jitter spreads retries of events that failed together (an engine outage)
so they do not come back as one thundering herd. A ``Retry-After`` larger than the jittered delay
wins, because the engine knows best when it can take traffic again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: A ``Retry-After`` is honoured up to this many seconds; beyond it the engine is misconfigured.
MAX_RETRY_AFTER = 86_400.0


@dataclass(frozen=True)
class RetrySchedule:
    delays: tuple[float, ...]
    jitter: float = 0.1
    rng: random.Random = field(default_factory=random.Random, compare=False)

    @property
    def retries(self) -> int:
        return len(self.delays)

    def next_delay(self, attempts_in_round: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after the ``attempts_in_round``-th attempt of this round failed, or None
        when the schedule is exhausted (the event is then dead-lettered)."""
        if attempts_in_round < 1 or attempts_in_round > len(self.delays):
            return None
        delay = self.delays[attempts_in_round - 1]
        if self.jitter:
            delay *= 1 + self.rng.uniform(-self.jitter, self.jitter)
        if retry_after is not None and retry_after > delay:
            delay = min(retry_after, MAX_RETRY_AFTER)
        return max(0.0, delay)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent/invalid."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
