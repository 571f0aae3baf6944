"""Helpers shared by the dashboard tests (a unique name: conftest modules are not importable)."""

from __future__ import annotations

from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
"""The dashboard's entry point."""

SMALL_COMPOUNDS = (0.9, 0.6, 0.3, 0.06, 0.0, -0.02, -0.2, -0.7)
"""Compounds of the small store's ``python`` posts, one per post, oldest first."""


def url_of(path: Path) -> str:
    """The ``sqlite:////absolute/path`` URL of a store file."""
    return f"sqlite:///{path}"
