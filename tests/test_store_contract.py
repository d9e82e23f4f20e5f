"""The store's contract: both backends implement every protocol of store.base, with the same
parameters as the protocol declares; and the store's modules depend only downward (the
backends on store.base, store.composed, store.errors and store.files, never on each other or
on Flask)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from comments_service.store import (
    STORE_PROTOCOLS,
    AddressStore,
    AuthorStore,
    CommentStore,
    InboxStore,
    OutboxStore,
    RequestStore,
    RequestTally,
    Store,
    VectorStore,
)

pytestmark = pytest.mark.both_stores

STORE_PACKAGE = Path(__file__).resolve().parent.parent / "comments_service" / "store"
# The modules of the store proper: backup.py, copy.py and transfer.py are services on top of
# it (they use the public names only) and are checked by their own rules.
CORE_MODULES = ["__init__.py", "base.py", "errors.py", "files.py", "factory.py"]
BACKENDS = ["tinydb", "postgres"]
# What every backend may import from the store besides its own package.
SHARED = {"comments_service.store.base", "comments_service.store.composed",
          "comments_service.store.errors", "comments_service.store.files",
          "comments_service.store.kept", "comments_service.store.request_summaries"}


def members(protocol: type) -> set[str]:
    """The public methods a protocol declares (its own and those of the protocols it joins)."""
    return {name for klass in protocol.__mro__ if klass.__module__ == Store.__module__
            for name, value in vars(klass).items()
            if callable(value) and not name.startswith("_")}


def parameters(function: object) -> list[tuple[str, object, object]]:
    """(name, kind, default) of each parameter: what a caller relies on."""
    return [(parameter.name, parameter.kind, parameter.default)
            for parameter in inspect.signature(function).parameters.values()]


def broken_promises(implementation: type, protocol: type) -> list[str]:
    """What ``implementation`` lacks or declares otherwise than ``protocol``, checked by
    structure (not by which classes it names as bases)."""
    problems = []
    for name in sorted(members(protocol)):
        found = getattr(implementation, name, None)
        if found is None or getattr(found, "__isabstractmethod__", False):
            problems.append(f"{name}: missing")
        elif parameters(found) != parameters(getattr(protocol, name)):
            problems.append(f"{name}: {inspect.signature(found)} is not "
                            f"{inspect.signature(getattr(protocol, name))}")
    return problems


def test_the_protocols_cover_the_store() -> None:
    """Store is exactly its protocols joined, plus close; no method is in two protocols."""
    declared = [members(protocol) for protocol in STORE_PROTOCOLS]
    assert set(STORE_PROTOCOLS) == {CommentStore, AuthorStore, OutboxStore, AddressStore,
                                    RequestStore, VectorStore, InboxStore}
    assert sum(len(names) for names in declared) == len(set().union(*declared))
    assert members(Store) == set().union(*declared) | {"close"}


@pytest.mark.parametrize("protocol", [*STORE_PROTOCOLS, Store],
                         ids=lambda protocol: protocol.__name__)
def test_each_backend_keeps_every_promise_of_each_protocol(store, protocol: type) -> None:
    assert isinstance(store, protocol)
    assert broken_promises(type(store), protocol) == []


def test_the_request_tally_keeps_its_promises(store) -> None:
    with store.request_tally() as tally:
        assert isinstance(tally, RequestTally)
        assert isinstance(tally.log_id, str)
        assert broken_promises(type(tally), RequestTally) == []


def test_a_missing_method_is_found() -> None:
    """The structural check itself: an outbox without claims, or with other parameters."""

    class Partial:
        def add_message(self, message): ...
        def get_message(self, message_id): ...
        def update_message(self, message_id, change): ...
        def list_messages(self, statuses=None, *, limit=50, offset=0): ...
        def messages_to(self, address, since=None, open_only=False): ...

    problems = broken_promises(Partial, OutboxStore)
    assert [problem.partition(":")[0] for problem in problems] == [
        "claim_messages", "messages_to"]
    assert problems[0] == "claim_messages: missing"


# -- dependencies ------------------------------------------------------------------------------


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in the file, also those inside functions; a relative
    import is made absolute."""
    package = ".".join(path.relative_to(STORE_PACKAGE.parent.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            found.append((module, [alias.name for alias in node.names]))
    return found


def modules_of(folder: str) -> list[Path]:
    return sorted((STORE_PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_backend_imports_only_the_shared_modules_and_its_own(backend: str) -> None:
    own = f"comments_service.store.{backend}"
    wrong = [
        f"{path.name}: {module}" for path in modules_of(backend)
        for module, names in imports_of(path)
        if module.startswith("comments_service.store")
        and not (module == own or module.startswith(f"{own}.") or module in SHARED
                 or (module == "comments_service.store" and names == ["files"]))
    ]
    assert wrong == []


def test_the_store_knows_no_flask_and_no_private_names() -> None:
    paths = [STORE_PACKAGE / name for name in CORE_MODULES]
    paths += [path for backend in BACKENDS for path in modules_of(backend)]
    flask = [f"{path.name}: {module}" for path in paths for module, _names in imports_of(path)
             if module.split(".")[0] in {"flask", "click", "werkzeug"}]
    private = [f"{path.name}: {module}.{name}" for path in paths
               for module, names in imports_of(path) if module.startswith("comments_service")
               for name in names if name.startswith("_")]
    assert flask == []
    assert private == []
