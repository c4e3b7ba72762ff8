"""Dispatch's remainders (the (event, endpoint) pairs a fan-out could not send, re-enqueued):
split into envelopes that each fit the events queue's message size, nothing lost or doubled,
and first endpoints' pairs apart, with the pre-endpoints ``partners`` field a rolled-back
dispatcher reads."""

from __future__ import annotations

import time
from collections import Counter

from webhooks.dispatch.fanout import Pair, remainders
from webhooks.endpoints.model import new_endpoint_id
from webhooks.models import Event, EventEnvelope, new_event_id, utc_timestamp


def pending_pairs(events: int, partners: int, endpoints: int) -> list[tuple[Event, Pair]]:
    """Every event owed to each partner's first endpoint and ``endpoints`` others."""
    owed: list[tuple[Event, Pair]] = []
    for n in range(events):
        event = Event(
            eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={"n": n}
        )
        for p in range(partners):
            partner = f"{p:024x}"
            owed.append((event, (partner, None)))
            owed.extend((event, (partner, f"ep_{p:03d}{e:037x}")) for e in range(endpoints))
    return owed


def owed_pairs(bodies: list[str]) -> Counter[tuple[str, str, str | None]]:
    found: Counter[tuple[str, str, str | None]] = Counter()
    for body in bodies:
        envelope = EventEnvelope.model_validate_json(body)
        assert envelope.endpoints is not None
        assert {e.eventId for e in envelope.events} == set(envelope.endpoints)  # no event without pairs
        for event_id, pairs in envelope.endpoints.items():
            found.update((event_id, p, ep) for p, ep in pairs)
    return found


def test_a_remainder_of_many_pairs_is_split_into_envelopes_that_each_fit() -> None:
    pending = pending_pairs(events=3, partners=40, endpoints=49)  # 6,000 pairs: ~450 KB in one
    limit = 64 * 1024
    bodies = remainders("producer", pending, 2, time.time(), limit)
    assert len(bodies) > 1
    assert all(len(body.encode()) <= limit for body in bodies)
    # every pair owed exactly once, nothing else
    assert owed_pairs(bodies) == Counter((e.eventId, p, ep) for e, (p, ep) in pending)
    for body in bodies:
        envelope = EventEnvelope.model_validate_json(body)
        assert (envelope.source, envelope.hops) == ("producer", 2)


def test_first_endpoints_pairs_are_packed_apart_with_the_partners_field_of_before_endpoints() -> None:
    pending = pending_pairs(events=2, partners=3, endpoints=2)
    bodies = remainders(None, pending, 1, time.time(), 262_144)
    firsts, others = (EventEnvelope.model_validate_json(b) for b in bodies)
    assert firsts.endpoints is not None and firsts.partners is not None
    assert all(ep is None for pairs in firsts.endpoints.values() for _, ep in pairs)
    # what a dispatcher from before endpoints reads: the same partners, first endpoints
    assert firsts.partners == {eid: [p for p, _ in pairs] for eid, pairs in firsts.endpoints.items()}
    assert others.partners is None  # it would mean first endpoints: never written for others
    assert others.endpoints is not None
    assert all(ep is not None for pairs in others.endpoints.values() for _, ep in pairs)


def test_one_event_owed_to_one_endpoint_is_still_sent_when_larger_than_the_limit() -> None:
    # ingest's reserve keeps this from happening; if it did, SQS's refusal retries the record
    event = pending_pairs(1, 1, 0)[0][0]
    [body] = remainders(None, [(event, ("a" * 24, new_endpoint_id()))], 1, time.time(), 100)
    assert len(body) > 100 and EventEnvelope.model_validate_json(body).events == [event]
