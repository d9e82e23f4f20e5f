"""Importers from other comment systems: Isso (SQLite), Disqus (XML export), WordPress (WXR).

Each reader module turns its source into :class:`source.SourceData` (threads and comments as
the source has them, every field checked); :func:`common.plan_import` matches the threads to the
site's articles (``matching.py``) and decides every comment's id, parent, state and rendered
body; only then does :func:`common.write_plan` store anything. See ``common.py`` for the rules.
"""

from comments_service.importers.common import (
    ImportOptions,
    ImportPlan,
    plan_import,
    write_plan,
)
from comments_service.importers.source import SourceComment, SourceData, SourceThread

__all__ = [
    "ImportOptions",
    "ImportPlan",
    "SourceComment",
    "SourceData",
    "SourceThread",
    "plan_import",
    "write_plan",
]
