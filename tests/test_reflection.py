"""The reflection plugin: finding closing questions, their ids, defaults and reporting."""

from __future__ import annotations

import logging

import pytest
from bs4 import BeautifulSoup

import reflection.reflection as reflection_module
from reflection.reflection import (
    ReflectionConfigError,
    assign_ids,
    derive_id,
    questions_from_metadata,
    split_closing_section,
)
from tests.sitebuilder import build, questions_of

HEADINGS = ("Questions for reflection", "Questions for Reflection and Comment")


def article(slug: str, body: str, extra_metadata: str = "") -> str:
    return f"Title: {slug}\nDate: 2026-10-01\nSlug: {slug}\n{extra_metadata}\n{body}"


# --- finding the closing section in rendered HTML -------------------------------------------


def test_closing_section_questions_are_taken_out_of_the_body():
    html = (
        "<p>Body.</p>\n<h2 id='q'>Questions for reflection</h2>\n"
        "<ul>\n<li>First?</li>\n<li>Second?</li>\n</ul>"
    )
    section = split_closing_section(html, HEADINGS)
    assert [q.text for q in section.questions] == ["First?", "Second?"]
    assert section.remaining_html == "<p>Body.</p>"


@pytest.mark.parametrize("level", range(1, 7))
@pytest.mark.parametrize(
    "title",
    [
        "Questions for reflection", "QUESTIONS FOR REFLECTION",
        "Questions for Reflection and Comment", "questions for reflection:",
    ],
)
def test_any_heading_level_and_case_match(level, title):
    html = f"<p>x</p><h{level}>{title}</h{level}><ol><li>Why?</li></ol>"
    assert [q.text for q in split_closing_section(html, HEADINGS).questions] == ["Why?"]


def test_a_matching_heading_in_the_middle_does_not_count():
    html = (
        "<h2>Questions for reflection</h2><p>Why they work.</p><ul><li>not a question</li></ul>"
        "<h2>More</h2><p>text</p>"
    )
    assert split_closing_section(html, HEADINGS) is None


def test_only_the_closing_one_of_two_matching_headings_counts():
    html = (
        "<h2>Questions for reflection</h2><p>Why they work.</p><h2>More</h2><p>text</p>"
        "<h2>Questions for reflection</h2><ul><li>Real one?</li></ul>"
    )
    section = split_closing_section(html, HEADINGS)
    assert [q.text for q in section.questions] == ["Real one?"]
    assert "Why they work." in section.remaining_html


def test_subheadings_inside_the_closing_section_keep_it_closing():
    html = (
        "<h2>Questions for reflection</h2><h3>For writers</h3><ul><li>A?</li></ul>"
        "<h3>For readers</h3><ul><li>B?</li></ul>"
    )
    assert [q.text for q in split_closing_section(html, HEADINGS).questions] == ["A?", "B?"]


def test_nested_lists_are_hints_not_questions():
    html = (
        "<h2>Questions for reflection</h2><ul><li>Main question?<ul><li>a hint</li></ul></li>"
        "<li>Second?</li></ul>"
    )
    questions = split_closing_section(html, HEADINGS).questions
    assert [q.text for q in questions] == ["Main question?", "Second?"]
    assert questions[0].source_details_html == "<ul><li>a hint</li></ul>"
    assert "hint" not in questions[0].source_html


def test_inline_markup_and_links_are_kept_in_html_and_dropped_from_text():
    html = (
        '<h2>Questions for reflection</h2><ul><li>Which <em>one</em> of <a href="/x">these</a>'
        " fits?</li></ul>"
    )
    question = split_closing_section(html, HEADINGS).questions[0]
    assert question.text == "Which one of these fits?"
    assert question.source_html == 'Which <em>one</em> of <a href="/x">these</a> fits?'


def test_loose_list_paragraphs_are_unwrapped():
    html = "<h2>Questions for reflection</h2><ul><li><p>Loose?</p></li></ul>"
    assert split_closing_section(html, HEADINGS).questions[0].source_html == "Loose?"


def test_explicit_id_marker_is_read_and_removed():
    html = (
        "<h2>Questions for reflection</h2><ul><li>Late? {#late-answer}</li>"
        "<li><em>Styled</em> {#styled}</li></ul>"
    )
    questions = split_closing_section(html, HEADINGS).questions
    assert [(q.explicit_id, q.text) for q in questions] == [
        ("late-answer", "Late?"), ("styled", "Styled"),
    ]


def test_intro_paragraph_is_kept_apart():
    html = "<h2>Questions for reflection</h2><p>Tell me:</p><ul><li>What?</li></ul>"
    section = split_closing_section(html, HEADINGS)
    assert section.intro_html == "<p>Tell me:</p>"


def test_empty_section_is_found_with_no_questions():
    section = split_closing_section("<p>x</p><h2>Questions for reflection</h2>", HEADINGS)
    assert section.questions == []
    assert section.remaining_html == "<p>x</p>"


def test_rest_section_wrapper_stays_balanced():
    html = (
        '<div class="section" id="intro"><h2>Intro</h2><p>x</p></div>\n'
        '<div class="section" id="questions-for-reflection">\n<h2>Questions for reflection</h2>\n'
        '<ul class="simple">\n<li>Why?</li>\n</ul>\n</div>\n'
    )
    section = split_closing_section(html, HEADINGS)
    assert [q.text for q in section.questions] == ["Why?"]
    soup = BeautifulSoup(section.remaining_html, "html.parser")
    assert str(soup) == section.remaining_html.strip()
    assert "questions-for-reflection" not in section.remaining_html


# Sections read by the plugin's own tag scanner (plain markup) and sections it leaves to
# HTMLParser (comments, self-closing tags, an item with attributes, a stray "<", a script).
SECTIONS = [
    "<h2>Questions for reflection</h2>\n<ul>\n<li>First?</li>\n<li>Second?</li>\n</ul>",
    '<div class="section" id="q">\n<h2>Questions for reflection</h2>\n<p>Tell me:</p>\n'
    '<ol start="2">\n<li><p>Loose <em>one</em>?</p>\n</li>\n<li><p>Two {#two}</p>\n'
    '<ul>\n<li>a <a href="/x" title="it\'s">hint</a></li>\n</ul>\n</li>\n</ol>\n</div>\n</div>',
    "<h2>Questions for reflection</h2><ul><li>Open<li>Also open</ul></section>",
    "<H2>Questions for reflection</H2><UL><LI>Upper?</LI></UL>",
    "<h2>Questions for reflection</h2><ul><li>A<br/>b?</li></ul>",
    "<h2>Questions for reflection</h2><!-- <li>no</li> --><ul><li>After a comment?</li></ul>",
    '<h2>Questions for reflection</h2><ul><li id="kept">With an id?</li></ul>',
    "<h2>Questions for reflection</h2><ul><li>Is 1 < 2?</li></ul>",
    "<h2>Questions for reflection</h2><script>var li = '<li>x</li>';</script><ul><li>S?</li></ul>",
    "<h2>Questions for reflection</h2><ul><li>Unquoted <span class=x>value</span>?</li></ul>",
]


@pytest.mark.parametrize("section", SECTIONS)
def test_the_tag_scanner_reads_what_htmlparser_reads(section, monkeypatch):
    html = f"<div><p>Body</p>{section}"
    fast = split_closing_section(html, HEADINGS)
    monkeypatch.setattr(reflection_module, "_plain_tags", lambda source: None)
    assert split_closing_section(html, HEADINGS) == fast


def test_markdown_output_takes_the_tag_scanner():
    for section in SECTIONS[:4]:
        assert reflection_module._plain_tags(section) is not None, section
    for section in SECTIONS[4:]:
        assert reflection_module._plain_tags(section) is None, section


# --- ids --------------------------------------------------------------------------------------


def test_derived_ids_are_readable_ascii_and_bounded():
    assert derive_id("What did you change?") == "what-did-you-change"
    assert derive_id("Où est le café — vraiment?") == "ou-est-le-cafe-vraiment"
    assert len(derive_id("word " * 40)) <= 40
    assert derive_id("What did last month's readers ask of the team?") == (
        "what-did-last-months-readers-ask"
    )
    assert derive_id("???") == "question"


def test_duplicate_ids_are_made_unique_in_document_order():
    raw = questions_from_metadata(["Why?", "Why?", "Other {#why-2}", "Why?"])
    assert [q.id for q in assign_ids(raw, "x.md")] == ["why", "why-3", "why-2", "why-4"]


def test_repeated_explicit_id_is_warned_and_replaced(caplog):
    raw = questions_from_metadata(["One {#same}", "Two {#same}"])
    with caplog.at_level(logging.WARNING):
        ids = [q.id for q in assign_ids(raw, "x.md")]
    assert ids == ["same", "two"]
    assert "used twice" in caplog.text


def test_metadata_questions_render_inline_markdown():
    raw = questions_from_metadata("A *bold* idea? {#idea}\n\n  Second line?")
    assert [(q.explicit_id, q.source_html, q.text) for q in raw] == [
        ("idea", "A <em>bold</em> idea?", "A bold idea?"),
        (None, "Second line?", "Second line?"),
    ]


# --- whole builds -----------------------------------------------------------------------------


SECTION_ARTICLE = article(
    "with-section",
    """
Body text with a [link]({filename}/other.md).

## Questions for reflection

- What would you *change* about [the other post]({filename}/other.md)? {#change}
- Ça va — où est le café?
    - a hint with `code`
- Ça va — où est le café?
""",
)
OTHER_ARTICLE = article("other", "Plain.\n\n### questions FOR reflection\n\n1. Numbered?\n")


def test_build_exposes_questions_and_removes_the_section(tmp_path):
    output = build(tmp_path, {"with-section.md": SECTION_ARTICLE, "other.md": OTHER_ARTICLE})
    assert questions_of(output, "with-section") == [
        {"id": "change", "text": "What would you change about the other post?"},
        {"id": "ca-va-ou-est-le-cafe", "text": "Ça va — où est le café?"},
        {"id": "ca-va-ou-est-le-cafe-2", "text": "Ça va — où est le café?"},
    ]
    assert questions_of(output, "other") == [{"id": "numbered", "text": "Numbered?"}]
    page = BeautifulSoup((output / "with-section" / "index.html").read_text(), "html.parser")
    reflection = page.find(id="reflection").extract()
    assert [li["data-question-id"] for li in reflection.find_all("li", recursive=True)
            if li.has_attr("data-question-id")] == ["change", "ca-va-ou-est-le-cafe",
                                                     "ca-va-ou-est-le-cafe-2"]
    article_body = page.find("article").get_text(" ")
    assert "Questions for reflection" not in article_body.replace("\n", " ")
    assert "{filename}" not in str(page)
    assert reflection.find("a", href="../other/") is not None
    assert reflection.find("code").get_text() == "code"
    assert "{#change}" not in str(page)


def test_metadata_questions_and_section_wins_over_metadata(tmp_path, caplog):
    files = {
        "meta.md": article(
            "meta", "Body.\n", "Questions: First from metadata?\n    Second? {#two}"
        ),
        "both.md": article(
            "both", "Body.\n\n## Questions for reflection\n\n- From the section?\n",
            "Questions: From metadata?",
        ),
    }
    with caplog.at_level(logging.WARNING):
        output = build(tmp_path, files)
    assert questions_of(output, "meta") == [
        {"id": "first-from-metadata", "text": "First from metadata?"},
        {"id": "two", "text": "Second?"},
    ]
    assert questions_of(output, "both") == [{"id": "from-the-section", "text": "From the section?"}]
    assert "both a Questions: field and a closing section" in caplog.text


def test_defaults_apply_and_missing_questions_are_reported(tmp_path, caplog):
    files = {"bare.md": article("bare", "No questions here.\n"), "own.md": OTHER_ARTICLE}
    with caplog.at_level(logging.WARNING):
        output = build(tmp_path / "warn", files, REFLECTION_REQUIRED="warn")
    assert "bare.md ends without reflection questions" in caplog.text
    assert "own.md" not in caplog.text
    assert questions_of(output, "bare") == []

    output = build(
        tmp_path / "defaults", files, REFLECTION_DEFAULT_QUESTIONS=["What would you add? {#add}"]
    )
    assert questions_of(output, "bare") == [{"id": "add", "text": "What would you add?"}]
    assert questions_of(output, "other") == [{"id": "numbered", "text": "Numbered?"}]


def test_required_error_fails_the_build_naming_every_article(tmp_path):
    files = {
        "bare.md": article("bare", "No questions.\n"),
        "empty.md": article("empty", "Text.\n\n## Questions for reflection\n"),
    }
    with pytest.raises(ReflectionConfigError, match=r"2 article\(s\).*bare\.md.*empty\.md"):
        build(tmp_path, files, REFLECTION_REQUIRED="error")


def test_required_false_is_silent(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        build(tmp_path, {"bare.md": article("bare", "x\n")}, REFLECTION_REQUIRED=False)
    assert "without reflection questions" not in caplog.text


def test_bad_settings_fall_back_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        output = build(
            tmp_path, {"other.md": OTHER_ARTICLE},
            REFLECTION_HEADINGS=[3], REFLECTION_REQUIRED="sometimes",
        )
    assert questions_of(output, "other") == [{"id": "numbered", "text": "Numbered?"}]
    assert "REFLECTION_HEADINGS must be a list of strings" in caplog.text
    assert "REFLECTION_REQUIRED must be" in caplog.text


def test_custom_heading_setting(tmp_path):
    files = {"x.md": article("x", "Body.\n\n## Over to you\n\n- Your turn?\n")}
    output = build(tmp_path, files, REFLECTION_HEADINGS=["Over to you"])
    assert questions_of(output, "x") == [{"id": "your-turn", "text": "Your turn?"}]


def test_rest_articles_are_supported(tmp_path):
    rst = """
    A reST article
    ##############

    :date: 2026-10-02
    :slug: rest-one

    Some text.

    Questions for reflection
    ========================

    - Does reST work too?
    - With *emphasis*?
    """
    output = build(tmp_path, {"rest.rst": rst})
    assert questions_of(output, "rest-one") == [
        {"id": "does-rest-work-too", "text": "Does reST work too?"},
        {"id": "with-emphasis", "text": "With emphasis?"},
    ]


def test_ids_and_manifest_are_stable_across_rebuilds(tmp_path):
    files = {"with-section.md": SECTION_ARTICLE, "other.md": OTHER_ARTICLE}
    first = (build(tmp_path / "a", files) / "comments-manifest.json").read_bytes()
    second = (build(tmp_path / "b", files) / "comments-manifest.json").read_bytes()
    assert first == second
