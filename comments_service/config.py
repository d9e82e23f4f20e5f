"""The service's settings: one table of every setting with its default and check, read once
at start in the contract's order: defaults, the instance config.py, TELLMEMORE_* variables,
then the mapping passed to create_app (DESIGN.md, "Configuration contract").

Values from the environment arrive as text, so each parser takes text as well as the typed
value. A bad value raises ConfigError naming the setting. No other module keeps defaults of
its own. Nothing of Flask is imported at run time, so Flask-free layers (the store) may use
ConfigError.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
import limits

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger(__name__)

ENV_PREFIX = "TELLMEMORE"
SECRET_KEY_FILE = "secret_key"
TRUE_WORDS = frozenset({"1", "true", "on", "yes"})
FALSE_WORDS = frozenset({"0", "false", "off", "no", ""})
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
TALLY_EMBEDDERS = ("lexical", "auto", "model")
RATE_LIMIT_OFF = "off"

Parser = Callable[[str, Any], Any]


class ConfigError(click.ClickException):
    """A setting has a value the service cannot work with. A ClickException, so that a
    `flask` command says it in one `Error:` line instead of a traceback."""


@dataclass(frozen=True)
class Setting:
    """One setting: its default and the parser that checks (and converts) a value."""

    name: str
    default: Any
    parse: Parser
    help: str


# --- parsers: each returns the value to keep, or raises ConfigError naming the setting --------


def parse_switch(value: Any) -> bool | None:
    """true/false, on/off, yes/no, 1/0 (any case, "" is false), or a bool or int; None for
    anything else. The one reading of true and false, for settings and form fields alike."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    return None


def boolean(name: str, value: Any) -> bool:
    """A setting that is on or off (see parse_switch)."""
    switch = parse_switch(value)
    if switch is None:
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    return switch


def number(minimum: float | None = None, *, above: float | None = None,
           maximum: float | None = None, whole: bool = False) -> Parser:
    """A finite number (an int with ``whole``) within the bounds given."""

    def parse(name: str, value: Any) -> float | int:
        kind = "whole number" if whole else "number"
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a {kind}, not {value!r}")
        try:
            parsed = float(value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{name} must be a {kind}, not {value!r}") from error
        if not math.isfinite(parsed) or (whole and not parsed.is_integer()):
            raise ConfigError(f"{name} must be a finite {kind}, not {value!r}")
        if minimum is not None and parsed < minimum:
            raise ConfigError(f"{name} must be at least {minimum:g}, not {value!r}")
        if above is not None and parsed <= above:
            raise ConfigError(f"{name} must be more than {above:g}, not {value!r}")
        if maximum is not None and parsed > maximum:
            raise ConfigError(f"{name} must be at most {maximum:g}, not {value!r}")
        return int(parsed) if whole else parsed

    return parse


def choice(*options: str) -> Parser:
    """One of ``options``, exactly."""

    def parse(name: str, value: Any) -> str:
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}, not {value!r}")
        return value

    return parse


def text(name: str, value: Any) -> str:
    """Any text; None is empty."""
    return "" if value is None else str(value)


def optional(name: str, value: Any) -> Any:
    """Kept as given (None allowed): for settings Flask and its extensions read."""
    return value


def text_list(name: str, value: Any) -> list[str]:
    """A list of text, or one string of comma-separated items; blanks dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{name} must be a list or comma-separated text, not {value!r}")
    return [str(item).strip() for item in value if str(item).strip()]


def http_url(name: str, value: Any) -> str:
    """Empty, or an http(s) URL."""
    url = str(value or "").strip()
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{name} must be an http(s) URL, not {url!r}")
    return url


def http_urls(name: str, value: Any) -> list[str]:
    """A list of http(s) URLs with a host (or comma-separated text)."""
    urls = text_list(name, value)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{name}: {url!r} is not an http(s) URL")
    return urls


def rate_limit(name: str, value: Any) -> str:
    """A Flask-Limiter limit ("5/minute", "10 per hour; 100 per day"), or off ("", "none")."""
    text = str(value or "").strip()
    if text.lower() in ("off", "", "none"):
        return RATE_LIMIT_OFF
    try:
        limits.parse_many(text)
    except ValueError as error:
        raise ConfigError(f"{name} must be a limit such as 5/minute, or off; not {text!r}"
                          ) from error
    return text


def one_limit(name: str, value: Any) -> str:
    """One limit such as "10 per 15 minutes"."""
    text = str(value or "").strip()
    try:
        limits.parse(text)
    except ValueError as error:
        raise ConfigError(f"{name} must be a limit such as 10 per 15 minutes, not {text!r}"
                          ) from error
    return text


def store_url(name: str, value: Any) -> str:
    """Empty (the embedded store) or a PostgreSQL URL."""
    url = str(value or "").strip()
    if url and not url.startswith(POSTGRES_SCHEMES):
        raise ConfigError(
            f"{name} must be empty (the embedded store in STORE_PATH) or a PostgreSQL URL "
            f"(postgresql://user@host/database), not {url.split('://')[0]!r}…")
    return url


def proxies(name: str, value: Any) -> int:
    """A whole number of proxies, 0 or more."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError(f"{name} must be a whole number of proxies (0 or more), not {value!r}")


def imap_url(name: str, value: Any) -> str:
    """Empty (no replies by email), or imaps://host[:port][/mailbox] (TLS from the start) or
    imap://host[:port][/mailbox] (STARTTLS, required): the password never crosses in clear.
    Credentials are settings of their own, never part of the URL (it is shown in logs)."""
    url = str(value or "").strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps"):
        raise ConfigError(f"{name} must start with imaps:// (TLS) or imap:// (STARTTLS), "
                          f"not {url.split('://')[0]!r}")
    if parts.username or parts.password:
        raise ConfigError(f"{name} must not hold a user name or password: set "
                          "REPLY_MAIL_USERNAME and REPLY_MAIL_PASSWORD instead")
    try:
        port = parts.port
    except ValueError as error:
        raise ConfigError(f"{name} has a bad port: {url!r}") from error
    if not parts.hostname or port == 0:
        raise ConfigError(f"{name} needs a host, as in imaps://imap.example.org/INBOX")
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} takes no ?query or #fragment: {url!r}")
    return url


def reply_mail_address(name: str, value: Any) -> str:
    """Empty, or one mail address without a +tag (the service adds its own per comment)."""
    address = str(value or "").strip()
    if address and ("+" in address.partition("@")[0] or "@" not in address
                    or any(char.isspace() or char in "<>,;\"\\" for char in address)):
        raise ConfigError(f"{name} must be one plain address such as replies@example.org "
                          f"(without a +tag), not {address!r}")
    return address


def reply_rate(name: str, value: Any) -> float:
    """A share above 0 and at most 1."""
    rate = number()(name, value)
    if not 0 < rate <= 1:
        raise ConfigError(f"{name} must be a share between 0 and 1 (0.9 = 90 %), not {value!r}")
    return rate


# --- the table --------------------------------------------------------------------------------

SETTINGS: tuple[Setting, ...] = (
    # The site and the store
    Setting("MANIFEST", "output/comments-manifest.json", text,
            "Path or URL of the comments-manifest.json the site build writes."),
    Setting("MANIFEST_REFRESH_SECONDS", 60, number(0),
            "How often a manifest URL is fetched again (a file is checked on every request)."),
    Setting("STORE_PATH", "", text,
            "Folder of the embedded store; empty: `store` in the instance folder."),
    Setting("STORE_URL", "", store_url,
            "Empty: the embedded TinyDB store. postgresql://user@host/database: the "
            "PostgreSQL store, for several instances (schema: `flask … init`)."),
    Setting("STORE_POOL_SIZE", 10, number(1, whole=True),
            "PostgreSQL: connections each service process may hold at most."),
    Setting("STORE_POOL_TIMEOUT_SECONDS", 10.0, number(above=0),
            "PostgreSQL: how long a request waits for a free connection before a 503."),
    # Readers' side
    Setting("SITE_ORIGINS", [], text_list,
            "Origins (scheme://host[:port]) of the site(s) whose pages may call the API."),
    Setting("PUBLISH_POLICY", "after_reply", choice("after_reply", "immediately"),
            "after_reply: public with the author's reply; immediately: public at once."),
    Setting("RATE_LIMIT", "5/minute", rate_limit,
            "Comments per client on the posting routes (Flask-Limiter syntax), or `off`."),
    Setting("RATE_LIMIT_STORAGE_URI", "", text,
            "Where rate-limit and sign-in counts live. Empty: a file in the instance folder "
            "that every worker on this machine shares; redis://… to share them between "
            "machines; memory:// counts per process."),
    Setting("RATE_LIMIT_KEY_PREFIX", "tellmemore", text,
            "Prefix of this site's keys in a shared rate-limit storage."),
    Setting("TRUSTED_PROXIES", 0, proxies,
            "Reverse proxies in front of the service whose X-Forwarded-* headers to trust."),
    Setting("MAX_CONTENT_LENGTH", 64 * 1024, number(1, whole=True),
            "Largest request body accepted (bytes); larger ones get 413."),
    Setting("PUBLIC_LISTENING", "on", choice("on", "off"),
            "Readers see how the author answers: on each article how many of its comments are "
            "answered, on the site the share answered and the median time to reply."),
    Setting("LISTENING_CACHE_SECONDS", 60.0, number(0),
            "How old the site's listening figures may be in GET /api/listening and each "
            "thread payload: each process works them out (reading every comment) at most "
            "once in this time."),
    Setting("SPAM_CHECKS", "on", choice("on", "off"),
            "The honeypot, form-timing and link-count checks."),
    Setting("SPAM_MIN_SECONDS", 3.0, number(0),
            "A form sent sooner than this after its token was issued counts as spam."),
    Setting("EDIT_WINDOW_MINUTES", 15, number(above=0),
            "How long a reader may edit or withdraw their own comment."),
    Setting("THREAD_CACHE_SIZE", 256, number(0, whole=True),
            "Serialised threads each process keeps for GET /api/threads/<thread>."),
    Setting("SECRET_KEY", None, optional,
            "Signs sessions and tokens; empty: the instance's secret_key file."),
    # Mail
    Setting("SMTP_HOST", "localhost", text, "The SMTP server."),
    Setting("SMTP_PORT", 25, number(1, whole=True), "Its port."),
    Setting("SMTP_SECURITY", "plain", choice("plain", "starttls", "ssl"), "How to talk to it."),
    Setting("SMTP_USERNAME", "", text, "Sign-in name at the SMTP server, if it asks."),
    Setting("SMTP_PASSWORD", "", text, "Its password."),
    Setting("SMTP_FROM", "", text, "From address; empty: noreply@ the public host."),
    Setting("SMTP_CA_FILE", "", text,
            "A CA bundle to trust for starttls/ssl instead of the system's (a private relay)."),
    Setting("SMTP_MAX_ATTEMPTS", 8, number(1, whole=True), "Tries before a mail fails."),
    Setting("SMTP_RETRY_BASE_SECONDS", 60.0, number(0),
            "Seconds before the first retry; doubled for each later one (at most 6 hours)."),
    Setting("SMTP_TIMEOUT_SECONDS", 30.0, number(0.1), "Timeout of one SMTP conversation."),
    Setting("MAIL_SENDER_THREAD", True, boolean,
            "Start the background sender in each service process (tests turn it off)."),
    Setting("MAIL_POLL_SECONDS", 15.0, number(0.01),
            "How often the sender looks for due messages (it is also woken by new ones)."),
    Setting("MAIL_LEASE_SECONDS", 300.0, number(1),
            "How long a claimed message stays a sender's; one that dies releases it this late."),
    Setting("PUBLIC_URL", "", http_url,
            "The service's public base URL, for links in mail; empty: the request's."),
    Setting("AUTHOR_NOTIFY", "digest", choice("immediately", "digest", "off"),
            "Mail the author about new comments: at once, once a day, or not."),
    Setting("AUTHOR_DIGEST_HOUR", 7, number(0, maximum=23, whole=True),
            "The digest covers the 24 hours up to this hour (UTC) and is sent then."),
    Setting("MAIL_DOUBLE_OPT_IN", True, boolean,
            "Hold reply notifications until the reader confirms the address."),
    Setting("MAIL_PER_ADDRESS_PER_DAY", 10, number(1, whole=True),
            "At most this many messages are queued for one address in any 24 hours."),
    Setting("DEMO_MAILBOX", "", text,
            "Demo only: the folder where `invoke demo`'s mail sink keeps what was sent, shown "
            "as the Mailbox page under /moderate; empty: no Mailbox page."),
    # Replies by email (inbox/)
    Setting("REPLY_MAIL_IMAP_URL", "", imap_url,
            "The mailbox the author's replies by email arrive in: imaps://host[:993]/INBOX or "
            "imap://host[:143]/INBOX (STARTTLS). Empty: no replies by email."),
    Setting("REPLY_MAIL_USERNAME", "", text, "Sign-in name at the IMAP server."),
    Setting("REPLY_MAIL_PASSWORD", "", text, "Its password (an app password at most providers)."),
    Setting("REPLY_MAIL_ADDRESS", "", reply_mail_address,
            "The address that mailbox receives, e.g. replies@example.org: notifications to the "
            "author reply to replies+<signed token>@example.org."),
    Setting("REPLY_MAIL_CA_FILE", "", text,
            "A CA bundle to trust for the IMAP server instead of the system's."),
    Setting("REPLY_MAIL_THREAD", True, boolean,
            "Poll the mailbox from a background thread in each service process (else run "
            "`flask … poll-replies` from cron)."),
    Setting("REPLY_MAIL_POLL_SECONDS", 60.0, number(0.05),
            "How often the mailbox is polled for replies."),
    Setting("REPLY_MAIL_TIMEOUT_SECONDS", 30.0, number(0.1),
            "Timeout of one IMAP conversation step."),
    Setting("REPLY_MAIL_LEASE_SECONDS", 300.0, number(1),
            "How long posting one reply stays one worker's; a worker that dies releases it "
            "this late, and another posts it then."),
    # Webhooks
    Setting("WEBHOOK_URLS", [], http_urls,
            "Where to POST events: a list, or comma-separated URLs. Empty: no webhooks."),
    Setting("WEBHOOK_SECRET", "", text, "Signs every body (HMAC-SHA256); empty: unsigned."),
    Setting("WEBHOOK_TIMEOUT_SECONDS", 5.0, number(0.1), "Timeout of one delivery."),
    Setting("WEBHOOK_MAX_ATTEMPTS", 8, number(1, whole=True), "Tries before an event fails."),
    Setting("WEBHOOK_RETRY_BASE_SECONDS", 30.0, number(0),
            "Seconds before the first retry; doubled for each later one (at most 6 hours)."),
    # The listening target (metrics)
    Setting("TARGET_REPLY_HOURS", 48, number(above=0),
            "The metrics page's aim: TARGET_REPLY_RATE of comments answered within these hours."),
    Setting("TARGET_REPLY_RATE", 0.9, reply_rate, "…and the share answered within them."),
    # Backups
    Setting("BACKUP_DIR", "", text, "Folder of the backups; empty: `backups` in the instance."),
    Setting("BACKUP_KEEP", 7, number(1, whole=True),
            "How many backups to keep; the oldest beyond this go after each new one."),
    Setting("BACKUP_DAILY", True, boolean,
            "Write a backup on the first request of each UTC day (in a background thread)."),
    # The author's sign-in
    Setting("SESSION_LIFETIME_HOURS", 24 * 14, number(above=0),
            "How long a sign-in lasts, from the moment of signing in."),
    Setting("SIGN_IN_LIMIT_PER_ADDRESS", "10 per 15 minutes", one_limit,
            "Failed sign-ins allowed per client address per window before 429 (an address, "
            "never an account, is locked out)."),
    Setting("SIGN_IN_DELAY_SECONDS", 1.0, number(0),
            "After a failed sign-in the next attempt from that address, or for that account "
            "from an address its author does not usually use, waits this long, doubled for "
            "each further recent failure (429 with Retry-After meanwhile)…"),
    Setting("SIGN_IN_MAX_DELAY_SECONDS", 300.0, number(0), "…but never longer than this."),
    Setting("WTF_CSRF_TIME_LIMIT", None, optional,
            "A CSRF token lasts as long as its session (Flask-WTF's default, one hour, would "
            "throw away a reply written slowly)."),
    # Tallied requests
    Setting("TALLY_EMBEDDER", "auto", choice(*TALLY_EMBEDDERS),
            "How comments are compared: words, or the sentence model (`auto`: if installed)."),
    Setting("TALLY_SETTLE_AFTER", 10, number(0, whole=True),
            "With the model, regroup by itself after this many comments grouped one at a "
            "time (0: never)…"),
    Setting("TALLY_SETTLE_INTERVAL", 3600, number(0, whole=True),
            "…and at least this many seconds after the last regroup."),
    Setting("TALLY_LOCK_TIMEOUT_SECONDS", 2.0, number(0),
            "How long a reader's POST waits for the tally lock before leaving the comment "
            "ungrouped (the next regroup places it)."),
    Setting("TALLY_FOLD_EVERY", 500, number(1, whole=True),
            "Tally log records after which the log is folded into a new snapshot."),
)
DEFAULTS: dict[str, Any] = {setting.name: setting.default for setting in SETTINGS}
_BY_NAME = {setting.name: setting for setting in SETTINGS}


def setting_value(config: Mapping[str, Any], name: str) -> Any:
    """One setting from ``config`` (its default where absent), checked by its parser: for
    code that may run on settings not checked at start (scripts, pure modules' tests)."""
    setting = _BY_NAME[name]
    return setting.parse(name, config.get(name, setting.default))


def check_settings(config: MutableMapping[str, Any]) -> None:
    """Fill in every default, convert and check every value, then the rules that tie two
    settings together. Raises ConfigError naming the first bad setting."""
    for setting in SETTINGS:
        config[setting.name] = setting.parse(setting.name, config.get(setting.name,
                                                                       setting.default))
    for timeout in ("SMTP_TIMEOUT_SECONDS", "WEBHOOK_TIMEOUT_SECONDS"):
        if config["MAIL_LEASE_SECONDS"] < 4 * config[timeout]:
            raise ConfigError(f"MAIL_LEASE_SECONDS must be at least 4 times {timeout}, so that "
                              "a message is sent well within its lease")
    if config["REPLY_MAIL_IMAP_URL"] and not (config["REPLY_MAIL_ADDRESS"]
                                              and config["REPLY_MAIL_USERNAME"]):
        raise ConfigError("REPLY_MAIL_IMAP_URL needs REPLY_MAIL_ADDRESS (where the replies go) "
                          "and REPLY_MAIL_USERNAME (to sign in to the mailbox)")


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill app.config in contract order, then check every setting (ConfigError)."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env(ENV_PREFIX)
    if test_config:
        app.config.from_mapping(test_config)
    check_settings(app.config)
    if not app.config["STORE_PATH"]:
        app.config["STORE_PATH"] = str(Path(app.instance_path) / "store")
    if not app.config.get("SECRET_KEY"):
        stored_key = read_secret_key(app)
        # Said when the first request arrives, not here: `flask … init` (which creates the
        # key) must not open with a warning about the key it is about to create.
        app.config["SECRET_KEY_IS_TEMPORARY"] = stored_key is None
        app.config["SECRET_KEY"] = stored_key or secrets.token_hex(32)


def secret_key_path(app: Flask) -> Path:
    return Path(app.instance_path) / SECRET_KEY_FILE


def read_secret_key(app: Flask) -> str | None:
    try:
        key = secret_key_path(app).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return key or None


def write_secret_key(app: Flask) -> tuple[Path, bool]:
    """Create the instance secret key once (0600); returns its path and whether it is new."""
    path = secret_key_path(app)
    if read_secret_key(app):
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    return path, True


def warn_about_temporary_key(app: Flask) -> None:
    """Log once, on the first request, when the secret key lasts only as long as the process."""
    warned = False

    def warn_once() -> None:
        nonlocal warned
        if not warned and app.config.get("SECRET_KEY_IS_TEMPORARY"):
            warned = True
            logger.warning(
                "No SECRET_KEY configured and no instance secret key: using a temporary one "
                "(sessions and edit tokens end with this process). Run "
                "`flask --app comments_service init` to create a lasting key."
            )

    app.before_request(warn_once)
