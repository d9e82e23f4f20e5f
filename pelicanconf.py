"""Pelican settings for the tellmemore demo site (development build).

`publishconf.py` imports everything here and overrides only what production changes.
"""

AUTHOR = "Ada Listener"
SITENAME = "Tell Me More"
SITESUBTITLE = "A blog that listens: every comment gets an individual reply"
# Absolute, so feeds and the manifest carry full URLs; pages still link relatively.
SITEURL = "http://127.0.0.1:8000"

PATH = "content"
ARTICLE_PATHS = ["articles"]
PAGE_PATHS = ["pages"]
STATIC_PATHS = ["images", "extra/robots.txt"]
EXTRA_PATH_METADATA = {"extra/robots.txt": {"path": "robots.txt"}}

TIMEZONE = "UTC"
DEFAULT_LANG = "en"
DEFAULT_DATE_FORMAT = "%d %B %Y"

THEME = "theme"
PLUGIN_PATHS = ["plugins"]
PLUGINS = ["reflection", "comments", "strings"]

# Feeds: Atom for the whole site, per category, per tag and per author.
FEED_DOMAIN = SITEURL
FEED_ALL_ATOM = "feeds/all.atom.xml"
CATEGORY_FEED_ATOM = "feeds/category/{slug}.atom.xml"
TAG_FEED_ATOM = "feeds/tag/{slug}.atom.xml"
AUTHOR_FEED_ATOM = "feeds/author/{slug}.atom.xml"
AUTHOR_FEED_RSS = None
TRANSLATION_FEED_ATOM = None
RSS_FEED_SUMMARY_ONLY = True

DEFAULT_PAGINATION = 5
PAGINATION_PATTERNS = (
    (1, "{url}", "{save_as}"),
    (2, "{base_name}/page/{number}/", "{base_name}/page/{number}/index.html"),
)

ARTICLE_URL = "{date:%Y}/{slug}/"
ARTICLE_SAVE_AS = "{date:%Y}/{slug}/index.html"
PAGE_URL = "{slug}/"
PAGE_SAVE_AS = "{slug}/index.html"
CATEGORY_URL = "category/{slug}/"
CATEGORY_SAVE_AS = "category/{slug}/index.html"
TAG_URL = "tag/{slug}/"
TAG_SAVE_AS = "tag/{slug}/index.html"
AUTHOR_URL = "author/{slug}/"
AUTHOR_SAVE_AS = "author/{slug}/index.html"
ARCHIVES_SAVE_AS = "archives/index.html"
ARCHIVES_URL = "archives/"
CATEGORIES_SAVE_AS = "categories/index.html"
CATEGORIES_URL = "categories/"
TAGS_SAVE_AS = "tags/index.html"
TAGS_URL = "tags/"
AUTHORS_SAVE_AS = "authors/index.html"
AUTHORS_URL = "authors/"
YEAR_ARCHIVE_SAVE_AS = "{date:%Y}/index.html"
YEAR_ARCHIVE_URL = "{date:%Y}/"

RELATIVE_URLS = True
DISPLAY_PAGES_ON_MENU = True
DISPLAY_CATEGORIES_ON_MENU = False
MENUITEMS = (("Archives", "archives/"), ("Tags", "tags/"))

# reflection plugin: the closing section whose list items are the questions.
REFLECTION_HEADINGS = ["Questions for reflection", "Questions for Reflection and Comment"]
# Questions shown under articles that have none of their own (list of strings).
REFLECTION_DEFAULT_QUESTIONS: list[str] = []
# "warn", "error" or False: report articles that end without questions.
REFLECTION_REQUIRED = "warn"

# comments plugin: where the comment service answers (the demo runs it here).
COMMENTS_SERVICE_URL = "http://127.0.0.1:5000"
COMMENTS_MANIFEST_NAME = "comments-manifest.json"
# The site's frame for the service's reader pages (the plain comment form), written beside the
# manifest: the service reads it from there (comments_service/api/layout.py).
DIRECT_TEMPLATES = ["index", "tags", "categories", "authors", "archives", "comments_layout"]
COMMENTS_LAYOUT_SAVE_AS = "comments-layout.html"
# Published comments baked into the pages at build time: the service's public export (URL) or
# a file written by `flask --app comments_service export-public`. Unreachable: built without.
COMMENTS_EXPORT = COMMENTS_SERVICE_URL + "/api/public-export"
COMMENTS_EXPORT_TIMEOUT = 3

MARKDOWN = {
    "extension_configs": {
        "markdown.extensions.codehilite": {"css_class": "highlight"},
        "markdown.extensions.extra": {},
        "markdown.extensions.meta": {},
        "markdown.extensions.toc": {},
    },
    "output_format": "html5",
}

# Builds are fast enough without the content cache, and the cache would keep
# stale reflection questions across plugin changes during development.
LOAD_CONTENT_CACHE = False
DELETE_OUTPUT_DIRECTORY = False
