"""The source registry: every source by its name, opened with its settings and hooks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flows.errors import SentiError
from flows.routing.matching import Subscription, parse_query
from flows.runtime.cursors import Positions, SourceCursor, replay_key
from flows.sources.registry import (
    NoHooks,
    SourceKind,
    UnknownSource,
    check_source,
    open_source,
    register,
    source_kind,
    source_names,
)
from flows.sources.replay import ReplaySource
from flows.sources.synthetic import SyntheticSource, write_synthetic
from flows.store import open_store
from server.settings import ServerSettings


def _settings(**values: Any) -> ServerSettings:
    return ServerSettings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_built_in_sources_are_registered_in_order() -> None:
    """``--source`` offers the built-in kinds, each registered once under its name."""
    assert source_names()[:4] == ["synthetic", "replay", "x", "bluesky"]
    assert [source_kind(name).name for name in source_names()] == source_names()


def test_only_the_self_contained_sources_may_run_in_a_child_process() -> None:
    """Synthetic and replay need no connection the server shares; X and Bluesky do."""
    assert source_kind("synthetic").self_contained
    assert source_kind("replay").self_contained
    assert not source_kind("x").self_contained
    assert not source_kind("bluesky").self_contained


def test_an_unknown_source_is_a_senti_error_naming_the_choices() -> None:
    """Asking for a name never registered says which names exist."""
    with pytest.raises(UnknownSource, match="unknown source 'nope': one of synthetic, replay"):
        open_source("nope", _settings())
    assert issubclass(UnknownSource, SentiError)


def test_a_name_is_registered_once() -> None:
    """Registering a second ``replay`` is refused, so a kind cannot be shadowed."""
    with pytest.raises(ValueError, match="already registered"):
        register(SourceKind("replay", source_kind("replay").open))


def test_synthetic_opens_with_no_hooks_and_no_resume() -> None:
    """The synthetic source has nothing to say to a platform and never resumes."""
    opened = open_source("synthetic", _settings(), positions=Positions())
    assert isinstance(opened.posts, SyntheticSource)
    assert isinstance(opened.hooks, NoHooks)
    assert not opened.hooks.follows_queries
    assert opened.hooks.metrics() == {}
    assert not opened.resumable
    assert opened.name == "synthetic"


def test_replay_resumes_from_the_store_cursor_and_its_queries(tmp_path: Path) -> None:
    """With positions and a store that left a cursor, replay resumes it and its queries."""
    stream = tmp_path / "stream.jsonl"
    write_synthetic(stream, count=5, start=datetime(2026, 1, 1, tzinfo=UTC), rate=50.0)
    store = f"sqlite:///{tmp_path / 'senti.db'}"
    query = parse_query("python")
    with open_store(store) as opened_store:
        opened_store.write([Subscription(query), SourceCursor(replay_key(str(stream)), 3)])
    settings = _settings(source="replay", replay=[stream], store=store)

    opened = open_source("replay", settings, positions=Positions())

    assert isinstance(opened.posts, ReplaySource)
    assert opened.resume.cursors == {replay_key(str(stream)): 3}
    assert opened.resume.queries == (query,)
    assert opened.resumable
    assert not open_source("replay", settings).resumable  # no positions: no store resume


def test_x_settings_are_checked_without_echoing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """The X source without a bearer token is refused up front, naming the setting."""
    monkeypatch.delenv("SENTI_X_BEARER_TOKEN", raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no .env here
    with pytest.raises(SentiError, match="SENTI_X_BEARER_TOKEN"):
        check_source("x")
    check_source("synthetic")  # nothing to check
