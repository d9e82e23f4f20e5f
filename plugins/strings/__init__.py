"""Interface strings plugin for Pelican: translated theme and widget text (see strings.py)."""

from .strings import register

__all__ = ["register"]
