"""The checker itself must catch what it is for."""

from noloss import Ledger


def ledger() -> Ledger:
    led = Ledger({"a": ["order.*"], "b": ["order.created"], "c": ["customer.created"]})
    led.accept("e1", "order.created")  # owed to a, b
    led.accept("e2", "order.updated")  # owed to a
    return led


def test_all_delivered_or_dead_lettered_is_ok() -> None:
    report = ledger().check({"a": ["e1", "e2"], "b": []}, {("e1", "b")})
    assert report.ok and (report.expected, report.delivered, report.dead_lettered) == (3, 2, 1)


def test_a_missing_delivery_is_lost() -> None:
    report = ledger().check({"a": ["e1"], "b": ["e1"]}, set())
    assert not report.ok and report.lost == [("e2", "a")]


def test_delivery_to_an_unsubscribed_partner_is_flagged() -> None:
    report = ledger().check({"a": ["e1", "e2"], "b": ["e1"], "c": ["e1"]}, set())
    assert not report.ok and report.unexpected == [("e1", "c")]


def test_duplicates_are_counted() -> None:
    report = ledger().check({"a": ["e1", "e2", "e2"], "b": ["e1"]}, set())
    assert report.ok and report.duplicates == 1
