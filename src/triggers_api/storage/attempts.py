"""What a batch of delivery attempts does to its events: the rules of ``Storage.record_attempt``
(see its docstring) applied in Python to the events' delivery state, so each backend reads the
state once, then writes the outcome of a whole batch in a few statements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from triggers_api.storage.base import AttemptOutcome, AttemptRecord, AuditRecord, DeliveryAttempt, EventStatus

#: The delivery state of an event, in this order (a mutable list per event).
STATE_COLUMNS = (
    "event_id, user_id, status, acknowledged_us, lease_token, lease_until_us, attempts, "
    "last_retry_us, delivered_us, next_attempt_us, round_attempts"
)
ID, USER, STATUS, ACKED, TOKEN, LEASE_UNTIL, ATTEMPTS, LAST_RETRY, DELIVERED, NEXT, ROUND = range(11)


def apply_attempts(
    state: dict[str, list[Any]], records: Sequence[AttemptRecord]
) -> tuple[list[bool], list[DeliveryAttempt], list[AuditRecord], list[list[Any]]]:
    """Apply ``records`` in order to ``state`` (event id -> state row, changed in place).

    Returns whether each record was applied, the attempts to store (those of existing events),
    the audit records to store (those of applied records), and the changed state rows.
    """
    results: list[bool] = []
    attempts: list[DeliveryAttempt] = []
    audits: list[AuditRecord] = []
    touched: dict[str, list[Any]] = {}
    for r in records:
        a = r.attempt
        st = state.get(a.event_id)
        if st is None or st[USER] != a.user_id:
            results.append(False)
            continue
        attempts.append(a)
        st[ATTEMPTS] += 1
        if st[ATTEMPTS] > 1:
            st[LAST_RETRY] = a.started_us
        ended_us = a.started_us + a.duration_us
        applied = False
        if st[ACKED] is None:
            if a.outcome == AttemptOutcome.DELIVERED and st[STATUS] != EventStatus.DELIVERED:
                st[STATUS] = EventStatus.DELIVERED.value
                if st[DELIVERED] is None:
                    st[DELIVERED] = ended_us
                st[NEXT] = None
                applied = True
            elif st[STATUS] == EventStatus.QUEUED and st[TOKEN] == r.lease_token:
                if a.outcome == AttemptOutcome.RETRY:
                    st[NEXT] = r.next_attempt_us if r.next_attempt_us is not None else ended_us
                    applied = True
                elif a.outcome == AttemptOutcome.FAILED:
                    st[STATUS] = EventStatus.FAILED.value
                    st[NEXT] = None
                    applied = True
            if applied:
                st[TOKEN] = st[LEASE_UNTIL] = None
                st[ROUND] += 1
        touched[a.event_id] = st
        results.append(applied)
        if applied and r.audit is not None:
            audits.append(r.audit)
    return results, attempts, audits, list(touched.values())
