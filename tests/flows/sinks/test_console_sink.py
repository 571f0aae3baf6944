"""The console sink's window lines (flows.sinks.console)."""

from __future__ import annotations

from flows.model import ALL_POSTS
from flows.sinks.console import describe_window
from tests.helpers.factories import make_window


def test_a_window_line_shows_its_classes_and_top_hashtags() -> None:
    """A window line gives the scope, posts, class counts and top hashtags."""
    line = describe_window(make_window("python", 60, top_hashtags=(("py", 2), ("ai", 1))))
    assert line == "12:01:00 python               posts     3  +1 -1 =1  #py 2, #ai 1"


def test_a_window_line_shows_unscored_posts_when_there_are_some() -> None:
    """Unscored posts follow the classes as ``?n``; the global line also shows retweets."""
    window = make_window(ALL_POSTS, 0, posts=5, unscored=2, retweets=4, top_hashtags=())
    assert describe_window(window) == (
        "12:00:00 all posts            posts     5  retweets 4  +1 -1 =1 ?2  "
    )
