"""The tellmemore theme, checked on the built sample site without a browser.

Every page is parsed with BeautifulSoup; links are resolved the way a browser
resolves them against the page's own location, so the relative URLs that
RELATIVE_URLS produces are checked for real.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
from bs4 import BeautifulSoup, Tag

ROOT = Path(__file__).resolve().parent.parent
THEME = ROOT / "theme"
PER_PAGE = 5  # DEFAULT_PAGINATION in pelicanconf.py


@dataclass(frozen=True)
class Built:
    """One HTML file of the built site."""

    rel: str  # path below the output folder, with forward slashes
    soup: BeautifulSoup


@cache
def _parse(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def load(site: Path, rel: str) -> Built:
    path = site / rel
    assert path.is_file(), f"{rel} was not built"
    return Built(rel, _parse(path))


def all_pages(site: Path) -> list[Built]:
    """Every page a reader can open (not the frame the comment service fills in)."""
    return [load(site, p.relative_to(site).as_posix()) for p in sorted(site.rglob("*.html"))
            if p.name != "comments-layout.html"]


def resolve(page_rel: str, href: str) -> str | None:
    """The output file an href on page_rel points at; None for other sites and fragments."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    base = posixpath.dirname(page_rel)
    target = posixpath.normpath(posixpath.join(base, unquote(parts.path)))
    if parts.path.endswith("/") or target == ".":
        target = posixpath.join(target, "index.html") if target != "." else "index.html"
    return target


def exists(site: Path, rel: str | None) -> bool:
    return rel is not None and not rel.startswith("..") and (site / rel).is_file()


def article_paths(site: Path) -> list[str]:
    """Every article, as the archives page lists them (newest first)."""
    archives = load(site, "archives/index.html")
    links = archives.soup.select("main .archive-list a[href]:not(.comment-count)")
    return [resolve(archives.rel, a["href"]) for a in links]


@pytest.fixture(scope="module")
def pages(site_output: Path) -> list[Built]:
    found = all_pages(site_output)
    assert found, "the sample site built no HTML"
    return found


@pytest.fixture(scope="module")
def articles(site_output: Path) -> list[Built]:
    paths = article_paths(site_output)
    assert paths, "the archives page lists no article"
    return [load(site_output, rel) for rel in paths]


def text(tag: Tag | None) -> str:
    return " ".join(tag.get_text(" ").split()) if tag is not None else ""


# --- every page ---------------------------------------------------------------------------


def test_every_page_has_one_h1_and_the_landmarks(pages: list[Built]) -> None:
    problems = []
    for page in pages:
        soup = page.soup
        h1s = soup.find_all("h1")
        if len(h1s) != 1:
            problems.append(f"{page.rel}: {len(h1s)} <h1>")
        elif not text(h1s[0]):
            problems.append(f"{page.rel}: empty <h1>")
        if len(soup.find_all("main")) != 1:
            problems.append(f"{page.rel}: needs exactly one <main>")
        if soup.find("header", class_="site-header") is None:
            problems.append(f"{page.rel}: no site <header>")
        if soup.find("footer") is None:
            problems.append(f"{page.rel}: no <footer>")
        for nav in soup.find_all("nav"):
            if not (nav.get("aria-label") or nav.get("aria-labelledby")):
                problems.append(f"{page.rel}: a <nav> without a label")
    assert not problems, "\n".join(problems)


def test_every_page_has_a_working_skip_link(pages: list[Built]) -> None:
    for page in pages:
        first_link = page.soup.body.find("a")
        assert first_link is not None, page.rel
        assert text(first_link) == "Skip to content", (
            f"{page.rel}: the first link is not the skip link"
        )
        target = first_link["href"].removeprefix("#")
        assert page.soup.find(id=target) is not None, f"{page.rel}: skip link to missing #{target}"
        assert page.soup.find(id=target).name == "main", f"{page.rel}: skip link misses <main>"


def test_every_page_has_lang_viewport_title_and_description(pages: list[Built]) -> None:
    for page in pages:
        soup = page.soup
        assert soup.html.get("lang"), f"{page.rel}: <html> has no lang"
        viewport = soup.find("meta", attrs={"name": "viewport"})
        assert viewport is not None, f"{page.rel}: no viewport meta"
        assert "width=device-width" in viewport["content"], page.rel
        title = text(soup.title)
        assert "Tell Me More" in title, f"{page.rel}: <title> {title!r} lacks the site name"
        description = soup.find("meta", attrs={"name": "description"})
        assert description is not None and description["content"].strip(), page.rel


def test_titles_are_distinct_per_page(pages: list[Built]) -> None:
    seen: dict[str, str] = {}
    for page in pages:
        title = text(page.soup.title)
        assert title not in seen, f"{page.rel} and {seen.get(title)} share the title {title!r}"
        seen[title] = page.rel


def test_stylesheets_are_local_and_no_script_is_needed(
    site_output: Path, pages: list[Built]
) -> None:
    for page in pages:
        for link in page.soup.find_all("link", rel="stylesheet"):
            target = resolve(page.rel, link["href"])
            assert exists(site_output, target), f"{page.rel}: stylesheet {link['href']} missing"
        assert page.soup.find("script", src=re.compile(r"^(https?:)?//")) is None, page.rel


def test_internal_links_resolve(site_output: Path, pages: list[Built]) -> None:
    broken = []
    for page in pages:
        for a in page.soup.find_all("a", href=True):
            href = a["href"]
            if href.startswith(("#", "?", "mailto:")):
                continue
            target = resolve(page.rel, href)
            if target is not None and not exists(site_output, target):
                broken.append(f"{page.rel}: {href}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_ids_are_unique_per_page(pages: list[Built]) -> None:
    for page in pages:
        ids = [tag["id"] for tag in page.soup.find_all(id=True)]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        assert not repeated, f"{page.rel}: repeated ids {repeated}"


def test_in_page_fragments_exist(pages: list[Built]) -> None:
    for page in pages:
        for a in page.soup.find_all("a", href=re.compile(r"^(\?[^#/]*)?#")):
            fragment = a["href"].split("#", 1)[1]
            assert page.soup.find(id=fragment) is not None, f"{page.rel}: #{fragment} missing"


# --- feeds --------------------------------------------------------------------------------


COMMENTS_SERVICE_URL = "http://127.0.0.1:5000"  # pelicanconf.py's


def feed_links(page: Built) -> list[str]:
    return [
        link["href"]
        for link in page.soup.head.find_all("link", rel="alternate")
        if link.get("type") == "application/atom+xml"
    ]


def test_the_site_feed_is_linked_from_every_page(site_output: Path, pages: list[Built]) -> None:
    for page in pages:
        hrefs = feed_links(page)
        assert any(href.endswith("feeds/all.atom.xml") for href in hrefs), page.rel
        for href in hrefs:
            if href.startswith(COMMENTS_SERVICE_URL + "/feeds/"):
                continue  # served by the comment service (tests/test_feeds.py), not a file
            assert exists(site_output, resolve(page.rel, href)), f"{page.rel}: feed {href} missing"
    footer = pages[0].soup.find("footer")
    assert footer.find("a", href=re.compile(r"feeds/all\.atom\.xml$")) is not None


@pytest.mark.parametrize(
    ("listing", "feed_folder"),
    [("categories", "category"), ("tags", "tag"), ("authors", "author")],
)
def test_term_pages_link_their_own_feed(site_output: Path, listing: str, feed_folder: str) -> None:
    overview = load(site_output, f"{listing}/index.html")
    links = overview.soup.select("main a[href]")
    assert links, f"{listing} page lists nothing"
    for a in links:
        term = load(site_output, resolve(overview.rel, a["href"]))
        own = [href for href in feed_links(term) if f"feeds/{feed_folder}/" in href]
        assert own, f"{term.rel}: no {feed_folder} feed in <head>"
        assert exists(site_output, resolve(term.rel, own[0])), f"{term.rel}: {own[0]} missing"


# --- lists, pagination, archives ---------------------------------------------------------


def test_index_lists_summaries_with_links(site_output: Path, articles: list[Built]) -> None:
    index = load(site_output, "index.html")
    entries = index.soup.select("main article")
    assert len(entries) == min(PER_PAGE, len(articles))
    for entry in entries:
        heading = entry.find("h2")
        assert heading is not None and heading.find("a", href=True) is not None
        assert entry.find("time", attrs={"datetime": True}) is not None
        assert text(entry.select_one(".entry-card__summary")), "an entry without a summary"


def test_index_paginates_beyond_five_articles(site_output: Path, articles: list[Built]) -> None:
    index = load(site_output, "index.html")
    nav = index.soup.find("nav", class_="pagination")
    if len(articles) <= PER_PAGE:
        assert nav is None
        pytest.skip("the sample site has too few articles to paginate")
    assert nav is not None and nav.get("aria-label")
    assert nav.find("a", rel="prev") is None
    older = nav.find("a", rel="next")
    assert older is not None
    second = load(site_output, resolve(index.rel, older["href"]))
    newer = second.soup.find("nav", class_="pagination").find("a", rel="prev")
    assert newer is not None and resolve(second.rel, newer["href"]) == "index.html"
    pages_needed = -(-len(articles) // PER_PAGE)
    listed = 0
    current = index
    for number in range(1, pages_needed + 1):
        listed += len(current.soup.select("main article"))
        assert f"{number} of {pages_needed}" in text(current.soup.find("nav", class_="pagination"))
        following = current.soup.find("nav", class_="pagination").find("a", rel="next")
        if number < pages_needed:
            current = load(site_output, resolve(current.rel, following["href"]))
        else:
            assert following is None
    assert listed == len(articles)


@pytest.mark.parametrize(
    "rel", ["archives/index.html", "categories/index.html", "tags/index.html", "authors/index.html"]
)
def test_overview_pages_exist(site_output: Path, rel: str) -> None:
    page = load(site_output, rel)
    assert page.soup.select("main a[href]"), f"{rel} links to nothing"


def test_archives_list_every_article_with_dates(site_output: Path, articles: list[Built]) -> None:
    archives = load(site_output, "archives/index.html")
    items = archives.soup.select("main .archive-list li")
    assert len(items) == len(articles)
    stamps = [item.find("time")["datetime"] for item in items]
    assert stamps == sorted(stamps, reverse=True), "archives are not newest first"


def test_article_meta_links_lead_to_term_pages(site_output: Path, articles: list[Built]) -> None:
    for article in articles:
        header = article.soup.select_one("main article header")
        assert header is not None, article.rel
        kinds = {"author": 0, "category": 0, "tag": 0}
        for a in header.find_all("a", rel=True):
            for kind in kinds:
                if kind in a["rel"]:
                    kinds[kind] += 1
                    target = resolve(article.rel, a["href"])
                    assert exists(site_output, target), f"{article.rel}: {a['href']}"
                    h1 = text(load(site_output, target).soup.find("h1"))
                    assert text(a) in h1, f"{target}: h1 {h1!r} does not name {text(a)!r}"
        assert kinds["author"] >= 1 and kinds["category"] == 1, f"{article.rel}: {kinds}"


# --- articles: header, reflection, comments ---------------------------------------------


def test_article_header_has_title_and_machine_readable_date(articles: list[Built]) -> None:
    for article in articles:
        h1 = article.soup.find("h1")
        assert text(h1) and text(h1) in text(article.soup.title), article.rel
        stamp = article.soup.select_one("main article header time[datetime]")
        assert stamp is not None, article.rel
        assert re.match(r"\d{4}-\d{2}-\d{2}T", stamp["datetime"]), stamp["datetime"]


def reflection_items(article: Built) -> list[Tag]:
    section = article.soup.find("section", id="reflection")
    assert section is not None, f"{article.rel}: no reflection section"
    assert "reflection" in section.get("class", [])
    heading = article.soup.find(id=section["aria-labelledby"])
    assert heading is not None and heading.name == "h2"
    assert text(heading) == "Questions for reflection"
    assert section.find("ol") is not None
    return section.select("ol > li")


def test_every_article_ends_with_reflection_questions(articles: list[Built]) -> None:
    for article in articles:
        items = reflection_items(article)
        assert items, f"{article.rel}: no questions"
        for li in items:
            qid = li["data-question-id"]
            assert qid and li["id"] == f"q-{qid}"
            link = li.find("a", class_="answer-this")
            assert link is not None, f"{article.rel}: q-{qid} has no answer link"
            # The service's plain form with the question chosen (the widget stays on the page).
            assert link["href"].endswith(f"/comments?question={quote(qid)}")
            assert link["data-question"] == qid
            hidden = link.find("span", class_="visually-hidden")
            assert hidden is not None and text(hidden).startswith("question:")
            assert text(link).startswith("Answer this")


def test_reflection_comes_after_the_content_and_before_comments(articles: list[Built]) -> None:
    for article in articles:
        main = article.soup.find("main")
        order = [
            tag.get("id") or tag.name
            for tag in main.find_all(["article", "section"], recursive=False)
        ]
        assert order.index("article") < order.index("reflection") < order.index("comments"), order


def test_question_ids_are_unique_per_article(articles: list[Built]) -> None:
    for article in articles:
        ids = [li["data-question-id"] for li in reflection_items(article)]
        assert len(ids) == len(set(ids)), f"{article.rel}: repeated question ids {ids}"


def test_comment_section_and_form(articles: list[Built]) -> None:
    for article in articles:
        soup = article.soup
        section = soup.find("section", id="comments")
        assert section is not None, article.rel
        thread = section["data-thread"]
        service = section["data-service"]
        assert thread and service.startswith("http")
        assert soup.find(id=section["aria-labelledby"]).name == "h2"
        comment_list = section.find("div", id="comment-list")
        assert comment_list is not None and "comment-list" in comment_list["class"]
        assert "answered individually" in text(section)

        form = section.find("form", id="comment-form")
        assert form is not None, article.rel
        assert form["method"].lower() == "post"
        assert form["action"] == f"{service}/threads/{thread}/comments"
        assert form.find("input", attrs={"name": "name"}).has_attr("required")
        email = form.find("input", attrs={"name": "email"})
        assert email["type"] == "email" and not email.has_attr("required")
        hint = soup.find(id=email["aria-describedby"])
        assert "never shown" in text(hint)
        assert form.find("textarea", attrs={"name": "body"}).has_attr("required")
        # The service sends the reader back to the manifest's URL, never to one from the form.
        assert form.find("input", attrs={"name": "return_url"}) is None
        trap = form.find("input", attrs={"name": "fax"})
        assert trap["tabindex"] == "-1" and trap.find_parent(attrs={"aria-hidden": "true"})
        assert section.find(id="comment-received")["role"] == "status"
        button = form.find("button", attrs={"type": "submit"})
        assert button is not None and text(button) == "Send comment"

        select = form.find("select", attrs={"name": "question"})
        assert select is not None, f"{article.rel}: no question picker"
        options = select.find_all("option")
        assert options[0]["value"] == "" and text(options[0]) == "No particular question"
        question_ids = [li["data-question-id"] for li in reflection_items(article)]
        assert [option["value"] for option in options[1:]] == question_ids


def test_every_form_control_is_labelled(articles: list[Built]) -> None:
    for article in articles:
        soup = article.soup
        for control in soup.find_all(["input", "select", "textarea"]):
            if control.name == "input" and control.get("type") == "hidden":
                continue
            if control.get("aria-label") or control.get("aria-labelledby"):
                continue
            control_id = control.get("id")
            label = soup.find("label", attrs={"for": control_id}) if control_id else None
            assert label is not None and text(label), (
                f"{article.rel}: <{control.name} name={control.get('name')}> has no label"
            )


def test_comment_thread_differs_per_article(articles: list[Built]) -> None:
    threads = [a.soup.find("section", id="comments")["data-thread"] for a in articles]
    assert len(threads) == len(set(threads))


def test_pages_have_no_reflection_or_comments(site_output: Path) -> None:
    index = load(site_output, "index.html")
    menu = index.soup.find("nav", attrs={"aria-label": "Main"})
    assert menu is not None
    standalone = []
    for a in menu.find_all("a", href=True):
        rel = resolve(index.rel, a["href"])
        if rel and not rel.startswith(("archives/", "tags/", "categories/", "authors/")):
            standalone.append(load(site_output, rel))
    assert standalone, "no standalone page on the menu"
    for page in standalone:
        assert page.soup.find(id="reflection") is None, page.rel
        assert page.soup.find(id="comment-form") is None, page.rel
        assert text(page.soup.find("h1")) in text(page.soup.title)


def test_current_menu_item_is_marked(site_output: Path) -> None:
    archives = load(site_output, "archives/index.html")
    current = archives.soup.select('nav[aria-label="Main"] a[aria-current="page"]')
    assert [text(a) for a in current] == ["Archives"]


# --- stylesheet ---------------------------------------------------------------------------


def test_stylesheet_covers_dark_mode_focus_and_code() -> None:
    css = (THEME / "static" / "css" / "main.css").read_text(encoding="utf-8")
    pygments = (THEME / "static" / "css" / "pygments.css").read_text(encoding="utf-8")
    assert "@media (prefers-color-scheme: dark)" in css
    assert ":focus-visible" in css
    assert ".visually-hidden" in css
    assert "@import" not in css and "url(http" not in css, "no external resources"
    assert "@media (prefers-color-scheme: dark)" in pygments
    for token in (".k", ".s", ".c", ".nf", ".mi"):
        assert re.search(rf"\.highlight {re.escape(token)}\b", pygments), token
