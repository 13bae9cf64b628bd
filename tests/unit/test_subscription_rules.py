"""The pure rules of subscriptions: the filter language's matching, type patterns, the SSRF
guard's address classes, the rotation signer and the bounded metric labels."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest
from standardwebhooks import Webhook

from triggers_api.delivery.destinations import MetricLabels, RotatingSigner
from triggers_api.storage.base import now_us
from triggers_api.storage.fanout import derive_status
from triggers_api.subscriptions.filters import FilterError, matches, type_matches, validate
from triggers_api.subscriptions.guard import DestinationGuard

EVENT: dict[str, Any] = {
    "event_id": "e1",
    "event_type": "order.paid",
    "payload": {
        "amount": 150,
        "currency": "EUR",
        "tags": ["vip", "eu"],
        "customer": {"vip": True},
        "note": None,
    },
    "metadata": {"source_ip": "10.1.2.3"},
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"event_type": "order.paid"}, True),
        ({"payload.amount": 150}, True),
        ({"payload.amount": {"$gte": 100, "$lt": 200}}, True),
        ({"payload.amount": {"$gt": 150}}, False),
        ({"payload.amount": {"$gt": "100"}}, False),  # no order between a number and a string
        ({"payload.currency": {"$in": ["EUR", "USD"]}}, True),
        ({"payload.currency": {"$nin": ["EUR"]}}, False),
        ({"payload.currency": {"$ne": "USD"}}, True),
        ({"payload.missing": {"$ne": 1}}, True),
        ({"payload.missing": {"$exists": False}}, True),
        ({"payload.note": {"$exists": True}}, True),  # present, even if null
        ({"payload.missing": 1}, False),
        ({"payload.tags.0": "vip"}, True),
        ({"payload.customer.vip": True}, True),
        ({"payload.customer.vip": 1}, False),  # true is not 1
        ({"metadata.source_ip": {"$prefix": "10."}}, True),
        ({"$or": [{"event_type": "x"}, {"payload.amount": {"$lt": 200}}]}, True),
        ({"$and": [{"event_type": "order.paid"}, {"payload.amount": {"$lt": 100}}]}, False),
        ({"$not": {"payload.currency": "EUR"}}, False),
        ({"event_type": {"$prefix": "order."}, "payload.currency": "USD"}, False),  # implicit and
    ],
)
def test_filters_match_the_event_json(spec: dict[str, Any], expected: bool) -> None:
    validate(spec)
    assert matches(spec, EVENT) is expected


def test_validation_names_every_problem() -> None:
    with pytest.raises(FilterError) as caught:
        validate({"payload.x": {"$gt": [1]}, "nope": 1, "$or": [{}, 3]})
    locations = {p["loc"] for p in caught.value.problems}
    assert locations == {"filter.payload.x.$gt", "filter.nope", "filter.$or[1]"}
    with pytest.raises(FilterError):
        validate({"payload.a": {"$and": [1]}})  # $and is not a comparison


def test_type_patterns() -> None:
    assert type_matches((), "anything")
    assert type_matches(("order.*",), "order.paid")
    assert not type_matches(("order.*",), "orders.paid")
    assert type_matches(("*",), "x")
    assert type_matches(("user.created",), "user.created")
    assert not type_matches(("user.created",), "user.created.v2")


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # shared address space
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("ff02::1", False),
    ],
)
def test_the_guard_refuses_what_is_not_public(address: str, allowed: bool) -> None:
    assert DestinationGuard().address_allowed(ipaddress.ip_address(address)) is allowed


def test_allow_private_and_the_allowlist() -> None:
    private = DestinationGuard(allow_private=True)
    assert private.address_allowed(ipaddress.ip_address("10.0.0.1"))
    assert not private.address_allowed(ipaddress.ip_address("169.254.169.254"))  # metadata: never
    assert not private.address_allowed(ipaddress.ip_address("224.0.0.1"))
    listed = DestinationGuard(allowlist="10.20.0.0/16, n8n.internal")
    assert listed.address_allowed(ipaddress.ip_address("10.20.3.4"))
    assert not listed.address_allowed(ipaddress.ip_address("10.21.3.4"))
    assert listed.hosts == {"n8n.internal"}


def test_during_a_rotation_both_secrets_sign() -> None:
    old, new = "whsec_" + "A" * 32, "whsec_" + "B" * 32
    body = b'{"event_id":"e1"}'
    now = int(time.time())
    signature = RotatingSigner(new, old, now_us() + 60_000_000).signature("e1", now, body)
    assert signature.count("v1,") == 2
    headers = {"webhook-id": "e1", "webhook-timestamp": str(now), "webhook-signature": signature}
    for secret in (old, new):
        Webhook(secret).verify(body, headers)  # receivers on either secret accept it
    expired = RotatingSigner(new, old, now_us() - 1).signature("e1", now, body)
    assert expired.count("v1,") == 1 and signature.startswith(expired)


def test_metric_labels_are_bounded() -> None:
    labels = MetricLabels(2)
    assert [labels.of(x) for x in ("workflow", "a", "b", "c", "a")] == ["workflow", "a", "b", "other", "a"]


def test_the_event_status_follows_its_deliveries() -> None:
    assert derive_status("received", False, [("pending", 0, False)]) == "received"
    assert derive_status("received", False, [("pending", 0, True)]) == "queued"
    assert derive_status("queued", False, [("pending", 0, False), ("delivered", 1, False)]) == "queued"
    assert derive_status("queued", False, [("failed", 3, False), ("delivered", 1, False)]) == "failed"
    assert derive_status("queued", False, [("delivered", 1, False), ("cancelled", 0, False)]) == "delivered"
    assert derive_status("queued", False, [("cancelled", 0, False)]) == "received"
    assert derive_status("queued", True, [("pending", 1, True)]) == "delivered"
