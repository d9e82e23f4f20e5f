"""Write comments-manifest.json: the contract between the built site and the comment service.

The manifest lists every published article's thread key, title, URL, date and reflection
questions (id and text), in a deterministic order, so the service knows which threads and
questions exist. Each article also gets ``article.comment_thread`` for the theme, and
``article.cached_url``: its ``url``, worked out once. Pelican builds ``url`` anew from the
URL setting on each use (~25 us: a path made relative, a date formatted), and a build uses each
article's some eight times: the manifest, then each list page that shows it (index, its tags,
category, author, archives, year archive; issue 19).
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from pelican import signals

from .baking import bake

logger = logging.getLogger(__name__)

MANIFEST_SCHEMA_VERSION = 1
DEFAULT_MANIFEST_NAME = "comments-manifest.json"
TAG_RE = re.compile(r"<[^>]+>")

# Articles collected while generating; written and reset once the build is finalized, so
# `pelican --autoreload` rebuilds in one process start from nothing.
_collected_articles: list[Any] = []
_collected_settings: dict[str, Any] = {}


def thread_key(article: Any) -> str:
    """The comment thread of an article: its slug, with the language for translations."""
    if getattr(article, "in_default_lang", True):
        return article.slug
    return f"{article.slug}.{article.lang}"


def plain_title(title: str) -> str:
    return " ".join(html.unescape(TAG_RE.sub("", title)).split())


def collect_articles(generator: Any) -> None:
    """article_generator_finalized receiver: give each article its thread key, remember it."""
    public = [
        *generator.articles, *generator.translations,
        *getattr(generator, "hidden_articles", []), *getattr(generator, "hidden_translations", []),
    ]
    everything = [*public, *generator.drafts, *generator.drafts_translations]
    for article in everything:
        article.comment_thread = thread_key(article)
        # Its URL setting, slug, date and language are final once the articles are generated.
        article.cached_url = article.url
    # The site's listening figures, for the footer of every page (base.html).
    generator.context["COMMENTS_LISTENING"] = bake(everything, generator.settings)
    _collected_articles.extend(public)
    _collected_settings.update(generator.settings)


def manifest_entry(article: Any, site_url: str) -> dict[str, Any]:
    path = getattr(article, "cached_url", None) or article.url
    url = f"{site_url}/{path}" if site_url else f"/{path}"
    return {
        "thread": article.comment_thread,
        "title": plain_title(article.title),
        "url": url,
        "date": article.date.isoformat(),
        "lang": article.lang,
        "questions": [
            question.as_manifest_entry()
            for question in getattr(article, "reflection_questions", None) or []
        ],
    }


def build_manifest(articles: list[Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The manifest as a dict; articles sorted by thread key, duplicates reported and skipped."""
    site_url = (settings.get("SITEURL") or "").rstrip("/")
    entries: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for article in sorted(articles, key=lambda item: (thread_key(item), item.date)):
        entry = manifest_entry(article, site_url)
        source = getattr(article, "relative_source_path", None) or str(article.source_path)
        if entry["thread"] in entries:
            logger.error(
                "comments: %s and %s share the thread key %r; give one of them its own Slug:",
                sources[entry["thread"]], source, entry["thread"],
            )
            continue
        entries[entry["thread"]] = entry
        sources[entry["thread"]] = source
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "site_name": settings.get("SITENAME", ""),
        "site_url": site_url,
        # The service derives the address of links in mail from this when PUBLIC_URL is unset.
        "service_url": str(settings.get("COMMENTS_SERVICE_URL") or "").rstrip("/"),
        "articles": list(entries.values()),
    }


def write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Write beside the target, then rename: a reader never sees half a manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_manifest(pelican: Any) -> None:
    """finalized receiver: write the manifest into the output folder, then forget the build."""
    settings = _collected_settings or pelican.settings
    try:
        name = settings.get("COMMENTS_MANIFEST_NAME") or DEFAULT_MANIFEST_NAME
        target = Path(pelican.output_path) / name
        write_json_atomically(target, build_manifest(_collected_articles, settings))
        logger.info("comments: wrote %s (%d articles)", target, len(_collected_articles))
    finally:
        _collected_articles.clear()
        _collected_settings.clear()


def keep_absolute_site_url(pelican: Any) -> None:
    """initialized receiver: ``COMMENTS_SITEURL``, the site's absolute address, for pages the
    comment service shows from another origin (comments_layout.html), which must not link
    relative to themselves even when the site is built with RELATIVE_URLS."""
    pelican.settings["COMMENTS_SITEURL"] = (pelican.settings.get("SITEURL") or "").rstrip("/")


def register() -> None:
    """Pelican's plugin entry point."""
    signals.initialized.connect(keep_absolute_site_url)
    signals.article_generator_finalized.connect(collect_articles)
    signals.finalized.connect(write_manifest)
