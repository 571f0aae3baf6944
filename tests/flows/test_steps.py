"""The dataflow's step functions on their own, without bytewax (flows.steps)."""

from __future__ import annotations

import gc
import pickle
import random
from collections import Counter
from dataclasses import replace
from datetime import timedelta

from flows.model import (
    ALL_POSTS,
    LatePost,
    Line,
    Polarity,
    Post,
    PostMatches,
    Rejected,
    ScoredPost,
    micros,
)
from flows.routing.lanes import lane_keys
from flows.routing.matching import TermIndex, parse_query, post_terms
from flows.steps import (
    RETWEET,
    SETTLE_EVERY,
    UNSCORED,
    Lanes,
    LaneTally,
    PhraseMatcher,
    Tally,
    WindowGrid,
    bundle,
    counted,
    is_matched,
    is_original,
    is_post,
    keep,
    window_record,
)
from tests.helpers.factories import T0, make_post, make_scored, make_subscription


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
    """Query keys of a lane's output."""
    return [query for item in found for query in item.queries]


# PhraseMatcher


def test_initial_queries_are_seen_by_the_first_post_in_a_lane() -> None:
    """A lane's first item starts from every initially tracked query."""
    matcher = PhraseMatcher([parse_query("python"), parse_query("tea")])
    post = scored(1, "I love python")
    state, out = matcher(None, post)
    assert keys(out) == ["python"]
    assert out[0].scored is post
    assert state == index_of("python", "tea")


def test_every_lane_starts_from_its_own_index_of_the_initial_queries() -> None:
    """Two lanes of one matcher start from equal indexes; a change in one is not in the other."""
    matcher = PhraseMatcher([parse_query("tea")])
    first, _ = matcher(None, make_subscription("python"))
    second, out = matcher(None, scored(1, "python and tea"))
    assert keys(out) == ["tea"]
    assert (first, second) == (index_of("python", "tea"), index_of("tea"))


def test_a_post_in_a_lane_without_queries_passes_unmatched_and_leaves_no_state() -> None:
    """With nothing tracked a post still comes out (the global window counts it), unmatched."""
    post = scored(1, "I love python")
    assert PhraseMatcher()(None, post) == (None, [PostMatches(post, ())])


def test_an_unmatched_post_comes_out_with_no_queries() -> None:
    """A post matching no tracked query is emitted with an empty query list."""
    state, out = PhraseMatcher([parse_query("tea")])(None, scored(1, "coffee"))
    assert keys(out) == []
    assert [is_matched(item) for item in out] == [False]
    assert state == index_of("tea")


def test_a_lane_emits_one_item_per_post_with_all_its_matching_queries() -> None:
    """A post matching several queries, some by several phrases, is one item."""
    matcher = PhraseMatcher([parse_query("coffee, tea, milk"), parse_query("tea")])
    post = scored(1, "coffee and tea with milk")
    _, out = matcher(None, post)
    assert len(out) == 1
    assert is_matched(out[0])
    assert sorted(out[0].queries) == ["coffee,milk,tea", "tea"]
    assert [m.query for m in out[0].matches()] == list(out[0].queries)


def test_subscription_adds_a_query_to_the_lane_state() -> None:
    """An active subscription makes later posts in that lane match the query."""
    matcher = PhraseMatcher()
    state, out = matcher(None, make_subscription("tea"))
    assert (state, out) == (index_of("tea"), [])
    state, out = matcher(state, scored(1, "green tea"))
    assert keys(out) == ["tea"]


def test_queries_started_in_the_flow_are_frozen_out_of_collections() -> None:
    """Every SETTLE_EVERY queries started, the heap is frozen, so the collector no longer
    walks the tracked queries; removals freeze nothing."""
    matcher, state = PhraseMatcher(), None
    gc.unfreeze()
    try:
        for n in range(SETTLE_EVERY - 1):
            state, _ = matcher(state, make_subscription(f"word{n}"))
            state, _ = matcher(state, make_subscription(f"word{n}", active=False))
        assert gc.get_freeze_count() == 0
        state, _ = matcher(state, make_subscription("tea"))
        assert gc.get_freeze_count() > 0
        state, out = matcher(state, scored(1, "green tea"))
        assert keys(out) == ["tea"]
    finally:
        gc.unfreeze()


def test_removing_an_initial_query_keeps_an_empty_state() -> None:
    """After add then remove the index is empty but kept, so initial queries do not come back."""
    matcher = PhraseMatcher([parse_query("tea")])
    state, _ = matcher(None, make_subscription("tea"))
    state, _ = matcher(state, make_subscription("tea", active=False))
    assert state == TermIndex()
    state, out = matcher(state, scored(1, "green tea"))
    assert state == TermIndex()
    assert keys(out) == []


def test_removing_an_unknown_query_is_harmless() -> None:
    """Removing a query never tracked leaves an empty index and raises nothing."""
    state, out = PhraseMatcher()(None, make_subscription("tea", active=False))
    assert (state, out) == (TermIndex(), [])


def test_matcher_checks_the_whole_phrase_not_just_the_anchor() -> None:
    """A post with the anchor but not every term of the phrase does not match."""
    matcher = PhraseMatcher([parse_query("climate change")])
    state, out = matcher(None, scored(1, "climate policy"))
    assert keys(out) == []
    assert state is not None


def test_matcher_states_are_independent() -> None:
    """Changing one lane's index leaves the next lane's initial index intact."""
    matcher = PhraseMatcher([parse_query("tea")])
    first, _ = matcher(None, make_subscription("tea", active=False))
    _, out = matcher(None, scored(1, "green tea"))
    assert first == TermIndex()
    assert keys(out) == ["tea"]


# Lanes


def test_lanes_send_a_change_to_every_lane() -> None:
    """Every lane holds the whole index, so every subscription change reaches every lane."""
    lanes = Lanes(4)
    change = make_subscription("the python, #ai ml, python boa")
    assert list(lanes.broadcast(change)) == [(key, change) for key in lane_keys(4)]


def test_lines_are_spread_over_lanes_by_a_stable_hash() -> None:
    """Without a known local lane, a line's lane is a stable hash of its text."""
    lanes = Lanes(4)
    lines = [Line(f"post {n}", f"f:{n}") for n in range(200)]
    assert {lanes.of_line(line) for line in lines} == set(lane_keys(4))
    assert [lanes.of_line(line) for line in lines] == [Lanes(4).of_line(line) for line in lines]
    assert Lanes(1).of_line(lines[0]) == lane_keys(1)[0]


def test_a_matched_post_is_counted_once_for_its_queries_and_all_posts() -> None:
    """One window record per post: its queries and ``*``, with its time, class, hashtags
    and language."""
    post = make_scored(7, polarity=Polarity.NEGATIVE, hashtags={"py": 1})
    record = window_record(PostMatches(post, ("python", "tea")))
    assert record == (
        "7",
        micros_of(post),
        int(Polarity.NEGATIVE),
        {"py": 1},
        ("python", "tea", ALL_POSTS),
        "en",
    )


def test_unmatched_posts_and_retweets_count_in_the_global_window_only() -> None:
    """A post with no query counts for ``*``; a retweet too, as a retweet."""
    assert window_record(PostMatches(make_scored(1), ())) == counted(make_scored(1), (ALL_POSTS,))
    retweet = replace(make_post(2), is_retweet=True)
    record = window_record(retweet)
    assert (record[2], record[4]) == (RETWEET, (ALL_POSTS,))


def test_keep_only_passes_items_on() -> None:
    """The line-spreading step's logic keeps no state and changes nothing."""
    line = Line("x", "f:0")
    assert keep(None, line) == (None, (line,))


def test_is_post_and_is_original_split_the_keyed_stream() -> None:
    """Parsed lines split into posts and rejected lines, posts into originals and retweets."""
    post = make_post(1)
    assert is_post(("lane", post))
    assert not is_post(("lane", Rejected("f:0", "invalid JSON", "{")))
    assert is_original(("lane", post))
    assert not is_original(("lane", replace(post, is_retweet=True)))


def micros_of(post: ScoredPost) -> int:
    """The record's time field for ``post``: its ``created_at`` in microseconds, exactly."""
    return micros(post.post.created_at)


# Tally


def tally(*items: ScoredPost | Post) -> Tally:
    """The tally a lane's window keeps for one query after counting ``items``."""
    lane = LaneTally.count([counted(item, ("q",)) for item in items])
    return lane.tallies.get("q", Tally())


def test_tally_counts_polarity_and_hashtags() -> None:
    """Scored posts add to their class and their hashtag counts."""
    counts = tally(
        make_scored(polarity=Polarity.POSITIVE, hashtags={"py": 2}),
        make_scored(polarity=Polarity.NEGATIVE, hashtags={"py": 1, "ai": 1}),
        make_scored(polarity=Polarity.NEUTRAL),
    )
    assert counts.counts == [1, 1, 1]
    assert counts.hashtags == Counter({"py": 3, "ai": 1})
    assert counts.retweets == 0


def test_tally_counts_retweets_only_as_retweets() -> None:
    """A retweet reaching a tally is counted, not classified."""
    counts = tally(replace(make_post(1, "RT @a: x"), is_retweet=True))
    assert (counts.counts, counts.retweets, counts.hashtags) == ([0, 0, 0], 1, Counter())


def test_a_lane_tally_counts_as_one_record_at_a_time() -> None:
    """Counting a window's records at once gives each query what counting them one by one gives."""
    rng = random.Random(3)
    records = [
        counted(
            make_scored(n, polarity=rng.choice(list(Polarity)), hashtags=_some_tags(rng))
            if n % 7
            else replace(make_post(n), is_retweet=True),
            (*rng.sample(["a", "b", "c", "d"], rng.randint(0, 3)), ALL_POSTS),
        )
        for n in range(300)
    ]
    expected: dict[str, tuple[list[int], int, Counter[str]]] = {}
    for _id, _time, polarity, hashtags, queries, _lang in records:
        for query in queries:
            counts, retweets, tags = expected.setdefault(query, ([0, 0, 0], 0, Counter()))
            if polarity == RETWEET:
                expected[query] = (counts, retweets + 1, tags)
                continue
            counts[polarity] += 1
            tags.update(hashtags)
    lane = LaneTally.count(records)
    assert {q: (t.counts, t.retweets, t.hashtags) for q, t in lane.tallies.items()} == expected
    assert LaneTally.count([]).tallies == {}


def _some_tags(rng: random.Random) -> dict[str, int]:
    return {tag: rng.choice([1, 1, 1, 2]) for tag in rng.sample("xyz", rng.randint(0, 2))}


def test_tally_merge_adds_everything() -> None:
    """Merging two tallies sums classes, retweets and hashtag counts."""
    left = tally(make_scored(polarity=Polarity.POSITIVE, hashtags={"py": 1}))
    right = tally(
        make_scored(polarity=Polarity.POSITIVE, hashtags={"py": 2, "ai": 1}),
        replace(make_post(2), is_retweet=True),
    )
    merged = left.merge(right)
    assert merged is left
    assert merged.counts == [2, 0, 0]
    assert merged.retweets == 1
    assert merged.hashtags == Counter({"py": 3, "ai": 1})


def test_tallies_do_not_share_state() -> None:
    """Each new tally starts from zero (no shared mutable defaults)."""
    tally(make_scored(polarity=Polarity.POSITIVE, hashtags={"py": 1}))
    fresh = Tally()
    assert (fresh.counts, fresh.retweets, fresh.hashtags) == ([0, 0, 0], 0, Counter())


def test_lane_tallies_count_each_query_separately_and_retweets_only_for_all_posts() -> None:
    """A lane's window keeps one tally per query; a retweet counts only for ``*``."""
    grid = WindowGrid(timedelta(seconds=60), T0)
    lane = LaneTally.count(
        [
            counted(make_scored(1), ("python", "tea", ALL_POSTS)),
            counted(make_scored(2), ("tea", ALL_POSTS)),
            counted(replace(make_post(4), is_retweet=True), (ALL_POSTS,)),
        ]
    )
    other = LaneTally.count([counted(make_scored(3), ("python",))])
    lane.merge(other)
    summaries = {s.query: s for s in grid.lane_summaries(("lane-0-of-1", (0, lane)))}
    assert {query: s.posts for query, s in summaries.items()} == {
        "python": 2,
        "tea": 2,
        ALL_POSTS: 2,
    }
    assert summaries[ALL_POSTS].retweets == 1
    assert summaries["tea"].retweets == 0


def test_an_unscored_post_is_counted_as_unscored_with_its_language() -> None:
    """A post in a language senti does not score has its own class in its window record,
    and its language key (the primary subtag)."""
    record = counted(make_scored(1, polarity=None, lang="pt-BR"), ("q",))
    assert (record[2], record[5]) == (UNSCORED, "pt")
    assert counted(make_scored(2, lang=None), ("q",))[5] == "und"
    assert counted(replace(make_post(3), is_retweet=True), ("q",))[5] == ""


def test_tally_counts_unscored_posts_apart_and_every_post_by_language() -> None:
    """Unscored posts are not in any class; every post, scored or not, counts for its language;
    retweets count for no language."""
    counts = tally(
        make_scored(1, polarity=Polarity.NEGATIVE, lang="en-US"),
        make_scored(2, polarity=None, lang="pt", hashtags={"py": 1}),
        make_scored(3, polarity=None, lang="PT-br"),
        make_scored(4, polarity=Polarity.NEUTRAL, lang=None),
        replace(make_post(5, lang="ja"), is_retweet=True),
    )
    assert counts.counts == [0, 1, 1]
    assert counts.unscored == 2
    assert counts.langs == Counter({"en": 1, "pt": 2, "und": 1})
    assert counts.hashtags == Counter({"py": 1})
    assert counts.retweets == 1


def test_a_lane_tally_counts_languages_as_one_record_at_a_time() -> None:
    """Counting a window's records at once gives each query the unscored and language counts
    that counting them one by one gives."""
    rng = random.Random(5)
    langs = ["en", "pt-BR", "ja", None, "xx-long", "e"]
    records = [
        counted(
            make_scored(n, polarity=rng.choice([*Polarity, None]), lang=rng.choice(langs)),
            (*rng.sample(["a", "b", "c"], rng.randint(0, 2)), ALL_POSTS),
        )
        for n in range(300)
    ]
    expected: dict[str, tuple[int, Counter[str]]] = {}
    for _id, _time, polarity, _hashtags, queries, lang in records:
        for query in queries:
            unscored, by_lang = expected.setdefault(query, (0, Counter()))
            by_lang[lang] += 1
            expected[query] = (unscored + (polarity == UNSCORED), by_lang)
    lane = LaneTally.count(records)
    assert {q: (t.unscored, t.langs) for q, t in lane.tallies.items()} == expected
    assert set(lane.tallies[ALL_POSTS].langs) == {"en", "pt", "ja", "und", "xx", "other"}


def test_tally_merge_adds_unscored_and_languages() -> None:
    """Merging tallies adds their unscored posts and language counts."""
    left = tally(make_scored(1, polarity=None, lang="pt"))
    right = tally(make_scored(2, polarity=None, lang="pt"), make_scored(3, lang="en"))
    merged = left.merge(right)
    assert (merged.unscored, merged.langs) == (2, Counter({"pt": 2, "en": 1}))


def test_a_tally_from_a_snapshot_of_an_older_senti_resumes_with_zero_languages() -> None:
    """A recovery snapshot pickled before tallies counted languages loads with no unscored
    posts and no languages, and counts on."""
    old = tally(make_scored(1, polarity=Polarity.POSITIVE, hashtags={"py": 1}))
    state = (None, {"counts": old.counts, "retweets": 0, "hashtags": old.hashtags})
    restored = Tally.__new__(Tally)
    restored.__setstate__(state)
    assert (restored.counts, restored.unscored, restored.langs) == ([1, 0, 0], 0, Counter())
    restored.merge(tally(make_scored(2, polarity=None, lang="ja")))
    assert (restored.unscored, restored.langs) == (1, Counter({"ja": 1}))
    again = pickle.loads(pickle.dumps(restored))  # noqa: S301 - our own bytes
    assert (again.counts, again.unscored, again.langs) == ([1, 0, 0], 1, Counter({"ja": 1}))
    assert Tally().langs is not Tally().langs


# WindowGrid


def test_window_summary_counts_and_times() -> None:
    """A closed window's summary has its aligned start and end and the tally's counts."""
    grid = WindowGrid(timedelta(seconds=60), T0, top_n=10)
    polarities = (Polarity.POSITIVE, Polarity.POSITIVE, Polarity.NEGATIVE, Polarity.NEUTRAL)
    summary = grid.summary(("python", (2, tally(*(make_scored(polarity=p) for p in polarities)))))
    assert (summary.query, summary.start, summary.end) == (
        "python",
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=3),
    )
    assert (summary.posts, summary.positive, summary.negative, summary.neutral) == (4, 2, 1, 1)


def test_window_summary_counts_unscored_posts_in_posts_and_languages_bounded() -> None:
    """Posts count scored and unscored posts; languages are the most frequent ten, then
    ``other`` with the rest, adding up to the posts."""
    grid = WindowGrid(timedelta(seconds=60), T0)
    codes = [f"l{chr(97 + n)}" for n in range(12)]
    items = [
        make_scored(f"{code}{k}", polarity=None, lang=code)
        for n, code in enumerate(codes)
        for k in range(12 - n)
    ]
    items += [make_scored("en1", lang="en"), make_scored("bad", polarity=None, lang="?")]
    summary = grid.summary((ALL_POSTS, (0, tally(*items))))
    assert summary.posts == len(items)
    assert (summary.unscored, summary.neutral) == (len(items) - 1, 1)
    assert summary.langs[:3] == (("la", 12), ("lb", 11), ("lc", 10))
    assert len(summary.langs) == 11
    assert summary.langs[-1] == ("other", 2 + 1 + 1 + 1)
    assert sum(count for _lang, count in summary.langs) == summary.posts


def test_window_top_hashtags_by_count_then_tag() -> None:
    """Top hashtags are the N most frequent, ties broken alphabetically."""
    grid = WindowGrid(timedelta(seconds=60), T0, top_n=3)
    counts = tally(make_scored(hashtags={"zeta": 2, "beta": 1, "alpha": 1, "gamma": 1, "big": 5}))
    summary = grid.summary(("python", (0, counts)))
    assert summary.top_hashtags == (("big", 5), ("zeta", 2), ("alpha", 1))


def test_window_retweets_are_reported_only_for_all_posts() -> None:
    """Retweets appear in the global ``*`` summary and are zero for a query."""
    grid = WindowGrid(timedelta(seconds=60), T0)
    counts = tally(replace(make_post(1), is_retweet=True), make_scored(polarity=Polarity.NEUTRAL))
    assert grid.summary((ALL_POSTS, (0, counts))).retweets == 1
    assert grid.summary(("python", (0, counts))).retweets == 0
    assert grid.summary((ALL_POSTS, (0, counts))).posts == 1


def test_window_ids_can_be_negative() -> None:
    """Windows before ``align_to`` start before it."""
    grid = WindowGrid(timedelta(seconds=10), T0)
    assert grid.start_of(-1) == T0 - timedelta(seconds=10)


def test_late_records_the_window_and_post_for_each_query_of_the_record() -> None:
    """A late record becomes one LatePost per query it counted for, retweets marked."""
    grid = WindowGrid(timedelta(seconds=60), T0)
    start = T0 + timedelta(minutes=1)
    retweet = replace(make_post(3), is_retweet=True)
    record = counted(make_scored(1), ("python", "tea", ALL_POSTS))
    assert grid.late(("lane-0-of-1", (1, record))) == [
        LatePost("python", start, "1"),
        LatePost("tea", start, "1"),
        LatePost(ALL_POSTS, start, "1"),
    ]
    late_retweet = grid.late(("lane-0-of-1", (1, counted(retweet, (ALL_POSTS,)))))
    assert late_retweet == [LatePost(ALL_POSTS, start, "3", retweet=True)]


def test_bundle_groups_a_batch_by_key_keeping_order() -> None:
    """One list per key, items in batch order, keys in order of first appearance."""
    batch = [("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)]
    assert bundle(batch) == [("b", [1, 3]), ("a", [2, 5]), ("c", [4])]
    assert bundle([]) == []
