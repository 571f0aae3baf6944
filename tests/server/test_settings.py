"""Server settings (server/settings.py): the scored languages from SENTI_SCORED_LANGS."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.analysis.languages import ScoredLanguages
from server.settings import ServerSettings


@pytest.fixture(autouse=True)
def _no_senti_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's SENTI_* variables never reach these settings."""
    import os

    for name in list(os.environ):
        if name.startswith("SENTI_"):
            monkeypatch.delenv(name)


def test_english_and_undeclared_are_scored_by_default() -> None:
    """Without a setting VADER scores English and posts that declare no language."""
    settings = ServerSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.scored_langs == "en,und"
    assert settings.languages == ScoredLanguages()


def test_scored_languages_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SENTI_SCORED_LANGS names them, compared by primary subtag, in one spelling."""
    monkeypatch.setenv("SENTI_SCORED_LANGS", "pt-BR, EN")
    settings = ServerSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.scored_langs == "en,pt"
    assert settings.languages.scores("pt")
    assert not settings.languages.scores("und")


@pytest.mark.parametrize(("value", "message"), [("", "no languages"), ("e,n", "'e' is not")])
def test_unusable_scored_languages_are_refused(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    """An empty or malformed setting stops the settings with a message naming it."""
    monkeypatch.setenv("SENTI_SCORED_LANGS", value)
    with pytest.raises(ValidationError, match=message):
        ServerSettings(_env_file=None)  # type: ignore[call-arg]


def test_alert_thresholds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SENTI_ALERT_Z, SENTI_ALERT_MIN_POSTS and the rest set the shift rule of the flow."""
    monkeypatch.setenv("SENTI_ALERT_Z", "5")
    monkeypatch.setenv("SENTI_ALERT_MIN_POSTS", "50")
    monkeypatch.setenv("SENTI_ALERT_MIN_SHIFT", "0.2")
    monkeypatch.setenv("SENTI_ALERT_WEBHOOK", "http://127.0.0.1:9/hook")
    settings = ServerSettings(_env_file=None)  # type: ignore[call-arg]
    rule = settings.alert_settings
    assert (rule.z, rule.min_posts, rule.min_shift, rule.enabled) == (5.0, 50, 0.2, True)
    assert settings.alert_webhook == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SENTI_ALERT_Z", "0", "alert_z"),
        ("SENTI_ALERT_MIN_POSTS", "0", "alert_min_posts"),
        ("SENTI_ALERT_REARM_Z", "9", "must not exceed alert_z"),
        ("SENTI_ALERT_WEBHOOK", "ftp://example.com/x", "http:// or https://"),
    ],
)
def test_unusable_alert_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    """A threshold out of range or a webhook that is not an http(s) URL is refused by name."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        ServerSettings(_env_file=None)  # type: ignore[call-arg]
