"""Signed pagination cursors: accepted by every process sharing the session secret (so across
restarts and Lambda containers), refused once the secret is rotated or the cursor is edited."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.conftest import make_settings
from triggers_api.dashboard.tokens import load_secret
from triggers_api.errors import ValidationFailed
from triggers_api.inbox.cursors import MAX_CURSOR_CHARS, CursorCodec

EVENT = "01a236a6-b0a8-71c9-911c-2e4459cbdae1"


def test_a_cursor_round_trips_and_holds_only_its_position() -> None:
    codec = CursorCodec(lambda: b"k" * 48)
    cursor = codec.encode("i", "alice", 1_796_213_223_592_925, EVENT)
    assert codec.decode("i", "alice", cursor) == (1_796_213_223_592_925, EVENT)
    assert len(cursor) <= MAX_CURSOR_CHARS
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert codec.decode("i", "alice", None) is None and codec.decode("i", "alice", "") is None


@pytest.mark.parametrize(
    ("kind", "user"),
    [("e", "alice"), ("a", "alice"), ("i", "bob"), ("i", "alice\x00")],
)
def test_a_cursor_is_refused_by_another_listing_or_user(kind: str, user: str) -> None:
    codec = CursorCodec(lambda: b"k" * 48)
    cursor = codec.encode("i", "alice", 5, EVENT)
    with pytest.raises(ValidationFailed):
        codec.decode(kind, user, cursor)


def test_every_process_of_a_deployment_accepts_the_others_cursors(tmp_path: Path) -> None:
    """The key comes from the session secret: the generated one is kept in the data directory
    (so a restart keeps cursors valid), or TRIGGERS_SESSION_SECRET for many hosts/containers."""
    settings = make_settings(tmp_path)
    issued = CursorCodec(lambda: load_secret(settings)).encode("e", "alice", 7, EVENT)
    restarted = CursorCodec(lambda: load_secret(make_settings(tmp_path)))
    assert restarted.decode("e", "alice", issued) == (7, EVENT)

    configured = make_settings(tmp_path, session_secret="s" * 40)
    container_a = CursorCodec(lambda: load_secret(configured)).encode("e", "alice", 7, EVENT)
    container_b = CursorCodec(
        lambda: load_secret(make_settings(tmp_path / "elsewhere", session_secret="s" * 40))
    )
    assert container_b.decode("e", "alice", container_a) == (7, EVENT)
    rotated = CursorCodec(lambda: b"r" * 48)  # a rotated secret: outstanding cursors start over
    with pytest.raises(ValidationFailed):
        rotated.decode("e", "alice", container_a)


def test_the_key_is_read_once_and_only_when_a_cursor_is_needed() -> None:
    reads: list[int] = []

    def secret() -> bytes:
        reads.append(1)
        return b"k" * 48

    codec = CursorCodec(secret)
    assert reads == []  # a worker-only process never reads (or creates) the secret
    for n in range(3):
        codec.decode("i", "alice", codec.encode("i", "alice", n, EVENT))
    assert reads == [1]


@pytest.mark.parametrize(
    "cursor", ["%00", "A" * 500, "====", base64.urlsafe_b64encode(b"\xff" * 40).decode()]
)
def test_garbage_is_refused(cursor: str) -> None:
    with pytest.raises(ValidationFailed):
        CursorCodec(lambda: b"k" * 48).decode("i", "alice", cursor)
