"""The server's entry point: `gunicorn 'comments_service.wsgi:app'`.

Building the app never exits (`flask` commands must run on a damaged store, to check and
restore it); serving one does: on a bad setting, a damaged store, or a database schema this
code does not know, the process says why in one line and exits with status 3, which makes
gunicorn stop instead of starting workers that fail the same way forever.
"""

import logging

from comments_service import create_app
from comments_service.config import ConfigError
from comments_service.damaged_store import EXIT_STORE_DAMAGED, refuse_to_serve_damaged

logger = logging.getLogger(__name__)

try:
    app = create_app()
except ConfigError as error:
    logger.critical("tellmemore refuses to start: %s", error)
    raise SystemExit(EXIT_STORE_DAMAGED) from None
refuse_to_serve_damaged(app)
