"""Hostile versions of valid source events, for the fuzz tests and ``bench/hostile_sources.py``.

Take a valid event (an X envelope, a Jetstream event, a replay line, a Redis
events-stream entry) and break it the ways a public stream can:

* replace any field, at any depth (or the whole event), by a value of another
  type: null, a number, a huge number, a boolean, a string, a huge string, a
  lone surrogate, a list, a deeply nested object (:data:`OTHER_VALUES`);
* delete a field, add an unknown one, give an enumerated field an unknown
  value (``kind: "sync"``: each source names its own, ``unknown_kinds``);
* break the encoding of the serialised event: truncate it, insert bytes that
  are not UTF-8, a lone surrogate, a NUL, a byte-order mark.

The same operations run under hypothesis (:func:`mutated`, :func:`encoded`:
``data.draw`` chooses, so failures shrink) and from a seeded
:class:`random.Random` for the benchmark (:class:`RandomChooser`).

The oracles say what a parser may answer: :func:`check_parsed` accepts a post
whose fields have the right types, that lies in a window and can be analysed,
or a rejection with a known code (never ``internal``, a bug caught) that the
store can hold.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st

from flows.analysis.posts import PostAnalyzer
from flows.model import (
    EARLIEST_POST_TIME,
    LATEST_POST_TIME,
    MAX_REJECTED_RAW,
    Post,
    RejectCode,
    Rejected,
)
from flows.steps import WindowGrid

__all__ = [
    "OTHER_VALUES",
    "Chooser",
    "DrawChooser",
    "RandomChooser",
    "as_received",
    "break_encoding",
    "check_parsed",
    "check_post",
    "check_rejected",
    "encoded",
    "mutate",
    "mutated",
    "paths",
]

T = TypeVar("T")

HUGE_STRING = "ü" * 50_000
"""A string far longer than any field should be (100,000 bytes of UTF-8)."""


def _nested(depth: int) -> Any:
    value: Any = {"leaf": [1, "x", None]}
    for n in range(depth):
        value = {f"level{n}": [value]}
    return value


OTHER_VALUES: tuple[Any, ...] = (
    None,
    0,
    -1,
    1.5,
    -0.0,
    1e308,
    float("nan"),
    float("-inf"),
    10**30,
    2**63,
    -(2**64),
    True,
    False,
    "",
    " ",
    "x",
    "2024-05-01T12:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+01:00",
    "\ud800",
    "bad \udcff byte",
    "\x00",
    HUGE_STRING,
    [],
    [None],
    ["en", 1],
    [[[[]]]],
    {},
    {"$type": ["a"], "tag": {"x": 1}},
    _nested(40),
)
"""Values of every JSON type (and a few a type checker forgets), to put where a field was."""


class Chooser(Protocol):
    """Where the mutations get their choices: hypothesis draws, or a seeded generator."""

    def pick(self, options: Sequence[T]) -> T:
        """One of ``options``."""
        ...

    def number(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""
        ...


class DrawChooser:
    """Choices drawn from hypothesis (so that failing cases shrink)."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self._draw = draw

    def pick(self, options: Sequence[T]) -> T:
        """One of ``options``, drawn."""
        choice: T = self._draw(st.sampled_from(options))
        return choice

    def number(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``, drawn."""
        value: int = self._draw(st.integers(low, high))
        return value


class RandomChooser:
    """Choices from a seeded :class:`random.Random` (reproducible, no hypothesis engine)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def pick(self, options: Sequence[T]) -> T:
        """One of ``options`` at random."""
        return options[self._rng.randrange(len(options))]

    def number(self, low: int, high: int) -> int:
        """An integer in ``[low, high]`` at random."""
        return self._rng.randint(low, high)


Path = tuple[str | int, ...]


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every node of a JSON value, the value itself (``()``) first, depth first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def _parent(root: Any, path: Path) -> Any:
    node = root
    for step in path[:-1]:
        node = node[step]
    return node


def _replace(root: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    _parent(root, path)[path[-1]] = value
    return root


def _delete(root: Any, path: Path) -> Any:
    if not path:
        return None
    del _parent(root, path)[path[-1]]
    return root


def mutate(
    event: Any,
    choose: Chooser,
    *,
    unknown_kinds: Mapping[str, Sequence[str]] | None = None,
    steps: int | None = None,
) -> Any:
    """A copy of ``event`` with one to three fields broken (``steps`` fixes how many).

    ``unknown_kinds`` maps a field name to values it never legitimately has
    (``{"kind": ["sync"]}``); every field of that name may get one.
    """
    value = copy.deepcopy(event)
    kinds = dict(unknown_kinds or {})
    for _ in range(steps if steps is not None else choose.number(1, 3)):
        path = choose.pick(paths(value))
        operation = choose.pick(("replace", "replace", "delete", "add", "unknown-kind"))
        if operation == "replace":
            value = _replace(value, path, copy.deepcopy(choose.pick(OTHER_VALUES)))
        elif operation == "delete":
            value = _delete(value, path)
        elif operation == "add":
            node = value if not path else _parent(value, path)[path[-1]]
            if isinstance(node, dict):
                node["zz_unknown_field"] = copy.deepcopy(choose.pick(OTHER_VALUES))
            elif isinstance(node, list):
                node.append(copy.deepcopy(choose.pick(OTHER_VALUES)))
        else:
            named = [p for p in paths(value) if p and isinstance(p[-1], str) and p[-1] in kinds]
            if named:
                target = choose.pick(named)
                last = target[-1]
                assert isinstance(last, str)
                value = _replace(value, target, choose.pick(kinds[last]))
    return value


_BAD_BYTES: tuple[bytes, ...] = (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80")
"""Not UTF-8: a byte that never occurs, a cut sequence, an encoded surrogate, five bytes."""

_INSERTS: dict[str, str] = {"surrogate": "\udcff", "nul": "\x00"}


def break_encoding(text: str, choose: Chooser) -> str | bytes:
    """``text`` (serialised JSON) as it may arrive broken: cut short, or with bad bytes in it.

    Bytes come back when the breakage is not representable as text (invalid
    UTF-8); a lone surrogate comes back in a string.
    """
    at = choose.number(0, len(text))
    damage = choose.pick(("truncate", "bytes", "surrogate", "nul", "bom", "deep", "none"))
    broken: str | bytes = text
    if damage == "truncate":
        broken = text[:at]
    elif damage == "bytes":
        raw = text.encode("utf-8", "surrogatepass")
        cut = len(text[:at].encode("utf-8", "surrogatepass"))
        broken = raw[:cut] + choose.pick(_BAD_BYTES) + raw[cut:]
    elif damage in _INSERTS:
        broken = text[:at] + _INSERTS[damage] + text[at:]
    elif damage == "bom":
        broken = "\ufeff" + text
    elif damage == "deep":  # valid JSON, nested deeper than any parser recurses
        broken = "[" * 100_000 + text + "]" * 100_000
    return broken


@st.composite
def mutated(
    draw: st.DrawFn,
    event: Any,
    unknown_kinds: Mapping[str, Sequence[str]] | None = None,
) -> Any:
    """``event`` (a JSON value) with one to three fields broken, drawn by hypothesis."""
    return mutate(event, DrawChooser(draw), unknown_kinds=unknown_kinds)


@st.composite
def encoded(
    draw: st.DrawFn,
    event: Any,
    unknown_kinds: Mapping[str, Sequence[str]] | None = None,
) -> str | bytes:
    """``event`` mutated, serialised as JSON, and maybe with its encoding broken too."""
    choose = DrawChooser(draw)
    value = mutate(event, choose, unknown_kinds=unknown_kinds)
    text = json.dumps(value, ensure_ascii=choose.pick((True, False)))
    return break_encoding(text, choose) if choose.pick((True, False)) else text


# Oracles: what a parser may answer to hostile input


_ANALYZER: PostAnalyzer | None = None
_GRID = WindowGrid(timedelta(seconds=60), datetime(2020, 1, 1, tzinfo=UTC))


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_rejected(result: Rejected) -> None:
    """A rejection names a known code (never ``internal``: that is a bug caught) and a
    reason, and keeps a raw text the store can hold."""
    assert result.code in set(RejectCode), result
    assert result.code not in (RejectCode.INTERNAL, RejectCode.OTHER), result
    assert result.reason, result
    assert _utf8(result.origin + result.reason + result.raw), result.origin  # storable
    assert len(result.raw) <= MAX_REJECTED_RAW + 40


def check_post(post: Post) -> None:
    """A post has fields of the right types, lies in a window, and can be analysed."""
    global _ANALYZER  # noqa: PLW0603 - built once: VADER's lexicon takes a while to load
    assert isinstance(post.id, str)
    assert post.id
    assert isinstance(post.text, str)
    assert post.created_at.tzinfo is not None
    assert EARLIEST_POST_TIME <= post.created_at < LATEST_POST_TIME
    assert post.lang is None or isinstance(post.lang, str)
    assert post.author is None or isinstance(post.author, str)
    assert post.hashtags is None or all(isinstance(tag, str) for tag in post.hashtags)
    assert all(isinstance(tag, str) for tag in post.rule_tags)
    strings = [post.id, post.text, post.lang or "", post.author or "", *(post.hashtags or ())]
    assert _utf8("".join(strings)), post.id
    window = (post.created_at - _GRID.align_to) // _GRID.length
    assert _GRID.start_of(window) + _GRID.length > post.created_at
    _ANALYZER = _ANALYZER or PostAnalyzer()
    _ANALYZER.analyse(post)


def check_parsed(result: Post | Rejected) -> None:
    """:func:`check_post` or :func:`check_rejected`, whichever ``result`` is."""
    if isinstance(result, Rejected):
        check_rejected(result)
    else:
        assert isinstance(result, Post), result
        check_post(result)


def as_received(raw: str | bytes) -> str:
    """What a source makes of the bytes it reads: UTF-8 with undecodable bytes escaped."""
    return raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
