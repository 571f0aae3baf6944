"""The dataflow's step functions on their own, without bytewax (flows.steps)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

from factories import T0, make_match, make_post, make_scored, make_subscription

from flows.matching import Query, Subscription, TermIndex, parse_query, post_terms
from flows.model import ALL_POSTS, LatePost, Match, Polarity, Rejected, ScoredPost
from flows.steps import (
    PhraseMatcher,
    Tally,
    WindowGrid,
    anchor_subscription,
    event_time,
    fan_out_terms,
    is_original,
    is_post,
)


def scored(post_id: str | int, text: str, *, hashtags: tuple[str, ...] = ()) -> ScoredPost:
    """A scored post whose match terms come from ``text`` and ``hashtags``."""
    base = make_scored(post_id, text)
    return replace(base, terms=post_terms(text, hashtags))


def initial(*queries: str) -> dict[str, dict[str, Query]]:
    """The initial state table of a flow tracking ``queries`` (as FlowSettings builds it)."""
    index = TermIndex()
    for text in queries:
        index.add(parse_query(text))
    return {term: dict(index.filed_under(term)) for term in index.anchors()}


def keys(matches: list[Match]) -> list[str]:
    """Query keys of ``matches``."""
    return [match.query for match in matches]


# PhraseMatcher


def test_initial_queries_are_seen_by_the_first_post_at_a_term() -> None:
    """A term's first item starts from the initially tracked queries filed under it."""
    matcher = PhraseMatcher(initial("python"))
    post = scored(1, "I love python")
    state, out = matcher(None, ("python", post))
    assert keys(out) == ["python"]
    assert out[0].scored is post
    assert state == {"python": parse_query("python")}


def test_posts_on_terms_without_state_produce_nothing_and_discard_state() -> None:
    """A post at a term with no queries yields no match and leaves no state behind."""
    matcher = PhraseMatcher(initial("python"))
    state, out = matcher(None, ("love", scored(1, "I love python")))
    assert (state, out) == (None, [])


def test_post_matches_only_at_the_anchor_of_its_first_matching_phrase() -> None:
    """A query with several matching phrases is emitted from one term only."""
    matcher = PhraseMatcher(initial("coffee, tea"))
    post = scored(1, "coffee and tea")
    emitted = [key for term in sorted(post.terms) for key in keys(matcher(None, (term, post))[1])]
    assert emitted == ["coffee,tea"]


def test_subscription_adds_a_query_to_the_term_state() -> None:
    """An active subscription makes later posts at that term match the query."""
    matcher = PhraseMatcher()
    tea = make_subscription("tea")
    state, out = matcher(None, ("tea", tea))
    assert (state, out) == ({"tea": tea.query}, [])
    state, out = matcher(state, ("tea", scored(1, "green tea")))
    assert keys(out) == ["tea"]


def test_removing_an_initial_query_keeps_an_empty_state() -> None:
    """After add then remove the state is ``{}`` so the initial queries do not come back."""
    matcher = PhraseMatcher(initial("tea"))
    state, _ = matcher(None, ("tea", make_subscription("tea")))
    state, _ = matcher(state, ("tea", make_subscription("tea", active=False)))
    assert state == {}
    state, out = matcher(state, ("tea", scored(1, "green tea")))
    assert (state, out) == ({}, [])


def test_removing_an_unknown_query_is_harmless() -> None:
    """Removing a query never tracked at a term leaves an empty state and raises nothing."""
    state, out = PhraseMatcher()(None, ("tea", make_subscription("tea", active=False)))
    assert (state, out) == ({}, [])


def test_matcher_checks_the_whole_phrase_not_just_the_anchor() -> None:
    """A post with the anchor but not every term of the phrase does not match."""
    matcher = PhraseMatcher(initial("climate change"))
    state, out = matcher(None, ("climate", scored(1, "climate policy")))
    assert out == []
    assert state is not None


def test_matcher_state_is_not_shared_with_initial() -> None:
    """Changing one term's state leaves the initial table untouched for other keys."""
    table = initial("tea")
    matcher = PhraseMatcher(table)
    state, _ = matcher(None, ("tea", make_subscription("tea", active=False)))
    assert state == {}
    assert set(table["tea"]) == {"tea"}


# Routing helpers


def test_fan_out_terms_sends_a_post_to_each_distinct_term() -> None:
    """Each distinct term of a post gets the post once, keyed and tagged by the term."""
    post = scored(1, "python python #AI", hashtags=("ai",))
    routed = list(fan_out_terms(post))
    assert sorted(key for key, _ in routed) == ["#ai", "ai", "python"]
    assert all(value == (key, post) for key, value in routed)


def test_anchor_subscription_sends_a_change_to_each_phrase_anchor() -> None:
    """A subscription goes to the anchor term of each of its phrases, once per anchor."""
    change = Subscription(parse_query("the python, #ai ml, python boa"))
    routed = list(anchor_subscription(change))
    assert sorted(key for key, _ in routed) == ["#ai", "python"]
    assert all(value == (key, change) for key, value in routed)


def test_is_post_and_is_original_split_the_stream() -> None:
    """Parsed lines split into posts and rejected lines, posts into originals and retweets."""
    post = make_post(1)
    assert is_post(post)
    assert not is_post(Rejected("f:0", "invalid JSON", "{"))
    assert is_original(post)
    assert not is_original(replace(post, is_retweet=True))


def test_event_time_is_created_at_for_every_windowed_item() -> None:
    """Matches, scored posts and raw posts are windowed by the post's ``created_at``."""
    match = make_match(created_at=12)
    expected = T0 + timedelta(seconds=12)
    assert event_time(match) == event_time(match.scored) == event_time(match.scored.post)
    assert event_time(match) == expected


# Tally


def test_tally_counts_polarity_and_hashtags() -> None:
    """Matches and scored posts add to their class and their hashtag counts."""
    tally = Tally()
    tally.add(make_match(polarity=Polarity.POSITIVE, hashtags={"py": 2}))
    tally.add(make_scored(polarity=Polarity.NEGATIVE, hashtags={"py": 1, "ai": 1}))
    tally.add(make_scored(polarity=Polarity.NEUTRAL))
    assert tally.counts == [1, 1, 1]
    assert tally.hashtags == Counter({"py": 3, "ai": 1})
    assert tally.retweets == 0


def test_tally_counts_raw_posts_as_retweets_only() -> None:
    """A raw post reaching a tally is a dropped retweet: counted, not classified."""
    tally = Tally().add(replace(make_post(1, "RT @a: x"), is_retweet=True))
    assert (tally.counts, tally.retweets, tally.hashtags) == ([0, 0, 0], 1, Counter())


def test_tally_merge_adds_everything() -> None:
    """Merging two tallies sums classes, retweets and hashtag counts."""
    left = Tally().add(make_scored(polarity=Polarity.POSITIVE, hashtags={"py": 1}))
    right = Tally().add(make_scored(polarity=Polarity.POSITIVE, hashtags={"py": 2, "ai": 1}))
    right.add(make_post(2))
    merged = left.merge(right)
    assert merged is left
    assert merged.counts == [2, 0, 0]
    assert merged.retweets == 1
    assert merged.hashtags == Counter({"py": 3, "ai": 1})


def test_tallies_do_not_share_state() -> None:
    """Each new tally starts from zero (no shared mutable defaults)."""
    Tally().add(make_scored(polarity=Polarity.POSITIVE, hashtags={"py": 1}))
    fresh = Tally()
    assert (fresh.counts, fresh.retweets, fresh.hashtags) == ([0, 0, 0], 0, Counter())


# WindowGrid


def test_window_summary_counts_and_times() -> None:
    """A closed window's summary has its aligned start and end and the tally's counts."""
    grid = WindowGrid(timedelta(seconds=60), T0, top_n=10)
    tally = Tally()
    for polarity in (Polarity.POSITIVE, Polarity.POSITIVE, Polarity.NEGATIVE, Polarity.NEUTRAL):
        tally.add(make_scored(polarity=polarity))
    summary = grid.summary(("python", (2, tally)))
    assert (summary.query, summary.start, summary.end) == (
        "python",
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=3),
    )
    assert (summary.posts, summary.positive, summary.negative, summary.neutral) == (4, 2, 1, 1)


def test_window_top_hashtags_by_count_then_tag() -> None:
    """Top hashtags are the N most frequent, ties broken alphabetically."""
    grid = WindowGrid(timedelta(seconds=60), T0, top_n=3)
    tally = Tally()
    tally.add(make_scored(hashtags={"zeta": 2, "beta": 1, "alpha": 1, "gamma": 1, "big": 5}))
    summary = grid.summary(("python", (0, tally)))
    assert summary.top_hashtags == (("big", 5), ("zeta", 2), ("alpha", 1))


def test_window_retweets_are_reported_only_for_all_posts() -> None:
    """Retweets appear in the global ``*`` summary and are zero for a query."""
    grid = WindowGrid(timedelta(seconds=60), T0)
    tally = Tally().add(make_post(1)).add(make_scored(polarity=Polarity.NEUTRAL))
    assert grid.summary((ALL_POSTS, (0, tally))).retweets == 1
    assert grid.summary(("python", (0, tally))).retweets == 0
    assert grid.summary((ALL_POSTS, (0, tally))).posts == 1


def test_window_ids_can_be_negative() -> None:
    """Windows before ``align_to`` start before it."""
    grid = WindowGrid(timedelta(seconds=10), T0)
    assert grid.start_of(-1) == T0 - timedelta(seconds=10)


def test_late_records_the_window_and_post_for_each_item_kind() -> None:
    """Late matches, scored posts and retweets become LatePost records for their window."""
    grid = WindowGrid(timedelta(seconds=60), T0)
    start = T0 + timedelta(minutes=1)
    retweet = replace(make_post(3), is_retweet=True)
    assert grid.late(("python", (1, make_match("python", 1)))) == LatePost("python", start, "1")
    assert grid.late((ALL_POSTS, (1, make_scored(2)))) == LatePost(ALL_POSTS, start, "2")
    assert grid.late((ALL_POSTS, (1, retweet))) == LatePost(ALL_POSTS, start, "3", retweet=True)
