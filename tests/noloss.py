"""The no-loss invariant, for tests and benchmarks.

For a run: every accepted eventId is, for every partner subscribed at acceptance time,
either delivered (a 2xx seen by that partner's receiver) or in the delivery DLQ; and
nothing is delivered to a partner that was not subscribed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from webhooks.partners.subscriptions import subscription_matches


@dataclass
class Report:
    accepted: int
    expected: int  # (event, partner) pairs owed
    delivered: int  # owed pairs delivered with a 2xx
    dead_lettered: int  # owed pairs in the DLQ (not delivered)
    lost: list[tuple[str, str]]
    unexpected: list[tuple[str, str]]  # delivered to a partner that was not subscribed
    duplicates: int  # extra 2xx deliveries of an already-delivered pair

    @property
    def ok(self) -> bool:
        return not self.lost and not self.unexpected

    def __str__(self) -> str:
        return (
            f"accepted {self.accepted} events, owed {self.expected} deliveries: delivered {self.delivered}, "
            f"dead-lettered {self.dead_lettered}, lost {len(self.lost)}, unexpected {len(self.unexpected)}, "
            f"duplicates {self.duplicates}"
        )


@dataclass
class Ledger:
    subscriptions: dict[str, list[str]]  # partner name -> patterns, as at acceptance time
    accepted: dict[str, str] = field(default_factory=dict)  # eventId -> eventType
    owed: dict[str, frozenset[str]] = field(default_factory=dict)  # eventId -> partner names

    def accept(self, event_id: str, event_type: str) -> None:
        self.accepted[event_id] = event_type
        self.owed[event_id] = frozenset(
            name
            for name, patterns in self.subscriptions.items()
            if any(subscription_matches(p, event_type) for p in patterns)
        )

    def check(self, delivered: dict[str, list[str]], dead: set[tuple[str, str]]) -> Report:
        """``delivered``: partner name -> eventIds answered 2xx; ``dead``: (eventId, partner name) in the DLQ."""
        counts = {name: Counter(ids) for name, ids in delivered.items()}
        lost, unexpected = [], []
        got = dlq = duplicates = 0
        for event_id, partners in self.owed.items():
            for name in partners:
                n = counts.get(name, Counter())[event_id]
                if n:
                    got += 1
                    duplicates += n - 1
                elif (event_id, name) in dead:
                    dlq += 1
                else:
                    lost.append((event_id, name))
        for name, counter in counts.items():
            for event_id in counter:
                if event_id in self.owed and name not in self.owed[event_id]:
                    unexpected.append((event_id, name))
        expected = sum(len(p) for p in self.owed.values())
        return Report(len(self.accepted), expected, got, dlq, lost, unexpected, duplicates)
