"""Comments plugin for Pelican: the manifest for the comment service (manifest.py) and the
published comments baked into pages (baking.py)."""

from .manifest import register

__all__ = ["register"]
