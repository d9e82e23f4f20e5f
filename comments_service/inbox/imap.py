"""The author's mailbox over IMAP (stdlib imaplib): always TLS, from the start (imaps://) or by
STARTTLS (imap://), with the system's CAs or REPLY_MAIL_CA_FILE, and a timeout on every step.

Messages are read with BODY.PEEK, which leaves them unread: only :meth:`Mailbox.mark_seen`
marks one seen, after the store has recorded it (worker.py). Messages are named by UID, which
stays the same for the whole session (and across sessions while UIDVALIDITY holds).
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

IMAPS_PORT = 993
IMAP_PORT = 143
# The largest message taken from the mailbox; a reply is a few kilobytes, and the rest of a
# bigger one (attachments) is not read.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024
UID_IN_RESPONSE = re.compile(rb"\bUID (\d+)")


class MailboxError(Exception):
    """The mailbox cannot be reached, signed in to or read (the message says which)."""


@dataclass(frozen=True)
class MailboxPlace:
    """Where the mailbox is: REPLY_MAIL_IMAP_URL taken apart."""

    tls: str  # "ssl" (imaps://) or "starttls" (imap://)
    host: str
    port: int
    folder: str


def mailbox_place(url: str) -> MailboxPlace:
    """REPLY_MAIL_IMAP_URL (checked by config.imap_url) taken apart; the folder is INBOX
    unless the path names another."""
    parts = urlsplit(url)
    secure = parts.scheme == "imaps"
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return MailboxPlace("ssl" if secure else "starttls", parts.hostname or "",
                        parts.port or (IMAPS_PORT if secure else IMAP_PORT), folder)


def _quoted(folder: str) -> str:
    """An IMAP quoted string (folder names may hold spaces)."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Mailbox:
    """One IMAP session with the author's mailbox, as a context manager."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.place = mailbox_place(str(config["REPLY_MAIL_IMAP_URL"]))
        self._username = str(config["REPLY_MAIL_USERNAME"])
        self._password = str(config["REPLY_MAIL_PASSWORD"])
        self._timeout = float(config["REPLY_MAIL_TIMEOUT_SECONDS"])
        self._ca_file = str(config.get("REPLY_MAIL_CA_FILE") or "") or None
        self._imap: imaplib.IMAP4 | None = None

    def __enter__(self) -> Mailbox:
        place = self.place
        where = f"{place.host}:{place.port}"
        try:
            context = ssl.create_default_context(cafile=self._ca_file)
        except (OSError, ssl.SSLError) as error:
            raise MailboxError(f"REPLY_MAIL_CA_FILE cannot be read: {error}") from error
        try:
            if place.tls == "ssl":
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    place.host, place.port, ssl_context=context, timeout=self._timeout)
            else:
                imap = imaplib.IMAP4(place.host, place.port, timeout=self._timeout)
                self._imap = imap
                imap.starttls(ssl_context=context)
            self._imap = imap
        except (OSError, imaplib.IMAP4.error) as error:
            self._close()
            raise MailboxError(f"Cannot open a TLS connection to {where}: {error}") from error
        try:
            imap.login(self._username, self._password)
        except (OSError, imaplib.IMAP4.error) as error:
            self._close()
            raise MailboxError(f"{where} refused the sign-in of {self._username!r}: "
                               f"{_text(error)}") from error
        try:
            status, answer = imap.select(_quoted(place.folder))
        except (OSError, imaplib.IMAP4.error) as error:
            self._close()
            raise MailboxError(f"Cannot open the folder {place.folder!r}: {error}") from error
        if status != "OK":
            self._close()
            raise MailboxError(f"Cannot open the folder {place.folder!r}: {_text(answer)}")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._close(logout=True)

    def _close(self, logout: bool = False) -> None:
        imap, self._imap = self._imap, None
        if imap is None:
            return
        try:
            if logout:
                imap.logout()
            else:
                imap.shutdown()
        except (OSError, imaplib.IMAP4.error):
            pass  # the connection is going away anyway

    def _command(self, *args: Any) -> list[Any]:
        if self._imap is None:
            raise MailboxError("The mailbox is not open")
        try:
            status, data = self._imap.uid(*args)
        except (OSError, imaplib.IMAP4.error) as error:
            raise MailboxError(f"IMAP {args[0]} failed: {error}") from error
        if status != "OK":
            raise MailboxError(f"IMAP {args[0]} failed: {_text(data)}")
        return data

    def unseen(self) -> list[str]:
        """UIDs of the messages not marked seen, oldest first."""
        data = self._command("SEARCH", None, "UNSEEN")
        return [uid.decode("ascii") for uid in (data[0] or b"").split()]

    def headers(self, uids: list[str], fields: str = "MESSAGE-ID") -> dict[str, bytes]:
        """Some header fields of each message (UID → raw header lines), leaving it unread."""
        if not uids:
            return {}
        data = self._command("FETCH", ",".join(uids), f"(BODY.PEEK[HEADER.FIELDS ({fields})])")
        found: dict[str, bytes] = {}
        for item in data:
            if isinstance(item, tuple) and (match := UID_IN_RESPONSE.search(item[0])):
                found[match.group(1).decode("ascii")] = item[1]
        return found

    def fetch(self, uid: str) -> bytes:
        """The whole message (at most MAX_MESSAGE_BYTES of it), leaving it unread."""
        data = self._command("FETCH", uid, f"(BODY.PEEK[]<0.{MAX_MESSAGE_BYTES}>)")
        for item in data:
            if isinstance(item, tuple):
                return bytes(item[1])
        raise MailboxError(f"Message {uid} has gone from the mailbox")

    def mark_seen(self, uid: str) -> None:
        """Mark one message seen (read): it is not looked at again."""
        self._command("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = b" ".join(item for item in value if isinstance(item, bytes))
    if isinstance(value, Exception):
        value = value.args[0] if value.args else str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
