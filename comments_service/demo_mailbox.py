"""The demo's mailbox: a mail sink on loopback that keeps every message it is handed as one file
in a folder, and the reading of that folder for the moderation "Mailbox" page.

`invoke demo` starts the sink (``start_sink``) and points the service's SMTP settings at it, so
the demo's mail (address confirmations, reply notifications, the author's digest) is delivered
for real, through the outbox and SMTP, instead of failing against a server that is not there.
The service shows the folder (setting ``DEMO_MAILBOX``) at /moderate/mailbox. Nothing else
uses this module: it is a stand-in for the reader's and the author's inboxes.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

MESSAGE_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{6}-[A-Za-z0-9_-]{6,16}$")
SUFFIX = ".eml"


@dataclass(frozen=True)
class MailboxEntry:
    """One kept message, as the Mailbox page lists it."""

    id: str
    to: str
    subject: str
    sender: str
    received: datetime


class MailboxFolder:
    """The folder of kept messages: one ``<received>-<random>.eml`` file each."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def add(self, raw: bytes) -> str:
        """Keep one message (written whole, then renamed into place); returns its id."""
        self.path.mkdir(parents=True, exist_ok=True)
        message_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_urlsafe(6)}"
        descriptor, temporary = tempfile.mkstemp(dir=self.path, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(raw)
            os.replace(temporary, self.path / f"{message_id}{SUFFIX}")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return message_id

    def get(self, message_id: str) -> EmailMessage | None:
        """The message with this id; None for an id that is not one (or not kept)."""
        if not MESSAGE_ID_RE.match(message_id):
            return None
        try:
            raw = (self.path / f"{message_id}{SUFFIX}").read_bytes()
        except OSError:
            return None
        return parse(raw)

    def entries(self) -> list[MailboxEntry]:
        """Every kept message, newest first."""
        try:
            files = [item for item in self.path.iterdir() if item.suffix == SUFFIX]
        except OSError:
            return []
        found = []
        for item in files:
            if not MESSAGE_ID_RE.match(item.stem):
                continue
            try:
                message = parse(item.read_bytes())
            except OSError:
                continue
            found.append(MailboxEntry(
                id=item.stem, to=str(message.get("To", "")),
                subject=str(message.get("Subject", "")), sender=str(message.get("From", "")),
                received=received_at(item.stem, message),
            ))
        found.sort(key=lambda entry: entry.id, reverse=True)
        return found


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # what policy.default builds
    return message


def received_at(message_id: str, message: EmailMessage) -> datetime:
    """When the sink kept the message (from its id; its Date header if the id cannot say)."""
    try:
        return datetime.strptime(message_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return parsedate_to_datetime(str(message["Date"]))


def text_of(message: EmailMessage) -> str:
    """The message's plain-text part (what the Mailbox page shows, links made clickable)."""
    part = message.get_body(("plain",))
    if part is None:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


class SinkHandler:
    """An aiosmtpd handler: every message accepted is kept in ``folder``, then announced."""

    def __init__(self, folder: MailboxFolder,
                 announce: Callable[[str, EmailMessage], None] | None = None) -> None:
        self.folder = folder
        self.announce = announce

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message_id = self.folder.add(raw if isinstance(raw, bytes) else raw.encode("utf-8"))
        if self.announce is not None:
            self.announce(message_id, parse(self.folder.path.joinpath(
                f"{message_id}{SUFFIX}").read_bytes()))
        return "250 OK: kept in the demo mailbox"


def start_sink(folder: MailboxFolder, host: str, port: int,
               announce: Callable[[str, EmailMessage], None] | None = None) -> Any:
    """Start the sink in a thread of this process; returns the aiosmtpd Controller (``stop()``
    ends it)."""
    from aiosmtpd.controller import Controller  # only the demo runs a mail server

    controller = Controller(SinkHandler(folder, announce), hostname=host, port=port)
    controller.start()
    return controller
