"""Every error senti raises on purpose derives from :class:`flows.errors.SentiError`."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from flows.errors import SentiError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("flows", "server", "dashboard")
# Control flow, not an error: the flow raises it to stop without closing windows.
NOT_ERRORS = {("flows.sources.control", "Interrupted")}


def _public_exception_classes() -> list[tuple[str, str]]:
    """(module, class) for every public top-level class whose bases name an exception."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                    continue
                bases = [ast.unparse(base) for base in node.bases]
                if any(base.endswith(("Error", "Exception", "Failed")) for base in bases):
                    found.append((module, node.name))
    return found


ERRORS = [pair for pair in _public_exception_classes() if pair not in NOT_ERRORS]


def test_the_walk_finds_the_errors() -> None:
    """The source walk finds the project's error classes, so the next test checks something."""
    names = {name for _, name in ERRORS}
    assert {"CliError", "SourceError", "JetstreamRefused", "ProtocolError"} <= names
    assert len(ERRORS) >= 15


@pytest.mark.parametrize(("module", "name"), ERRORS, ids=[name for _, name in ERRORS])
def test_every_public_error_is_a_senti_error(module: str, name: str) -> None:
    """Each public exception class of flows/, server/ and dashboard/ is a SentiError."""
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, SentiError)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("flows.routing.matching", "InvalidQuery"),
        ("flows.analysis.sentiment", "ThresholdsError"),
        ("flows.tuning.tweeteval", "TweetEvalError"),
        ("flows.platforms.x_rules", "RuleError"),
        ("server.protocol", "ProtocolError"),
    ],
)
def test_value_errors_stay_value_errors(module: str, name: str) -> None:
    """Errors that were ValueErrors still are, so existing ``except ValueError`` keeps working."""
    assert issubclass(getattr(importlib.import_module(module), name), ValueError)


def test_interrupted_is_not_an_error() -> None:
    """The flow's stop signal is not caught by ``except SentiError``."""
    from flows.sources.control import Interrupted

    assert not issubclass(Interrupted, SentiError)
