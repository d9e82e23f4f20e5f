"""The shape of comments_service/ that import-linter cannot see: no module reaches into
another's private names, no module grows past 600 lines, every module says what it is for,
every `flask` command is registered in cli/, and the Pelican plugins never import the service
(docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from comments_service.cli import COMMANDS

PACKAGE = Path(__file__).resolve().parent.parent / "comments_service"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_a_module_keeps_to_one_job(path: Path):
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    assert ast.get_docstring(tree), "a module docstring says what the module is for"
    assert len(text.splitlines()) <= MAX_LINES
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "comments_service"):
            private = [alias.name for alias in node.names if alias.name.startswith("_")]
            assert not private, f"imports private names of {node.module}: {private}"
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_command":
            assert module_name(path) == "comments_service.cli", \
                "commands are registered in cli/__init__.py only"


PLUGINS = sorted((PACKAGE.parent / "plugins").rglob("*.py"))


@pytest.mark.parametrize("path", PLUGINS, ids=lambda path: str(path.relative_to(PACKAGE.parent)))
def test_a_pelican_plugin_never_imports_the_service(path: Path):
    """The site builds without the service installed: plugins read its export, never its code
    (every import statement counts, those inside functions too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        assert not any(name.split(".")[0] == "comments_service" for name in names), path


def test_every_command_is_one_of_the_cli_packages(app):
    registered = {command.name for command in app.cli.commands.values()}
    assert {command.name for command in COMMANDS} <= registered
    for command in COMMANDS:
        callback = getattr(command, "callback", None)
        module = callback.__module__ if callback else type(command).__module__
        assert module.startswith(("comments_service.cli.", "comments_service.importers.")), (
            command.name, module)
