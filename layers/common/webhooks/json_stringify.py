"""JSON text as the Node service's ``JSON.stringify`` wrote a producer's data: its numbers
and its key order.

Numbers. A producer's ``{"total": 100.0}`` reached partners of the Node service as
``{"total":100}`` (JavaScript has one number type and prints it shortest: ECMAScript's
Number::toString). Python's ``json`` writes a float as its ``repr``: ``100.0``, ``1e-05``,
``-0.0``, which a strict decoder on the partner's side (Go into an int64, say) may refuse,
and which differs from what the Node service signed. The digits are the same in both (each
is the shortest that reads back to the same double); only where the point and the exponent
go differs. A float JavaScript prints as an integer becomes an ``int`` of exactly those
digits (``1.2345678901234568e+20`` prints as ``123456789012345680000``); the few it prints
otherwise than Python, below 1e-4 (``0.00001``, ``1e-7``), are written through placeholders
replaced in one pass over the text.

Key order. ``JSON.parse`` puts an object's array-index keys (``"0"``, ``"10"``: canonical
integers below 2^32 - 1) first, in ascending order, then the others as they came;
``JSON.stringify`` writes them so. Data without such keys keeps its order.

Data with neither (no float, no index key) is not copied.
"""

from __future__ import annotations

import json
import re
import secrets
from decimal import Decimal
from typing import Any

MAX_EXACT = 2.0**53  # below it an integral double is exactly int(value), as JavaScript prints it
PLAIN_FROM = 1e-4  # from here up to 1e16 Python's repr is positional, as JavaScript's is
MAX_ARRAY_INDEX = 2**32 - 2


def js_number_text(value: float) -> str:
    """``String(value)`` in JavaScript, for a finite double (ECMAScript Number::toString)."""
    if value == 0:
        return "0"  # -0 too: JSON.stringify(-0) is "0"
    sign = "-" if value < 0 else ""
    # repr is the shortest decimal that reads back to the same double, as JavaScript's is
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)  # finite
    all_digits = "".join(map(str, digit_tuple))
    digits = all_digits.rstrip("0")
    point = len(all_digits) + exponent  # value = 0.<digits> x 10^point
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


def is_array_index(key: str) -> bool:
    """Whether JavaScript orders ``key`` as an array index: a canonical integer < 2^32 - 1."""
    return (
        key.isascii()
        and key.isdigit()
        and (key == "0" or key[0] != "0")
        and len(key) <= 10
        and int(key) <= MAX_ARRAY_INDEX
    )


def stringify(value: Any, ensure_ascii: bool = False) -> str:
    """Compact JSON text of ``value`` with its numbers and key order as ``JSON.stringify``
    wrote them (``ensure_ascii``: ``\\u`` escapes for what is not ASCII, as json.dumps)."""
    literals: list[str] = []
    nonce: list[str] = []  # made once needed: a producer's string can never be a placeholder

    def placeholder(literal: str) -> str:
        nonce[:] = nonce or [secrets.token_hex(8)]
        literals.append(literal)
        return f"js-number:{nonce[0]}:{len(literals) - 1}"

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
            return item if text == repr(item) else placeholder(text)
        if isinstance(item, dict):
            converted = {key: convert(inner) for key, inner in item.items()}
            indices = [key for key in converted if is_array_index(key)]
            if indices:
                ordered = sorted(indices, key=int)
                if list(converted)[: len(ordered)] != ordered:
                    first = {key: converted[key] for key in ordered}
                    return first | {k: v for k, v in converted.items() if k not in first}
            changed = any(converted[key] is not inner for key, inner in item.items())
            return converted if changed else item
        if isinstance(item, list):
            items = [convert(inner) for inner in item]
            return items if any(a is not b for a, b in zip(items, item, strict=True)) else item
        return item

    text = json.dumps(convert(value), separators=(",", ":"), ensure_ascii=ensure_ascii)
    if literals:
        text = re.sub(f'"js-number:{nonce[0]}:([0-9]+)"', lambda m: literals[int(m.group(1))], text)
    return text
