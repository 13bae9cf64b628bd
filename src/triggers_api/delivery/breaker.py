"""The circuit breaker in front of the workflow engine (architecture document, section 1.5).

After ``threshold`` consecutive failures (transport errors, 5xx, 408, 429) the circuit *opens*:
the worker stops calling the engine for ``cooldown`` seconds, and events wait without spending
their retries. Then it is *half-open*: exactly one probe request goes out; success closes the
circuit, failure opens it for another cooldown. A deliberate refusal of one event (another 4xx)
shows the engine is up and answering, so it counts as a success here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


#: Numeric codes for the ``triggers_circuit_state`` gauge.
STATE_CODES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


class CircuitBreaker:
    def __init__(
        self,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitState], None] | None = None,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self._state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.opened_count = 0
        self._probe_in_flight = False

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self.reopens_in() <= 0:
            self._set(CircuitState.HALF_OPEN)
        return self._state

    def reopens_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self._state is not CircuitState.OPEN or self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown - self._clock())

    def allowance(self) -> int | None:
        """How many new requests may start now: None for no limit, 0 or 1 otherwise."""
        state = self.state
        if state is CircuitState.CLOSED:
            return None
        if state is CircuitState.HALF_OPEN and not self._probe_in_flight:
            return 1
        return 0

    def before_request(self) -> bool:
        """Claim the right to send one request; False when the circuit says wait."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self._probe_in_flight = False
        if self._state is not CircuitState.CLOSED:
            self.opened_at = None
            self._set(CircuitState.CLOSED)

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        probing = self._state is CircuitState.HALF_OPEN or self._probe_in_flight
        self._probe_in_flight = False
        if self._state is CircuitState.OPEN:
            return  # a request that started before the circuit opened: already counted out
        if probing or self.consecutive_failures >= self.threshold:
            self.opened_at = self._clock()
            self.opened_count += 1
            self._set(CircuitState.OPEN)

    def release_probe(self) -> None:
        """The probe's slot was granted but no request went out (shutdown): free it."""
        self._probe_in_flight = False

    def _set(self, state: CircuitState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)

    def snapshot(self) -> dict[str, object]:
        state = self.state
        return {
            "state": state.value,
            "consecutive_failures": self.consecutive_failures,
            "opened_count": self.opened_count,
            "reopens_in_seconds": round(self.reopens_in(), 3) if state is CircuitState.OPEN else None,
        }
