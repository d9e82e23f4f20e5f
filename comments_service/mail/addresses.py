"""Mail addresses as mail sees them: what counts as one we may write to, how one is shown on a
public page (masked), and the address mail comes from."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from comments_service.comments.validation import EMAIL_RE, MAX_EMAIL
from comments_service.outbox.message import HEADER_UNSAFE, header_text


def is_mail_address(address: Any) -> bool:
    """One address, as the comment form accepts them, and nothing a header could break on."""
    return (isinstance(address, str) and len(address) <= MAX_EMAIL
            and EMAIL_RE.match(address) is not None and HEADER_UNSAFE.search(address) is None)


def mask_address(address: str) -> str:
    """ro***@example.org: enough for its owner to recognise, little for anyone else."""
    local, _, domain = address.partition("@")
    return f"{local[:2]}***@{domain}"


def from_address(config: Mapping[str, Any], base_url: str) -> str:
    """The bare sender address: SMTP_FROM's, else no-reply@ the public host."""
    configured = parseaddr(header_text(str(config.get("SMTP_FROM") or ""), 254))[1]
    if is_mail_address(configured):
        return configured
    host = urlsplit(base_url).hostname or "localhost"
    return f"no-reply@{host}"
