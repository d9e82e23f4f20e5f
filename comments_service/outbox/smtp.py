"""Mail over SMTP: a stored message as MIME, and the transport that hands it to the server.

One SMTP session serves a whole pass of the sender: opened with the first message, opened again
after an error that broke it, and not tried again in that pass once connecting failed (the
pass's other messages are rescheduled with the same reason instead of each waiting for its own
timeout). Settings: SMTP_HOST, SMTP_PORT, SMTP_SECURITY (plain, starttls, ssl), SMTP_USERNAME,
SMTP_PASSWORD, SMTP_CA_FILE, SMTP_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, parseaddr
from typing import Any

from comments_service.models import OutboxMessage
from comments_service.outbox.message import HEADER_UNSAFE, header_text
from comments_service.outbox.transport import Failure

logger = logging.getLogger(__name__)

# Written out as they are, never folded (see _VerbatimHeader).
VERBATIM_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})


class _VerbatimHeader(str):
    """A header written out as it is. The email package folds a long unstructured value that
    has no space in it by turning it into RFC 2047 encoded words, which mail programs do not
    read as List-Unsubscribe's <URL>; a value with a ``name`` and a ``fold`` method is a header
    object to the policy (EmailPolicy.header_store_parse and fold), kept and written verbatim.
    Only for one-line ASCII values (the caller checks)."""

    name: str

    def __new__(cls, name: str, value: str) -> _VerbatimHeader:
        header = super().__new__(cls, value)
        header.name = name
        return header

    def fold(self, *, policy: Any) -> str:
        return f"{self.name}: {self}{policy.linesep}"


def build_email(message: OutboxMessage) -> EmailMessage:
    """The stored message as MIME: text and HTML alternatives, the stored headers (each
    checked again to be one line), Date, and a Message-ID that stays the same on retries."""
    email = EmailMessage(policy=SMTP_POLICY)
    for name, value in message.headers.items():
        if HEADER_UNSAFE.search(name) or HEADER_UNSAFE.search(value) or ":" in name:
            logger.warning("Dropping unsafe header %r of message %s", name[:40], message.id)
            continue
        verbatim = (name.lower() in VERBATIM_HEADERS and value.isascii()
                    and len(name) + len(value) < 990)
        email[name] = _VerbatimHeader(name, value) if verbatim else value
    email["To"] = message.to
    email["Subject"] = header_text(message.subject)
    email["Date"] = formatdate(usegmt=True)
    sender = parseaddr(message.headers.get("From", ""))[1]
    domain = sender.rpartition("@")[2] or "localhost"
    email["Message-ID"] = f"<{message.id}@{domain}>"
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


def _is_permanent(error: Exception) -> bool:
    """A 5xx answer to the message itself (refused recipient or content) will not change."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _text in error.recipients.values())
    return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode("utf-8", "replace") if isinstance(
            error.smtp_error, bytes) else str(error.smtp_error)
        return f"{type(error).__name__}: {error.smtp_code} {text}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        parts = [f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"
                 for code, text in error.recipients.values()]
        return f"SMTPRecipientsRefused: {'; '.join(parts)}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _close_session(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


class SmtpTransport:
    """Hands mail to the SMTP server, over one session per pass (see the module docstring)."""

    max_attempts_setting = "SMTP_MAX_ATTEMPTS"
    retry_base_setting = "SMTP_RETRY_BASE_SECONDS"
    refused_prefix = "Refused by the mail server"
    honours_unsubscribe = True

    def __init__(self) -> None:
        self.smtp: smtplib.SMTP | None = None
        self.down: str | None = None  # why connecting failed in this pass: not tried again

    def deliver(self, config: Mapping[str, Any], message: OutboxMessage) -> Failure | None:
        """Hand the message to the SMTP server: None when it took it, else (the error, whether
        it is permanent). A server that cannot be reached is not tried again in this pass."""
        if self.down is not None:
            return self.down, False
        try:
            smtp = self._session(config)
        except (smtplib.SMTPException, OSError) as failure:
            self.down = f"Could not connect: {_describe(failure)}"
            return self.down, False
        try:
            smtp.send_message(build_email(message),
                              from_addr=parseaddr(message.headers.get("From", ""))[1],
                              to_addrs=[message.to])
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as failure:
            return _describe(failure), _is_permanent(failure)  # the session is still good
        except (smtplib.SMTPException, OSError) as failure:
            self._drop_session()
            return _describe(failure), False
        return None

    def close(self) -> None:
        if self.smtp is not None:
            _close_session(self.smtp)
            self.smtp = None

    def _session(self, config: Mapping[str, Any]) -> smtplib.SMTP:
        """The pass's session, opened (and secured, and signed in) on first use."""
        if self.smtp is not None:
            return self.smtp
        host, port = str(config["SMTP_HOST"]), int(config["SMTP_PORT"])
        timeout = float(config["SMTP_TIMEOUT_SECONDS"])
        if config["SMTP_SECURITY"] == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                                 context=_tls_context(config))
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        try:
            if config["SMTP_SECURITY"] == "starttls":
                smtp.starttls(context=_tls_context(config))
            if config.get("SMTP_USERNAME"):
                smtp.login(str(config["SMTP_USERNAME"]), str(config.get("SMTP_PASSWORD") or ""))
        except BaseException:
            _close_session(smtp)
            raise
        self.smtp = smtp
        return smtp

    def _drop_session(self) -> None:
        """Forget a session an error broke: the next message opens a new one."""
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None


def _tls_context(config: Mapping[str, Any]) -> ssl.SSLContext:
    """The system's trust, or SMTP_CA_FILE's (a private relay)."""
    ca_file = str(config.get("SMTP_CA_FILE") or "") or None
    return ssl.create_default_context(cafile=ca_file)
