"""The server's entry point: `gunicorn 'comments_service.wsgi:app'`.

Building the app never exits (`flask` commands must run on a damaged store, to check and
restore it); serving one does: on a bad setting, a damaged store, a database schema this
code does not know, or no trustworthy address for links in mail (PUBLIC_URL, or the manifest's
service_url), the process says why in one line and exits with status 3, which makes
gunicorn stop instead of starting workers that fail the same way forever.
"""

import logging

from comments_service import create_app
from comments_service.config import ConfigError
from comments_service.damaged_store import EXIT_STORE_DAMAGED, refuse_to_serve_damaged
from comments_service.mail.links import MailSetupError, check_links_base

logger = logging.getLogger(__name__)

try:
    app = create_app()
except ConfigError as error:
    logger.critical("tellmemore refuses to start: %s", error)
    raise SystemExit(EXIT_STORE_DAMAGED) from None
refuse_to_serve_damaged(app)
try:
    check_links_base(app)
except MailSetupError as error:
    logger.critical("tellmemore refuses to start: %s", error)
    raise SystemExit(EXIT_STORE_DAMAGED) from None
