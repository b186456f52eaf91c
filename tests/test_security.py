"""Production settings pass Django's deploy checks; secrets stay out of logs and the database."""

import logging
import os
import secrets
import subprocess
import sys

from django.conf import settings

from agents.models import Agent
from aiworker.log_redaction import RedactSecretsFilter, redact
from tests.factories import make_agent


def test_check_deploy_is_clean_under_production_settings():
    env = {
        **os.environ,
        "AIWORKER_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "aiworker.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env["AIWORKER_ENV"] = "production"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr


def test_agent_token_is_stored_hashed_only(db):
    agent, token = make_agent()
    row = Agent.objects.filter(pk=agent.pk).values().get()
    assert token not in str(row)
    assert row["token_hash"] != token and len(row["token_hash"]) == 64


def test_log_lines_are_redacted():
    assert "abc123secret" not in redact("Authorization: Bearer abc123secret")
    assert "s3cr3t" not in redact("connecting to mysql://root:s3cr3t@db:3306/x")
    assert "hunter2" not in redact('{"token": "hunter2"}')
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s", ("aiw_abcdef",), None)
    RedactSecretsFilter().filter(record)
    assert "aiw_abcdef" not in record.getMessage()


def _production_setting(expression: str, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("ALLOWED_HOSTS", "TRUSTED_PROXY")}
    env.update({"AIWORKER_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(50), **extra})
    code = f"from django.conf import settings; print(repr({expression}))"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]  # the shell first says what it imported


def test_production_hosts_never_include_the_test_client_host():
    assert "testserver" not in _production_setting("settings.ALLOWED_HOSTS")


def test_the_forwarded_proto_header_is_trusted_only_behind_a_declared_proxy():
    expression = "getattr(settings, 'SECURE_PROXY_SSL_HEADER', None)"
    assert _production_setting(expression) == "None"
    trusted = _production_setting(expression, TRUSTED_PROXY="true")
    assert trusted == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_websocket_origin_behind_a_trusted_proxy_is_https(settings):
    """TLS ends at the proxy: the socket is ws inside, the page https outside."""
    from aiworker.ws_origin import origin_allowed

    settings.ALLOWED_HOSTS = ["aiworker.example.com"]
    scope = {
        "type": "websocket",
        "scheme": "ws",
        "headers": [
            (b"host", b"aiworker.example.com"),
            (b"origin", b"https://aiworker.example.com"),
            (b"x-forwarded-proto", b"https"),
        ],
    }
    settings.SECURE_PROXY_SSL_HEADER = None  # no trusted proxy: the header means nothing
    assert origin_allowed(scope) is False
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_allowed(scope) is True
    plain = {
        **scope,
        "headers": [
            *scope["headers"][:1],
            (b"origin", b"http://aiworker.example.com"),
            scope["headers"][2],
        ],
    }
    assert origin_allowed(plain) is False
    elsewhere = {**scope, "headers": [(b"host", b"evil.example"), *scope["headers"][1:]]}
    assert origin_allowed(elsewhere) is False  # a Host outside ALLOWED_HOSTS
