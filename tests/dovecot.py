"""A real IMAP server for the reply-by-email tests: Debian's Dovecot (installed by .ci/run via
.ci/install-dovecot), started by the tests themselves with a config, a self-signed certificate
and maildirs in a temporary folder, listening on loopback ports (IMAP with STARTTLS, and
IMAPS). Nothing of the system's Dovecot setup is read or changed.

Run as root, Dovecot refuses to run its login and mail processes as root: they run as the
package's own users (dovenull, dovecot), who get the mail folder; as anyone else, everything
runs as the current user. Each test gets a mailbox (a user) of its own on the one server.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.servers import free_port

DOVECOT_PATHS = ("/usr/sbin/dovecot", "/usr/bin/dovecot")
NOT_INSTALLED = ("dovecot is not installed (Debian: apt-get install dovecot-imapd; "
                 ".ci/install-dovecot does it for `make test`)")
CONFIG = """\
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{folder}/cert.pem
ssl_key = <{folder}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain
auth_failure_delay = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 0
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={folder}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
"""


def dovecot_binary() -> str | None:
    for candidate in DOVECOT_PATHS:
        if Path(candidate).exists():
            return candidate
    return shutil.which("dovecot")


class Dovecot:
    """One Dovecot on loopback; :meth:`mailbox` adds a user, :meth:`append` delivers mail."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        # Not under pytest's 0700 tmp folders: Dovecot's own users must reach the maildirs.
        self.folder = Path(tempfile.mkdtemp(prefix="tellmemore-dovecot-"))
        self.folder.chmod(0o755)
        self.config = self.folder / "dovecot.conf"
        self.cert = self.folder / "cert.pem"
        self.imap_port, self.imaps_port = free_port(), free_port()
        # One password for every user (a static passdb): each test signs in as a user of its
        # own, whose maildir Dovecot makes on first use.
        self.password = secrets.token_urlsafe(12)

    def start(self) -> None:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(self.folder / "key.pem"), "-out", str(self.cert),
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True)
        home = self.folder / "home"
        for name in ("run", "state", "home"):
            (self.folder / name).mkdir()
        if os.geteuid() == 0:
            users = {"internal_user": "dovecot", "internal_group": "dovecot",
                     "login_user": "dovenull"}
            mail_user = pwd.getpwnam("dovecot")
            os.chown(home, mail_user.pw_uid, mail_user.pw_gid)
        else:
            mail_user = pwd.getpwuid(os.geteuid())
            group = grp.getgrgid(os.getegid()).gr_name
            users = {"internal_user": mail_user.pw_name, "internal_group": group,
                     "login_user": mail_user.pw_name}
        self.config.write_text(CONFIG.format(
            folder=self.folder, imap_port=self.imap_port, imaps_port=self.imaps_port,
            mail_uid=mail_user.pw_uid, mail_gid=mail_user.pw_gid, password=self.password,
            **users))
        # Not captured: the daemon keeps the pipes open, and reading them would never end.
        # What it says goes to its log (``log``).
        started = subprocess.run([self.binary, "-c", str(self.config)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 check=False)
        if started.returncode != 0:
            raise AssertionError(f"dovecot did not start ({started.returncode}):\n{self.log()}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.imaps_port), timeout=1):
                return
            time.sleep(0.05)
        raise AssertionError(f"dovecot did not start:\n{self.log()}")

    def stop(self) -> None:
        subprocess.run([self.binary, "-c", str(self.config), "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def mailbox(self) -> tuple[str, str]:
        """A new user with an empty INBOX: (user name, password)."""
        return f"author-{secrets.token_hex(4)}@mail.test", self.password

    def url(self, tls: str = "ssl") -> str:
        if tls == "ssl":
            return f"imaps://127.0.0.1:{self.imaps_port}/INBOX"
        return f"imap://127.0.0.1:{self.imap_port}/INBOX"

    @contextlib.contextmanager
    def session(self, user: str) -> Iterator[imaplib.IMAP4_SSL]:
        context = ssl.create_default_context(cafile=str(self.cert))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=context, timeout=10)
        try:
            imap.login(user, self.password)
            yield imap
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                imap.logout()

    def append(self, user: str, raw: bytes | str) -> None:
        """Deliver one message into the user's INBOX (IMAP APPEND), unread."""
        data = raw.encode("utf-8") if isinstance(raw, str) else raw
        data = re.sub(rb"\r?\n", b"\r\n", data)
        with self.session(user) as imap:
            status, answer = imap.append("INBOX", None, None, data)
            assert status == "OK", answer

    def flags(self, user: str) -> list[str]:
        """The stored flags of each message in the INBOX, in order ("\\\\Seen" marks read
        ones)."""
        with self.session(user) as imap:
            imap.select("INBOX", readonly=True)
            status, data = imap.fetch("1:*", "(FLAGS)")
            if status != "OK" or data == [None]:
                return []
            # \Recent belongs to whichever session saw the message first, not to it.
            return [" ".join(flag.decode() for flag in re.findall(rb"\\\w+", item)
                             if flag != b"\\Recent")
                    for item in data if isinstance(item, bytes)]
