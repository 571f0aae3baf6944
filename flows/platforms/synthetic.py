"""Synthetic X API v2 filtered-stream lines, for demos, tests and benchmarks.

Pure: no I/O, no bytewax. Post ``n`` of a stream is a function of ``(n, seed)``
alone (each post draws from its own ``random.Random(f"{seed}:{n}")``), so a
stream resumed at ``n`` yields exactly the tail of a full run, and two runs with
the same seed yield the same posts.

The mix imitates a real filtered stream closely enough to exercise the whole
pipeline:

* ten topics with their own vocabulary and hashtags (``python``, ``climate
  change``, ``#worldcup``, ``coffee``, ``#café``, ``#日本``, ``#covid19``, ...);
* positive, negative and neutral phrasing, worded so that VADER scores each as
  intended, with emoticons, emoji, CAPS and ``!!!``; about a third each on
  average, but each topic's balance drifts slowly (:func:`mood_shares`) and
  seeded events shift one topic at a time for a minute or so: a *crisis*
  (the negative share jumps) or a *launch* (the positive share jumps), and the
  topic trends (four times its usual share of the posts), on a schedule that
  is a pure function of the seed (:func:`event_schedule`);
* ``entities.hashtags`` / ``mentions`` / ``urls`` with code-point indices, left
  out on about one post in ten so that consumers must fall back to the text;
* ``@mentions``, ``https://t.co/...`` links, an ``author_id`` resolved through
  ``includes.users``, ``lang`` mostly ``en``;
* about one post in five is a retweet (``RT @user: ...`` and
  ``referenced_tweets``).

Most of its length is data (topic vocabularies, templates, the event
schedule); the generator itself is short.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from flows.model import format_time

__all__ = [
    "EVENT_EPOCH",
    "TOPICS",
    "SyntheticEvent",
    "created_at_for",
    "event_at",
    "event_schedule",
    "generate_lines",
    "mood_shares",
    "synthetic_envelope",
    "synthetic_line",
]


@dataclass(frozen=True, slots=True)
class _Topic:
    """Vocabulary of one topic: what posts talk about and how they tag it."""

    name: str
    subjects: tuple[str, ...]
    """Noun phrases free of sentiment words, so the template alone sets the polarity."""
    hashtags: tuple[str, ...]
    emoji: tuple[str, ...]
    handles: tuple[str, ...]
    """Accounts people mention when talking about the topic."""


_TOPICS: Final = (
    _Topic(
        "python",
        (
            "Python",
            "the new Python release",
            "type hints in Python",
            "pandas",
            "asyncio",
            "Python packaging",
            "the python 3.13 beta",
        ),
        ("Python", "Python3", "pydata", "100DaysOfCode", "PyCon2024"),
        ("🐍", "💻"),
        ("ThePSF", "pycon", "realpython"),
    ),
    _Topic(
        "climate",
        (
            "climate change",
            "the climate summit",
            "carbon emissions",
            "the new climate report",
            "solar panels",
            "climate change policy",
        ),
        ("ClimateChange", "climate", "COP28", "NetZero", "renewables"),
        ("🌍", "☀️"),
        ("UNFCCC", "IPCC_CH"),
    ),
    _Topic(
        "football",
        (
            "the World Cup",
            "the worldcup final",
            "the football season",
            "the group stage",
            "the quarterfinal",
            "Messi",
        ),
        ("worldcup", "WorldCup2026", "football", "FIFA", "soccer"),
        ("⚽", "🏟️"),
        ("FIFAWorldCup", "premierleague"),
    ),
    _Topic(
        "music",
        (
            "the new album",
            "this song",
            "the concert tonight",
            "my playlist",
            "the summer tour",
            "this music video",
        ),
        ("music", "NowPlaying", "Grammys2024", "livemusic", "Spotify"),
        ("🎵", "🎸", "🎧"),
        ("Spotify", "billboard"),
    ),
    _Topic(
        "ai",
        (
            "AI",
            "the new AI model",
            "machine learning",
            "ChatGPT",
            "large language models",
            "AI regulation",
            "GPT-4",
        ),
        ("AI", "GPT4", "MachineLearning", "LLM", "GenAI"),
        ("🤖", "🧠"),
        ("OpenAI", "huggingface"),
    ),
    _Topic(
        "coffee",
        (
            "coffee",
            "my morning coffee",
            "this espresso",
            "the café downtown",
            "cold brew coffee",
            "oat milk lattes",
        ),
        ("coffee", "café", "CoffeeTime", "espresso", "latte"),
        ("☕",),
        ("starbucks", "bluebottle"),
    ),
    _Topic(
        "japan",
        (
            "Tokyo",
            "the trip to Japan",
            "Kyoto in autumn",
            "the train to Osaka",
            "ramen in Tokyo",
            "the cherry blossoms",
        ),
        ("日本", "Tokyo", "travel", "東京", "JapanTravel"),
        ("🗾", "🍣", "🚄"),
        ("visitjapan", "JNTO"),
    ),
    _Topic(
        "health",
        (
            "the covid19 vaccine",
            "the new health guidelines",
            "covid19 testing",
            "the hospital",
            "the booster shot",
            "public health data",
        ),
        ("covid19", "COVID19", "health", "vaccine", "publichealth"),
        ("💉", "🏥"),
        ("WHO", "CDCgov"),
    ),
    _Topic(
        "space",
        (
            "the rocket launch",
            "the Mars mission",
            "NASA",
            "the total eclipse",
            "the space station",
            "the Artemis program",
        ),
        ("space", "NASA", "Artemis2", "eclipse2024", "SpaceX"),
        ("🚀", "🌕", "🔭"),
        ("NASA", "SpaceX"),
    ),
    _Topic(
        "gaming",
        (
            "the new Zelda",
            "this game",
            "the PS5 update",
            "the Switch 2",
            "indie games",
            "the speedrun",
        ),
        ("gaming", "NintendoSwitch", "PS5", "GOTY2023", "indiegames"),
        ("🎮", "👾"),
        ("NintendoAmerica", "PlayStation"),
    ),
)

TOPICS: Final = tuple(topic.name for topic in _TOPICS)
"""Names of the topics the generator draws from."""

# Phrasing: each template has one ``{s}`` slot for a topic subject.
_POSITIVE: Final = (
    "I love {s}",
    "{s} is amazing",
    "Absolutely loving {s}",
    "{s} is wonderful",
    "So happy about {s}",
    "{s} is the best",
    "Great news about {s}",
    "Really enjoying {s}",
    "{s} is awesome, thank you",
    "Excited for {s}",
)
_NEGATIVE: Final = (
    "I hate {s}",
    "{s} is terrible",
    "So disappointed with {s}",
    "{s} is a total disaster",
    "{s} is broken again",
    "Really annoyed by {s}",
    "Sad news about {s}",
    "{s} ruined my day",
    "{s} is awful",
    "Worst week ever with {s}",
)
_NEUTRAL: Final = (
    "{s} is scheduled for {when}",
    "Reading about {s} {when}",
    "New report on {s} released {when}",
    "Thread on {s} below",
    "Notes from a talk on {s}",
    "Update on {s} at {time} UTC",
    "Anyone following {s}?",
    "Question about {s}: which version are you on?",
    "Meeting about {s} {when}",
    "Live coverage of {s} starts {when}",
)
_WHEN: Final = ("tomorrow", "on Friday", "next week", "this afternoon", "on Monday", "tonight")
_POSITIVE_TAILS: Final = ("", "", "!", " :)", " 😍", " 🎉", " :D", " 😊")
_NEGATIVE_TAILS: Final = ("", "", ".", " :(", " 😢", " 😭", " ugh", " 😞")

# A few posts in other languages: (lang, text, hashtags).
_FOREIGN: Final = (
    ("es", "¡Me encanta el café de la mañana!", ("café",)),
    ("es", "El partido de la final es mañana", ("worldcup",)),
    ("fr", "Le rapport sur le climat est publié aujourd'hui", ("climat",)),
    ("ja", "東京の桜がきれいです", ("日本", "東京")),
    ("ja", "新しいPythonのリリース", ("Python3",)),
    ("de", "Das Konzert beginnt heute um acht", ("musik",)),
    ("pt", "Bom dia com café", ("café",)),
)

_FIRST: Final = (
    "ada",
    "grace",
    "linus",
    "guido",
    "marie",
    "alan",
    "ken",
    "barbara",
    "jose",
    "zoe",
    "yuki",
    "amara",
    "lena",
    "omar",
    "priya",
    "chen",
    "sofia",
    "noah",
    "ines",
    "kofi",
)
_LAST: Final = (
    "dev",
    "codes",
    "reads",
    "runs",
    "writes",
    "_news",
    "fan",
    "_x",
    "travels",
    "plays",
    "brews",
    "_data",
    "sings",
    "_ai",
    "hikes",
    "watch",
)
_DISPLAY: Final = {"jose": "José", "zoe": "Zoë", "yuki": "ゆき", "ines": "Inês"}
_USERS: Final = len(_FIRST) * len(_LAST) * 3
"""Size of the author pool."""

_ID_BASE: Final = 1_780_000_000_000_000_000
"""Post ids are snowflake-like 19-digit numbers above this."""
_ID_SEED_BITS: Final = 12
_URL_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# Shares of the mix.
_RETWEET_SHARE: Final = 0.20
_ENTITIES_SHARE: Final = 0.90
_FOREIGN_SHARE: Final = 0.05
_MENTION_SHARE: Final = 0.25
_URL_SHARE: Final = 0.20
_SHOUT_SHARE: Final = 0.10


@dataclass(slots=True)
class _Text:
    """Builds a post text and the X entities that point into it (code-point indices)."""

    text: str = ""
    hashtags: list[dict[str, Any]] = field(default_factory=list)
    mentions: list[dict[str, Any]] = field(default_factory=list)
    urls: list[dict[str, Any]] = field(default_factory=list)

    def add(self, plain: str) -> None:
        self.text += plain

    def add_hashtag(self, tag: str) -> None:
        start = len(self.text)
        self.text += "#" + tag
        self.hashtags.append({"start": start, "end": len(self.text), "tag": tag})

    def add_mention(self, user: dict[str, str]) -> None:
        start = len(self.text)
        self.text += "@" + user["username"]
        self.mentions.append(
            {"start": start, "end": len(self.text), "username": user["username"], "id": user["id"]}
        )

    def add_url(self, slug: str, expanded: str) -> None:
        start = len(self.text)
        url = f"https://t.co/{slug}"
        self.text += url
        self.urls.append(
            {
                "start": start,
                "end": len(self.text),
                "url": url,
                "expanded_url": expanded,
                "display_url": expanded.removeprefix("https://"),
            }
        )

    def entities(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.hashtags:
            found["hashtags"] = self.hashtags
        if self.mentions:
            found["mentions"] = self.mentions
        if self.urls:
            found["urls"] = self.urls
        return found


def _user(index: int) -> dict[str, str]:
    """The ``includes.users`` entry of author ``index`` of the pool."""
    first = _FIRST[index % len(_FIRST)]
    last = _LAST[(index // len(_FIRST)) % len(_LAST)]
    number = index // (len(_FIRST) * len(_LAST))
    username = f"{first}{last}{number or ''}"
    name = _DISPLAY.get(first, first.capitalize())
    return {"id": str(100_000_000 + index * 7_919), "name": name, "username": username}


def _handle(username: str) -> dict[str, str]:
    """The ``includes.users`` entry of a well-known account of a topic."""
    digest = hashlib.sha256(username.encode()).digest()
    user_id = 10_000 + int.from_bytes(digest[:4], "big") % 10_000_000
    return {"id": str(user_id), "name": username, "username": username}


def _seed_bits(seed: int) -> int:
    digest = hashlib.sha256(str(seed).encode()).digest()
    return int.from_bytes(digest[:4], "big") % (1 << _ID_SEED_BITS)


def _post_id(n: int, seed: int) -> str:
    """A snowflake-like id, increasing with ``n`` and unique per ``(seed, n)`` for ``n >= 0``."""
    return str(_ID_BASE + (n << _ID_SEED_BITS) + _seed_bits(seed))


def _sentence(rng: random.Random, topic: _Topic, shares: tuple[float, float, float]) -> str:
    """One English sentence about ``topic``: positive, negative or neutral with ``shares``."""
    subject = rng.choice(topic.subjects)
    draw = rng.random()
    mood = 0 if draw < shares[0] else 1 if draw < shares[0] + shares[1] else 2
    if mood == 2:
        template = rng.choice(_NEUTRAL)
        sentence = template.format(
            s=subject, when=rng.choice(_WHEN), time=f"{rng.randrange(24):02d}:{rng.choice('03')}0"
        )
        if rng.random() < 0.3:
            sentence += " " + rng.choice(topic.emoji)
        return sentence[0].upper() + sentence[1:]
    template = rng.choice(_POSITIVE if mood == 0 else _NEGATIVE)
    sentence = template.format(s=subject)
    sentence = sentence[0].upper() + sentence[1:]
    if rng.random() < _SHOUT_SHARE:
        return sentence.upper() + "!!!"
    tails = _POSITIVE_TAILS if mood == 0 else _NEGATIVE_TAILS
    return sentence + rng.choice(tails)


def _hashtags(rng: random.Random, topic: _Topic) -> list[str]:
    """Zero to three distinct hashtags of ``topic``; most posts have at least one."""
    weights = (15, 50, 25, 10)
    how_many = rng.choices(range(4), weights=weights)[0]
    return rng.sample(topic.hashtags, how_many)


def _body(
    rng: random.Random,
    text: _Text,
    users: dict[str, dict[str, str]],
    *,
    n: int,
    seed: int,
    events: bool,
) -> str:
    """Write the original-post part of a text into ``text``; return its language."""
    if rng.random() < _FOREIGN_SHARE:
        lang, sentence, foreign_tags = rng.choice(_FOREIGN)
        text.add(sentence)
        for tag in foreign_tags:
            text.add(" ")
            text.add_hashtag(tag)
        return lang

    event = event_at(n, seed=seed) if events else None
    if event is None:
        topic = rng.choice(_TOPICS)
    else:
        weights = [_EVENT_WEIGHT if t.name == event.topic else 1 for t in _TOPICS]
        topic = rng.choices(_TOPICS, weights=weights)[0]
    tags = _hashtags(rng, topic)
    leading_tag = bool(tags) and rng.random() < 0.15
    if leading_tag:
        text.add_hashtag(tags.pop(0))
        text.add(" ")

    mention = None
    if rng.random() < _MENTION_SHARE:
        if rng.random() < 0.5:
            mention = _handle(rng.choice(topic.handles))
        else:
            mention = _user(rng.randrange(_USERS))
        users[mention["id"]] = mention
    reply = mention is not None and not leading_tag and rng.random() < 0.5
    if mention is not None and reply:
        text.add_mention(mention)
        text.add(" ")

    text.add(_sentence(rng, topic, mood_shares(n, seed=seed, topic=topic.name, events=events)))
    if mention is not None and not reply:
        text.add(rng.choice((" cc ", " via ", " h/t ")))
        text.add_mention(mention)

    for tag in tags:
        text.add(" ")
        text.add_hashtag(tag)

    if rng.random() < _URL_SHARE:
        slug = "".join(rng.choices(_URL_ALPHABET, k=10))
        text.add(" ")
        text.add_url(slug, f"https://example.com/{topic.name}/{rng.randrange(10_000)}")
    return "en"


# Drift and events. Post numbers, not times, place them, so that a post stays a
# function of (n, seed) however fast or late it is emitted.
EVENT_EPOCH: Final = 6_000
"""Posts per epoch of the event schedule: each epoch holds exactly one event
(five minutes at the demo's 20 posts/s)."""
_EVENT_OFFSETS: Final = (2_000, 3_600)
"""Range of an event's first post within its epoch (a quiet lead-in for baselines)."""
_EVENT_LENGTHS: Final = (900, 1_800)
"""Range of an event's length in posts (45 to 90 s at 20 posts/s)."""
_DRIFT_AMPLITUDE: Final = 0.08
"""How far a topic's positive share drifts above a third (and its negative share below)."""
_DRIFT_PERIODS: Final = (30_000, 90_000)
"""Range of a topic's drift period in posts."""
_EVENT_SHARES: Final[dict[str, tuple[float, float, float]]] = {
    "crisis": (0.04, 0.85, 0.11),
    "launch": (0.85, 0.04, 0.11),
}
"""(positive, negative, neutral) shares of a topic's posts during an event."""
_EVENT_WEIGHT: Final = 8
"""How many times its usual share of the posts a topic gets during its event (it trends)."""

EventKind = Literal["crisis", "launch"]


@dataclass(frozen=True, slots=True)
class SyntheticEvent:
    """A stretch of posts during which one topic's sentiment is shifted."""

    topic: str
    """A name from :data:`TOPICS`."""
    kind: EventKind
    """``crisis``: the negative share jumps; ``launch``: the positive share jumps."""
    first: int
    """Number of the first post of the event."""
    end: int
    """Number of the first post after it."""

    def covers(self, n: int) -> bool:
        """Whether post ``n`` falls in the event."""
        return self.first <= n < self.end


@functools.lru_cache(maxsize=4_096)
def _epoch_event(seed: int, epoch: int) -> SyntheticEvent:
    rng = random.Random(f"{seed}:event:{epoch}")
    topic = rng.choice(TOPICS)
    kind: EventKind = rng.choice(("crisis", "launch"))
    first = epoch * EVENT_EPOCH + rng.randrange(*_EVENT_OFFSETS)
    return SyntheticEvent(topic, kind, first, first + rng.randrange(*_EVENT_LENGTHS))


def event_schedule(seed: int, *, until: int) -> tuple[SyntheticEvent, ...]:
    """The events of stream ``seed`` that start before post ``until``, in order.

    Epoch ``k`` (posts ``k * EVENT_EPOCH`` to ``(k + 1) * EVENT_EPOCH - 1``)
    holds one event on a topic, kind, start and length drawn from
    ``(seed, k)``; it starts at least 2,000 posts into its epoch and ends
    before the epoch does, so events never overlap.
    """
    if until <= 0:
        return ()
    events = (_epoch_event(seed, epoch) for epoch in range((until - 1) // EVENT_EPOCH + 1))
    return tuple(event for event in events if event.first < until)


def event_at(n: int, *, seed: int) -> SyntheticEvent | None:
    """The event post ``n`` of stream ``seed`` falls in, if any."""
    event = _epoch_event(seed, n // EVENT_EPOCH)
    return event if event.covers(n) else None


@functools.lru_cache(maxsize=1_024)
def _drift(seed: int, topic: str) -> tuple[float, float]:
    rng = random.Random(f"{seed}:drift:{topic}")
    return rng.randrange(*_DRIFT_PERIODS), rng.random()


def mood_shares(
    n: int, *, seed: int, topic: str, events: bool = True
) -> tuple[float, float, float]:
    """The (positive, negative, neutral) chances of post ``n`` of stream ``seed`` about ``topic``.

    Outside events a third each, tilted by a slow sine of the post number
    (period 30,000 to 90,000 posts and phase drawn from ``(seed, topic)``):
    the positive share moves by up to 0.08 and the negative share the opposite
    way. During an event on ``topic`` (with ``events``) the shares are those of
    the event's kind: 0.8 of the event's polarity, 0.05 of the other. The three always add up to 1.
    """
    if events:
        event = event_at(n, seed=seed)
        if event is not None and event.topic == topic:
            return _EVENT_SHARES[event.kind]
    period, phase = _drift(seed, topic)
    tilt = _DRIFT_AMPLITUDE * math.sin(2 * math.pi * (n / period + phase))
    return 1 / 3 + tilt, 1 / 3 - tilt, 1 / 3


def created_at_for(n: int, *, start: datetime, rate: float) -> datetime:
    """When post ``n`` of a stream starting at ``start`` with ``rate`` posts/s was created."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    return start.astimezone(UTC) + timedelta(seconds=n / rate)


def synthetic_envelope(
    n: int, *, seed: int, created_at: datetime, events: bool = True
) -> dict[str, Any]:
    """The decoded X API v2 stream line of post ``n`` of stream ``seed``.

    Everything but ``created_at`` depends on ``(n, seed)`` only (and on
    ``events``: ``False`` leaves out the :func:`event_schedule`, keeping the
    slow drift). Raises
    :class:`ValueError` if ``n`` is negative or ``created_at`` is naive.
    """
    if n < 0:
        raise ValueError(f"post number must be >= 0, got {n}")
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    rng = random.Random(f"{seed}:{n}")
    author = _user(rng.randrange(_USERS))
    users: dict[str, dict[str, str]] = {author["id"]: author}

    text = _Text()
    referenced: list[dict[str, str]] | None = None
    if rng.random() < _RETWEET_SHARE:
        original = _user(rng.randrange(_USERS))
        users[original["id"]] = original
        text.add("RT ")
        text.add_mention(original)
        text.add(": ")
        earlier = _ID_BASE - rng.randrange(1, 1 << 40)
        referenced = [{"type": "retweeted", "id": str(earlier)}]
    lang = _body(rng, text, users, n=n, seed=seed, events=events)

    data: dict[str, Any] = {
        "id": _post_id(n, seed),
        "text": text.text,
        "created_at": format_time(created_at),
        "author_id": author["id"],
        "lang": lang,
    }
    entities = text.entities()
    if entities and rng.random() < _ENTITIES_SHARE:
        data["entities"] = entities
    if referenced is not None:
        data["referenced_tweets"] = referenced
    return {
        "data": data,
        "includes": {"users": list(users.values())},
        "matching_rules": [],
    }


def synthetic_line(n: int, *, seed: int, created_at: datetime, events: bool = True) -> str:
    """Post ``n`` of stream ``seed`` as one compact JSON line (no newline), UTF-8 as X sends it."""
    envelope = synthetic_envelope(n, seed=seed, created_at=created_at, events=events)
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))


def generate_lines(
    count: int | None,
    *,
    seed: int = 0,
    start: datetime,
    rate: float,
    first: int = 0,
    events: bool = True,
) -> Iterator[str]:
    """Yield posts ``first`` to ``count - 1`` of stream ``seed`` as X API v2 lines.

    Post ``n`` is created at ``start + n / rate`` seconds. ``count=None`` never
    ends. ``generate_lines(c, first=k, ...)`` yields exactly the last ``c - k``
    lines of ``generate_lines(c, ...)``.
    """
    if not 0 < rate < float("inf"):
        raise ValueError(f"rate must be a positive, finite number of posts per second, got {rate}")
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    return _lines(count, seed=seed, start=start, rate=rate, first=first, events=events)


def _lines(
    count: int | None, *, seed: int, start: datetime, rate: float, first: int, events: bool
) -> Iterator[str]:
    n = first
    while count is None or n < count:
        created_at = created_at_for(n, start=start, rate=rate)
        yield synthetic_line(n, seed=seed, created_at=created_at, events=events)
        n += 1
