"""Pelican settings for publishing: everything in pelicanconf.py, with production URLs."""

import os
import sys

sys.path.append(os.curdir)
from pelicanconf import *  # noqa: F403

SITEURL = os.environ.get("TELLMEMORE_SITEURL", "https://blog.example.org")
RELATIVE_URLS = False
FEED_DOMAIN = SITEURL
DELETE_OUTPUT_DIRECTORY = True
COMMENTS_SERVICE_URL = os.environ.get(
    "TELLMEMORE_COMMENTS_SERVICE_URL", "https://comments.example.org"
)
# Where `invoke publish` puts the site: a local folder or an rsync target (host:path).
PUBLISH_TARGET = os.environ.get("TELLMEMORE_PUBLISH_TARGET", "public")
REFLECTION_REQUIRED = "error"
COMMENTS_EXPORT = os.environ.get(
    "TELLMEMORE_COMMENTS_EXPORT", COMMENTS_SERVICE_URL + "/api/public-export"
)
