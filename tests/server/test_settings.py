"""Server settings (server/settings.py): the scored languages from SENTI_SCORED_LANGS."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.languages import ScoredLanguages
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
