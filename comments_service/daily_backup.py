"""The service's own daily backup: on the first request a process serves on a new UTC day,
that day's backup is written in a background thread (never on the request path) unless one
exists (store/backup.py does the writing, under a lock shared by every worker)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask

from comments_service.damaged_store import DamagedStore
from comments_service.extensions import STORE_EXTENSION
from comments_service.store import is_postgres_url
from comments_service.store.backup import write_daily_backup

logger = logging.getLogger(__name__)

EXTENSION = "tellmemore.daily_backup"


def backup_folder(app: Flask) -> Path:
    """BACKUP_DIR, or "backups" in the instance folder."""
    return Path(app.config["BACKUP_DIR"] or Path(app.instance_path) / "backups")


class DailyBackup:
    """Starts the day's backup thread once per UTC day and process."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.day: str | None = None
        self.thread: threading.Thread | None = None

    def before_request(self) -> None:
        today = datetime.now(UTC).strftime("%Y%m%d")
        if self.day == today:
            return
        self.day = today
        self.thread = threading.Thread(target=self.run, args=(today,),
                                       name="tellmemore-daily-backup", daemon=True)
        self.thread.start()

    def run(self, today: str) -> Path | None:
        try:
            written = write_daily_backup(self.app.extensions[STORE_EXTENSION],
                                         backup_folder(self.app),
                                         int(self.app.config["BACKUP_KEEP"]), today)
        except Exception:
            logger.exception("The daily backup failed; the next day's first request tries again")
            return None
        if written is not None:
            logger.info("Wrote the daily backup %s", written)
        return written


def init_app(app: Flask) -> None:
    """Start daily backups when BACKUP_DAILY is on. Not on PostgreSQL: the database is backed
    up by pg_dump, not by each instance; not on a damaged store."""
    if (app.config["BACKUP_DAILY"] and not is_postgres_url(app.config.get("STORE_URL"))
            and not isinstance(app.extensions[STORE_EXTENSION], DamagedStore)):
        daily_backup = DailyBackup(app)
        app.extensions[EXTENSION] = daily_backup
        app.before_request(daily_backup.before_request)
