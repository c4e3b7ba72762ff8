"""Numbers in a webhook body as the Node service's ``JSON.stringify`` wrote them.

A producer's ``{"total": 100.0}`` reached partners of the Node service as ``{"total":100}``
(JavaScript has one number type and prints it shortest: ECMAScript's Number::toString).
Python's ``json`` writes a float as its ``repr``: ``100.0``, ``1e-05``, ``-0.0``, which a
strict decoder on the partner's side (Go into an int64, say) may refuse, and which differs
from what the Node service signed. The digits are the same in both (each is the shortest
that reads back to the same double); only where the decimal point and exponent go differs.

:func:`stringify_numbers` returns the value with every float that JavaScript prints as an
integer made an ``int`` of exactly those digits (``1.2345678901234568e+20`` prints as
``123456789012345680000``), and, for the few it prints otherwise than Python (below 1e-4:
``0.00001``, ``1e-7``), a placeholder string with the literal to put in its place in the
encoded text. Values without floats come back as they are (not copied).
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

MAX_EXACT = 2.0**53  # below it an integral double is exactly int(value), as JavaScript prints it
PLAIN_FROM = 1e-4  # from here up to 1e16 Python's repr is positional, as JavaScript's is


def js_number_text(value: float) -> str:
    """``String(value)`` in JavaScript, for a finite double (ECMAScript Number::toString)."""
    if value == 0:
        return "0"  # -0 too: JSON.stringify(-0) is "0"
    sign = "-" if value < 0 else ""
    # repr is the shortest decimal that reads back to the same double, as JavaScript's is
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)  # finite
    # value = 0.<digits> x 10^point
    point = len("".join(map(str, digit_tuple))) + exponent
    k = len(digits)
    if k <= point <= 21:
        text = digits + "0" * (point - k)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        e = point - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def stringify_numbers(value: Any) -> tuple[Any, dict[str, str]]:
    """``value`` with its floats as ``JSON.stringify`` writes them, and the placeholders to
    replace (each a JSON string as ``json.dumps`` writes it -> the number's literal)."""
    literals: dict[str, str] = {}
    nonce: list[str] = []  # made once needed: a producer's string can never be a placeholder

    def convert(item: Any) -> Any:
        if isinstance(item, float):
            magnitude = abs(item)
            if item.is_integer() and magnitude < MAX_EXACT:
                return int(item)  # the common case (100.0), exact below 2^53
            if PLAIN_FROM <= magnitude < MAX_EXACT:
                return item  # both print these digits the same way (123.456)
            text = js_number_text(item)
            if "." not in text and "e" not in text:
                return int(text)
            if text == repr(item):
                return item
            nonce[:] = nonce or [secrets.token_hex(8)]
            placeholder = f"js-number:{nonce[0]}:{len(literals)}"
            literals[f'"{placeholder}"'] = text
            return placeholder
        if isinstance(item, dict):
            converted = {key: convert(inner) for key, inner in item.items()}
            changed = any(converted[key] is not inner for key, inner in item.items())
            return converted if changed else item
        if isinstance(item, list):
            items = [convert(inner) for inner in item]
            return items if any(a is not b for a, b in zip(items, item, strict=True)) else item
        return item

    return convert(value), literals
