"""Every post source by the name users type: ``open_source(kind, settings)``.

A :class:`SourceKind` is registered once (:func:`register`) with its name,
whether it can run in a child process on its own (``self_contained``: no
connection to share with the server), whether it resumes from the store's
cursors, how to check its settings up front and how to open it. Opening gives
an :class:`OpenedSource`: the Bytewax input, where it resumes, and its
:class:`SourceHooks`, what a server may ask of the platform beyond posts
(follow the tracked queries, per-source metrics, start and stop). The server
and the CLI only ever go through this module, so adding a source touches its
own modules and one :func:`register` call::

    opened = open_source("replay", settings, positions=Positions())
    flow = assemble_flow(opened.posts, settings=FlowSettings(), stop=stop)

The built-in kinds are ``synthetic``, ``replay``, ``x``, ``bluesky`` and ``mastodon``; the
platform modules (tweepy for X) are imported only when their kind is opened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bytewax.inputs import FixedPartitionedSource

from flows.errors import SentiError
from flows.model import Line
from flows.routing.matching import Query
from flows.runtime.cursors import Positions, jetstream_key, replay_key
from flows.runtime.resume import StoredResume, stored_resume

if TYPE_CHECKING:  # the platform modules load only when their kind is opened
    from flows.sources.bluesky import JetstreamStream
    from flows.sources.live import LiveStream
    from flows.sources.mastodon import MastodonStream
    from flows.sources.x import XStream

__all__ = [
    "NoHooks",
    "OpenedSource",
    "QueryRefused",
    "SourceHooks",
    "SourceKind",
    "SourceSettings",
    "SourceSettingsError",
    "UnknownSource",
    "check_source",
    "kind_for_options",
    "open_source",
    "register",
    "replay_keys",
    "source_kind",
    "source_names",
]

logger = logging.getLogger("senti.server")


class UnknownSource(SentiError, ValueError):
    """Raised by :func:`source_kind` and :func:`open_source` for a name never registered."""


class SourceSettingsError(SentiError):
    """Raised by :func:`check_source` when a source's own settings (``SENTI_X_*``...) are
    unusable; the message names the settings, never their values."""


class QueryRefused(SentiError):
    """Raised by :meth:`SourceHooks.track` when the platform refuses to follow a query;
    the message is the platform's reason, for the client."""


class SourceSettings(Protocol):
    """The settings a source is opened with (``server.settings.ServerSettings`` has them)."""

    @property
    def source(self) -> str: ...
    @property
    def replay(self) -> Sequence[Path]: ...
    @property
    def speed(self) -> float | None: ...
    @property
    def rate(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def wait(self) -> float: ...
    @property
    def store(self) -> str | None: ...


class SourceHooks(Protocol):
    """What a server may ask of a source's platform beyond its posts.

    ``track``/``untrack`` block (call them off the event loop) and matter only
    when :attr:`follows_queries` is true: a platform that filters server-side
    (X's rules) must hear about every query a client starts or stops tracking.
    """

    @property
    def follows_queries(self) -> bool:
        """Whether the platform must be told of tracked queries."""
        ...

    def start(self) -> None:
        """Before the flow starts, with no client yet (X drops stale rules)."""

    def track(self, query: Query) -> None:
        """Follow ``query``; :class:`QueryRefused` with the platform's reason if it will not."""

    def untrack(self, key: str) -> None:
        """Stop following the query ``key`` (the next start reconciles a failure)."""

    def metrics(self) -> dict[str, int]:
        """The source's own ``/metrics`` series by name (``senti_x_connected``...)."""
        ...

    def stop(self) -> None:
        """After the flow has ended: release what the platform holds (X's stream)."""


class NoHooks:
    """The hooks of a source with nothing to say to the platform (synthetic, replay)."""

    follows_queries = False

    def start(self) -> None:
        """Nothing to prepare."""

    def track(self, query: Query) -> None:
        """Every query is matched in the dataflow."""

    def untrack(self, key: str) -> None:
        """Every query is matched in the dataflow."""

    def metrics(self) -> dict[str, int]:
        """No series of its own."""
        return {}

    def stop(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True, slots=True)
class OpenedSource:
    """A source ready for :func:`~flows.assemble.assemble_flow`, with its hooks."""

    name: str
    """The kind's name, as errors call it (``bluesky source: ...``)."""
    posts: FixedPartitionedSource[Line, Any]
    hooks: SourceHooks = field(default_factory=NoHooks)
    resume: StoredResume = field(default_factory=StoredResume)
    """Where it resumes and the queries to take over (empty without a store)."""
    resumable: bool = False
    """Whether its positions go to the store, so a restart resumes its queries."""


Opener = Callable[..., OpenedSource]


@dataclass(frozen=True, slots=True)
class SourceKind:
    """A registered source: its name, capabilities, check and opener."""

    name: str
    open: Opener
    """``open(settings, *, positions, **options) -> OpenedSource``."""
    self_contained: bool = False
    """Whether it can run in a child process (no connection the server must share)."""
    check: Callable[[], None] | None = None
    """Checks its own settings up front, raising :class:`SourceSettingsError`."""
    options: tuple[str, ...] = ()
    """Keywords of prepared objects ``open`` accepts (``x_stream``: a test's own stream)."""
    finite: bool = False
    """Whether its input ends by design (a replay file); a live source's input ending is a
    dead source (``/healthz``)."""


_KINDS: dict[str, SourceKind] = {}


def register(kind: SourceKind) -> SourceKind:
    """Make ``kind`` available by its name; a name is registered once."""
    if kind.name in _KINDS:
        raise ValueError(f"source {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def source_names() -> list[str]:
    """The registered source names, in registration order (``--source`` choices)."""
    return list(_KINDS)


def source_kind(name: str) -> SourceKind:
    """The kind registered as ``name``; :class:`UnknownSource` if none is."""
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownSource(f"unknown source {name!r}: one of {', '.join(_KINDS)}") from None


def check_source(name: str) -> None:
    """Check the settings source ``name`` needs, before anything starts."""
    kind = source_kind(name)
    if kind.check is not None:
        kind.check()


def open_source(
    name: str, settings: SourceSettings, *, positions: Positions | None = None, **options: Any
) -> OpenedSource:
    """Open source ``name`` with ``settings``; with ``positions`` it resumes from the store.

    ``options`` are the kind's prepared objects (see :attr:`SourceKind.options`).
    """
    return source_kind(name).open(settings, positions=positions, **options)


def kind_for_options(options: dict[str, Any]) -> str | None:
    """The kind a prepared object among ``options`` belongs to, if any is given."""
    for kind in _KINDS.values():
        if any(options.get(option) is not None for option in kind.options):
            return kind.name
    return None


# Synthetic and replay


def _open_synthetic(
    settings: SourceSettings, *, positions: Positions | None = None
) -> OpenedSource:
    from flows.sources.synthetic import SyntheticSource  # noqa: PLC0415

    return OpenedSource("synthetic", SyntheticSource(rate=settings.rate, seed=settings.seed))


def replay_keys(settings: SourceSettings) -> list[str]:
    """The cursor keys of the replay files of ``settings`` (none for another source)."""
    if settings.source != "replay":
        return []
    return [replay_key(str(path)) for path in settings.replay]


def _open_replay(settings: SourceSettings, *, positions: Positions | None = None) -> OpenedSource:
    from flows.sources.replay import ReplaySource  # noqa: PLC0415

    resume = stored_resume(settings.store, replay_keys(settings)) if positions else StoredResume()
    source = ReplaySource(
        settings.replay,
        speed=settings.speed,
        max_span=timedelta(seconds=settings.wait) / 2,
        positions=positions,
        resume=resume.cursors,
    )
    return OpenedSource("replay", source, resume=resume, resumable=positions is not None)


# X


class _XHooks:
    """X filters by rules: they follow the tracked queries."""

    follows_queries = True

    def __init__(self, stream: XStream) -> None:
        self._stream = stream

    def start(self) -> None:
        self._stream.reconcile([])  # no client yet: drop the rules a previous run left

    def track(self, query: Query) -> None:
        from flows.platforms.x_rules import RuleError  # noqa: PLC0415
        from flows.sources.x import RuleRejected, XApiError  # noqa: PLC0415

        try:
            self._stream.track(query)
        except (RuleRejected, RuleError, XApiError) as exc:
            raise QueryRefused(str(exc)) from exc

    def untrack(self, key: str) -> None:
        from flows.sources.x import XApiError  # noqa: PLC0415

        try:
            self._stream.untrack(key)
        except XApiError as exc:  # the next start-up reconciles it
            logger.warning("rule not deleted", extra={"query": key, "reason": str(exc)})

    def metrics(self) -> dict[str, int]:
        stats = self._stream.stats()
        return {
            "senti_x_connected": int(stats.connected),
            "senti_x_connections_total": stats.connections,
            "senti_x_reconnects_total": stats.reconnects,
            "senti_x_stalls_total": stats.stalls,
            "senti_x_rule_changes_total": stats.rule_changes,
            "senti_x_received_total": stats.received,
            "senti_x_dropped_total": stats.dropped,
            "senti_x_duplicates_total": stats.duplicates,
            "senti_x_stream_errors_total": stats.stream_errors,
        }

    def stop(self) -> None:
        self._stream.stop()


def _check_x() -> None:
    from pydantic import ValidationError  # noqa: PLC0415

    from flows.sources.x import XSettings  # noqa: PLC0415 - tweepy only when needed

    try:
        settings = XSettings()
    except ValidationError as exc:
        # Name the settings, never echo their values (the bearer token is one).
        names = ", ".join(
            "SENTI_X_" + str(error["loc"][0]).upper() for error in exc.errors() if error["loc"]
        )
        raise SourceSettingsError(
            f"the X source needs valid settings: {names or 'SENTI_X_*'}"
        ) from None
    if settings.bearer_token is None or not settings.bearer_token.get_secret_value():
        raise SourceSettingsError("the X source needs a bearer token: set SENTI_X_BEARER_TOKEN")


def _open_x(
    settings: SourceSettings, *, positions: Positions | None = None, x_stream: XStream | None = None
) -> OpenedSource:
    from flows.sources.x import XSettings, XSource, XStream  # noqa: PLC0415

    stream = x_stream if x_stream is not None else XStream(XSettings())
    return OpenedSource("x", XSource(stream), hooks=_XHooks(stream))


# Bluesky and Mastodon


_LIVE_TOTALS = ("connections", "reconnects", "events", "posts", "skipped", "dropped", "duplicates")
"""The counters of :class:`~flows.sources.live.LiveStats` on ``/metrics``."""


class _SendsEverything(NoHooks):
    """The platform sends every post (Jetstream, a timeline): the dataflow does all the matching."""

    def __init__(self, name: str, stream: LiveStream[Any]) -> None:
        self._name = name
        self._stream = stream

    def metrics(self) -> dict[str, int]:
        stats = self._stream.stats()
        series = {f"senti_{self._name}_connected": int(stats.connected)}
        for name in _LIVE_TOTALS:
            series[f"senti_{self._name}_{name}_total"] = getattr(stats, name)
        return series


def _check_bluesky() -> None:
    from flows.sources.bluesky import JetstreamError, settings_from_env  # noqa: PLC0415

    try:
        settings_from_env()
    except JetstreamError as exc:
        raise SourceSettingsError(str(exc)) from None


def _open_bluesky(
    settings: SourceSettings,
    *,
    positions: Positions | None = None,
    bluesky_stream: JetstreamStream | None = None,
) -> OpenedSource:
    from flows.sources.bluesky import (  # noqa: PLC0415
        JetstreamSource,
        JetstreamStream,
        settings_from_env,
    )

    stream = bluesky_stream
    if stream is None:
        stream = JetstreamStream(settings_from_env())
    key = jetstream_key(stream.settings.url)
    resume = stored_resume(settings.store, [key]) if positions is not None else StoredResume()
    source = JetstreamSource(stream, positions=positions, resume_after=resume.cursors.get(key))
    return OpenedSource(
        "bluesky",
        source,
        hooks=_SendsEverything("bluesky", stream),
        resume=resume,
        resumable=positions is not None,
    )


def _check_mastodon() -> None:
    from flows.sources.mastodon import MastodonError, settings_from_env  # noqa: PLC0415

    try:
        settings_from_env()
    except MastodonError as exc:
        raise SourceSettingsError(f"mastodon source: {exc}") from None


def _open_mastodon(
    settings: SourceSettings,
    *,
    positions: Positions | None = None,
    mastodon_stream: MastodonStream | None = None,
) -> OpenedSource:
    from flows.sources.mastodon import (  # noqa: PLC0415
        MastodonSource,
        MastodonStream,
        mastodon_key,
        settings_from_env,
    )

    stream = mastodon_stream
    if stream is None:
        stream = MastodonStream(settings_from_env())
    key = mastodon_key(stream.settings.url, stream.settings.timeline)
    resume = stored_resume(settings.store, [key]) if positions is not None else StoredResume()
    source = MastodonSource(stream, positions=positions, resume_after=resume.cursors.get(key))
    return OpenedSource(
        "mastodon",
        source,
        hooks=_SendsEverything("mastodon", stream),
        resume=resume,
        resumable=positions is not None,
    )


register(SourceKind("synthetic", _open_synthetic, self_contained=True))
register(SourceKind("replay", _open_replay, self_contained=True, finite=True))
register(SourceKind("x", _open_x, check=_check_x, options=("x_stream",)))
register(SourceKind("bluesky", _open_bluesky, check=_check_bluesky, options=("bluesky_stream",)))
register(
    SourceKind("mastodon", _open_mastodon, check=_check_mastodon, options=("mastodon_stream",))
)
