"""The service's settings: defaults, then the instance config.py, then TELLMEMORE_* variables,
then the mapping passed to create_app (DESIGN.md, "Configuration contract")."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

logger = logging.getLogger(__name__)

ENV_PREFIX = "TELLMEMORE"
SECRET_KEY_FILE = "secret_key"
PUBLISH_POLICIES = ("after_reply", "immediately")
SWITCHES = ("on", "off")

DEFAULTS: dict[str, Any] = {
    # Path or URL of the comments-manifest.json written by the site build.
    "MANIFEST": "output/comments-manifest.json",
    "MANIFEST_REFRESH_SECONDS": 60,
    # Folder of the embedded store; empty means "store" inside the instance folder.
    "STORE_PATH": "",
    # Empty: the embedded TinyDB store in STORE_PATH. postgresql://user@host/database: the
    # PostgreSQL store, for several instances (its schema: `flask --app comments_service init`).
    "STORE_URL": "",
    # Origins (scheme://host[:port]) of the site(s) whose pages may call the API.
    "SITE_ORIGINS": [],
    "PUBLISH_POLICY": "after_reply",
    "RATE_LIMIT": "5/minute",
    # Where rate-limit counts live: per process by default; redis://… to share them.
    "RATE_LIMIT_STORAGE_URI": "memory://",
    # Largest request body accepted (bytes); larger ones get 413.
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "SPAM_CHECKS": "on",
    "SECRET_KEY": None,
    "SMTP_HOST": "localhost",
    "SMTP_PORT": 25,
    "SMTP_SECURITY": "plain",
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_FROM": "",
    # The metrics page's aim: TARGET_REPLY_RATE of reader comments answered within the hours.
    "TARGET_REPLY_HOURS": 48,
    "TARGET_REPLY_RATE": 0.9,
}


class ConfigError(Exception):
    """A setting has a value the service cannot work with."""


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill app.config in contract order and check the values that must be one of a set."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env(ENV_PREFIX)
    if test_config:
        app.config.from_mapping(test_config)
    if isinstance(app.config["SITE_ORIGINS"], str):
        app.config["SITE_ORIGINS"] = [
            origin.strip() for origin in app.config["SITE_ORIGINS"].split(",") if origin.strip()
        ]
    _check_choice(app, "PUBLISH_POLICY", PUBLISH_POLICIES)
    _check_choice(app, "SPAM_CHECKS", SWITCHES)
    if not app.config["STORE_PATH"]:
        app.config["STORE_PATH"] = str(Path(app.instance_path) / "store")
    if not app.config.get("SECRET_KEY"):
        stored_key = read_secret_key(app)
        # Said when the first request arrives, not here: `flask … init` (which creates the
        # key) must not open with a warning about the key it is about to create.
        app.config["SECRET_KEY_IS_TEMPORARY"] = stored_key is None
        app.config["SECRET_KEY"] = stored_key or secrets.token_hex(32)


def _check_choice(app: Flask, name: str, choices: tuple[str, ...]) -> None:
    if app.config[name] not in choices:
        raise ConfigError(
            f"{name} must be one of {', '.join(choices)}, not {app.config[name]!r}"
        )


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
