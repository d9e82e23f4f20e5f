"""Reflection questions plugin for Pelican: see reflection.py."""

from .reflection import ReflectionQuestion, register

__all__ = ["ReflectionQuestion", "register"]
