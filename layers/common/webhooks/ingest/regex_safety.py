"""Refusing regular expressions that backtrack catastrophically, before they are stored.

A JSON Schema ``pattern`` runs against untrusted strings on every ingest request, on a
backtracking engine. The shapes that make it exponential are refused when the schema is
registered, by a conservative static check of the parsed pattern:
- a repeated group holding another variable repeat, as in ``(a+)+``, ``(a*)*`` or
  ``(\\w+\\s?)+``, unless each round must consume a character the inner repeats cannot
  match (``([a-z]+\\.)+`` is linear: every round ends at its own ``.``);
- a repeated alternation whose alternatives can start alike, or whose empty alternative
  lets another start like what follows, as in ``(a|a)*``, ``(a|aa)+`` or
  ``(x|x\\d)+`` (conservative: ``(ab|ac|b)+`` is refused too, though linear).
Possessive and atomic groups never backtrack into themselves and are accepted. What the
check lets through that is still slow (polynomial shapes, or syntax it cannot model) is
bounded at ingest by the per-match and per-request time limits (see catalog.py).

The pattern is parsed with Python's own ``re`` parser; a pattern only the ``regex``
engine understands (``\\p{L}``, ...) cannot be checked and is refused with that reason.
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse
from functools import cache
from typing import Any

# the characters a set is compared over: ASCII and Latin (where patterns' separators live);
# literals outside it are kept as themselves
UNIVERSE = range(0x250)
REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT}  # POSSESSIVE_REPEAT does not backtrack
CATEGORY_PATTERNS = {
    sre.CATEGORY_DIGIT: r"\d",
    sre.CATEGORY_NOT_DIGIT: r"\D",
    sre.CATEGORY_SPACE: r"\s",
    sre.CATEGORY_NOT_SPACE: r"\S",
    sre.CATEGORY_WORD: r"\w",
    sre.CATEGORY_NOT_WORD: r"\W",
}
Chars = frozenset[int]


@cache
def _category(category: Any) -> Chars:
    pattern = CATEGORY_PATTERNS.get(category)
    if pattern is None:
        return frozenset(UNIVERSE)
    matcher = re.compile(pattern)
    return frozenset(c for c in UNIVERSE if matcher.fullmatch(chr(c)))


def _chars(op: Any, av: Any) -> Chars | None:
    """The characters one single-character item matches (None: not such an item)."""
    if op is sre.LITERAL:
        return frozenset({av})
    if op is sre.NOT_LITERAL:
        return frozenset(c for c in UNIVERSE if c != av)
    if op is sre.ANY:
        return frozenset(UNIVERSE)
    if op is sre.IN:
        negate, found = False, set()
        for item, value in av:
            if item is sre.NEGATE:
                negate = True
            elif item is sre.LITERAL:
                found.add(value)
            elif item in (sre.RANGE, sre.RANGE_UNI_IGNORE):
                low, high = value
                found.update(range(low, min(high, UNIVERSE[-1]) + 1), (low, high))
            elif item is sre.CATEGORY:
                found.update(_category(value))
            else:
                found.update(UNIVERSE)
        return frozenset(UNIVERSE) - found if negate else frozenset(found)
    return None


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-sequences of one item (a group's body, a repeat's, each alternative)."""
    if op in REPEATS or op is sre.POSSESSIVE_REPEAT:
        return [av[2]]
    if op is sre.SUBPATTERN:
        return [av[3]]
    if op is sre.BRANCH:
        return list(av[1])
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [av[1]]
    if op is sre.ATOMIC_GROUP:
        return [av]
    if op is sre.GROUPREF_EXISTS:
        return [part for part in av[1:] if part is not None]
    return []


def _consumed(seq: Any) -> Chars:
    """Every character some item of ``seq`` (at any depth) can match."""
    found: set[int] = set()
    for op, av in seq:
        chars = _chars(op, av)
        if chars is not None:
            found |= chars
        elif op is sre.GROUPREF:
            found.update(UNIVERSE)
        for child in _children(op, av):
            found |= _consumed(child)
    return frozenset(found)


def _first(seq: Any) -> tuple[Chars, bool]:
    """The characters ``seq`` can start with, and whether it can match nothing."""
    first: set[int] = set()
    for op, av in seq:
        chars = _chars(op, av)
        if chars is not None:
            return frozenset(first | chars), False
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            continue
        if op is sre.BRANCH:
            parts = [_first(alt) for alt in av[1]]
            first.update(*(p[0] for p in parts))
            if not any(p[1] for p in parts):
                return frozenset(first), False
            continue
        children = _children(op, av)
        if not children:  # a backreference or an unknown item: anything
            return frozenset(UNIVERSE), True
        chars, empty = _first(children[0])
        first |= chars
        if op in REPEATS or op is sre.POSSESSIVE_REPEAT:
            empty = empty or av[0] == 0
        if not empty:
            return frozenset(first), False
    return frozenset(first), True


def _variable_repeats(seq: Any) -> list[Any]:
    """The backtracking repeats inside ``seq`` whose count can vary (``+``, ``*``, ``{1,3}``)."""
    found = []
    for op, av in seq:
        if op in REPEATS and av[0] != av[1]:
            found.append(av[2])
        if op not in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP):
            for child in _children(op, av):
                found += _variable_repeats(child)
    return found


def _mandatory_chars(seq: Any) -> list[Chars]:
    """Single characters every match of ``seq`` consumes (its top level, through groups)."""
    found = []
    for op, av in seq:
        chars = _chars(op, av)
        if chars is not None:
            found.append(chars)
        elif op is sre.SUBPATTERN:
            found += _mandatory_chars(av[3])
        elif op in REPEATS and av[0] >= 1 and av[0] == av[1]:
            found += _mandatory_chars(av[2])
    return found


def _ambiguous_branch(seq: Any) -> bool:
    """An alternation (at any depth, outside atomic groups) two of whose branches can start
    alike or both match nothing: each round of a repeat around it can split two ways."""
    for op, av in seq:
        if op is sre.BRANCH:
            seen: set[int] = set()
            empties = 0
            for alt in av[1]:
                chars, empty = _first(alt)
                empties += empty
                if chars & seen or empties > 1:
                    return True
                seen |= chars
        if op not in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP) and any(
            _ambiguous_branch(child) for child in _children(op, av)
        ):
            return True
    return False


def _flat(seq: Any) -> list[Any]:
    """``seq``'s items with plain groups opened: ``a(b|c)d`` as a, BRANCH, d."""
    items: list[Any] = []
    for op, av in seq:
        items += _flat(av[3]) if op is sre.SUBPATTERN else [(op, av)]
    return items


def _optional_branch_overlaps(body: Any) -> bool:
    """A branch one of whose alternatives is empty, in a repeated body, where another
    alternative can start like what follows it: ``(a|aa)+`` (parsed as ``(a(|a))+``) can
    take "aa" as one round or two."""
    items = _flat(body)
    body_first = _first(body)[0]
    for index, (op, av) in enumerate(items):
        if op is not sre.BRANCH:
            continue
        parts = [_first(alt) for alt in av[1]]
        if not any(empty for _, empty in parts):
            continue
        follow, rest_empty = _first(items[index + 1 :])
        if rest_empty:
            follow = follow | body_first  # the next round
        if any(chars & follow for chars, empty in parts if not empty):
            return True
    return False


def _problem(seq: Any) -> str | None:
    for op, av in seq:
        if op in REPEATS and (av[1] == sre.MAXREPEAT or av[1] > 1):
            body = av[2]
            inner = _variable_repeats(body)
            if inner:
                varying = frozenset().union(*(_consumed(r) for r in inner))
                if not any(chars.isdisjoint(varying) for chars in _mandatory_chars(body)):
                    return "a repeated group holds another repeat (as in (a+)+)"
            if _ambiguous_branch(body) or _optional_branch_overlaps(body):
                return "a repeated alternation has branches that can match alike (as in (a|a)*)"
        if op not in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP):
            for child in _children(op, av):
                found = _problem(child)
                if found:
                    return found
    return None


def backtracking_problem(pattern: str) -> str | None:
    """Why ``pattern`` may backtrack catastrophically (None: it passes the check)."""
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"it cannot be checked for catastrophic backtracking ({exc})"
    return _problem(parsed.data)
