"""The dataflow's step functions on their own, without bytewax (flows.steps)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

from factories import T0, make_match, make_post, make_scored, make_subscription

from flows.matching import Subscription, TermIndex, parse_query, post_terms
from flows.model import ALL_POSTS, LatePost, Polarity, PostMatches, Rejected, ScoredPost
from flows.steps import (
    BucketTally,
    PhraseMatcher,
    QueryRouter,
    Tally,
    WindowGrid,
    event_time,
    is_original,
    is_post,
    query_bucket,
)


def scored(post_id: str | int, text: str, *, hashtags: tuple[str, ...] = ()) -> ScoredPost:
    """A scored post whose match terms come from ``text`` and ``hashtags``."""
    base = make_scored(post_id, text)
    return replace(base, terms=post_terms(text, hashtags))


def index_of(*queries: str) -> TermIndex:
    """A term index tracking ``queries`` under all their anchors."""
    index = TermIndex()
    for text in queries:
        index.add(parse_query(text))
    return index


def keys(found: list[PostMatches]) -> list[str]:
    """Query keys of a bucket's output."""
    return [query for item in found for query in item.queries]


ONE = QueryRouter(1)
"""A router with a single bucket: every query routes to ``queries-0``."""


# PhraseMatcher


def test_initial_queries_are_seen_by_the_first_post_in_a_bucket() -> None:
    """A bucket's first item starts from the initially tracked queries that live in it."""
    matcher = PhraseMatcher(ONE, [parse_query("python")])
    post = scored(1, "I love python")
    state, out = matcher(None, ("queries-0-of-1", post))
    assert keys(out) == ["python"]
    assert out[0].scored is post
    assert state == index_of("python")


def test_posts_in_buckets_without_state_produce_nothing_and_discard_state() -> None:
    """A post in a bucket with no queries yields no match and leaves no state behind."""
    assert PhraseMatcher(ONE)(None, ("queries-0-of-1", scored(1, "I love python"))) == (None, [])


def test_a_bucket_emits_one_item_per_post_with_all_its_matching_queries() -> None:
    """A post matching several queries of a bucket, some by several phrases, is one item."""
    matcher = PhraseMatcher(ONE, [parse_query("coffee, tea, milk"), parse_query("tea")])
    post = scored(1, "coffee and tea with milk")
    _, out = matcher(None, ("queries-0-of-1", post))
    assert len(out) == 1
    assert sorted(out[0].queries) == ["coffee,milk,tea", "tea"]
    assert [m.query for m in out[0].matches()] == list(out[0].queries)


def test_every_query_lives_in_exactly_one_bucket() -> None:
    """Across all buckets a post's matching queries are each emitted once."""
    router = QueryRouter(16)
    queries = [parse_query(q) for q in ("coffee, tea", "tea", "#ai ml, python", "python")]
    matcher = PhraseMatcher(router, queries)
    post = scored(1, "python and tea #ai ml", hashtags=("ai",))
    found = [key for _, item in router.posts(post) for key in keys(matcher(None, item)[1])]
    assert sorted(found) == ["#ai ml,python", "coffee,tea", "python", "tea"]


def test_subscription_adds_a_query_to_the_bucket_state() -> None:
    """An active subscription makes later posts in that bucket match the query."""
    matcher = PhraseMatcher(ONE)
    tea = make_subscription("tea")
    state, out = matcher(None, ("queries-0-of-1", tea))
    assert (state, out) == (index_of("tea"), [])
    state, out = matcher(state, ("queries-0-of-1", scored(1, "green tea")))
    assert keys(out) == ["tea"]


def test_removing_an_initial_query_keeps_an_empty_state() -> None:
    """After add then remove the index is empty but kept, so initial queries do not come back."""
    matcher = PhraseMatcher(ONE, [parse_query("tea")])
    state, _ = matcher(None, ("queries-0-of-1", make_subscription("tea")))
    state, _ = matcher(state, ("queries-0-of-1", make_subscription("tea", active=False)))
    assert state == TermIndex()
    state, out = matcher(state, ("queries-0-of-1", scored(1, "green tea")))
    assert (state, out) == (TermIndex(), [])


def test_removing_an_unknown_query_is_harmless() -> None:
    """Removing a query never tracked leaves an empty index and raises nothing."""
    state, out = PhraseMatcher(ONE)(
        None, ("queries-0-of-1", make_subscription("tea", active=False))
    )
    assert (state, out) == (TermIndex(), [])


def test_matcher_checks_the_whole_phrase_not_just_the_anchor() -> None:
    """A post with the anchor but not every term of the phrase does not match."""
    matcher = PhraseMatcher(ONE, [parse_query("climate change")])
    state, out = matcher(None, ("queries-0-of-1", scored(1, "climate policy")))
    assert out == []
    assert state is not None


def test_matcher_states_are_independent() -> None:
    """Changing one bucket's index leaves the next bucket's initial index intact."""
    matcher = PhraseMatcher(ONE, [parse_query("tea")])
    first, _ = matcher(None, ("queries-0-of-1", make_subscription("tea", active=False)))
    _, out = matcher(None, ("queries-0-of-1", scored(1, "green tea")))
    assert first == TermIndex()
    assert keys(out) == ["tea"]


# Routing helpers


def test_router_sends_a_post_to_every_bucket_once() -> None:
    """A post visits each bucket once, tagged with the bucket, whatever its terms."""
    router = QueryRouter(4)
    post = scored(1, "python python #AI", hashtags=("ai",))
    routed = list(router.posts(post))
    assert [key for key, _ in routed] == [f"queries-{n}-of-4" for n in range(4)]
    assert all(value == (key, post) for key, value in routed)


def test_router_sends_a_change_to_its_query_bucket() -> None:
    """A subscription goes to the one bucket of its query's canonical key."""
    router = QueryRouter(4)
    change = Subscription(parse_query("the python, #ai ml, python boa"))
    [(key, value)] = list(router.subscriptions(change))
    assert key == router.bucket(change.key)
    assert value == (key, change)


def test_query_buckets_are_stable_and_bounded() -> None:
    """Bucket keys come from a stable hash (not Python's salted hash) within range."""
    assert query_bucket("python", 8) == query_bucket("python", 8)
    assert {query_bucket(f"q{n}", 8) for n in range(200)} == {f"queries-{n}-of-8" for n in range(8)}
    assert QueryRouter(1).bucket("anything") == "queries-0-of-1"


def test_is_post_and_is_original_split_the_stream() -> None:
    """Parsed lines split into posts and rejected lines, posts into originals and retweets."""
    post = make_post(1)
    assert is_post(post)
    assert not is_post(Rejected("f:0", "invalid JSON", "{"))
    assert is_original(post)
    assert not is_original(replace(post, is_retweet=True))


def test_event_time_is_created_at_for_every_windowed_item() -> None:
    """Bucket matches, scored posts and raw posts are windowed by the post's ``created_at``."""
    match = make_match(created_at=12)
    found = PostMatches(match.scored, ("python",))
    expected = T0 + timedelta(seconds=12)
    assert event_time(found) == event_time(match.scored) == event_time(match.scored.post)
    assert event_time(found) == expected


# Tally


def test_tally_counts_polarity_and_hashtags() -> None:
    """Matches and scored posts add to their class and their hashtag counts."""
    tally = Tally()
    tally.add(make_scored(polarity=Polarity.POSITIVE, hashtags={"py": 2}))
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
    """Late bucket matches (one per query), scored posts and retweets become LatePosts."""
    grid = WindowGrid(timedelta(seconds=60), T0)
    start = T0 + timedelta(minutes=1)
    retweet = replace(make_post(3), is_retweet=True)
    found = PostMatches(make_scored(1), ("python", "tea"))
    assert grid.late(("queries-0-of-1", (1, found))) == [
        LatePost("python", start, "1"),
        LatePost("tea", start, "1"),
    ]
    assert grid.late((ALL_POSTS, (1, make_scored(2)))) == [LatePost(ALL_POSTS, start, "2")]
    assert grid.late((ALL_POSTS, (1, retweet))) == [LatePost(ALL_POSTS, start, "3", retweet=True)]


def test_bucket_tallies_count_each_query_of_a_bucket_separately() -> None:
    """A bucket's window keeps one tally per matched query and summarises each."""
    grid = WindowGrid(timedelta(seconds=60), T0)
    bucket = BucketTally()
    bucket.add(PostMatches(make_scored(1), ("python", "tea")))
    bucket.add(PostMatches(make_scored(2), ("tea",)))
    other = BucketTally().add(PostMatches(make_scored(3), ("python",)))
    bucket.merge(other)
    summaries = {s.query: s.posts for s in grid.bucket_summaries(("queries-0-of-1", (0, bucket)))}
    assert summaries == {"python": 2, "tea": 2}
