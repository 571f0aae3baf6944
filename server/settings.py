"""Server settings: defaults, then ``.env``, then ``SENTI_*`` variables, then CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows.alerts import AlertSettings
from flows.analysis.languages import (
    DEFAULT_SCORED_LANGUAGES,
    ScoredLanguages,
    parse_scored_languages,
)
from flows.sinks.webhook import check_webhook_url
from flows.sources.registry import source_names

__all__ = ["ServerSettings"]


class ServerSettings(BaseSettings):
    """Everything ``senti serve`` can be told; each field is also ``SENTI_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="SENTI_", env_file=".env", extra="ignore", validate_default=True
    )

    # Network
    host: str = "localhost"
    port: int = Field(default=8000, ge=0, le=65535)
    certfile: Path | None = None
    keyfile: Path | None = None

    # Security
    origins: str = ""
    """Comma-separated allowed origins: ``https://app.example.com``, ``https://*.example.com``."""
    dev: bool = False
    """Development mode: also allow pages served from localhost."""
    client_token: SecretStr | None = None
    """If set, clients must present it (``Authorization: Bearer`` or ``?token=``)."""

    # Limits
    max_connections: int = Field(default=10_000, ge=1)
    max_connections_per_ip: int = Field(default=256, ge=1)
    max_message_bytes: int = Field(default=4096, ge=256)
    max_queries_per_connection: int = Field(default=10, ge=1)
    track_changes_per_minute: int = Field(default=30, ge=1)
    send_buffer_bytes: int = Field(default=256 * 1024, ge=1024)
    """Unsent bytes a client may have queued before new messages to it are dropped."""

    # Timeouts
    open_timeout: float = Field(default=10.0, gt=0)
    ping_interval: float = Field(default=20.0, gt=0)
    ping_timeout: float = Field(default=20.0, gt=0)

    # Scheduling
    switch_interval: float = Field(default=0.0005, gt=0, le=0.1)
    """Seconds between GIL hand-overs (``sys.setswitchinterval``): the dataflow thread
    and the event loop share the process; Python's default 0.005 delays messages."""

    # Dataflow
    dataflow: Literal["process", "thread"] = "process"
    """Where the dataflow of a synthetic or replay source runs: a child process (its own
    core and GIL) or a thread of the server. X and Bluesky sources always use a thread."""
    source: str = "synthetic"
    """A registered source (:func:`flows.sources.registry.source_names`): ``x`` reads X's
    filtered stream (``SENTI_X_*``, docs/x-source.md); ``bluesky`` reads Bluesky's
    Jetstream firehose (``SENTI_JETSTREAM_*``, docs/bluesky.md); ``mastodon`` a Mastodon
    timeline (``SENTI_MASTODON_*``, docs/mastodon.md)."""
    replay: list[Path] = Field(default_factory=list)
    speed: float = Field(default=1.0, gt=0)
    rate: float = Field(default=20.0, gt=0)
    seed: int = 0
    store: str | None = None
    window: float = Field(default=60.0, gt=0)
    wait: float = Field(default=5.0, ge=0)
    thresholds: Path | None = None
    scored_langs: str = DEFAULT_SCORED_LANGUAGES
    """Languages VADER scores, comma-separated (``en,und``; ``*`` for all); posts in
    others are delivered and counted as unscored (docs/operations.md)."""
    workers: int = Field(default=1, ge=1)

    # Alerts (docs/alerts.md)
    alerts: bool = True
    """Decide sentiment-shift alerts per tracked query (``SENTI_ALERTS=0`` turns them off)."""
    alert_z: float = Field(default=4.0, gt=0)
    """z-score a window's share must reach over the query's baseline."""
    alert_min_posts: int = Field(default=20, ge=1)
    """Scored posts a window needs before it can raise an alert."""
    alert_min_shift: float = Field(default=0.10, ge=0, lt=1)
    """Smallest rise of the share over the baseline worth an alert (0.10 = 10 points)."""
    alert_warmup: int = Field(default=5, ge=1)
    """Windows a query must have seen before its baseline is trusted."""
    alert_alpha: float = Field(default=0.1, gt=0, le=1)
    """Weight of the newest window in the exponentially weighted baseline."""
    alert_rearm_z: float = 1.0
    """An alert episode ends when a window's z falls below this (at most ``alert_z``)."""
    alert_hold_z: float = Field(default=2.0, gt=0)
    """A window with a z at least this feeds the baseline slowly (at most ``alert_z``)."""
    alert_webhook: str | None = None
    """``http(s)://`` URL each alert is POSTed to as JSON, off the dataflow's thread."""

    # Recovery
    recovery_dir: Path | None = None
    """Snapshot the dataflow's state here and resume from it (docs/operations.md)."""
    snapshot_interval: float = Field(default=5.0, gt=0)
    """Seconds between snapshots."""
    resume_grace: float = Field(default=60.0, ge=0)
    """Seconds a restart keeps the queries the last run tracked, for clients to come back
    (Bluesky and replay sources with a store: docs/operations.md)."""

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        names = [repr(name) for name in source_names()]
        if repr(value) not in names:
            expected = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": expected}
            )
        return value

    @field_validator("scored_langs")
    @classmethod
    def _check_languages(cls, value: str) -> str:
        return str(parse_scored_languages(value))

    @model_validator(mode="after")
    def _check_pairs(self) -> ServerSettings:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("certfile and keyfile must be given together")
        if self.source == "replay" and not self.replay:
            raise ValueError("source 'replay' needs at least one replay file")
        if self.alert_rearm_z > self.alert_z or self.alert_hold_z > self.alert_z:
            raise ValueError("alert_rearm_z and alert_hold_z must not exceed alert_z")
        if self.alert_webhook is not None:
            check_webhook_url(self.alert_webhook)
        return self

    @property
    def alert_settings(self) -> AlertSettings:
        """The ``alert_*`` fields as the dataflow takes them."""
        return AlertSettings(
            z=self.alert_z,
            min_posts=self.alert_min_posts,
            min_shift=self.alert_min_shift,
            warmup=self.alert_warmup,
            alpha=self.alert_alpha,
            rearm_z=self.alert_rearm_z,
            hold_z=self.alert_hold_z,
            enabled=self.alerts,
        )

    @property
    def languages(self) -> ScoredLanguages:
        """:attr:`scored_langs` as the dataflow takes it."""
        return parse_scored_languages(self.scored_langs)

    @property
    def scheme(self) -> str:
        """``wss`` with TLS, else ``ws``."""
        return "wss" if self.certfile is not None else "ws"
