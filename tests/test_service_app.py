"""The comment service's start: settings, the manifest it depends on, /healthz, CLI, servers."""

from __future__ import annotations

import functools
import http.server
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from comments_service import create_app
from comments_service.config import ConfigError
from tests.servers import free_port, wait_for_json

GOOD_MANIFEST = {
    "schema_version": 1,
    "site_name": "Test",
    "site_url": "http://127.0.0.1:8000",
    "service_url": "http://127.0.0.1:5000",  # the address for links in mail
    "articles": [
        {
            "thread": "hello",
            "title": "Hello",
            "url": "http://127.0.0.1:8000/hello/",
            "date": "2026-10-01T00:00:00+00:00",
            "lang": "en",
            "questions": [{"id": "why", "text": "Why?"}],
        }
    ],
}


def write_manifest(path: Path, payload: object) -> Path:
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    return path


@pytest.fixture
def instance(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "instance"
    monkeypatch.setenv("TELLMEMORE_INSTANCE_PATH", str(folder))
    return folder


@pytest.fixture
def manifest_path(tmp_path) -> Path:
    return write_manifest(tmp_path / "comments-manifest.json", GOOD_MANIFEST)


def test_healthz_reports_the_loaded_manifest(instance, manifest_path):
    app = create_app({"MANIFEST": str(manifest_path), "SECRET_KEY": "x"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "manifest": {"articles": 1}}
    assert str(manifest_path.parent) not in response.get_data(as_text=True), "no server paths"


def test_unknown_routes_get_a_json_error(instance, manifest_path):
    response = create_app({"MANIFEST": str(manifest_path)}).test_client().get("/nowhere")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    assert set(response.json) == {"error", "message", "fields"}


BAD_MANIFESTS = {
    "missing": None,
    "not json": "{not json",
    "not an object": "[]",
    "no schema": {"articles": []},
    "newer schema": {"schema_version": 99, "articles": []},
    "articles not a list": {"schema_version": 1, "articles": {}},
    "bad thread key": {"schema_version": 1, "articles": [
        {**GOOD_MANIFEST["articles"][0], "thread": "../etc"}]},
    "repeated thread": {"schema_version": 1, "articles": GOOD_MANIFEST["articles"] * 2},
    "bad question id": {"schema_version": 1, "articles": [
        {**GOOD_MANIFEST["articles"][0], "questions": [{"id": "has space", "text": "?"}]}]},
    "repeated question id": {"schema_version": 1, "articles": [
        {**GOOD_MANIFEST["articles"][0], "questions": [{"id": "a", "text": "A"}] * 2}]},
    "no title": {"schema_version": 1, "articles": [
        {key: value for key, value in GOOD_MANIFEST["articles"][0].items() if key != "title"}]},
}
EXPECTED_MESSAGES = {
    "missing": "no such file", "not json": "not valid JSON", "not an object": "top level",
    "no schema": "schema_version is missing", "newer schema": "newer than this service",
    "articles not a list": "articles is missing", "bad thread key": "invalid thread key",
    "repeated thread": "repeats", "bad question id": "invalid id",
    "repeated question id": "repeats a question id", "no title": "has no title",
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_a_missing_or_invalid_manifest_refuses_service_clearly(case, tmp_path, instance):
    path = tmp_path / "comments-manifest.json"
    if BAD_MANIFESTS[case] is not None:
        write_manifest(path, BAD_MANIFESTS[case])
    client = create_app({"MANIFEST": str(path)}).test_client()
    for url in ("/healthz", "/anything", "/api/threads/hello"):
        response = client.get(url)
        assert response.status_code == 503, url
        assert EXPECTED_MESSAGES[case] in response.json["message"]
        assert response.json["error"] == "manifest_unavailable"
        # Named by its file name: where it lies on the server's disk is not the public's.
        assert path.name in response.json["message"]
        assert str(path.parent) not in response.get_data(as_text=True)


def test_the_manifest_is_reloaded_when_the_site_is_rebuilt(tmp_path, instance):
    path = tmp_path / "comments-manifest.json"
    client = create_app({"MANIFEST": str(path)}).test_client()
    assert client.get("/healthz").status_code == 503
    write_manifest(path, GOOD_MANIFEST)
    assert client.get("/healthz").json["manifest"]["articles"] == 1
    two = {**GOOD_MANIFEST, "articles": [*GOOD_MANIFEST["articles"],
                                         {**GOOD_MANIFEST["articles"][0], "thread": "two"}]}
    write_manifest(path, two)
    assert client.get("/healthz").json["manifest"]["articles"] == 2


@pytest.fixture
def manifest_server(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    write_manifest(folder / "comments-manifest.json", GOOD_MANIFEST)

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def test_the_manifest_can_come_from_the_site_url(instance, manifest_server):
    base, folder = manifest_server
    app = create_app({"MANIFEST": f"{base}/comments-manifest.json", "MANIFEST_REFRESH_SECONDS": 0})
    client = app.test_client()
    assert client.get("/healthz").json["manifest"]["articles"] == 1
    # While the site is briefly unreachable, the last good copy keeps serving.
    (folder / "comments-manifest.json").unlink()
    assert client.get("/healthz").status_code == 200


def test_a_manifest_url_that_does_not_answer_is_a_clear_503(instance):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = create_app({"MANIFEST": f"http://127.0.0.1:{port}/m.json"}).test_client()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "cannot fetch it" in response.json["message"]


# --- settings --------------------------------------------------------------------------------


def test_settings_come_from_instance_file_then_environment_then_test_config(
    instance, manifest_path, monkeypatch
):
    instance.mkdir()
    (instance / "config.py").write_text(
        f"MANIFEST = {str(manifest_path)!r}\nPUBLISH_POLICY = 'immediately'\n"
        "RATE_LIMIT = '1/second'\nSPAM_CHECKS = 'off'\n"
    )
    app = create_app()
    assert app.config["PUBLISH_POLICY"] == "immediately"
    assert app.config["RATE_LIMIT"] == "1/second"

    monkeypatch.setenv("TELLMEMORE_RATE_LIMIT", "off")
    monkeypatch.setenv("TELLMEMORE_SITE_ORIGINS", "https://a.example, https://b.example")
    app = create_app()
    assert app.config["RATE_LIMIT"] == "off"
    assert app.config["SITE_ORIGINS"] == ["https://a.example", "https://b.example"]

    app = create_app({"RATE_LIMIT": "9/hour"})
    assert app.config["RATE_LIMIT"] == "9/hour"
    assert app.config["STORE_PATH"] == str(instance / "store")


@pytest.mark.parametrize(
    ("name", "value"), [("PUBLISH_POLICY", "sometimes"), ("SPAM_CHECKS", "maybe")]
)
def test_invalid_choices_are_refused_with_the_setting_named(name, value, instance, manifest_path):
    with pytest.raises(ConfigError, match=f"{name} must be one of"):
        create_app({"MANIFEST": str(manifest_path), name: value})


@pytest.mark.parametrize(("name", "value", "said"), [
    ("BACKUP_KEEP", "0", "BACKUP_KEEP must be at least 1"),
    ("MAIL_DOUBLE_OPT_IN", "maybe", "MAIL_DOUBLE_OPT_IN must be true or false"),
    ("EDIT_WINDOW_MINUTES", "soon", "EDIT_WINDOW_MINUTES must be a number"),
    ("STORE_POOL_SIZE", "2.5", "STORE_POOL_SIZE must be a finite whole number"),
    ("TALLY_EMBEDDER", "magic", "TALLY_EMBEDDER must be one of"),
    ("RATE_LIMIT", "lots", "RATE_LIMIT must be a limit such as 5/minute"),
])
@pytest.mark.parametrize("entry", ["flask", "gunicorn"])
def test_a_bad_setting_stops_the_start_in_one_line(name, value, said, entry, instance,
                                                   manifest_path, tmp_path):
    """From the environment, as an operator sets it: one line naming the setting, no
    traceback, a failing exit; the server (gunicorn) stops instead of restarting workers."""
    environment = {**os.environ, "TELLMEMORE_MANIFEST": str(manifest_path),
                   f"TELLMEMORE_{name}": value}
    command = ([sys.executable, "-m", "flask", "--app", "comments_service", "check"]
               if entry == "flask" else
               [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{free_port()}",
                "comments_service.wsgi:app"])
    done = subprocess.run(command, env=environment, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if said in line]
    assert len(lines) == 1, done.stderr


# --- CLI ---------------------------------------------------------------------------------------


def test_init_creates_a_private_secret_key_once_even_without_a_manifest(instance, tmp_path):
    app = create_app({"MANIFEST": str(tmp_path / "absent.json")})
    result = app.test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 0, result.output
    key_file = instance / "secret_key"
    key = key_file.read_text().strip()
    assert len(key) == 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (instance / "store").is_dir()
    again = create_app({"MANIFEST": str(tmp_path / "absent.json")})
    assert again.test_cli_runner().invoke(args=["init"]).exit_code == 0
    assert key_file.read_text().strip() == key
    assert again.config["SECRET_KEY"] == key


def test_check_reports_the_manifest_or_fails_with_the_reason(instance, manifest_path, tmp_path):
    ok = create_app({"MANIFEST": str(manifest_path)}).test_cli_runner().invoke(args=["check"])
    assert ok.exit_code == 0
    assert "1 article, 1 question" in ok.output
    bad = create_app({"MANIFEST": str(tmp_path / "absent.json")}).test_cli_runner()
    result = bad.invoke(args=["check"])
    assert result.exit_code == 1
    assert "no such file" in result.output


# --- real servers ------------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["gunicorn", "flask"])
def test_the_service_runs_under_gunicorn_and_flask_run(server, tmp_path, manifest_path):
    port = free_port()
    environment = {
        **os.environ,
        "TELLMEMORE_INSTANCE_PATH": str(tmp_path / "instance"),
        "TELLMEMORE_MANIFEST": str(manifest_path),
    }
    commands = {
        "gunicorn": [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                     "comments_service.wsgi:app"],
        "flask": [sys.executable, "-m", "flask", "--app", "comments_service", "run",
                  "--port", str(port)],
    }
    log = tmp_path / "server.log"
    with log.open("w") as log_file, subprocess.Popen(
        commands[server], cwd=tmp_path, env=environment, stdout=log_file, stderr=log_file
    ) as process:
        try:
            health = wait_for_json(f"http://127.0.0.1:{port}/healthz", process, log)
            assert health["status"] == "ok"
        finally:
            process.terminate()
            process.wait(timeout=10)
