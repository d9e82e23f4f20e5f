"""Invoke tasks for tellmemore: build, serve and publish the site; run the demo, tests, benchmarks.

`invoke --list` shows them. The Makefile's `demo` and `test` targets install everything into
.venv and then call `invoke demo` / `invoke test`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from invoke import Exit, task

from comments_service.cli.demo import DEMO_EMAIL, DEMO_PASSWORD
from comments_service.demo_mailbox import MailboxFolder, start_sink

ROOT = Path(__file__).resolve().parent

CONFIG = {
    "settings_base": "pelicanconf.py",
    "settings_publish": "publishconf.py",
    "output_path": "output",
    "publish_path": "public",
    "instance_path": "instance",
    "host": "127.0.0.1",
    "site_port": 8000,
    "service_port": 5000,
    "mail_port": 8025,
    # The demo's mailbox, in the instance folder: what its mail sink keeps
    # (comments_service/demo_mailbox.py).
    "mailbox_name": "demo-mailbox",
}
# The demo's poll of the public export names itself, so its access-log lines can be left out.
REBAKE_AGENT = "tellmemore-demo-rebake"


def pelican(c, arguments: str) -> None:
    """Run Pelican with the project's virtual environment, from the project root."""
    with c.cd(str(ROOT)):
        c.run(f"{shlex.quote(sys.executable)} -m pelican {arguments}", pty=False)


@task
def clean(c):
    """Remove the generated site."""
    shutil.rmtree(ROOT / CONFIG["output_path"], ignore_errors=True)


@task
def build(c):
    """Build the site into output/ with pelicanconf.py."""
    pelican(c, "content -s {settings_base} -o {output_path}".format(**CONFIG))


@task
def rebuild(c):
    """Build the site from scratch (deletes output/ first)."""
    pelican(c, "content -d -s {settings_base} -o {output_path}".format(**CONFIG))


@task
def regenerate(c):
    """Rebuild the site whenever a file in content/, theme/ or plugins/ changes."""
    pelican(c, "content -r -s {settings_base} -o {output_path}".format(**CONFIG))


@task
def serve(c, port=CONFIG["site_port"]):
    """Serve output/ on localhost (pretty URLs work)."""
    pelican(c, f"-l -s {CONFIG['settings_base']} -o {CONFIG['output_path']} "
               f"-b {CONFIG['host']} -p {int(port)}")


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _wait_for(url: str, process: subprocess.Popen, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Exit(f"{url} did not start (exit code {process.returncode}); see the log above")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our own loopback URL
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise Exit(f"{url} did not answer within {seconds:.0f} s")


def _public_threads_digest(export_url: str) -> str | None:
    """A digest of the service's public threads, or None when it does not answer."""
    request = urllib.request.Request(  # noqa: S310 - our own loopback URL
        export_url, headers={"User-Agent": REBAKE_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            document = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    text = json.dumps(document.get("threads"), sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()


def rebake_on_change(rebuild, export_url: str, stop: threading.Event, every: float = 3.0):
    """Rebuild the site whenever the published comments change, so pages read without
    scripts show new replies after a reload (the demo's stand-in for a cron'd `invoke build`)."""
    baked = _public_threads_digest(export_url)
    while not stop.wait(every):
        current = _public_threads_digest(export_url)
        if current is not None and current != baked:
            rebuild()
            baked = current


def service_environment(site_origin: str, service_url: str = "",
                        mail_port: int | None = None, output: Path | None = None,
                        instance: Path | None = None) -> dict[str, str]:
    """Environment for the demo's comment service: the built manifest and a local instance;
    with ``mail_port``, mail goes to the demo's mail sink there and shows in its Mailbox."""
    output = output or ROOT / CONFIG["output_path"]
    instance = instance or ROOT / CONFIG["instance_path"]
    environment = dict(os.environ)
    environment.update(
        TELLMEMORE_MANIFEST=str(output / "comments-manifest.json"),
        TELLMEMORE_INSTANCE_PATH=str(instance),
        TELLMEMORE_SITE_ORIGINS=site_origin,
    )
    if mail_port is not None:
        environment.update(
            TELLMEMORE_SMTP_HOST=CONFIG["host"], TELLMEMORE_SMTP_PORT=str(mail_port),
            TELLMEMORE_SMTP_SECURITY="plain",
            TELLMEMORE_DEMO_MAILBOX=str(instance / CONFIG["mailbox_name"]),
            # Links in mail sent outside a request (the digest, retries) need the address.
            TELLMEMORE_PUBLIC_URL=service_url,
            # The demo shows a sent message within a second or two, not the default 15 s.
            TELLMEMORE_MAIL_SENDER_THREAD="true", TELLMEMORE_MAIL_POLL_SECONDS="1",
        )
    return environment


def announce_mail(service_url: str):
    """The mail sink's console line for each message it keeps: to whom, what, where to read it."""
    def announce(message_id: str, message) -> None:
        print(f"  Mail to {message.get('To', '?')}: \u201c{message.get('Subject', '')}\u201d"
              f" \u2192 {service_url}/moderate/mailbox/{message_id}", flush=True)
    return announce


def copy_access_log(stream, out=sys.stdout) -> None:
    """Copy gunicorn's access log to the console, without the demo's own poll of the public
    export (every 3 s, it would bury everything else)."""
    for line in stream:
        if REBAKE_AGENT not in line:
            out.write(line)
            out.flush()


@task(help={"folder": "Keep the site, the store and the mailbox here, not in output/ and "
                      "instance/ (the demo's browser test uses a temporary folder)."})
def demo(c, site_port=CONFIG["site_port"], service_port=CONFIG["service_port"],
         mail_port=CONFIG["mail_port"], folder=""):
    """Run the demo: the sample site, the comment service and a mail sink on loopback.

    Prints the URLs (the Mailbox shows the mail); Ctrl-C stops everything."""
    host = CONFIG["host"]
    output = Path(folder) / "output" if folder else ROOT / CONFIG["output_path"]
    instance = Path(folder) / "instance" if folder else ROOT / CONFIG["instance_path"]
    site_port, service_port, mail_port = int(site_port), int(service_port), int(mail_port)
    for port in (site_port, service_port, mail_port):
        if not _port_is_free(host, port):
            raise Exit(
                f"Port {port} on {host} is in use. Stop what uses it, or pick others: "
                "invoke demo --site-port 8001 --service-port 5001 --mail-port 8026"
            )
    site_url, service_url = f"http://{host}:{site_port}", f"http://{host}:{service_port}"
    # The pages must point at the ports chosen here: the form posts to the service, and the
    # manifest's URLs are where the service sends readers back to.
    overrides = f"SITEURL='\"{site_url}\"' COMMENTS_SERVICE_URL='\"{service_url}\"' " \
        f"COMMENTS_EXPORT='\"{service_url}/api/public-export\"'"

    def rebuild() -> None:
        pelican(c, f"content -q -s {CONFIG['settings_base']} -o {shlex.quote(str(output))} -e "
                + overrides)

    rebuild()
    environment = service_environment(site_url, service_url, mail_port, output, instance)
    flask = [sys.executable, "-m", "flask", "--app", "comments_service"]
    subprocess.run([*flask, "init"], cwd=ROOT, env=environment, check=True)
    subprocess.run([*flask, "demo-data"], cwd=ROOT, env=environment, check=True)
    # Mail is only queued so far; the service's sender threads deliver it to the sink.
    sink = start_sink(MailboxFolder(instance / CONFIG["mailbox_name"]), host, mail_port,
                      announce_mail(service_url))
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"{host}:{service_port}",
             "--access-logfile", "-", "comments_service.wsgi:app"],
            cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True, bufsize=1,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "pelican", "-l", "-s", CONFIG["settings_base"],
             "-o", str(output), "-b", host, "-p", str(site_port)],
            cwd=ROOT,
        ),
    ]
    def stop(_signal_number, _frame):
        raise KeyboardInterrupt  # run the clean-up below on `kill` as on Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    stop_rebaking = threading.Event()
    try:
        threading.Thread(target=copy_access_log, args=(processes[0].stdout,),
                         daemon=True).start()
        _wait_for(f"{service_url}/healthz", processes[0])
        _wait_for(f"{site_url}/", processes[1])
        threading.Thread(
            target=rebake_on_change,
            args=(rebuild, f"{service_url}/api/public-export", stop_rebaking), daemon=True,
        ).start()
        print(
            "\n"
            f"  Blog:            {site_url}/\n"
            f"  Comment service: {service_url}/healthz\n"
            f"  Manifest:        {site_url}/comments-manifest.json\n"
            f"  Moderation:      {service_url}/moderate/\n"
            f"  Demo author:     {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            f"  Mailbox:         {service_url}/moderate/mailbox/"
            f" (the mail sink: {host}:{mail_port})\n"
            "\n  Pages are rebuilt when published comments change, so replies show without\n"
            "  JavaScript too. Mail is kept by the sink, not sent out: one line here per\n"
            "  message, read it in the Mailbox. Press Ctrl-C to stop.\n",
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop_rebaking.set()
        sink.stop()
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@task
def lint(c):
    """Check the code with ruff, then the import contracts (dependencies point downward)."""
    with c.cd(str(ROOT)):
        c.run(f"{shlex.quote(sys.executable)} -m ruff check .")
        c.run(f"{shlex.quote(str(Path(sys.executable).parent / 'lint-imports'))} --no-cache")


# Where `invoke test` looks for servers that the PostgreSQL-store and shared-rate-limit tests
# can use (issue 10). A test run never touches existing data: it makes its own database.
LOCAL_POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` (a postgresql:// URL) naming the database ``name`` instead."""
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


@contextmanager
def fresh_postgres_database() -> Iterator[None]:
    """Set TELLMEMORE_TEST_PG_DSN to a new, empty database on the local PostgreSQL server for
    the duration (dropped afterwards); say why the PostgreSQL tests will be skipped otherwise.
    A DSN given by the caller is used as it is."""
    if os.environ.get("TELLMEMORE_TEST_PG_DSN"):
        yield
        return
    import psycopg
    from psycopg import sql

    admin_dsn = os.environ.get("TELLMEMORE_TEST_PG_ADMIN_DSN", LOCAL_POSTGRES_ADMIN)
    try:
        admin = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        print(f"No PostgreSQL at {admin_dsn} ({str(error).strip()}): the PostgreSQL store "
              "tests will be skipped. Set TELLMEMORE_TEST_PG_DSN to run them.")
        yield
        return
    name = f"tellmemore_test_{os.getpid()}_{int(time.time())}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        os.environ["TELLMEMORE_TEST_PG_DSN"] = database_url(admin_dsn, name)
        print(f"PostgreSQL store tests use the fresh database {name}")
        try:
            yield
        finally:
            del os.environ["TELLMEMORE_TEST_PG_DSN"]
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(sql.Identifier(name)))


@contextmanager
def local_redis() -> Iterator[None]:
    """Set TELLMEMORE_TEST_REDIS_URL to the local Redis when one answers (tests of rate
    limits shared between instances use their own key prefix in it)."""
    if os.environ.get("TELLMEMORE_TEST_REDIS_URL"):
        yield
        return
    import redis

    client = redis.Redis.from_url(LOCAL_REDIS, socket_connect_timeout=3)
    try:
        client.ping()
        problem = None
    except redis.RedisError as error:
        problem = error
    finally:
        client.close()
    if problem is not None:
        print(f"No Redis at {LOCAL_REDIS} ({problem}): the shared rate-limit tests will be "
              "skipped. Set TELLMEMORE_TEST_REDIS_URL to run them.")
        yield
        return
    os.environ["TELLMEMORE_TEST_REDIS_URL"] = LOCAL_REDIS
    try:
        yield
    finally:
        del os.environ["TELLMEMORE_TEST_REDIS_URL"]


@task(help={"args": "extra arguments for pytest, e.g. -k manifest"})
def test(c, args=""):
    """Run the linters, then the whole pytest suite (it fails if no test runs).

    With a fresh PostgreSQL database and the local Redis when this machine runs them."""
    lint(c)
    with c.cd(str(ROOT)), fresh_postgres_database(), local_redis():
        c.run(f"{shlex.quote(sys.executable)} -m pytest {args}")


@task
def bench(c):
    """Run the benchmarks under bench/ and print their ratios."""
    with c.cd(str(ROOT)):
        for script in sorted((ROOT / "bench").glob("*.py")):
            c.run(f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")


@task
def publish(c, target=None):
    """Build with publishconf.py and copy the site to PUBLISH_TARGET (a folder or host:path)."""
    from pelican.settings import read_settings

    settings = read_settings(str(ROOT / CONFIG["settings_publish"]))
    destination = target or settings.get("PUBLISH_TARGET") or CONFIG["publish_path"]
    build_path = ROOT / ".publish-build"
    pelican(c, f"content -s {CONFIG['settings_publish']} -o {shlex.quote(str(build_path))}")
    if ":" in destination and not Path(destination).exists():
        c.run(f"rsync -az --delete {shlex.quote(str(build_path))}/ {shlex.quote(destination)}")
        return
    destination_path = (ROOT / destination).resolve()
    staging = destination_path.with_name(destination_path.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(build_path, staging)
    # Swap in the new copy whole, so the published folder is never half-updated.
    previous = destination_path.with_name(destination_path.name + ".old")
    shutil.rmtree(previous, ignore_errors=True)
    if destination_path.exists():
        destination_path.rename(previous)
    staging.rename(destination_path)
    shutil.rmtree(previous, ignore_errors=True)
    print(f"Published to {destination_path}")
