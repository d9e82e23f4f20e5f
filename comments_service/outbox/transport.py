"""What the sender asks of a way of delivering messages (SMTP mail, webhook POSTs).

The sender makes one transport object per pass, the first time a message of its kind comes up,
hands it each claimed message of that kind, and closes it when the pass ends. What a transport
returns decides the message's fate: None is delivered; a failure is retried with back-off, or
failed at once when it is permanent or the attempts are used up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from comments_service.models import OutboxMessage

# What went wrong, and whether it is permanent (trying again cannot help).
Failure = tuple[str, bool]


class Transport(Protocol):
    """One way of delivering a claimed message, for the length of one pass."""

    # The settings that bound its retries: the number of attempts and the first back-off.
    max_attempts_setting: str
    retry_base_setting: str
    # How a permanent refusal reads in the outbox: "<refused_prefix>: <what the receiver said>".
    refused_prefix: str
    # Mail to a person: an address that unsubscribed gets nothing, even what was queued before.
    honours_unsubscribe: bool

    def deliver(self, config: Mapping[str, Any], message: OutboxMessage) -> Failure | None:
        """Hand over one message: None when the receiver took it, else the failure."""
        ...

    def close(self) -> None:
        """The pass is over: let go of any connection kept for it."""
        ...
