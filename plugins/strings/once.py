"""``{% once key %}…{% endonce %}``: a fragment of a template rendered once per build.

Part of what every page shows is the same on every page of a build: the footer (the site's
name, its feed, the listening figures, the credit) and the feed links in ``<head>``. Jinja
renders such a fragment again for each page, a thousand pages a thousand times; inside
``once`` it is rendered the first time and its text reused (issue 19: the theme's templates
were the build's overhead over vanilla Pelican).

``key`` is what the fragment depends on besides the build's settings and globals; write
``SITEURL`` for a fragment with links, since with ``RELATIVE_URLS`` it is relative to each
page's folder (and ``comments_layout.html`` sets its own). Without a key the fragment depends
on nothing that varies from page to page. What a fragment must not use: the page's own
variables (``article``, ``output_file``, loop variables...).

The texts are kept by the extension, so by one Jinja environment: Pelican makes new
environments for every build, and for every rebuild of ``pelican --autoreload``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ClassVar

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser


class Once(Extension):
    """The ``once`` tag (module docstring)."""

    tags: ClassVar[set[str]] = {"once"}

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.fragments: dict[tuple[str, Hashable], str] = {}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        key: nodes.Expr = nodes.Const(None)
        if parser.stream.current.type != "block_end":
            key = parser.parse_expression()
        body = parser.parse_statements(("name:endonce",), drop_needle=True)
        # Where the fragment is written tells two fragments with the same key apart.
        where = nodes.Const(f"{parser.name}:{lineno}")
        call = self.call_method("_fragment", [where, key])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _fragment(self, where: str, key: Hashable, caller: Callable[[], str]) -> str:
        text = self.fragments.get((where, key))
        if text is None:
            text = self.fragments[where, key] = caller()
        return text
