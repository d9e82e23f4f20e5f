"""Comments plugin for Pelican: the manifest for the comment service (see manifest.py)."""

from .manifest import register

__all__ = ["register"]
